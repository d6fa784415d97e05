package v1alpha1

// Agent configures `rampart agent`, which runs on every node: it enforces
// NetworkPolicy for the node's pods in nftables and carries pod traffic to
// the other nodes through IKEv2-keyed ESP.
//
//	apiVersion: rampart.dev/v1alpha1
//	kind: Agent
//	metadata: {name: node-1}
//	spec: {...}
type Agent struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       AgentSpec  `json:"spec"`
}

// AgentSpec is one node's configuration.
type AgentSpec struct {
	// NodeName is this node's name: the name its certificate carries (as
	// a DNS name) and the one pods' spec.nodeName refers to.
	NodeName string `json:"nodeName"`
	// UnderlayAddress is the node's address on the network between nodes:
	// the source of IKE and ESP, and the node's own traffic selector.
	UnderlayAddress string `json:"underlayAddress"`
	// PodCIDR is the block the node's pods get their addresses from.
	PodCIDR string `json:"podCIDR"`
	// ClusterCIDR holds every node's pod CIDR (e.g. 198.19.0.0/16): in
	// enforce mode, traffic between it and this node's pods that does not
	// go through the tunnel is dropped.
	ClusterCIDR string `json:"clusterCIDR"`
	// CNIConfDir is where `rampart agent install` writes the CNI network
	// configuration (default /etc/cni/net.d), and CNIDataDir the plugin's
	// address store (default /var/lib/rampart/cni).
	CNIConfDir string `json:"cniConfDir,omitempty"`
	CNIDataDir string `json:"cniDataDir,omitempty"`
	// Nodes are the other nodes of the cluster.
	Nodes []NodeSpec `json:"nodes,omitempty"`
	// NodesFrom is where the other nodes come from: "config" (default,
	// Nodes above) or "apiserver": the Node objects of the API server that
	// spec.policy.kubeconfig names (spec.podCIDR, the InternalIP address),
	// read when the agent starts; this node's own underlayAddress and
	// podCIDR may then be left out too. The agent exits (to be restarted)
	// when the set of nodes changes.
	NodesFrom string `json:"nodesFrom,omitempty"`
	// Encryption of pod traffic between nodes.
	Encryption EncryptionSpec `json:"encryption"`
	// Policy says where the cluster's objects come from.
	Policy PolicySourceSpec `json:"policy"`
	// ControlSocket is the Unix socket `rampart agent status` reads.
	// Beside it the agent writes its policy status as JSON after every
	// attempt to apply the manifests ("node.sock" → "node.status.json"):
	// what it applied, or why it refused a change.
	ControlSocket string `json:"controlSocket"`
	// MetricsAddress is where the agent serves HTTP, host:port (":9464"
	// listens on every address; the DaemonSet's probes reach it on the
	// node's address): /healthz (the process answers), /readyz (the
	// node's first policy is applied and, with encryption, the datapath
	// runs) and /metrics (Prometheus). Empty (the default): no server,
	// so that several agents on one host, as in `rampart lab`, do not
	// compete for one port.
	MetricsAddress string `json:"metricsAddress,omitempty"`
	// Authorization is the mesh's settings for the AuthorizationPolicies
	// that the node's L7 proxy enforces.
	Authorization AuthorizationSpec `json:"authorization,omitempty"`
}

// AuthorizationSpec is how Istio's AuthorizationPolicies are read.
type AuthorizationSpec struct {
	// TrustDomain starts the workload principals,
	// <trust domain>/ns/<namespace>/sa/<service account> (default
	// "cluster.local", Istio's).
	TrustDomain string `json:"trustDomain,omitempty"`
	// RootNamespace holds the policies that apply to every workload
	// (default "istio-system", Istio's).
	RootNamespace string `json:"rootNamespace,omitempty"`
}

// NodeSpec is another node: its name, underlay address and pod CIDR. A
// node may claim only its own pod CIDR and address in IKE (traffic
// selectors are checked against this list), so one compromised node cannot
// receive another node's pod traffic.
type NodeSpec struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	PodCIDR string `json:"podCIDR"`
}

// EncryptionSpec is how pod traffic between nodes is protected.
type EncryptionSpec struct {
	// Mode is "ipsec" (the default) or "off".
	Mode string `json:"mode,omitempty"`
	// Enforce (default true): pod traffic to and from other nodes passes
	// only through an ESP SA of the node that owns the peer pod's CIDR,
	// and is dropped, never sent in clear, while there is none (also while
	// the agent is down).
	Enforce *bool `json:"enforce,omitempty"`
	// Device is the TUN device of the datapath (default "rampart0").
	Device string `json:"device,omitempty"`
	// Credentials is where this node's IKE certificate comes from:
	// "files" (the default: CAFile, CertFile and KeyFile below) or "csr":
	// the agent makes its own key, asks for its certificate through a
	// Kubernetes CertificateSigningRequest of signer rampart.dev/ipsec
	// (which `rampart controller` approves and signs), trusts that
	// signer's ClusterTrustBundle, and renews the certificate, with a new
	// key, at about 2/3 of its lifetime. csr needs spec.policy.kubeconfig,
	// authenticating with the agent pod's own token (in-cluster).
	Credentials string `json:"credentials,omitempty"`
	// CredentialsDir (credentials csr) keeps the key, the certificate and
	// the trust anchors between restarts, readable by the agent only
	// (default /var/lib/rampart/pki): a restart while the API server is
	// away still has a certificate.
	CredentialsDir string `json:"credentialsDir,omitempty"`
	// CertificateLifetime (credentials csr) is the lifetime asked for
	// (default "24h", at least "10m"); the signer may issue less.
	CertificateLifetime string `json:"certificateLifetime,omitempty"`
	// CAFile signs every node's certificate; CertFile (naming NodeName)
	// and KeyFile are this node's. Key files must be readable by their
	// owner only.
	CAFile   string `json:"caFile,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// ProposalsSpec: proposals and espProposals in strongSwan's syntax;
	// default: the strong ones only.
	ProposalsSpec `json:",inline"`
	// TimersSpec: rekeyTime (IKE SA, default "4h"), childRekeyTime
	// (default "1h"), dpdInterval (default "30s").
	TimersSpec `json:",inline"`
}

// PolicySourceSpec is where the agent reads the cluster: manifest files or
// directories (Namespaces, Pods with their addresses and nodes,
// NetworkPolicies), as `rampart reach` takes them, or an API server.
// Either is read again when it changes; an invalid set is reported and the
// rules in force stay.
type PolicySourceSpec struct {
	Paths []string `json:"paths,omitempty"`
	// Kubeconfig reads a live cluster through this kubeconfig file
	// instead of Paths; "in-cluster" uses the pod's service account (a
	// DaemonSet's agent).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context (default: the current one).
	Context string `json:"context,omitempty"`
}
