package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultSecretNamespace is where a Secret reference points when it names
// no namespace, and the only namespace whose Secrets the agents may read
// (as Cilium's agents read cilium-secrets): the IPsecPeers' keys and
// certificates, and nothing else. Not rampart-system, which holds the
// controller's CA key, that no agent must read.
const DefaultSecretNamespace = "rampart-secrets"

// IPsecPeer is a remote IPsec gateway outside the cluster (a site's VPN
// router, a cloud VPN endpoint) and the traffic carried to it: IKEv2
// (RFC 7296) negotiates, authenticates and rekeys ESP SAs between the
// cluster and the gateway, which protect the traffic between localSubnets
// and the gateway's remoteSubnets. The fields are those of a peer in a
// `rampart tunnel` config file, with keys and certificates in Secrets
// instead of files.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=rampart
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="IKE",type=string,JSONPath=`.status.ikeState`
// +kubebuilder:printcolumn:name="Child-SA",type=string,JSONPath=`.status.childSAState`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`,priority=1
// +kubebuilder:printcolumn:name="Last-Error",type=string,JSONPath=`.status.lastError`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPsecPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec IPsecPeerSpec `json:"spec"`
	// +optional
	Status IPsecPeerStatus `json:"status,omitempty"`
}

// IPsecPeerSpec is the gateway, and how to reach it, authenticate it and
// protect the traffic to it.
//
// +kubebuilder:validation:XValidation:rule="self.mode != 'tunnel' || (has(self.localSubnets) && size(self.localSubnets) > 0)",message="tunnel mode needs localSubnets: the subnets of the cluster offered to the peer"
// +kubebuilder:validation:XValidation:rule="self.mode != 'tunnel' || (has(self.remoteSubnets) && size(self.remoteSubnets) > 0)",message="tunnel mode needs remoteSubnets: the subnets behind the peer"
// +kubebuilder:validation:XValidation:rule="self.mode != 'transport' || (!has(self.localSubnets) && !has(self.remoteSubnets))",message="transport mode protects the traffic between the two hosts: localSubnets and remoteSubnets are for tunnel mode"
type IPsecPeerSpec struct {
	// The cross-field rules above mirror the Tunnel peer checks of
	// internal/datapath (validator.peer), so that a peer written for one
	// is valid for the other. Address and port are two fields, not the
	// Tunnel's endpoint "address[:port]", so that CEL's isIP can check the
	// address and the printer column shows it bare.

	// NodeName is the node whose agent holds the SAs with the gateway:
	// its underlay address is this end of IKE and ESP (what the gateway
	// names as its remote address), and its pods and itself reach
	// remoteSubnets through them.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a node name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	NodeName string `json:"nodeName"`

	// Address is the gateway's IP address: where IKE and ESP are sent.
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IP address such as 203.0.113.10 or 2001:db8::10 (not a host name, a CIDR or an address:port)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).isGlobalUnicast()",message="must be the gateway's unicast address, not unspecified, loopback, link-local, multicast or broadcast"
	Address string `json:"address"`
	// Port is the gateway's UDP port for IKE and ESP-in-UDP (RFC 3948);
	// default 4500.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=4500
	// +optional
	Port int32 `json:"port,omitempty"`

	// TrafficSpec: mode, localSubnets and remoteSubnets.
	TrafficSpec `json:",inline"`
	// IdentitiesSpec: localID and remoteID (default: the addresses).
	IdentitiesSpec `json:",inline"`

	// Auth is how the two ends authenticate each other.
	// +required
	Auth PeerAuth `json:"auth"`
	// Initiate: the cluster starts the IKE SA and keeps it up (as
	// strongSwan's start_action = start); otherwise it waits for the
	// gateway.
	// +optional
	Initiate bool `json:"initiate,omitempty"`

	// ProposalsSpec: proposals and espProposals; default: the
	// EncryptionConfig's, else the strong ones only.
	ProposalsSpec `json:",inline"`
	// TimersSpec: rekeyTime, childRekeyTime and dpdInterval; default: the
	// EncryptionConfig's, else 4h, 1h and 30s.
	TimersSpec `json:",inline"`
}

// PeerAuth is exactly one authentication method (RFC 7296 §2.15): a
// pre-shared key, or certificates. Both ends use the same method.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.psk) && has(self.certificate))",message="give one authentication method: psk and certificate are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="has(self.psk) || has(self.certificate)",message="an authentication method is required: set psk (a pre-shared key) or certificate"
type PeerAuth struct {
	// PSK is a key of a Secret holding the pre-shared key, as text (a
	// final newline is not part of the key).
	// +optional
	PSK *SecretKeyReference `json:"psk,omitempty"`
	// Certificate authenticates with X.509 certificates.
	// +optional
	Certificate *CertificateAuth `json:"certificate,omitempty"`
}

// CertificateAuth is this end's certificate and key, and the CA that signs
// the gateway's.
type CertificateAuth struct {
	// SecretRef names a kubernetes.io/tls Secret: tls.crt holds this end's
	// certificate (then any intermediates) in PEM, tls.key its private key
	// (PKCS#8, SEC 1 EC or PKCS#1 RSA), as cert-manager writes them.
	// +required
	SecretRef SecretReference `json:"secretRef"`
	// CARef is a key of a Secret holding the PEM certificates of the CAs
	// that may sign the gateway's certificate (cert-manager's Secret has
	// them in ca.crt).
	// +required
	CARef SecretKeyReference `json:"caRef"`
}

// SecretReference names a Secret. Namespace is needed because the objects
// that refer to Secrets are cluster-scoped.
type SecretReference struct {
	// The CEL rules' patterns refuse an empty value too; a MinLength
	// beside them would only report the same mistake twice.

	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	Name string `json:"name"`
	// Namespace of the Secret; default "rampart-secrets", the only one
	// whose Secrets the agents read.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit"
	// +kubebuilder:default=rampart-secrets
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// SecretKeyReference is one key of a Secret.
type SecretKeyReference struct {
	SecretReference `json:",inline"`
	// Key in the Secret's data, such as "psk" or "ca.crt".
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="must be a Secret data key: letters, digits, '-', '_' and '.'"
	Key string `json:"key"`
}

// IPsecPeerStatus is the state of the SAs with the gateway, written by the
// agent of the node that holds them.
type IPsecPeerStatus struct {
	// ObservedGeneration is the metadata.generation of the spec in force.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Node is the node whose agent holds the SAs and wrote this status.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Node string `json:"node,omitempty"`
	// IKEState is the IKE SA's: "none" (there is none), "connecting"
	// (IKE_SA_INIT or IKE_AUTH under way) or "established", as `rampart
	// tunnel status` shows it.
	// +kubebuilder:validation:Enum=none;connecting;established
	// +optional
	IKEState string `json:"ikeState,omitempty"`
	// ChildSAState is "none" or "installed": ESP SAs carry the traffic.
	// +kubebuilder:validation:Enum=none;installed
	// +optional
	ChildSAState string `json:"childSAState,omitempty"`
	// ChildSAs is how many CHILD_SAs the IKE SA has (more than one only
	// briefly, while a rekeyed one is retired).
	// +kubebuilder:validation:Minimum=0
	// +optional
	ChildSAs int32 `json:"childSAs,omitempty"`
	// Suite is the negotiated IKE suite, such as
	// "aes256gcm16-prfsha256-x25519".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Suite string `json:"suite,omitempty"`
	// EstablishedTime is when the current IKE SA was established.
	// +optional
	EstablishedTime *metav1.Time `json:"establishedTime,omitempty"`
	// LastError is the last failure to negotiate with the gateway (no
	// proposal chosen, authentication failed, no answer...), kept after a
	// later success so that a flapping peer can be diagnosed.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastError string `json:"lastError,omitempty"`
	// LastErrorTime is when LastError happened.
	// +optional
	LastErrorTime *metav1.Time `json:"lastErrorTime,omitempty"`
	// Counters of the traffic with the gateway since the agent started.
	// +optional
	Counters PeerCounters `json:"counters,omitempty"`
	// Conditions: "Established" follows the IKE SA and its CHILD_SA.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PeerCounters are the datapath's counters for one peer, summed over its
// SAs (the metrics rampart_tunnel_packets_total, _bytes_total and
// _drops_total, and the SAs' authentication failures and replays).
type PeerCounters struct {
	// The datapath counts in uint64; these are int64 because Kubernetes
	// APIs have no unsigned integers, and 2^63 bytes is far beyond any
	// agent's uptime.

	// TxPackets are inner packets sent to the peer.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TxPackets int64 `json:"txPackets,omitempty"`
	// TxBytes are inner bytes sent to the peer.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TxBytes int64 `json:"txBytes,omitempty"`
	// RxPackets are inner packets received from the peer.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RxPackets int64 `json:"rxPackets,omitempty"`
	// RxBytes are inner bytes received from the peer.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RxBytes int64 `json:"rxBytes,omitempty"`
	// Drops are packets to or from the peer dropped for any reason.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Drops int64 `json:"drops,omitempty"`
	// AuthFailures are inbound packets whose ICV did not verify.
	// +kubebuilder:validation:Minimum=0
	// +optional
	AuthFailures int64 `json:"authFailures,omitempty"`
	// Replays are inbound packets refused by the anti-replay window.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replays int64 `json:"replays,omitempty"`
}

// IPsecPeerList is a list of IPsecPeers.
//
// +kubebuilder:object:root=true
type IPsecPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPsecPeer `json:"items"`
}
