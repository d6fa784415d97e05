package policy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/rampartnet/rampart/internal/cluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	npav1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	npav1alpha2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// Cluster-wide policies (sigs.k8s.io/network-policy-api v0.2.0): the
// v1alpha2 ClusterNetworkPolicy, and the v1alpha1 AdminNetworkPolicy and
// BaselineAdminNetworkPolicy it replaced, are normalized into one model,
// ClusterPolicy, in one of two tiers. For each direction of a connection
// the tiers decide in this order (ClusterNetworkPolicySpec.Tier):
//
//  1. the Admin tier, policies by priority (lower first): the first rule
//     whose peers and ports match decides; Accept and Deny are final, Pass
//     skips the rest of the tier;
//  2. NetworkPolicy, which always decides for the pods it isolates;
//  3. the Baseline tier, as the Admin tier (a Pass there skips to 4);
//  4. the default: allowed.
//
// Choices where upstream leaves the behaviour open:
//
//   - Two policies of one tier with the same priority have no defined
//     order upstream; Rampart applies them by name (then kind), and
//     Validate warns about the tie.
//   - The BaselineAdminNetworkPolicy (a singleton, without priority) comes
//     after every ClusterNetworkPolicy of the Baseline tier: it takes the
//     priority BaselineAdminPriority.
//   - A domainNames peer names hosts, not addresses: nothing here resolves
//     names, so such a peer matches no party. Upstream allows domainNames in
//     Accept rules only, so this never allows more than the policy says;
//     traffic to those names is decided by the rules after it.
//   - Traffic between a pod and its own node is always allowed, in every
//     tier, as for NetworkPolicy (the "node" evaluator): a node's agent
//     sees it in INPUT and OUTPUT, not in FORWARD where policy applies.

// Tier is a tier of cluster-wide policy.
type Tier int

const (
	// AdminTier is evaluated before NetworkPolicy.
	AdminTier Tier = iota + 1
	// BaselineTier is evaluated after NetworkPolicy, for pods that no
	// NetworkPolicy isolates in that direction.
	BaselineTier
)

func (t Tier) String() string {
	switch t {
	case AdminTier:
		return "admin"
	case BaselineTier:
		return "baseline"
	}
	return fmt.Sprintf("tier(%d)", int(t))
}

// MarshalText makes a Tier print as its name in JSON.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// RuleAction is what a rule of a cluster-wide policy does with the traffic
// it matches.
type RuleAction int

const (
	// ActionAccept allows the direction; final. (v1alpha1's Allow.)
	ActionAccept RuleAction = iota + 1
	// ActionDeny drops the connection; final.
	ActionDeny
	// ActionPass skips the rest of the policy's tier.
	ActionPass
)

func (a RuleAction) String() string {
	switch a {
	case ActionAccept:
		return "Accept"
	case ActionDeny:
		return "Deny"
	case ActionPass:
		return "Pass"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// MarshalText makes a RuleAction print as its name in JSON.
func (a RuleAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Priorities of cluster-wide policies.
const (
	// MaxPriority is the largest priority the API accepts
	// (+kubebuilder:validation:Maximum=1000).
	MaxPriority = 1000
	// BaselineAdminPriority is the priority of the v1alpha1
	// BaselineAdminNetworkPolicy in the Baseline tier: after every
	// ClusterNetworkPolicy of the tier. Upstream defines no order between
	// the two API versions; this is Rampart's.
	BaselineAdminPriority = MaxPriority + 1
)

// The kinds of cluster-wide policy.
const (
	KindClusterNetworkPolicy       = "ClusterNetworkPolicy"
	KindAdminNetworkPolicy         = "AdminNetworkPolicy"
	KindBaselineAdminNetworkPolicy = "BaselineAdminNetworkPolicy"
)

// ClusterPolicy is a cluster-wide policy in normalized form.
type ClusterPolicy struct {
	Kind     string
	Name     string
	Tier     Tier
	Priority int32
	// The subject: the pods of the namespaces that Namespaces matches and,
	// when Pods is not nil, that Pods matches too. hostNetwork pods are
	// never subjects ("host-networked pods are not included in subject
	// selection").
	Namespaces labels.Selector
	Pods       labels.Selector
	// Rules in the order they are written, which is their precedence.
	IngressRules, EgressRules []ClusterRule

	portsField string // "protocols" (v1alpha2) or "ports" (v1alpha1), for field paths
	origin     *cluster.Origin
}

// Ref names the policy: "ClusterNetworkPolicy name".
func (p *ClusterPolicy) Ref() string { return p.Kind + " " + p.Name }

// Origin is where the policy was declared.
func (p *ClusterPolicy) Origin() *cluster.Origin { return p.origin }

// Rules returns the rules of one direction.
func (p *ClusterPolicy) Rules(d Direction) []ClusterRule {
	if d == Ingress {
		return p.IngressRules
	}
	return p.EgressRules
}

// Selects reports whether e is a subject of the policy.
func (p *ClusterPolicy) Selects(e *Endpoint) bool {
	return !e.HostNetwork && e.ns != nil && p.Namespaces.Matches(e.ns.Labels) && (p.Pods == nil || p.Pods.Matches(e.Labels))
}

// PortsPath is the field path of a rule's port list ("protocols" in
// v1alpha2, "ports" in v1alpha1).
func (p *ClusterPolicy) PortsPath(d Direction, rule int) string {
	return fmt.Sprintf("spec.%s[%d].%s", d, rule, p.portsField)
}

// PeerPath is the field path of a rule's peer ("spec.egress[1].to[0]").
func (p *ClusterPolicy) PeerPath(d Direction, rule, peer int) string {
	field := "from"
	if d == Egress {
		field = "to"
	}
	return fmt.Sprintf("spec.%s[%d].%s[%d]", d, rule, field, peer)
}

// ClusterRule is one rule of a cluster-wide policy: when one of its peers
// and one of its ports match, Action applies.
type ClusterRule struct {
	Index  int
	Name   string
	Action RuleAction
	Peers  []ClusterPeer
	// AllPorts is true when the rule has no protocols (v1alpha2) or ports
	// (v1alpha1): it matches every protocol, ICMP included.
	AllPorts bool
	// Ports: a named port (Name, with Protocol "" when the API gives none:
	// it is the named container port's own protocol), a number, or a
	// range (Port to EndPort).
	Ports []Port
}

// DomainNames returns the domain names of the rule's peers.
func (r *ClusterRule) DomainNames() []string {
	var out []string
	for _, pe := range r.Peers {
		out = append(out, pe.DomainNames...)
	}
	return out
}

// ClusterPeer is one element of a rule's from or to: exactly one of its
// fields is set, as the API requires (All only in the fail-closed reading
// of an invalid peer).
type ClusterPeer struct {
	Index int
	// Namespaces alone: every pod of the matching namespaces. With Pods:
	// the pods that Pods matches in those namespaces. hostNetwork pods are
	// never matched by these.
	Namespaces labels.Selector
	Pods       labels.Selector
	// Nodes matches the nodes with those labels: their addresses, and the
	// hostNetwork pods on them (NPEP-126: "traffic towards nodes here
	// includes traffic towards host-networked pods on that node").
	Nodes labels.Selector
	// Networks are CIDRs, matched against any address, pods' included.
	Networks []netip.Prefix
	// DomainNames match no address: see the top of this file.
	DomainNames []string
	// All matches every party: the fail-closed reading, for Deny and Pass
	// rules, of a peer whose fields Rampart cannot read.
	All bool
}

// String renders the peer as the manifest says it.
func (pe *ClusterPeer) String() string {
	switch {
	case pe.All:
		return "every peer (fail closed)"
	case pe.Pods != nil:
		return "pods " + selectorText(pe.Pods) + " of namespaces " + selectorText(pe.Namespaces)
	case pe.Namespaces != nil:
		return "namespaces " + selectorText(pe.Namespaces)
	case pe.Nodes != nil:
		return "nodes " + selectorText(pe.Nodes)
	case len(pe.Networks) > 0:
		s := make([]string, len(pe.Networks))
		for i, n := range pe.Networks {
			s[i] = n.String()
		}
		return "networks " + strings.Join(s, ", ")
	case len(pe.DomainNames) > 0:
		return "domain names " + strings.Join(pe.DomainNames, ", ")
	}
	return "no peer"
}

func selectorText(s labels.Selector) string {
	if s == nil || s.Empty() {
		return "{}"
	}
	return "\"" + s.String() + "\""
}

// MatchesEndpoint reports whether the peer matches endpoint e.
func (pe *ClusterPeer) MatchesEndpoint(m *Model, e *Endpoint) bool {
	switch {
	case pe.All:
		return true
	case pe.Namespaces != nil:
		return !e.HostNetwork && e.ns != nil && pe.Namespaces.Matches(e.ns.Labels) && (pe.Pods == nil || pe.Pods.Matches(e.Labels))
	case pe.Nodes != nil:
		if !e.HostNetwork {
			return false
		}
		n := m.nodeByName[e.Node]
		return n != nil && pe.Nodes.Matches(n.Labels)
	case len(pe.Networks) > 0:
		for _, a := range e.IPs {
			if pe.matchesNetwork(a) {
				return true
			}
		}
	}
	return false
}

// MatchesAddr reports whether the peer matches an address that is not a
// pod's: a node's (nodes peers), or any (networks).
func (pe *ClusterPeer) MatchesAddr(m *Model, a netip.Addr) bool {
	switch {
	case pe.All:
		return true
	case pe.Nodes != nil:
		n := m.nodeByAddr[a.Unmap()]
		return n != nil && pe.Nodes.Matches(n.Labels)
	case len(pe.Networks) > 0:
		return pe.matchesNetwork(a)
	}
	return false
}

func (pe *ClusterPeer) matchesNetwork(a netip.Addr) bool {
	for _, n := range pe.Networks {
		if n.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// matchPeer returns the index of the first peer of r that matches party.
func (r *ClusterRule) matchPeer(m *Model, party Party) (int, bool) {
	for i := range r.Peers {
		pe := &r.Peers[i]
		if party.Endpoint != nil {
			if pe.MatchesEndpoint(m, party.Endpoint) {
				return i, true
			}
		} else if pe.MatchesAddr(m, party.Addr) {
			return i, true
		}
	}
	return 0, false
}

// matchPort returns the index of the first port of r that covers the
// port, -1 when the rule matches every port.
func (r *ClusterRule) matchPort(dst *Endpoint, port int32, proto corev1.Protocol) (int, bool) {
	return matchPorts(r.AllPorts, r.Ports, dst, port, proto)
}

// AdminPolicies returns the Admin tier in the order it is evaluated.
func (m *Model) AdminPolicies() []*ClusterPolicy { return m.admin }

// TierPolicies returns one tier in the order it is evaluated.
func (m *Model) TierPolicies(t Tier) []*ClusterPolicy {
	if t == AdminTier {
		return m.admin
	}
	return m.baseline
}

// ClusterPoliciesOf returns the cluster-wide policies that have e as a
// subject and rules in direction d, in the order they are evaluated
// (Admin tier first).
func (m *Model) ClusterPoliciesOf(e *Endpoint, d Direction) []*ClusterPolicy {
	var out []*ClusterPolicy
	for _, p := range m.ClusterPolicies {
		if len(p.Rules(d)) > 0 && p.Selects(e) {
			out = append(out, p)
		}
	}
	return out
}

// sortClusterPolicies orders a tier as it is evaluated: by priority, then
// by name and kind, Rampart's order for ties (see the top of this file).
func sortClusterPolicies(ps []*ClusterPolicy) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Tier != b.Tier {
			return a.Tier < b.Tier
		}
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Kind < b.Kind
	})
}

// Normalization. Selectors and CIDRs that do not parse leave the policy out
// (the API server would have refused it, see NewModel). A peer or port
// entry with no field set, which the API's validation refuses but an older
// CRD might let through, is read as upstream asks ("If an implementation
// sees no fields are set ... it should fail closed"): in an Accept rule it
// matches nothing; it makes a Deny or Pass rule deny everything.

func newClusterPolicyCNP(c *cluster.ClusterNetworkPolicy) (*ClusterPolicy, *pathError) {
	p := &ClusterPolicy{Kind: KindClusterNetworkPolicy, Name: c.Name, Priority: c.Spec.Priority,
		portsField: "protocols", origin: c.Origin}
	switch c.Spec.Tier {
	case npav1alpha2.AdminTier:
		p.Tier = AdminTier
	case npav1alpha2.BaselineTier:
		p.Tier = BaselineTier
	default:
		return nil, &pathError{"spec.tier", fmt.Errorf("unsupported tier %q: want Admin or Baseline", c.Spec.Tier)}
	}
	if perr := p.subject(c.Spec.Subject.Namespaces, namespacedPod2(c.Spec.Subject.Pods)); perr != nil {
		return nil, perr
	}
	for i, r := range c.Spec.Ingress {
		peers := make([]peerSpec, len(r.From))
		for j, pe := range r.From {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod2(pe.Pods)}
		}
		rule, perr := p.rule(Ingress, i, r.Name, string(r.Action), peers, protocols2(r.Protocols))
		if perr != nil {
			return nil, perr
		}
		p.IngressRules = append(p.IngressRules, rule)
	}
	for i, r := range c.Spec.Egress {
		peers := make([]peerSpec, len(r.To))
		for j, pe := range r.To {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod2(pe.Pods), nodes: pe.Nodes,
				networks: strs(pe.Networks), domainNames: strs(pe.DomainNames)}
		}
		rule, perr := p.rule(Egress, i, r.Name, string(r.Action), peers, protocols2(r.Protocols))
		if perr != nil {
			return nil, perr
		}
		p.EgressRules = append(p.EgressRules, rule)
	}
	return p, nil
}

func newClusterPolicyANP(a *cluster.AdminNetworkPolicy) (*ClusterPolicy, *pathError) {
	p := &ClusterPolicy{Kind: KindAdminNetworkPolicy, Name: a.Name, Tier: AdminTier, Priority: a.Spec.Priority,
		portsField: "ports", origin: a.Origin}
	if perr := p.subject(a.Spec.Subject.Namespaces, namespacedPod1(a.Spec.Subject.Pods)); perr != nil {
		return nil, perr
	}
	for i, r := range a.Spec.Ingress {
		rule, perr := p.rule(Ingress, i, r.Name, string(r.Action), ingressPeers1(r.From), ports1(r.Ports))
		if perr != nil {
			return nil, perr
		}
		p.IngressRules = append(p.IngressRules, rule)
	}
	for i, r := range a.Spec.Egress {
		peers := make([]peerSpec, len(r.To))
		for j, pe := range r.To {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod1(pe.Pods), nodes: pe.Nodes,
				networks: strs(pe.Networks), domainNames: strs(pe.DomainNames)}
		}
		rule, perr := p.rule(Egress, i, r.Name, string(r.Action), peers, ports1(r.Ports))
		if perr != nil {
			return nil, perr
		}
		p.EgressRules = append(p.EgressRules, rule)
	}
	return p, nil
}

func newClusterPolicyBANP(b *cluster.BaselineAdminNetworkPolicy) (*ClusterPolicy, *pathError) {
	p := &ClusterPolicy{Kind: KindBaselineAdminNetworkPolicy, Name: b.Name, Tier: BaselineTier,
		Priority: BaselineAdminPriority, portsField: "ports", origin: b.Origin}
	if perr := p.subject(b.Spec.Subject.Namespaces, namespacedPod1(b.Spec.Subject.Pods)); perr != nil {
		return nil, perr
	}
	for i, r := range b.Spec.Ingress {
		rule, perr := p.rule(Ingress, i, r.Name, string(r.Action), ingressPeers1(r.From), ports1(r.Ports))
		if perr != nil {
			return nil, perr
		}
		p.IngressRules = append(p.IngressRules, rule)
	}
	for i, r := range b.Spec.Egress {
		peers := make([]peerSpec, len(r.To))
		for j, pe := range r.To {
			peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod1(pe.Pods), nodes: pe.Nodes,
				networks: strs(pe.Networks)}
		}
		rule, perr := p.rule(Egress, i, r.Name, string(r.Action), peers, ports1(r.Ports))
		if perr != nil {
			return nil, perr
		}
		p.EgressRules = append(p.EgressRules, rule)
	}
	return p, nil
}

// namespacedPod is the API's NamespacedPod, of either version.
type namespacedPod struct{ namespaces, pods metav1.LabelSelector }

func namespacedPod2(p *npav1alpha2.NamespacedPod) *namespacedPod {
	if p == nil {
		return nil
	}
	return &namespacedPod{p.NamespaceSelector, p.PodSelector}
}

func namespacedPod1(p *npav1alpha1.NamespacedPod) *namespacedPod {
	if p == nil {
		return nil
	}
	return &namespacedPod{p.NamespaceSelector, p.PodSelector}
}

// peerSpec is a peer of either version, before normalization.
type peerSpec struct {
	namespaces  *metav1.LabelSelector
	pods        *namespacedPod
	nodes       *metav1.LabelSelector
	networks    []string
	domainNames []string
}

func (s peerSpec) fields() int {
	n := 0
	for _, set := range []bool{s.namespaces != nil, s.pods != nil, s.nodes != nil, s.networks != nil, s.domainNames != nil} {
		if set {
			n++
		}
	}
	return n
}

func ingressPeers1(from []npav1alpha1.AdminNetworkPolicyIngressPeer) []peerSpec {
	peers := make([]peerSpec, len(from))
	for j, pe := range from {
		peers[j] = peerSpec{namespaces: pe.Namespaces, pods: namespacedPod1(pe.Pods)}
	}
	return peers
}

// strs converts the string types of both API versions (CIDR,
// DomainName) to strings, keeping nil apart from empty: an empty list is
// a field given with no value, which validation reports.
func strs[S ~string](in []S) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// portSpec is one port entry of either version, before normalization:
// ok is false for an entry with no field (or more than one) set.
type portSpec struct {
	port Port
	ok   bool
}

// protocols2 reads v1alpha2 protocols; nil when the rule has none.
func protocols2(ps []npav1alpha2.ClusterNetworkPolicyProtocol) []portSpec {
	if ps == nil {
		return nil
	}
	out := make([]portSpec, len(ps))
	for i, pr := range ps {
		var set []Port
		dest := func(proto corev1.Protocol, p *npav1alpha2.Port) {
			pt := Port{Index: i, Protocol: proto}
			switch {
			case p == nil:
				pt.Port = -1 // refused below: the API requires destinationPort
			case p.Range != nil && p.Number == 0:
				pt.Port, pt.EndPort = p.Range.Start, p.Range.End
			case p.Range == nil && p.Number != 0:
				pt.Port = p.Number
			default:
				pt.Port = -1
			}
			set = append(set, pt)
		}
		if pr.TCP != nil {
			dest(corev1.ProtocolTCP, pr.TCP.DestinationPort)
		}
		if pr.UDP != nil {
			dest(corev1.ProtocolUDP, pr.UDP.DestinationPort)
		}
		if pr.SCTP != nil {
			dest(corev1.ProtocolSCTP, pr.SCTP.DestinationPort)
		}
		if pr.DestinationNamedPort != "" {
			set = append(set, Port{Index: i, Name: pr.DestinationNamedPort})
		}
		if len(set) == 1 && set[0].Port >= 0 {
			out[i] = portSpec{port: set[0], ok: true}
		}
	}
	return out
}

// ports1 reads v1alpha1 ports; nil when the rule has none.
func ports1(ps *[]npav1alpha1.AdminNetworkPolicyPort) []portSpec {
	if ps == nil {
		return nil
	}
	out := make([]portSpec, len(*ps))
	for i, pr := range *ps {
		var set []Port
		if pr.PortNumber != nil {
			set = append(set, Port{Index: i, Protocol: defaultTCP(pr.PortNumber.Protocol), Port: pr.PortNumber.Port})
		}
		if pr.NamedPort != nil {
			set = append(set, Port{Index: i, Name: *pr.NamedPort})
		}
		if pr.PortRange != nil {
			set = append(set, Port{Index: i, Protocol: defaultTCP(pr.PortRange.Protocol), Port: pr.PortRange.Start, EndPort: pr.PortRange.End})
		}
		if len(set) == 1 {
			out[i] = portSpec{port: set[0], ok: true}
		}
	}
	return out
}

// defaultTCP is v1alpha1's +kubebuilder:default=TCP.
func defaultTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func (p *ClusterPolicy) subject(ns *metav1.LabelSelector, pods *namespacedPod) *pathError {
	switch {
	case ns != nil && pods == nil:
		s, err := metav1.LabelSelectorAsSelector(ns)
		if err != nil {
			return &pathError{"spec.subject.namespaces", err}
		}
		p.Namespaces = s
	case pods != nil && ns == nil:
		s, err := metav1.LabelSelectorAsSelector(&pods.namespaces)
		if err != nil {
			return &pathError{"spec.subject.pods.namespaceSelector", err}
		}
		ps, err := metav1.LabelSelectorAsSelector(&pods.pods)
		if err != nil {
			return &pathError{"spec.subject.pods.podSelector", err}
		}
		p.Namespaces, p.Pods = s, ps
	default:
		// A policy whose subject cannot be read would apply to nobody, or
		// to everybody: neither is safe to guess.
		return &pathError{"spec.subject", fmt.Errorf("exactly one of namespaces and pods must be set")}
	}
	return nil
}

func (p *ClusterPolicy) rule(d Direction, i int, name, action string, peers []peerSpec, ports []portSpec) (ClusterRule, *pathError) {
	path := fmt.Sprintf("spec.%s[%d]", d, i)
	r := ClusterRule{Index: i, Name: name, AllPorts: ports == nil}
	switch action {
	case "Accept", "Allow":
		// v1alpha1's Allow is v1alpha2's Accept; the validation checks
		// that each kind uses its own word.
		r.Action = ActionAccept
	case "Deny":
		r.Action = ActionDeny
	case "Pass":
		r.Action = ActionPass
	default:
		return r, &pathError{path + ".action", fmt.Errorf("unsupported action %q", action)}
	}
	failClosed := false
	for j, ps := range peers {
		ppath := p.PeerPath(d, i, j)
		pe := ClusterPeer{Index: j}
		if ps.fields() != 1 {
			failClosed = true
			continue
		}
		var err error
		switch {
		case ps.namespaces != nil:
			if pe.Namespaces, err = metav1.LabelSelectorAsSelector(ps.namespaces); err != nil {
				return r, &pathError{ppath + ".namespaces", err}
			}
		case ps.pods != nil:
			if pe.Namespaces, err = metav1.LabelSelectorAsSelector(&ps.pods.namespaces); err != nil {
				return r, &pathError{ppath + ".pods.namespaceSelector", err}
			}
			if pe.Pods, err = metav1.LabelSelectorAsSelector(&ps.pods.pods); err != nil {
				return r, &pathError{ppath + ".pods.podSelector", err}
			}
		case ps.nodes != nil:
			if pe.Nodes, err = metav1.LabelSelectorAsSelector(ps.nodes); err != nil {
				return r, &pathError{ppath + ".nodes", err}
			}
		case ps.networks != nil:
			for k, c := range ps.networks {
				pfx, err := netip.ParsePrefix(c)
				if err != nil {
					return r, &pathError{fmt.Sprintf("%s.networks[%d]", ppath, k), fmt.Errorf("invalid CIDR %q", c)}
				}
				pe.Networks = append(pe.Networks, pfx.Masked())
			}
		case ps.domainNames != nil:
			pe.DomainNames = ps.domainNames
		}
		r.Peers = append(r.Peers, pe)
	}
	for _, ps := range ports {
		if !ps.ok {
			failClosed = true
			continue
		}
		if ps.port.Protocol != "" && !validProtocol(ps.port.Protocol, false) {
			return r, &pathError{fmt.Sprintf("%s[%d]", p.PortsPath(d, i), ps.port.Index),
				fmt.Errorf("unsupported protocol %q", ps.port.Protocol)}
		}
		r.Ports = append(r.Ports, ps.port)
	}
	// An empty list is as unreadable as an empty entry: the API requires
	// at least one peer, and at least one port when the list is there.
	failClosed = failClosed || len(peers) == 0 || (ports != nil && len(ports) == 0)
	if failClosed && r.Action != ActionAccept {
		r.Action = ActionDeny
		r.Peers = []ClusterPeer{{All: true}}
		r.AllPorts, r.Ports = true, nil
	}
	// An Accept rule keeps only what it can read: with no peer or no port
	// left it matches nothing.
	return r, nil
}

// The engine's side of the tiers: one evaluator per tier.

// clusterTier decides one direction by the rules of one tier.
type clusterTier struct{ tier Tier }

func (t clusterTier) Name() string { return t.tier.String() }

func (t clusterTier) Evaluate(m *Model, f *flow, d Direction) Decision {
	subject, peer := sides(f, d)
	e := subject.Endpoint
	var notes []string
	for _, p := range m.TierPolicies(t.tier) {
		if len(p.Rules(d)) == 0 || !p.Selects(e) {
			continue
		}
		for i := range p.Rules(d) {
			r := &p.Rules(d)[i]
			portIdx, ok := r.matchPort(f.dst.Endpoint, f.port, f.proto)
			if !ok {
				continue
			}
			peerIdx, ok := r.matchPeer(m, peer)
			if !ok {
				if dn := r.DomainNames(); len(dn) > 0 && (peer.Endpoint == nil || peer.Endpoint.HostNetwork) {
					notes = append(notes, fmt.Sprintf("%s %s rule %d accepts traffic to the domain names %s: Rampart does not "+
						"resolve names, so it takes the rule to match no address; if %s is one of theirs, the rule would "+
						"accept it", p.Ref(), d, r.Index+1, strings.Join(dn, ", "), peer))
				}
				continue
			}
			ref := clusterRuleRef(p, d, r, peerIdx, portIdx)
			what := fmt.Sprintf("%s to %s on %d/%s", d, peer, f.port, f.proto)
			if d == Ingress {
				what = fmt.Sprintf("ingress from %s on %d/%s", peer, f.port, f.proto)
			}
			dec := Decision{By: t.Name(), ClusterRule: &ref, Notes: notes,
				Reason: fmt.Sprintf("%s: %s", what, ref)}
			switch r.Action {
			case ActionAccept:
				dec.Allowed = true
			case ActionPass:
				// Pass hands the direction to the next tier.
				return Decision{PassedBy: &ref, Notes: notes}
			}
			return dec
		}
	}
	return Decision{Notes: notes}
}

// clusterRuleRef names the rule that decided, for explanations.
func clusterRuleRef(p *ClusterPolicy, d Direction, r *ClusterRule, peer, port int) ClusterRuleRef {
	ref := ClusterRuleRef{Tier: p.Tier, Policy: p.Ref(), Priority: p.Priority, Direction: d,
		Rule: r.Index + 1, Name: r.Name, Action: r.Action, Path: fmt.Sprintf("spec.%s[%d]", d, r.Index)}
	if pe := r.Peers[peer]; !pe.All {
		ref.Peer = pe.Index + 1
		ref.Path = p.PeerPath(d, r.Index, pe.Index)
	}
	if port >= 0 {
		ref.Port = r.Ports[port].Index + 1
	}
	if p.origin != nil {
		ref.Pos = p.origin.Pos(ref.Path)
	}
	return ref
}

// ClusterRuleRef points at the rule of a cluster-wide policy that decided
// a direction, or passed it on. Numbers are 1-based, as a person counts;
// Path is the 0-based field path of the matching peer.
type ClusterRuleRef struct {
	Tier      Tier       `json:"tier"`
	Policy    string     `json:"policy"` // "ClusterNetworkPolicy name"
	Priority  int32      `json:"priority"`
	Direction Direction  `json:"direction"`
	Rule      int        `json:"rule"`
	Name      string     `json:"name,omitempty"`
	Action    RuleAction `json:"action"`
	// Peer is 0 when the rule matched every peer (fail closed); Port is 0
	// when it matches every port.
	Peer int    `json:"peer"`
	Port int    `json:"port"`
	Path string `json:"path"`
	Pos  string `json:"pos,omitempty"`
}

func (r ClusterRuleRef) String() string {
	s := fmt.Sprintf("%s tier: %s", r.Tier, r.Policy)
	if r.Priority <= MaxPriority {
		s += fmt.Sprintf(" (priority %d)", r.Priority)
	}
	s += fmt.Sprintf(" %s rule %d", r.Direction, r.Rule)
	if r.Name != "" {
		s += fmt.Sprintf(" %q", r.Name)
	}
	if r.Peer > 0 {
		s += fmt.Sprintf(" peer %d", r.Peer)
	}
	if r.Port > 0 {
		s += fmt.Sprintf(" port %d", r.Port)
	}
	return s + ": " + r.Action.String()
}
