// Package policy turns the Kubernetes policy objects of a cluster Snapshot
// into a validated, normalized Model, and decides on it: the verdict engine
// (verdict.go) answers one question with the rules that decided it, and the
// class matrix (classes.go) answers every question at once for analyses at
// scale. Both run the same chain of evaluators, so they agree by
// construction; a randomized test holds them to it.
//
// Nothing here does I/O: the analyzer, the nftables compiler and the tests
// share this one truth.
package policy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/rampartnet/rampart/internal/cluster"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Direction is the side of a connection a policy rule speaks for.
type Direction int

const (
	// Egress is decided at the source of a connection.
	Egress Direction = iota
	// Ingress is decided at its destination.
	Ingress
)

func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// MarshalText makes a Direction print as its name in JSON.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Model is the normalized form of a cluster's endpoints and policies. Build
// it with NewModel; it is read-only afterwards and safe for concurrent use.
type Model struct {
	Namespaces []*Namespace // sorted by name
	Endpoints  []*Endpoint  // sorted by namespace, name
	Nodes      []*Node      // sorted by name
	Policies   []*Policy    // sorted by namespace, name
	// ClusterPolicies are the cluster-wide policies (cluster.go), in the
	// order they are evaluated: the Admin tier, then the Baseline tier,
	// each by priority, then name and kind.
	ClusterPolicies []*ClusterPolicy

	nsByName   map[string]*Namespace
	byRef      map[string]*Endpoint     // "ns/name"
	byAddr     map[netip.Addr]*Endpoint // pod addresses (not hostNetwork pods: theirs are the node's)
	nodeByName map[string]*Node
	nodeByAddr map[netip.Addr]*Node
	policiesIn map[string][]*Policy // by namespace
	admin      []*ClusterPolicy     // the Admin tier of ClusterPolicies
	baseline   []*ClusterPolicy     // the Baseline tier

	classesOnce sync.Once
	classes     *classIndex // built lazily by Classes()
}

// Namespace is a namespace and its labels (always with the automatic
// kubernetes.io/metadata.name label).
type Namespace struct {
	Name   string
	Labels labels.Set
}

// Endpoint is a pod, or a workload standing for its pods.
type Endpoint struct {
	Namespace   string
	Name        string
	Kind        string // Pod, Deployment, StatefulSet, ...
	Labels      labels.Set
	Ports       []ContainerPort // what named ports resolve against
	IPs         []netip.Addr    // from status.podIPs, when known
	Node        string          // spec.nodeName, when known
	HostNetwork bool

	ns     *Namespace
	origin *cluster.Origin
	class  int
}

// Ref is the endpoint's name as the CLI prints it: "namespace/name".
func (e *Endpoint) Ref() string { return e.Namespace + "/" + e.Name }

// Origin is where the endpoint was declared.
func (e *Endpoint) Origin() *cluster.Origin { return e.origin }

// ContainerPort is one port a pod's containers declare.
type ContainerPort struct {
	Name     string
	Protocol corev1.Protocol
	Port     int32
}

// Node is a node, its labels (which the nodes peers of cluster-wide
// policies select) and its addresses.
type Node struct {
	Name   string
	Labels labels.Set
	Addrs  []netip.Addr
}

// Policy is a NetworkPolicy in normalized form.
type Policy struct {
	Namespace string
	Name      string
	// Selector is spec.podSelector: the pods of Namespace it applies to.
	Selector labels.Selector
	// Ingress and Egress say whether the policy isolates the selected pods
	// in that direction: spec.policyTypes, or inferred as the API server
	// does when absent.
	Ingress, Egress bool
	IngressRules    []Rule
	EgressRules     []Rule

	origin *cluster.Origin
}

// Ref is "namespace/name".
func (p *Policy) Ref() string { return p.Namespace + "/" + p.Name }

// Origin is where the policy was declared.
func (p *Policy) Origin() *cluster.Origin { return p.origin }

// Rules returns the rules of one direction.
func (p *Policy) Rules(d Direction) []Rule {
	if d == Ingress {
		return p.IngressRules
	}
	return p.EgressRules
}

// Isolates reports whether the policy isolates its pods in direction d.
func (p *Policy) Isolates(d Direction) bool {
	if d == Ingress {
		return p.Ingress
	}
	return p.Egress
}

// Rule is one element of spec.ingress or spec.egress. A rule allows a
// connection when one of its peers and one of its ports match.
type Rule struct {
	Index int
	// AllPeers is true when from/to is absent or empty: every source or
	// destination, in the cluster or not.
	AllPeers bool
	Peers    []Peer
	// AllPorts is true when ports is absent or empty.
	AllPorts bool
	Ports    []Port
}

// Peer is one element of from or to.
type Peer struct {
	Index int
	// Pods is the podSelector, nil when absent. Namespaces is the
	// namespaceSelector, nil when absent. With only Pods, the peer means pods
	// of the policy's namespace; with only Namespaces, all pods of the
	// matching namespaces; with both, pods matching both (AND).
	Pods       labels.Selector
	Namespaces labels.Selector
	IPBlock    *IPBlock
}

// IPBlock is a CIDR minus exceptions.
type IPBlock struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

// Contains reports whether a is inside the block.
func (b *IPBlock) Contains(a netip.Addr) bool {
	if !b.CIDR.Contains(a) {
		return false
	}
	for _, e := range b.Except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

func (b *IPBlock) String() string {
	s := b.CIDR.String()
	if len(b.Except) > 0 {
		ex := make([]string, len(b.Except))
		for i, e := range b.Except {
			ex[i] = e.String()
		}
		s += " except " + strings.Join(ex, ", ")
	}
	return s
}

// Port is one element of a rule's ports.
type Port struct {
	Index int
	// Protocol is TCP when absent in a NetworkPolicy. It is "" only for a
	// named port of a cluster-wide policy, whose API gives no protocol:
	// the name then matches the container port of that name, whatever
	// its protocol.
	Protocol corev1.Protocol
	// Exactly one of: Name (a named port), Port (with EndPort for a range),
	// or neither (every port of Protocol).
	Name    string
	Port    int32
	EndPort int32
}

// String renders the port as a person writes it: "80/TCP", "8000-8080/TCP",
// "http/TCP", "http" (a named port of any protocol), "all TCP ports".
func (p Port) String() string {
	switch {
	case p.Name != "" && p.Protocol == "":
		return p.Name
	case p.Name != "":
		return fmt.Sprintf("%s/%s", p.Name, p.Protocol)
	case p.Port == 0:
		return "all " + string(p.Protocol) + " ports"
	case p.EndPort > p.Port:
		return fmt.Sprintf("%d-%d/%s", p.Port, p.EndPort, p.Protocol)
	default:
		return fmt.Sprintf("%d/%s", p.Port, p.Protocol)
	}
}

// NewModel normalizes a Snapshot. Objects that cannot be normalized (an
// unparsable selector or CIDR) are left out with an error diagnostic: the
// API server would have refused them, so the cluster would not have them
// either. Callers that must not analyze invalid input run Validate first.
func NewModel(s *cluster.Snapshot) (*Model, []cluster.Diagnostic) {
	m := &Model{
		nsByName:   map[string]*Namespace{},
		byRef:      map[string]*Endpoint{},
		byAddr:     map[netip.Addr]*Endpoint{},
		nodeByName: map[string]*Node{},
		nodeByAddr: map[netip.Addr]*Node{},
		policiesIn: map[string][]*Policy{},
	}
	var diags []cluster.Diagnostic
	for _, n := range s.Namespaces {
		m.addNamespace(n.Name, n.Labels)
	}
	for _, n := range s.Nodes {
		node := &Node{Name: n.Name, Labels: labels.Set{}}
		for k, v := range n.Labels {
			node.Labels[k] = v
		}
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				node.Addrs = append(node.Addrs, ip.Unmap())
				m.nodeByAddr[ip.Unmap()] = node
			}
		}
		m.Nodes = append(m.Nodes, node)
		m.nodeByName[n.Name] = node
	}
	for _, p := range s.Pods {
		e := newEndpoint(p)
		if _, dup := m.byRef[e.Ref()]; dup {
			continue // the loader reports duplicates
		}
		e.ns = m.namespace(e.Namespace)
		m.Endpoints = append(m.Endpoints, e)
		m.byRef[e.Ref()] = e
		if !e.HostNetwork {
			for _, a := range e.IPs {
				m.byAddr[a] = e
			}
		}
	}
	for _, np := range s.NetworkPolicies {
		p, err := newPolicy(np)
		if err != nil {
			diags = append(diags, cluster.At(cluster.Error, np.Origin,
				"NetworkPolicy "+np.Namespace+"/"+np.Name, err.path, "%v; policy left out", err.err))
			continue
		}
		m.namespace(p.Namespace)
		m.Policies = append(m.Policies, p)
	}
	diags = append(diags, m.addClusterPolicies(s)...)
	sort.Slice(m.Namespaces, func(i, j int) bool { return m.Namespaces[i].Name < m.Namespaces[j].Name })
	sort.Slice(m.Endpoints, func(i, j int) bool { return m.Endpoints[i].Ref() < m.Endpoints[j].Ref() })
	sort.Slice(m.Nodes, func(i, j int) bool { return m.Nodes[i].Name < m.Nodes[j].Name })
	sort.Slice(m.Policies, func(i, j int) bool { return m.Policies[i].Ref() < m.Policies[j].Ref() })
	for _, p := range m.Policies {
		m.policiesIn[p.Namespace] = append(m.policiesIn[p.Namespace], p)
	}
	return m, diags
}

// addClusterPolicies normalizes the cluster-wide policies into
// m.ClusterPolicies and the two tiers.
func (m *Model) addClusterPolicies(s *cluster.Snapshot) []cluster.Diagnostic {
	var diags []cluster.Diagnostic
	add := func(kind, name string, o *cluster.Origin, p *ClusterPolicy, perr *pathError) {
		if perr != nil {
			diags = append(diags, cluster.At(cluster.Error, o, cluster.ObjectName(kind, "", name), perr.path,
				"%v; policy left out", perr.err))
			return
		}
		m.ClusterPolicies = append(m.ClusterPolicies, p)
	}
	for _, c := range s.ClusterNetworkPolicies {
		p, perr := newClusterPolicyCNP(c)
		add(KindClusterNetworkPolicy, c.Name, c.Origin, p, perr)
	}
	for _, a := range s.AdminNetworkPolicies {
		p, perr := newClusterPolicyANP(a)
		add(KindAdminNetworkPolicy, a.Name, a.Origin, p, perr)
	}
	for _, b := range s.BaselineAdminNetworkPolicies {
		p, perr := newClusterPolicyBANP(b)
		add(KindBaselineAdminNetworkPolicy, b.Name, b.Origin, p, perr)
	}
	sortClusterPolicies(m.ClusterPolicies)
	for _, p := range m.ClusterPolicies {
		if p.Tier == AdminTier {
			m.admin = append(m.admin, p)
		} else {
			m.baseline = append(m.baseline, p)
		}
	}
	return diags
}

// namespace returns the namespace called name, adding it with only the
// automatic label when no manifest declared it.
func (m *Model) namespace(name string) *Namespace {
	if ns, ok := m.nsByName[name]; ok {
		return ns
	}
	return m.addNamespace(name, nil)
}

func (m *Model) addNamespace(name string, l map[string]string) *Namespace {
	set := labels.Set{}
	for k, v := range l {
		set[k] = v
	}
	// The API server sets this label on every namespace (KEP 2161), and
	// policies rely on it to select a namespace by name.
	set[corev1.LabelMetadataName] = name
	ns := &Namespace{Name: name, Labels: set}
	m.nsByName[name] = ns
	m.Namespaces = append(m.Namespaces, ns)
	return ns
}

func newEndpoint(p *cluster.Pod) *Endpoint {
	e := &Endpoint{
		Namespace:   p.Namespace,
		Name:        p.Name,
		Kind:        p.Kind,
		Labels:      labels.Set{},
		Node:        p.Spec.NodeName,
		HostNetwork: p.Spec.HostNetwork,
		origin:      p.Origin,
	}
	if e.Kind == "" {
		e.Kind = "Pod"
	}
	for k, v := range p.Labels {
		e.Labels[k] = v
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, cp := range c.Ports {
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				e.Ports = append(e.Ports, ContainerPort{Name: cp.Name, Protocol: proto, Port: cp.ContainerPort})
			}
		}
	}
	seen := map[netip.Addr]bool{}
	addIP := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !seen[a.Unmap()] {
			seen[a.Unmap()] = true
			e.IPs = append(e.IPs, a.Unmap())
		}
	}
	addIP(p.Status.PodIP)
	for _, ip := range p.Status.PodIPs {
		addIP(ip.IP)
	}
	return e
}

// pathError is a normalization failure at a field path.
type pathError struct {
	path string
	err  error
}

func newPolicy(np *cluster.NetworkPolicy) (*Policy, *pathError) {
	p := &Policy{Namespace: np.Namespace, Name: np.Name, origin: np.Origin}
	if p.Namespace == "" {
		p.Namespace = metav1.NamespaceDefault
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return nil, &pathError{"spec.podSelector", err}
	}
	p.Selector = sel
	p.Ingress, p.Egress = policyTypes(&np.Spec)
	for i, r := range np.Spec.Ingress {
		rule, perr := newRule(i, r.From, r.Ports, fmt.Sprintf("spec.ingress[%d]", i), "from")
		if perr != nil {
			return nil, perr
		}
		p.IngressRules = append(p.IngressRules, rule)
	}
	for i, r := range np.Spec.Egress {
		rule, perr := newRule(i, r.To, r.Ports, fmt.Sprintf("spec.egress[%d]", i), "to")
		if perr != nil {
			return nil, perr
		}
		p.EgressRules = append(p.EgressRules, rule)
	}
	return p, nil
}

// policyTypes returns which directions a policy isolates. When
// spec.policyTypes is absent the API server defaults it: Ingress always,
// Egress when the policy has at least one egress rule (an empty egress
// list does not count). See NetworkPolicySpec.PolicyTypes in
// k8s.io/api/networking/v1.
func policyTypes(spec *networkingv1.NetworkPolicySpec) (ingress, egress bool) {
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) > 0
	}
	for _, t := range spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func newRule(index int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, path, peersField string) (Rule, *pathError) {
	r := Rule{Index: index, AllPeers: len(peers) == 0, AllPorts: len(ports) == 0}
	for i, pe := range peers {
		ppath := fmt.Sprintf("%s.%s[%d]", path, peersField, i)
		peer := Peer{Index: i}
		if pe.PodSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(pe.PodSelector)
			if err != nil {
				return r, &pathError{ppath + ".podSelector", err}
			}
			peer.Pods = s
		}
		if pe.NamespaceSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(pe.NamespaceSelector)
			if err != nil {
				return r, &pathError{ppath + ".namespaceSelector", err}
			}
			peer.Namespaces = s
		}
		if pe.IPBlock != nil {
			b, perr := newIPBlock(pe.IPBlock, ppath+".ipBlock")
			if perr != nil {
				return r, perr
			}
			peer.IPBlock = b
		}
		if peer.Pods == nil && peer.Namespaces == nil && peer.IPBlock == nil {
			// The API server refuses an empty peer ("must specify a peer");
			// dropping it could widen a rule, so the policy is refused too.
			return r, &pathError{ppath, fmt.Errorf("must specify a peer")}
		}
		r.Peers = append(r.Peers, peer)
	}
	for i, po := range ports {
		ppath := fmt.Sprintf("%s.ports[%d]", path, i)
		port := Port{Index: i, Protocol: corev1.ProtocolTCP}
		if po.Protocol != nil {
			port.Protocol = *po.Protocol
		}
		switch port.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			return r, &pathError{ppath + ".protocol", fmt.Errorf("unsupported protocol %q", port.Protocol)}
		}
		if po.Port != nil {
			if po.Port.Type == 1 { // intstr.String
				port.Name = po.Port.StrVal
			} else {
				port.Port = po.Port.IntVal
				if port.Port < 1 || port.Port > 65535 {
					return r, &pathError{ppath + ".port", fmt.Errorf("port %d out of range 1-65535", port.Port)}
				}
			}
		}
		if po.EndPort != nil {
			if port.Port == 0 || *po.EndPort < port.Port || *po.EndPort > 65535 {
				return r, &pathError{ppath + ".endPort", fmt.Errorf("endPort %d needs a numeric port not above it", *po.EndPort)}
			}
			port.EndPort = *po.EndPort
		}
		r.Ports = append(r.Ports, port)
	}
	return r, nil
}

func newIPBlock(b *networkingv1.IPBlock, path string) (*IPBlock, *pathError) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, &pathError{path + ".cidr", fmt.Errorf("invalid CIDR %q", b.CIDR)}
	}
	out := &IPBlock{CIDR: cidr.Masked()}
	for i, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			return nil, &pathError{fmt.Sprintf("%s.except[%d]", path, i), fmt.Errorf("invalid CIDR %q", e)}
		}
		out.Except = append(out.Except, ex.Masked())
	}
	return out, nil
}

// Endpoint returns the endpoint named "namespace/name", or nil.
func (m *Model) Endpoint(ref string) *Endpoint { return m.byRef[ref] }

// EndpointByAddr returns the (non-hostNetwork) pod with address a, or nil.
func (m *Model) EndpointByAddr(a netip.Addr) *Endpoint { return m.byAddr[a.Unmap()] }

// NamespaceByName returns a namespace, or nil.
func (m *Model) NamespaceByName(name string) *Namespace { return m.nsByName[name] }

// NodeByName returns a node, or nil.
func (m *Model) NodeByName(name string) *Node { return m.nodeByName[name] }

// PoliciesIn returns the policies of a namespace.
func (m *Model) PoliciesIn(ns string) []*Policy { return m.policiesIn[ns] }

// Selects reports whether p applies to e.
func (p *Policy) Selects(e *Endpoint) bool {
	return p.Namespace == e.Namespace && p.Selector.Matches(e.Labels)
}

// MatchesEndpoint reports whether the peer matches endpoint e, for a policy
// in namespace policyNS. A hostNetwork pod is never matched by a selector:
// its traffic carries the node's address, which only an ipBlock can match.
func (pe *Peer) MatchesEndpoint(policyNS string, e *Endpoint) bool {
	if pe.IPBlock != nil {
		for _, a := range e.IPs {
			if pe.IPBlock.Contains(a) {
				return true
			}
		}
		return false
	}
	if e.HostNetwork {
		return false
	}
	if pe.Namespaces == nil {
		if e.Namespace != policyNS {
			return false
		}
	} else if !pe.Namespaces.Matches(e.ns.Labels) {
		return false
	}
	return pe.Pods == nil || pe.Pods.Matches(e.Labels)
}

// MatchesAddr reports whether the peer matches an address outside the
// cluster's pods (only an ipBlock can).
func (pe *Peer) MatchesAddr(a netip.Addr) bool {
	return pe.IPBlock != nil && pe.IPBlock.Contains(a)
}

// resolvePort returns the number that a named port has on e for protocol
// proto, as a policy's named port resolves against the destination pod's
// container ports.
func (e *Endpoint) resolvePort(name string, proto corev1.Protocol) (int32, bool) {
	for _, cp := range e.Ports {
		if cp.Name == name && cp.Protocol == proto {
			return cp.Port, true
		}
	}
	return 0, false
}

// Matches reports whether the port entry covers port num of protocol proto
// at destination dst (nil for a destination outside the cluster, where a
// named port cannot resolve).
func (p *Port) Matches(dst *Endpoint, num int32, proto corev1.Protocol) bool {
	if p.Protocol != proto && (p.Protocol != "" || p.Name == "") {
		return false
	}
	switch {
	case p.Name != "":
		if dst == nil {
			return false
		}
		n, ok := dst.resolvePort(p.Name, proto)
		return ok && n == num
	case p.Port == 0:
		return true
	case p.EndPort != 0:
		return num >= p.Port && num <= p.EndPort
	default:
		return num == p.Port
	}
}
