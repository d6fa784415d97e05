// Package istio mirrors the objects of Istio's security API that Rampart
// enforces without sidecars: AuthorizationPolicy of security.istio.io v1
// (and v1beta1, the same schema), as the CRD defines them
// (istio.io/api security/v1beta1/authorization.proto). Local types keep
// istio.io/client-go, and its dependencies, out of the build; they carry
// the JSON names of the CRD, so that manifests decode as the API server
// would take them. Only the types live here: what they mean is
// internal/authz's.
package istio

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group is the API group of AuthorizationPolicy.
const Group = "security.istio.io"

// APIVersions Rampart reads: v1 (current) and v1beta1 (the same schema,
// which clusters still use).
var APIVersions = []string{Group + "/v1", Group + "/v1beta1"}

// AuthorizationPolicy is one policy.
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              AuthorizationPolicySpec `json:"spec"`
}

// AuthorizationPolicySpec is the policy's body.
type AuthorizationPolicySpec struct {
	// Selector picks the workloads (pods) of the policy's namespace by
	// label; absent: all of them. In the root namespace, a policy
	// without selector applies to every workload of the mesh.
	Selector *WorkloadSelector `json:"selector,omitempty"`
	// TargetRefs picks the workloads by Service instead (mutually
	// exclusive with Selector).
	TargetRefs []PolicyTargetReference `json:"targetRefs,omitempty"`
	// TargetRef is the single, deprecated form of TargetRefs.
	TargetRef *PolicyTargetReference `json:"targetRef,omitempty"`
	Rules     []Rule                 `json:"rules,omitempty"`
	// Action is ALLOW (the default), DENY, AUDIT or CUSTOM.
	Action string `json:"action,omitempty"`
	// Provider is CUSTOM's external authorizer.
	Provider *ExtensionProvider `json:"provider,omitempty"`
}

// WorkloadSelector selects pods by labels.
type WorkloadSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// PolicyTargetReference names the object a policy attaches to.
type PolicyTargetReference struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// ExtensionProvider names a CUSTOM action's authorizer.
type ExtensionProvider struct {
	Name string `json:"name"`
}

// Rule matches requests from a list of sources that perform a list of
// operations, subject to conditions. Every given part must match (from,
// to, when); within from and to, one item suffices.
type Rule struct {
	From []RuleFrom  `json:"from,omitempty"`
	To   []RuleTo    `json:"to,omitempty"`
	When []Condition `json:"when,omitempty"`
}

// RuleFrom is one source.
type RuleFrom struct {
	Source *Source `json:"source,omitempty"`
}

// RuleTo is one operation.
type RuleTo struct {
	Operation *Operation `json:"operation,omitempty"`
}

// Source is who sends the request. Every given field must match; a field
// matches when any of its values does, and none of its not-values.
type Source struct {
	Principals           []string `json:"principals,omitempty"`
	NotPrincipals        []string `json:"notPrincipals,omitempty"`
	RequestPrincipals    []string `json:"requestPrincipals,omitempty"`
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`
	Namespaces           []string `json:"namespaces,omitempty"`
	NotNamespaces        []string `json:"notNamespaces,omitempty"`
	IPBlocks             []string `json:"ipBlocks,omitempty"`
	NotIPBlocks          []string `json:"notIpBlocks,omitempty"`
	RemoteIPBlocks       []string `json:"remoteIpBlocks,omitempty"`
	NotRemoteIPBlocks    []string `json:"notRemoteIpBlocks,omitempty"`
	ServiceAccounts      []string `json:"serviceAccounts,omitempty"`
	NotServiceAccounts   []string `json:"notServiceAccounts,omitempty"`
}

// Operation is what the request does.
type Operation struct {
	Hosts      []string `json:"hosts,omitempty"`
	NotHosts   []string `json:"notHosts,omitempty"`
	Ports      []string `json:"ports,omitempty"`
	NotPorts   []string `json:"notPorts,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	NotMethods []string `json:"notMethods,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	NotPaths   []string `json:"notPaths,omitempty"`
}

// Condition is one attribute of the request (Key, such as
// request.headers[x-token] or source.ip) and the values it must, or must
// not, have.
type Condition struct {
	Key       string   `json:"key"`
	Values    []string `json:"values,omitempty"`
	NotValues []string `json:"notValues,omitempty"`
}
