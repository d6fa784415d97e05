package v1alpha1

// The IPsec settings that more than one object shares: a Tunnel's peers
// and an IPsecPeer carry the same traffic selectors and identities, and a
// Tunnel peer's ike, an Agent's encryption, the EncryptionConfig and an
// IPsecPeer the same proposals and timers. Each is a struct embedded with
// `json:",inline"`, so its fields sit directly in the embedding object (a
// config file or a custom resource reads exactly as if they were declared
// there) and one doc comment and one set of validation markers serve all.
//
// The kubebuilder markers below only shape the CRDs in deploy/crds: the
// config files (Tunnel, Agent) are decoded with encoding/json and checked
// by internal/datapath and internal/agent, which never see the markers.
// The two must agree: a value the CRD admits must be one the agent
// accepts, so every bound here cites the code it mirrors.

// TrafficSpec is what a peer carries (RFC 7296 §2.9, traffic selectors):
// in tunnel mode the packets between the local subnets and the peer's
// subnets, in transport mode the traffic between the two hosts.
type TrafficSpec struct {
	// Mode is "tunnel" (the default: the subnets below, inside ESP between
	// the two gateways) or "transport" (host-to-host traffic between this
	// end's address and the peer's; no subnets).
	// +kubebuilder:validation:Enum=tunnel;transport
	// +kubebuilder:default=tunnel
	// +optional
	Mode string `json:"mode,omitempty"`
	// LocalSubnets are the subnets on this side offered to the peer (the
	// local traffic selectors), as CIDRs written with their network
	// address ("198.18.1.0/24", not "198.18.1.7/24").
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 198.51.100.0/24 or 2001:db8::/64"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="has host bits set: write the network address, with the bits after the prefix length zero (198.51.100.0/24, not 198.51.100.7/24)"
	// +listType=set
	// +optional
	LocalSubnets []string `json:"localSubnets,omitempty"`
	// RemoteSubnets are the subnets behind the peer (the remote traffic
	// selectors), written as LocalSubnets are.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 198.51.100.0/24 or 2001:db8::/64"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="has host bits set: write the network address, with the bits after the prefix length zero (198.51.100.0/24, not 198.51.100.7/24)"
	// +listType=set
	// +optional
	RemoteSubnets []string `json:"remoteSubnets,omitempty"`
}

// IdentitiesSpec are the IKE identities of the two ends (RFC 7296 §3.5):
// an IP address, a DNS name ("gw.example.net") or a distinguished name
// ("CN=gw, O=Example"). The peer must present RemoteID, and with
// certificate authentication its certificate must name it.
type IdentitiesSpec struct {
	// LocalID is this end's identity; default: its address.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	LocalID string `json:"localID,omitempty"`
	// RemoteID is the identity the peer must prove; default: its address.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	RemoteID string `json:"remoteID,omitempty"`
}

// ProposalsSpec are the algorithms offered, in strongSwan's syntax
// (swanctl.conf proposals and esp_proposals): one proposal per item,
// algorithms joined by "-", in order of preference; "default" stands for
// the built-in list. Unset: the strong ones only (docs/architecture.md,
// "Defaults that matter"). Which algorithm names exist is checked where
// the proposals are parsed (ipsec/ike/ikecrypto), not in the CRD.
type ProposalsSpec struct {
	// Proposals for the IKE SA, such as "aes256gcm16-prfsha256-x25519".
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$')",message="must be one proposal, algorithms joined by '-' (e.g. aes256gcm16-prfsha256-x25519); give each proposal as its own list item"
	// +listType=atomic
	// +optional
	Proposals []string `json:"proposals,omitempty"`
	// ESPProposals for the CHILD_SAs, such as "aes256gcm16" or
	// "aes128gcm16-x25519" (with a PFS group).
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$')",message="must be one proposal, algorithms joined by '-' (e.g. aes256gcm16); give each proposal as its own list item"
	// +listType=atomic
	// +optional
	ESPProposals []string `json:"espProposals,omitempty"`
}

// TimersSpec are the lifetimes of the SAs and the dead peer detection
// interval, as Go durations ("4h", "1h30m", "90s"). The CRD checks them
// with one CEL rule each instead of a Pattern so that a malformed value
// gets one clear message rather than a regular expression, and so that the
// lower bound (what internal/agent's and internal/datapath's duration
// checks require) is enforced too; the pattern before duration() keeps to
// the units Go and CEL both parse.
type TimersSpec struct {
	// RekeyTime is when the IKE SA is rekeyed (default "4h"; at least 1s).
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s, such as 4h or 1h30m"
	// +optional
	RekeyTime string `json:"rekeyTime,omitempty"`
	// ChildRekeyTime is when a CHILD_SA is rekeyed (default "1h"; at least
	// 1s). Its soft lifetime is 0-10% below, its hard lifetime 10% above
	// (RFC 7296 §2.8).
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s, such as 1h or 20m"
	// +optional
	ChildRekeyTime string `json:"childRekeyTime,omitempty"`
	// DPDInterval is the dead peer detection interval (RFC 7296 §2.4):
	// after this long without an authentic message from the peer, an
	// empty INFORMATIONAL checks that it is alive (default "30s"; "0s"
	// turns it off).
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s (0s turns dead peer detection off)"
	// +optional
	DPDInterval string `json:"dpdInterval,omitempty"`
}
