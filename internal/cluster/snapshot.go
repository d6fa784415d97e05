// Package cluster owns the Snapshot: the Kubernetes objects that Rampart
// reasons about (namespaces, pods and workloads, nodes, services, policies),
// each with the place it came from, and the sources that fill it: manifest
// files on disk (files.go) and, in a later issue, a live API server.
//
// A Snapshot is plain data. It is not validated beyond what is needed to
// decode it: validation as the API server does it lives in internal/policy,
// which turns a Snapshot into a Model.
package cluster

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	npav1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	npav1alpha2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// Snapshot is one consistent view of a cluster.
type Snapshot struct {
	Namespaces      []*Namespace
	Pods            []*Pod
	Nodes           []*Node
	Services        []*Service
	NetworkPolicies []*NetworkPolicy

	// The cluster-wide policies of sigs.k8s.io/network-policy-api: the
	// v1alpha2 ClusterNetworkPolicy (tier Admin or Baseline), and the
	// v1alpha1 kinds it replaces. All three are cluster-scoped; each list
	// is sorted by name.
	ClusterNetworkPolicies       []*ClusterNetworkPolicy
	AdminNetworkPolicies         []*AdminNetworkPolicy
	BaselineAdminNetworkPolicies []*BaselineAdminNetworkPolicy

	// AuthorizationPolicies are Istio's (security.istio.io v1 and
	// v1beta1): L7 authorization at the destination's node.
	AuthorizationPolicies []*AuthorizationPolicy

	// Rampart's own resources (rampart.dev/v1alpha1), cluster-scoped:
	// the cluster's encryption settings (one, named default) and the IPsec
	// gateways outside the cluster.
	EncryptionConfigs []*EncryptionConfig
	IPsecPeers        []*IPsecPeer

	// Diagnostics are what the source found while reading: documents that do
	// not parse, objects of the wrong shape (errors), kinds that Rampart skips
	// (notes). Validation of the objects themselves adds its own later.
	Diagnostics []Diagnostic

	// Version, for a live cluster's snapshot, is the resourceVersion of
	// the last change its informers had seen when it was taken: a writer
	// that knows its write's resourceVersion can wait for a reader to get
	// that far (etcd's revisions grow). Empty for files.
	Version string
}

// Namespace is a Namespace object. Declared is false for a namespace that
// an object refers to but no manifest declares; it then carries only the
// automatic kubernetes.io/metadata.name label, as the API server would give it.
type Namespace struct {
	corev1.Namespace
	Declared bool
	Origin   *Origin
}

// Pod is one endpoint: a bare Pod, or the pod template of a workload
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), which
// stands for all of its replicas under the workload's own name.
//
// For a workload the embedded Pod is synthesized: ObjectMeta.Name and
// Namespace are the workload's, Labels are the template's labels, Spec is
// the template's spec, and Status is empty.
type Pod struct {
	corev1.Pod
	// Kind is the kind of the object the endpoint came from ("Pod",
	// "Deployment", ...).
	Kind string
	// SpecPath is the field path of the pod spec inside the source object
	// ("spec", "spec.template.spec", "spec.jobTemplate.spec.template.spec"),
	// and LabelsPath that of its labels, so that diagnostics can point at them.
	SpecPath   string
	LabelsPath string
	Origin     *Origin
}

// Node is a Node object.
type Node struct {
	corev1.Node
	Origin *Origin
}

// Service is a Service object.
type Service struct {
	corev1.Service
	Origin *Origin
}

// NetworkPolicy is a networking.k8s.io/v1 NetworkPolicy.
type NetworkPolicy struct {
	networkingv1.NetworkPolicy
	Origin *Origin
}

// ClusterNetworkPolicy is a policy.networking.k8s.io/v1alpha2
// ClusterNetworkPolicy.
type ClusterNetworkPolicy struct {
	npav1alpha2.ClusterNetworkPolicy
	Origin *Origin
}

// AdminNetworkPolicy is a policy.networking.k8s.io/v1alpha1
// AdminNetworkPolicy.
type AdminNetworkPolicy struct {
	npav1alpha1.AdminNetworkPolicy
	Origin *Origin
}

// BaselineAdminNetworkPolicy is a policy.networking.k8s.io/v1alpha1
// BaselineAdminNetworkPolicy (a singleton named "default").
type BaselineAdminNetworkPolicy struct {
	npav1alpha1.BaselineAdminNetworkPolicy
	Origin *Origin
}
