package agent

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/authz"
	"github.com/rampartnet/rampart/internal/certs"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// Config is a validated Agent file.
type Config struct {
	NodeName    string
	Address     netip.Addr
	PodCIDR     netip.Prefix
	ClusterCIDR netip.Prefix
	// CNIConfDir and CNIDataDir: where `rampart agent install` writes the
	// CNI network configuration, and the plugin's address store.
	CNIConfDir, CNIDataDir string
	// Nodes are the other nodes, by name.
	Nodes []Node
	// Encrypt: pod traffic between nodes goes through IPsec; Enforce: and
	// never in clear.
	Encrypt, Enforce bool
	Device           string
	// This node's certificate chain (leaf first) and key, and the CA of
	// every node's certificate: read from the files, or (CSR) from
	// CredentialsDir or the CSR API by ResolveCredentials.
	Certs []*x509.Certificate
	Key   crypto.Signer
	CAs   []*x509.Certificate
	// CSR: spec.encryption.credentials is csr; CredentialsDir and
	// CertLifetime are its settings.
	CSR            bool
	CredentialsDir string
	CertLifetime   time.Duration
	// IKEProposals and ESPProposals, parsed, with the defaults filled in
	// defaults), and the IKE timers.
	IKEProposals, ESPProposals           []ikecrypto.Proposal
	RekeyTime, ChildRekeyTime, DPDPeriod time.Duration
	PolicyPaths                          []string
	// Kube, when set, is the API server the agent reads instead of
	// PolicyPaths; NodesFromAPI: and its nodes (WithNodes).
	Kube          *cluster.KubeConfig
	NodesFromAPI  bool
	ControlSocket string
	// MetricsAddress is where the agent serves /healthz, /readyz and
	// /metrics (host:port); empty: nowhere.
	MetricsAddress string
	// ReplayWindow of the CHILD_SAs (0: the default); Encryption says
	// where the encryption settings came from ("" for the file).
	ReplayWindow int
	Encryption   string
	// Mesh is spec.authorization, for the AuthorizationPolicies.
	Mesh authz.Options

	// What WithNodes validates again.
	spec        v1alpha1.AgentSpec
	origin      *cluster.Origin
	object, dir string
}

// InCluster as spec.policy.kubeconfig reads the API server of the cluster
// the agent runs in, with its pod's service account.
const InCluster = "in-cluster"

// Node is another node of the cluster.
type Node struct {
	Name    string
	Address netip.Addr
	PodCIDR netip.Prefix
}

// DefaultDevice is the datapath's TUN device.
const DefaultDevice = "rampart0"

// LoadConfig reads and validates an Agent file; every problem is a
// diagnostic with file:line and field path, and the Config is nil unless
// there are none. Relative paths in it are relative to the file.
func LoadConfig(path string) (*Config, []cluster.Diagnostic) {
	return LoadConfigWith(path, LoadOptions{})
}

// LoadOptions are what the command line says over the file.
type LoadOptions struct {
	// NodeName, when set, replaces spec.nodeName before the file is
	// validated: one config file (a DaemonSet's ConfigMap) then serves
	// every node, each agent naming its own node from the downward API.
	NodeName string
}

// LoadConfigWith is LoadConfig with the file's values that opts
// replaces.
func LoadConfigWith(path string, opts LoadOptions) (*Config, []cluster.Diagnostic) {
	var a v1alpha1.Agent
	o, ds := cluster.ReadObject(path, v1alpha1.APIVersion, "Agent", &a)
	if len(ds) > 0 {
		return nil, ds
	}
	if opts.NodeName != "" {
		// Checked here, so that the error names where the name came from
		// rather than a line of the file that does not hold it.
		if errs := validation.IsDNS1123Subdomain(opts.NodeName); len(errs) > 0 {
			return nil, []cluster.Diagnostic{{Severity: cluster.Error, File: path, Object: "Agent " + a.Metadata.Name, Path: "spec.nodeName",
				Message: fmt.Sprintf("%q, given on the command line (--node-name or $RAMPART_NODE_NAME), is not a node name: %s", opts.NodeName, strings.Join(errs, "; "))}}
		}
		a.Spec.NodeName = opts.NodeName
	}
	v := &validator{o: o, object: "Agent " + a.Metadata.Name, dir: filepath.Dir(path)}
	c := v.agent(&a.Spec)
	if cluster.HasErrors(v.ds) {
		return nil, v.ds
	}
	c.spec, c.origin, c.object, c.dir = a.Spec, o, v.object, v.dir
	return c, v.ds
}

// WithEncryption returns the Config with the cluster's EncryptionConfig
// over spec.encryption (mode, enforce, proposals, timers, replay window;
// the credentials stay the file's), validated as a file would be.
func (c *Config) WithEncryption(ec *v1alpha1.EncryptionConfig) (*Config, error) {
	s := c.spec
	e := ec.Spec
	if e.Mode != "" {
		s.Encryption.Mode = e.Mode
	}
	if e.Enforce != nil {
		s.Encryption.Enforce = e.Enforce
	}
	if len(e.Proposals) > 0 {
		s.Encryption.Proposals = e.Proposals
	}
	if len(e.ESPProposals) > 0 {
		s.Encryption.ESPProposals = e.ESPProposals
	}
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&s.Encryption.RekeyTime, e.RekeyTime}, {&s.Encryption.ChildRekeyTime, e.ChildRekeyTime}, {&s.Encryption.DPDInterval, e.DPDInterval},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	v := &validator{o: c.origin, object: c.object, dir: c.dir}
	nc := v.agent(&s)
	if cluster.HasErrors(v.ds) {
		var msgs []string
		for _, d := range v.ds {
			msgs = append(msgs, d.Path+": "+d.Message)
		}
		return nil, fmt.Errorf("agent: EncryptionConfig %s over this node's config: %s", ec.Name, strings.Join(msgs, "; "))
	}
	// WithNodes may have filled in the nodes: keep them.
	nc.Nodes, nc.Address, nc.PodCIDR = c.Nodes, c.Address, c.PodCIDR
	nc.ReplayWindow = int(e.ReplayWindow)
	nc.spec, nc.origin, nc.object, nc.dir = s, c.origin, c.object, c.dir
	nc.Encryption = fmt.Sprintf("EncryptionConfig %s (generation %d)", ec.Name, ec.Generation)
	return nc, nil
}

// NodesFromAPI is spec.nodesFrom: apiserver.
const NodesFromAPI = "apiserver"

// WithNodes returns the Config completed with the nodes of the API server
// (spec.nodesFrom: apiserver): the others as spec.nodes, and this node's
// underlayAddress and podCIDR where the file leaves them out; validated as
// a file would be.
func (c *Config) WithNodes(nodes []corev1.Node) (*Config, error) {
	s := c.spec
	s.NodesFrom, s.Nodes = "", nil
	found := false
	for _, n := range nodes {
		addr := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
					addr = a.Address
					break
				}
			}
		}
		if n.Name == c.NodeName {
			found = true
			if s.UnderlayAddress == "" {
				s.UnderlayAddress = addr
			}
			if s.PodCIDR == "" {
				s.PodCIDR = n.Spec.PodCIDR
			}
			continue
		}
		s.Nodes = append(s.Nodes, v1alpha1.NodeSpec{Name: n.Name, Address: addr, PodCIDR: n.Spec.PodCIDR})
	}
	if !found {
		return nil, fmt.Errorf("agent: the API server has no Node %q", c.NodeName)
	}
	v := &validator{o: c.origin, object: c.object, dir: c.dir}
	nc := v.agent(&s)
	if cluster.HasErrors(v.ds) {
		var msgs []string
		for _, d := range v.ds {
			msgs = append(msgs, d.Message)
		}
		return nil, fmt.Errorf("agent: the API server's Node objects: %s", strings.Join(msgs, "; "))
	}
	nc.spec, nc.origin, nc.object, nc.dir = s, c.origin, c.object, c.dir
	return nc, nil
}

type validator struct {
	o      *cluster.Origin
	object string
	dir    string
	ds     []cluster.Diagnostic
}

func (v *validator) errorf(path, format string, args ...any) {
	v.ds = append(v.ds, cluster.At(cluster.Error, v.o, v.object, path, format, args...))
}

func (v *validator) file(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(v.dir, name)
}

func (v *validator) agent(s *v1alpha1.AgentSpec) *Config {
	c := &Config{NodeName: s.NodeName, Device: DefaultDevice, ControlSocket: v.file(s.ControlSocket)}
	v.nodeName("spec.nodeName", s.NodeName)
	switch s.NodesFrom {
	case "", "config":
	case NodesFromAPI:
		c.NodesFromAPI = true
		if s.Policy.Kubeconfig == "" {
			v.errorf("spec.nodesFrom", "nodes from the API server need spec.policy.kubeconfig")
		}
		if len(s.Nodes) > 0 {
			v.errorf("spec.nodes", "spec.nodesFrom is apiserver: the nodes come from there, not from this list")
		}
	default:
		v.errorf("spec.nodesFrom", "%q: want config or apiserver", s.NodesFrom)
	}
	// With nodes from the API server, this node's address and pod CIDR may
	// come from its Node object too (WithNodes checks them then).
	if !c.NodesFromAPI || s.UnderlayAddress != "" {
		c.Address = v.addr("spec.underlayAddress", s.UnderlayAddress)
	}
	if !c.NodesFromAPI || s.PodCIDR != "" {
		c.PodCIDR = v.cidr("spec.podCIDR", s.PodCIDR)
	}
	c.ClusterCIDR = v.cidr("spec.clusterCIDR", s.ClusterCIDR)
	c.CNIConfDir, c.CNIDataDir = "/etc/cni/net.d", "/var/lib/rampart/cni"
	if s.CNIConfDir != "" {
		c.CNIConfDir = v.file(s.CNIConfDir)
	}
	if s.CNIDataDir != "" {
		c.CNIDataDir = v.file(s.CNIDataDir)
	}
	if s.ControlSocket == "" {
		v.errorf("spec.controlSocket", "a control socket path is required (namespaces do not separate the filesystem: give each agent its own)")
	}
	c.MetricsAddress = v.listenAddr("spec.metricsAddress", s.MetricsAddress)
	c.Mesh = authz.Options{TrustDomain: s.Authorization.TrustDomain, RootNamespace: s.Authorization.RootNamespace}
	if td := s.Authorization.TrustDomain; td != "" && (len(validation.IsDNS1123Subdomain(td)) > 0) {
		v.errorf("spec.authorization.trustDomain", "%q is not a trust domain (a DNS name such as cluster.local)", td)
	}
	if ns := s.Authorization.RootNamespace; ns != "" && len(validation.IsDNS1123Label(ns)) > 0 {
		v.errorf("spec.authorization.rootNamespace", "%q is not a namespace name", ns)
	}
	seen := map[string]string{s.NodeName: "spec.nodeName"}
	for i, n := range s.Nodes {
		path := fmt.Sprintf("spec.nodes[%d]", i)
		v.nodeName(path+".name", n.Name)
		if prev, dup := seen[n.Name]; dup {
			v.errorf(path+".name", "node %q is also %s", n.Name, prev)
		}
		seen[n.Name] = path
		node := Node{Name: n.Name, Address: v.addr(path+".address", n.Address), PodCIDR: v.cidr(path+".podCIDR", n.PodCIDR)}
		c.Nodes = append(c.Nodes, node)
	}
	// A pod CIDR belongs to one node: overlapping ones would let a node
	// claim another's pods. Each lies in the cluster's block, which the
	// guard protects.
	all := append([]Node{{Name: c.NodeName, Address: c.Address, PodCIDR: c.PodCIDR}}, c.Nodes...)
	for _, n := range all {
		if n.PodCIDR.IsValid() && c.ClusterCIDR.IsValid() && (!c.ClusterCIDR.Contains(n.PodCIDR.Addr()) || n.PodCIDR.Bits() < c.ClusterCIDR.Bits()) {
			v.errorf(fieldOf(n.Name, c.NodeName, s.Nodes, "podCIDR"), "%s is not inside the cluster's %s", n.PodCIDR, c.ClusterCIDR)
		}
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if a.PodCIDR.IsValid() && b.PodCIDR.IsValid() && a.PodCIDR.Overlaps(b.PodCIDR) {
				v.errorf(fieldOf(b.Name, c.NodeName, s.Nodes, "podCIDR"), "%s overlaps node %s's %s", b.PodCIDR, a.Name, a.PodCIDR)
			}
			if a.Address.IsValid() && a.Address == b.Address {
				v.errorf(fieldOf(b.Name, c.NodeName, s.Nodes, "address"), "%s is also node %s's address", b.Address, a.Name)
			}
		}
	}
	slices.SortFunc(c.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	v.encryption(s, c)
	switch {
	case s.Policy.Kubeconfig != "" && len(s.Policy.Paths) > 0:
		v.errorf("spec.policy.kubeconfig", "read either manifest paths or an API server, not both")
	case s.Policy.Kubeconfig == InCluster:
		c.Kube = &cluster.KubeConfig{InCluster: true}
	case s.Policy.Kubeconfig != "":
		c.Kube = &cluster.KubeConfig{Path: v.file(s.Policy.Kubeconfig), Context: s.Policy.Context}
	case len(s.Policy.Paths) == 0:
		v.errorf("spec.policy.paths", "at least one manifest file or directory is required (or spec.policy.kubeconfig)")
	}
	for _, p := range s.Policy.Paths {
		c.PolicyPaths = append(c.PolicyPaths, v.file(p))
	}
	return c
}

// fieldOf is the path of a node's field: this node's own (field
// "address" is spec.underlayAddress), or one of spec.nodes.
func fieldOf(name, self string, nodes []v1alpha1.NodeSpec, field string) string {
	if name != self {
		for i, n := range nodes {
			if n.Name == name {
				return fmt.Sprintf("spec.nodes[%d].%s", i, field)
			}
		}
	}
	if field == "address" {
		return "spec.underlayAddress"
	}
	return "spec." + field
}

// Where a node's certificate comes from (spec.encryption.credentials).
const (
	CredentialsFiles = "files"
	CredentialsCSR   = "csr"
	// DefaultCredentialsDir and DefaultCertLifetime are credentials csr's.
	DefaultCredentialsDir = "/var/lib/rampart/pki"
	DefaultCertLifetime   = 24 * time.Hour
)

func (v *validator) encryption(spec *v1alpha1.AgentSpec, c *Config) {
	s := &spec.Encryption
	switch s.Mode {
	case "", "ipsec":
		c.Encrypt = true
	case "off":
	default:
		v.errorf("spec.encryption.mode", "%q is not a mode (ipsec or off)", s.Mode)
	}
	c.Enforce = c.Encrypt && (s.Enforce == nil || *s.Enforce)
	if s.Device != "" {
		if len(s.Device) > 15 || strings.ContainsAny(s.Device, "/ \t") {
			v.errorf("spec.encryption.device", "%q is not a valid interface name (1 to 15 characters, no '/' or spaces)", s.Device)
		}
		c.Device = s.Device
	}
	if !c.Encrypt {
		return
	}
	var err error
	files := []struct {
		path, name string
		do         func(string) error
	}{
		{"spec.encryption.certFile", s.CertFile, func(p string) (err error) { c.Certs, err = ikecrypto.ReadCertificates(p); return }},
		{"spec.encryption.caFile", s.CAFile, func(p string) (err error) { c.CAs, err = ikecrypto.ReadCertificates(p); return }},
		{"spec.encryption.keyFile", s.KeyFile, func(p string) (err error) { c.Key, err = ikecrypto.ReadPrivateKey(p); return }},
	}
	switch s.Credentials {
	case "", CredentialsFiles:
		for _, f := range files {
			if f.name == "" {
				v.errorf(f.path, "required with encryption (mode ipsec) and credentials from files")
				continue
			}
			if err = f.do(v.file(f.name)); err != nil {
				v.errorf(f.path, "%v", err)
			}
		}
	case CredentialsCSR:
		c.CSR = true
		if spec.Policy.Kubeconfig == "" {
			v.errorf("spec.encryption.credentials", "csr asks the API server for the certificate: it needs spec.policy.kubeconfig")
		}
		for _, f := range files {
			if f.name != "" {
				v.errorf(f.path, "credentials is csr: the certificate comes from the CSR API, not from a file")
			}
		}
		c.CredentialsDir = DefaultCredentialsDir
		if s.CredentialsDir != "" {
			c.CredentialsDir = v.file(s.CredentialsDir)
		}
		c.CertLifetime = v.duration("spec.encryption.certificateLifetime", s.CertificateLifetime, DefaultCertLifetime, certs.MinLifetime)
	default:
		v.errorf("spec.encryption.credentials", "%q: want files or csr", s.Credentials)
	}
	if !c.CSR && (s.CredentialsDir != "" || s.CertificateLifetime != "") {
		v.errorf("spec.encryption.credentials", "credentialsDir and certificateLifetime are settings of credentials csr")
	}
	// The certificate must name this node: peers check IDr against it.
	if len(c.Certs) > 0 && c.NodeName != "" && !slices.Contains(c.Certs[0].DNSNames, c.NodeName) {
		v.errorf("spec.encryption.certFile", "the certificate names %v, not this node (%s)", c.Certs[0].DNSNames, c.NodeName)
	}
	c.IKEProposals = ikecrypto.DefaultIKEProposals()
	if len(s.Proposals) > 0 {
		if c.IKEProposals, err = ikecrypto.ParseIKEProposals(strings.Join(s.Proposals, ",")); err != nil {
			v.errorf("spec.encryption.proposals", "%v", err)
		}
	}
	esp := agentESPProposals
	if len(s.ESPProposals) > 0 {
		esp = strings.Join(s.ESPProposals, ",")
	}
	if c.ESPProposals, err = ikecrypto.ParseESPProposals(esp); err != nil {
		v.errorf("spec.encryption.espProposals", "%v", err)
	}
	c.RekeyTime = v.duration("spec.encryption.rekeyTime", s.RekeyTime, 4*time.Hour, time.Second)
	c.ChildRekeyTime = v.duration("spec.encryption.childRekeyTime", s.ChildRekeyTime, time.Hour, time.Second)
	c.DPDPeriod = v.duration("spec.encryption.dpdInterval", s.DPDInterval, 30*time.Second, 0)
}

func (v *validator) duration(path, s string, def, least time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < least {
		v.errorf(path, "%q is not a duration of at least %v", s, least)
	}
	return d
}

// listenAddr checks a TCP listen address: host:port with a numeric port
// and, when there is a host, an IP address (a name would be resolved, to
// addresses nobody reviewed, each time the agent starts).
func (v *validator) listenAddr(path, s string) string {
	if s == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errorf(path, "%q is not host:port (e.g. \":9464\" on every address, \"127.0.0.1:9464\" on one)", s)
		return ""
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		v.errorf(path, "%q: the port must be a number from 1 to 65535", s)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			v.errorf(path, "%q: the host must be empty (every address) or an IP address, not a name", s)
		}
	}
	return s
}

func (v *validator) nodeName(path, name string) {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		v.errorf(path, "%q is not a node name: %s", name, strings.Join(errs, "; "))
	}
}

func (v *validator) addr(path, s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		v.errorf(path, "%q is not an IPv4 address", s)
		return netip.Addr{}
	}
	return a
}

func (v *validator) cidr(path, s string) netip.Prefix {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p != p.Masked() || p.Bits() > 30 {
		v.errorf(path, "%q is not an IPv4 CIDR block of at least 4 addresses, written with its network address (e.g. 198.19.1.0/24)", s)
		return netip.Prefix{}
	}
	return p
}
