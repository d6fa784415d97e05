package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EncryptionConfigName is the name of the one EncryptionConfig a cluster
// has: the CRD refuses any other, so that two objects can never disagree
// about whether pod traffic is encrypted.
const EncryptionConfigName = "default"

// EncryptionConfig is how the node agents protect traffic between nodes,
// for the whole cluster: whether pod traffic is encrypted (IPsec, IKEv2
// keyed ESP between every pair of nodes) and enforced (never sent in
// clear), whether the nodes' own traffic is protected too, and the
// algorithms and lifetimes of the SAs. It is the cluster-wide counterpart
// of an Agent config file's spec.encryption, without the node's own files
// (certificate, key, CA, device), which stay with each node.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=rampart
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Enforce",type=boolean,JSONPath=`.spec.enforce`
// +kubebuilder:printcolumn:name="Host-Traffic",type=boolean,JSONPath=`.spec.hostTraffic`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="metadata.name must be default: a cluster has one EncryptionConfig"
type EncryptionConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired protection; "spec: {}" is IPsec, enforced, with
	// the default algorithms and lifetimes.
	// +required
	Spec EncryptionConfigSpec `json:"spec"`
	// Status is written by the node agents.
	// +optional
	Status EncryptionConfigStatus `json:"status,omitempty"`
}

// EncryptionConfigSpec is the cluster's encryption of traffic between
// nodes.
//
// +kubebuilder:validation:XValidation:rule="self.mode == 'ipsec' || !has(self.hostTraffic) || !self.hostTraffic",message="hostTraffic needs mode ipsec: with mode off nothing is encrypted"
type EncryptionConfigSpec struct {
	// Mode is "ipsec" (the default: pod traffic between nodes goes in ESP
	// keyed by IKEv2, one IKE SA per pair of nodes) or "off" (in clear).
	// +kubebuilder:validation:Enum=ipsec;off
	// +kubebuilder:default=ipsec
	// +optional
	Mode string `json:"mode,omitempty"`
	// Enforce (default true): pod traffic to and from other nodes passes
	// only through an ESP SA with the node that owns the peer pod's CIDR,
	// and is dropped, never sent in clear, while there is none (also while
	// the agent is down). Ignored with mode off.
	// +kubebuilder:default=true
	// +optional
	Enforce *bool `json:"enforce,omitempty"`
	// HostTraffic also protects the nodes' own traffic to each other, host
	// to host between their underlay addresses (the kubelet's, etcd's), as
	// transport mode does; by default (false) only pod traffic is.
	// +optional
	HostTraffic bool `json:"hostTraffic,omitempty"`

	// ProposalsSpec: proposals for the IKE SAs between nodes and
	// espProposals for their CHILD_SAs; default: the strong ones only.
	ProposalsSpec `json:",inline"`
	// TimersSpec: rekeyTime, childRekeyTime and dpdInterval.
	TimersSpec `json:",inline"`

	// The bounds below are ipsec/esp's (Config.ReplayWindow, whose
	// bitmap grows in 64-bit words); turning anti-replay off, which
	// ipsec/esp allows with a negative window, is not offered here.

	// ReplayWindow is the inbound anti-replay window in packets (RFC 4303
	// §3.4.3): 0 for the default (1024), else a multiple of 64 from 64 to
	// 65536.
	// +kubebuilder:validation:XValidation:rule="self == 0 || (self >= 64 && self <= 65536 && self % 64 == 0)",message="must be 0 (the default, 1024 packets) or a multiple of 64 from 64 to 65536"
	// +optional
	ReplayWindow int32 `json:"replayWindow,omitempty"`
}

// EncryptionConfigStatus is what the node agents report about the
// configuration in force.
type EncryptionConfigStatus struct {
	// ObservedGeneration is the metadata.generation of the spec that the
	// conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: "Ready" is true when every node runs this generation.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// EncryptionConfigList is a list of EncryptionConfigs (at most one
// exists).
//
// +kubebuilder:object:root=true
type EncryptionConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EncryptionConfig `json:"items"`
}
