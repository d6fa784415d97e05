package v1alpha1

// Tunnel configures one IPsec endpoint run by `rampart tunnel run`: a TUN
// device that carries the traffic of the local subnets to the peers'
// subnets, ESP in UDP 4500 on the underlay, and the security associations.
//
//	apiVersion: rampart.dev/v1alpha1
//	kind: Tunnel
//	metadata: {name: site-a}
//	spec: {...}
type Tunnel struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       TunnelSpec `json:"spec"`
}

// ObjectMeta is the part of Kubernetes' metadata that a config file uses.
type ObjectMeta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// TunnelSpec is the endpoint's configuration.
type TunnelSpec struct {
	// Device is the TUN device that routes to the peers' subnets point at.
	Device DeviceSpec `json:"device"`
	// LocalAddress is this endpoint's underlay address: the source of ESP
	// packets and the local end of transport-mode SAs.
	LocalAddress string `json:"localAddress"`
	// Port is the UDP port of ESP-in-UDP and IKE (RFC 3948); default 4500.
	Port int `json:"port,omitempty"`
	// UnderlayMTU is the MTU of the path to the peers; default 1500. The
	// TUN MTU is derived from it unless Device.MTU is set.
	UnderlayMTU int `json:"underlayMTU,omitempty"`
	// ControlSocket is the path of the Unix socket `rampart tunnel status`
	// reads. Namespaces do not separate the filesystem, so every endpoint
	// on one machine needs its own path.
	ControlSocket string `json:"controlSocket"`
	// MetricsAddress, when set, serves Prometheus metrics over HTTP
	// (e.g. "127.0.0.1:9475").
	MetricsAddress string `json:"metricsAddress,omitempty"`
	// IKE tunes the endpoint's IKE daemon, which serves every peer keyed
	// by IKE (each peer's own IKE settings are in peers[].ike).
	IKE *IKEDaemonSpec `json:"ike,omitempty"`
	// Peers are the remote endpoints.
	Peers []PeerSpec `json:"peers"`
}

// IKEDaemonSpec is how the IKE daemon retransmits a request that gets no
// answer (RFC 7296 §2.1, §2.4): again after RetransmitTimeout, then after
// twice as long each time; after RetransmitTries sends the IKE SA and its
// CHILD_SAs are given up. It bounds how long a dead peer keeps its SAs once
// dead peer detection asks (dpdInterval): with the defaults,
// 1+2+4+8+16 = 31s.
type IKEDaemonSpec struct {
	// RetransmitTimeout is the wait before the first retransmission
	// (default "1s"; 100ms to 1m).
	RetransmitTimeout string `json:"retransmitTimeout,omitempty"`
	// RetransmitTries is the number of sends of a request, the first
	// included (default 5; 1 to 10).
	RetransmitTries int `json:"retransmitTries,omitempty"`
}

// DeviceSpec names the TUN device.
type DeviceSpec struct {
	Name string `json:"name"`
	// MTU of the TUN device; default: UnderlayMTU minus the largest ESP
	// overhead of the configured SAs.
	MTU int `json:"mtu,omitempty"`
}

// PeerSpec is one remote IPsec endpoint and the traffic carried to it. The
// IPsecPeer resource shares its parts (TrafficSpec, and IKESpec's
// IdentitiesSpec, ProposalsSpec and TimersSpec; see ipsec.go): SAs are
// keyed by hand or by IKE with files here, by IKE with Secrets there.
type PeerSpec struct {
	Name string `json:"name"`
	// Endpoint is the peer's underlay address, with an optional port
	// ("198.18.0.2" or "198.18.0.2:4500").
	Endpoint string `json:"endpoint"`
	// TrafficSpec: mode ("tunnel", the default, carries localSubnets to
	// remoteSubnets; "transport" the host-to-host traffic between
	// localAddress and the endpoint), localSubnets and remoteSubnets.
	TrafficSpec `json:",inline"`
	// MTU of the path to this peer when it is smaller than UnderlayMTU;
	// larger inner packets get ICMP "fragmentation needed".
	MTU int `json:"mtu,omitempty"`
	// SAs are manually keyed security associations, one per direction.
	// Exactly one of SAs and IKE is set.
	SAs *ManualSAs `json:"sas,omitempty"`
	// IKE negotiates, authenticates and rotates the SAs with IKEv2.
	IKE *IKESpec `json:"ike,omitempty"`
}

// IKESpec is how a peer is keyed with IKEv2 (RFC 7296).
type IKESpec struct {
	// IdentitiesSpec: localID and remoteID, IKE identities: an IP
	// address, a DNS name ("node-a.example"), or a distinguished name
	// ("CN=node-a, O=Example"). LocalID defaults to localAddress; RemoteID
	// to the endpoint's address.
	IdentitiesSpec `json:",inline"`
	// Auth: a pre-shared key file, or a certificate, its key and the CA
	// that signs the peer's certificate. Files must be readable by their
	// owner only.
	PSKFile  string `json:"pskFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	CAFile   string `json:"caFile,omitempty"`
	// Initiate: this end starts the IKE SA (as strongSwan's start_action =
	// start); otherwise it waits for the peer.
	Initiate bool `json:"initiate,omitempty"`
	// ProposalsSpec: proposals for the IKE SA and espProposals for the
	// CHILD_SAs, in strongSwan's syntax ("aes256gcm16-prfsha256-x25519");
	// default: the strong ones only.
	ProposalsSpec `json:",inline"`
	// TimersSpec: rekeyTime of the IKE SA (default "4h"), childRekeyTime
	// of the CHILD_SAs (default "1h"), and dpdInterval, the dead peer
	// detection interval ("30s", the default; "0s" turns it off).
	TimersSpec `json:",inline"`
}

// ManualSAs is one SA per direction, keyed as `ip xfrm state` takes them.
type ManualSAs struct {
	Outbound SASpec `json:"outbound"`
	Inbound  SASpec `json:"inbound"`
}

// SASpec is one security association.
type SASpec struct {
	// SPI as a number or hex string ("0x1001").
	SPI string `json:"spi"`
	// Algorithm: "aes-gcm-16" (rfc4106(gcm(aes))), "chacha20-poly1305"
	// (rfc7539esp(chacha20,poly1305)) or "aes-cbc-hmac-sha256".
	Algorithm string `json:"algorithm"`
	// KeyFile holds the key as hex ("0x..." allowed): for AEADs the key
	// followed by the 4-byte salt. It must not be readable by group or
	// others.
	KeyFile string `json:"keyFile"`
	// AuthKeyFile holds the HMAC key of aes-cbc-hmac-sha256.
	AuthKeyFile string `json:"authKeyFile,omitempty"`
	// ESN turns on 64-bit extended sequence numbers.
	ESN bool `json:"esn,omitempty"`
	// ReplayWindow in packets (inbound); default 1024.
	ReplayWindow int `json:"replayWindow,omitempty"`
	// Lifetime limits; when reached, the SA expires (a manually keyed SA
	// is not renewed: traffic stops, fail closed).
	Lifetime *LifetimeSpec `json:"lifetime,omitempty"`
}

// LifetimeSpec gives soft and hard limits.
type LifetimeSpec struct {
	SoftBytes   uint64 `json:"softBytes,omitempty"`
	HardBytes   uint64 `json:"hardBytes,omitempty"`
	SoftPackets uint64 `json:"softPackets,omitempty"`
	HardPackets uint64 `json:"hardPackets,omitempty"`
	// SoftTime and HardTime are durations ("1h").
	SoftTime string `json:"softTime,omitempty"`
	HardTime string `json:"hardTime,omitempty"`
}
