package nft

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rampartnet/rampart/internal/cni"
	"github.com/rampartnet/rampart/internal/policy"
	corev1 "k8s.io/api/core/v1"
)

// Node is what the compiler needs to know of the node besides the Model:
// which pods are local, and their host veths.
type Node struct {
	// Name is the node's name, for the record (the Model's pods carry
	// theirs; the rules need only the local pods).
	Name string
	Pods []Pod
	// L7 are the local pods whose TCP connections the node's L7 proxy
	// takes (internal/l7 steers them with TPROXY, after this table's l7
	// chain has judged them by L3/L4 policy: they are not forwarded, so
	// the forward chain never sees them).
	L7 []L7Pod
}

// L7Pod is a local pod under L7 authorization: its declared TCP ports go
// to the proxy, and new connections to its other TCP ports are refused
// (an AuthorizationPolicy governs every port; the proxy can only take the
// ports it knows of).
type L7Pod struct {
	Ref   string
	Ports []uint16
}

// Pod is one pod of the node, wired by the CNI plugin: one /32 routed to
// one host veth.
type Pod struct {
	// Ref is "namespace/name" of an endpoint of the Model; its labels and
	// named container ports come from there.
	Ref string
	// Veth is the host-side end of the pod's veth pair.
	Veth string
	// Addr is the pod's IPv4 address; zero means the endpoint's first IPv4
	// address in the Model. It must be one of the endpoint's addresses.
	Addr netip.Addr
}

// Names in the table. They are part of the design (doc.go): the agent, the
// tests and people reading `nft list ruleset` use them.
const (
	TableName = "rampart"

	// PodVethPrefix starts the name of every pod's host veth, as the CNI
	// plugin names them: a veth with it that is not in pod_ifaces belongs
	// to a pod the rules do not know yet, and passes nothing.
	PodVethPrefix = cni.HostVethPrefix

	SetPodIfaces = "pod_ifaces" // host veths of local pods
	SetPodAddrs  = "pod_addrs"  // addresses of local pods
	SetPodSrc    = "pod_src"    // veth . address of each local pod

	MapPodClass       = "pod_class"       // every pod address of the cluster → its class
	MapIngressProfile = "ingress_profile" // local pod → profile, for pods isolated for ingress
	MapEgressProfile  = "egress_profile"
	SetIngressPods    = "ingress_from_pods" // profile . pod class . proto . port
	SetIngressNets    = "ingress_from_nets" // profile . address range . proto . port
	SetEgressPods     = "egress_to_pods"
	SetEgressNets     = "egress_to_nets"
	// The deny sets hold what a tier denies a class of pods though their
	// addresses lie in a range that the *_nets set allows (doc.go).
	SetIngressDenyPods = "ingress_deny_from_pods" // profile . pod class . proto . port
	SetEgressDenyPods  = "egress_deny_to_pods"
	// SetL7Targets: local pod . TCP . port, the ports the L7 proxy takes;
	// SetL7Pods: local pod . TCP, the pods under L7 authorization.
	SetL7Targets = "l7_targets"
	SetL7Pods    = "l7_pods"

	ChainPrerouting = "prerouting"
	ChainL7         = "l7"
	ChainL7Checks   = "l7_checks"
	ChainForward    = "forward"
	ChainIngress    = "ingress"
	ChainEgress     = "egress"
)

// IP protocol numbers of the NetworkPolicy protocols.
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

func protoNum(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolUDP:
		return protoUDP
	case corev1.ProtocolSCTP:
		return protoSCTP
	}
	return protoTCP
}

// Compile builds the ruleset of one node: isolation and allow rules for
// its local pods, anti-spoofing for their veths. It is pure and
// deterministic: the same Model and Node give the same Ruleset.
//
// The decision it compiles is the Model's (policy.Model.Verdict): for a
// packet forwarded by the node, the egress side when the source is a local
// pod, the ingress side when the destination is one, each through the
// tiers in order: the Admin tier of cluster-wide policy, NetworkPolicy, the
// Baseline tier, the default. The other side of a flow between nodes is
// enforced by the other node.
func Compile(m *policy.Model, n Node) (*Ruleset, error) {
	pods, err := localPods(m, n)
	if err != nil {
		return nil, err
	}
	rs := &Ruleset{Table: TableName, Node: n.Name, Unenforced: unenforced(m)}
	for _, p := range pods {
		rs.Pods = append(rs.Pods, p.LocalPod)
	}
	rs.Sets = append(rs.Sets, podSets(pods)...)
	l7, err := l7Sets(pods, n.L7)
	if err != nil {
		return nil, err
	}
	rs.Sets = append(rs.Sets, l7...)

	ids := newIDs()
	c := &compiler{m: m, spaces: map[spaceKey]portSpace{}}
	classMap := c.podClasses(ids)
	rs.Sets = append(rs.Sets, classMap)
	for _, cl := range c.classes {
		doc := Class{ID: cl.id}
		for _, pa := range cl.members {
			doc.Pods = append(doc.Pods, pa.e.Ref())
		}
		rs.Classes = append(rs.Classes, doc)
	}
	sort.Slice(rs.Classes, func(i, j int) bool { return rs.Classes[i].ID < rs.Classes[j].ID })
	for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
		sets, profiles := c.direction(d, pods, ids)
		rs.Sets = append(rs.Sets, sets...)
		rs.Profiles = append(rs.Profiles, profiles...)
	}
	sort.Slice(rs.Sets, func(i, j int) bool { return rs.Sets[i].Name < rs.Sets[j].Name })
	rs.Chains = chains()
	return rs, nil
}

// local is a local pod with its endpoint.
type local struct {
	LocalPod
	e *policy.Endpoint
}

// localPods resolves and checks the node's pods, sorted by address.
func localPods(m *policy.Model, n Node) ([]local, error) {
	var errs []error
	var out []local
	veths := map[string]string{}
	addrs := map[netip.Addr]string{}
	for _, p := range n.Pods {
		e := m.Endpoint(p.Ref)
		switch {
		case e == nil:
			errs = append(errs, fmt.Errorf("pod %s: not in the model", p.Ref))
			continue
		case e.HostNetwork:
			errs = append(errs, fmt.Errorf("pod %s: uses the host network and has no veth of its own", p.Ref))
			continue
		case p.Veth == "" || len(p.Veth) >= ifnameSize || strings.ContainsRune(p.Veth, 0):
			errs = append(errs, fmt.Errorf("pod %s: veth name %q: want 1 to %d bytes", p.Ref, p.Veth, ifnameSize-1))
			continue
		}
		a := p.Addr
		if !a.IsValid() {
			for _, ip := range e.IPs {
				if ip.Is4() {
					a = ip
					break
				}
			}
			if !a.IsValid() {
				errs = append(errs, fmt.Errorf("pod %s: no IPv4 address in the model (status.podIPs)", p.Ref))
				continue
			}
		}
		a = a.Unmap()
		if !a.Is4() {
			errs = append(errs, fmt.Errorf("pod %s: address %s: only IPv4 pods are supported", p.Ref, a))
			continue
		}
		// Policies decide by address: the address must name this pod in
		// the Model too, or the rules of other pods would see someone else.
		if !slices.Contains(e.IPs, a) || m.EndpointByAddr(a) != e {
			errs = append(errs, fmt.Errorf("pod %s: address %s is not the pod's in the model", p.Ref, a))
			continue
		}
		if other, dup := veths[p.Veth]; dup {
			errs = append(errs, fmt.Errorf("pod %s: veth %s is also pod %s's", p.Ref, p.Veth, other))
			continue
		}
		if other, dup := addrs[a]; dup {
			errs = append(errs, fmt.Errorf("pod %s: address %s is also pod %s's", p.Ref, a, other))
			continue
		}
		veths[p.Veth], addrs[a] = p.Ref, p.Ref
		out = append(out, local{LocalPod{Ref: e.Ref(), Addr: a, Veth: p.Veth}, e})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("nft: node %s: %w", n.Name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

// podSets are the anti-spoofing sets: which veths are pods', and which
// address each may send from.
func podSets(pods []local) []*Set {
	ifaces := &Set{Name: SetPodIfaces, Key: []Type{TypeIfname}, Comment: "host veths of local pods"}
	addrs := &Set{Name: SetPodAddrs, Key: []Type{TypeIPv4}, Comment: "addresses of local pods"}
	src := &Set{Name: SetPodSrc, Key: []Type{TypeIfname, TypeIPv4}, Comment: "the one source address each pod veth may send from"}
	for _, p := range pods {
		ifaces.Elements = append(ifaces.Elements, Element{Key: []Datum{Ifname(p.Veth)}, Comment: p.Ref})
		addrs.Elements = append(addrs.Elements, Element{Key: []Datum{Addr(p.Addr)}, Comment: p.Ref})
		src.Elements = append(src.Elements, Element{Key: []Datum{Ifname(p.Veth), Addr(p.Addr)}, Comment: p.Ref})
	}
	for _, s := range []*Set{ifaces, addrs, src} {
		sortElements(s.Elements)
	}
	return []*Set{ifaces, addrs, src}
}

// l7Sets are the sets of the local pods under L7 authorization: their
// declared TCP ports, which the proxy takes, and the pods themselves.
func l7Sets(pods []local, l7 []L7Pod) ([]*Set, error) {
	targets := &Set{Name: SetL7Targets, Key: []Type{TypeIPv4, TypeProto, TypePort},
		Comment: "TCP ports of local pods that the L7 proxy takes, once L3/L4 policy allows the connection"}
	all := &Set{Name: SetL7Pods, Key: []Type{TypeIPv4, TypeProto}, Comment: "local pods under L7 authorization"}
	for _, lp := range l7 {
		i := slices.IndexFunc(pods, func(p local) bool { return p.Ref == lp.Ref })
		if i < 0 {
			return nil, fmt.Errorf("nft: L7 pod %s is not a local pod of the node", lp.Ref)
		}
		a := Addr(pods[i].Addr)
		all.Elements = append(all.Elements, Element{Key: []Datum{a, Num(protoTCP)}, Comment: lp.Ref})
		for _, port := range lp.Ports {
			targets.Elements = append(targets.Elements, Element{Key: []Datum{a, Num(protoTCP), Num(uint32(port))}, Comment: lp.Ref})
		}
	}
	sortElements(targets.Elements)
	sortElements(all.Elements)
	return []*Set{targets, all}, nil
}

// peerAddr is a pod address of the cluster and the pod it names, as
// Model.Party resolves it.
type peerAddr struct {
	a netip.Addr
	e *policy.Endpoint
}

// peerAddrs lists the IPv4 addresses that name pods, sorted.
func peerAddrs(m *policy.Model) []peerAddr {
	seen := map[netip.Addr]bool{}
	var out []peerAddr
	for _, e := range m.Endpoints {
		for _, a := range e.IPs {
			if !a.Is4() || seen[a] {
				continue
			}
			seen[a] = true
			if owner := m.EndpointByAddr(a); owner != nil {
				out = append(out, peerAddr{a, owner})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].a.Less(out[j].a) })
	return out
}

// peerClass is a set of pods that no policy can tell apart as peers or as
// destinations of named ports, with their addresses: the verdict engine's
// classes (classes.go) with a key of our own, one that a pod coming or
// going does not change for the others.
type peerClass struct {
	id      uint32
	rep     *policy.Endpoint
	members []peerAddr
}

type compiler struct {
	m       *policy.Model
	classes []*peerClass // sorted by ID
	// spaces caches ruleSpace: every profile asks it of the same rules
	// for every class.
	spaces map[spaceKey]portSpace
}

// spaceKey is a rule (a *policy.Rule or a *policy.ClusterRule) and the
// destination its named ports resolve against (nil when it has none).
type spaceKey struct {
	rule any
	dst  *policy.Endpoint
}

// space is ruleSpace, cached.
func (c *compiler) space(rule any, all bool, ports []policy.Port, dst *policy.Endpoint) portSpace {
	named := false
	for _, p := range ports {
		named = named || p.Name != ""
	}
	if !named {
		dst = nil
	}
	k := spaceKey{rule, dst}
	if s, ok := c.spaces[k]; ok {
		return s
	}
	s := ruleSpace(all, ports, dst)
	c.spaces[k] = s
	return s
}

// podClasses groups the cluster's pod addresses by class and returns the
// pod_class map. A class's number is a hash of its key, so a pod that
// joins an existing class adds one element to this map and nothing else.
func (c *compiler) podClasses(x *ids) *Set {
	blocks := map[string]*policy.IPBlock{}
	for _, p := range c.m.Policies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					if pe.IPBlock != nil {
						blocks[pe.IPBlock.String()] = pe.IPBlock
					}
				}
			}
		}
	}
	// The networks of cluster-wide policies tell pods apart as ipBlocks do.
	for _, p := range c.m.ClusterPolicies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					for _, n := range pe.Networks {
						b := &policy.IPBlock{CIDR: n}
						blocks[b.String()] = b
					}
				}
			}
		}
	}
	byKey := map[string]*peerClass{}
	var keys []string
	for _, pa := range peerAddrs(c.m) {
		k := classKey(pa.e, blocks)
		pc := byKey[k]
		if pc == nil {
			pc = &peerClass{rep: pa.e}
			byKey[k] = pc
			keys = append(keys, k)
		}
		pc.members = append(pc.members, pa)
	}
	sort.Strings(keys)
	m := &Set{Name: MapPodClass, Key: []Type{TypeIPv4}, Value: TypeProfile,
		Comment: "pod addresses of the cluster, and their class"}
	for _, k := range keys {
		pc := byKey[k]
		pc.id = x.id("class|" + k)
		c.classes = append(c.classes, pc)
		for _, pa := range pc.members {
			m.Elements = append(m.Elements, Element{Key: []Datum{Addr(pa.a)}, Value: Num(pc.id), Comment: pa.e.Ref()})
		}
	}
	sort.Slice(c.classes, func(i, j int) bool { return c.classes[i].id < c.classes[j].id })
	sortElements(m.Elements)
	return m
}

// classKey is what policies can see of a pod as a peer: its namespace
// (whose labels namespace selectors read), its labels, its named ports
// (named ports of egress rules resolve against them), and the ipBlocks and
// networks of the Model that contain one of its addresses
// (Peer.MatchesEndpoint, ClusterPeer.MatchesEndpoint). hostNetwork pods
// have no pod address and no class: their addresses are their nodes'.
func classKey(e *policy.Endpoint, blocks map[string]*policy.IPBlock) string {
	var b strings.Builder
	b.WriteString(e.Namespace)
	b.WriteString("|")
	b.WriteString(e.Labels.String()) // sorted by key
	b.WriteString("|")
	b.WriteString(strings.Join(namedPorts(e), ","))
	var in []string
	for k, blk := range blocks {
		for _, a := range e.IPs {
			if blk.Contains(a) {
				in = append(in, k)
				break
			}
		}
	}
	sort.Strings(in)
	b.WriteString("|")
	b.WriteString(strings.Join(in, ";"))
	return b.String()
}

// namedPorts is how e's named ports resolve, "name/PROTO=number", sorted:
// the first container port of a name and protocol wins, as
// resolvePort finds it.
func namedPorts(e *policy.Endpoint) []string {
	seen := map[string]bool{}
	var out []string
	for _, cp := range e.Ports {
		k := cp.Name + "/" + string(cp.Protocol)
		if cp.Name == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k+"="+strconv.Itoa(int(cp.Port)))
	}
	sort.Strings(out)
	return out
}

// profile is a group of local pods with one decision in one direction.
type profile struct {
	key      string
	d        policy.Direction
	rep      *policy.Endpoint // the first pod; every pod of the profile decides alike
	policies []*policy.Policy // the NetworkPolicies that isolate it in d
	// admin and baseline are the cluster-wide policies of each tier that
	// select it and have rules in d, in the order they are evaluated.
	admin, baseline []*policy.ClusterPolicy
	named           []string
	pods            []local
}

// profileOf returns the profile of pod e in direction d, or nil when no
// policy of any tier governs e in d. Its key holds everything the decision
// depends on besides the rest of the cluster: the namespace, the
// isolating NetworkPolicies and the selecting cluster-wide policies (their
// rules are read from the Model), and for ingress how the pod's named
// ports resolve (a named port in an ingress rule resolves against the
// destination, the pod itself).
func (c *compiler) profileOf(e *policy.Endpoint, d policy.Direction) *profile {
	p := &profile{d: d, rep: e}
	refs := []string{}
	for _, pol := range c.m.PoliciesIn(e.Namespace) {
		if pol.Isolates(d) && pol.Selects(e) {
			p.policies = append(p.policies, pol)
			refs = append(refs, pol.Ref())
		}
	}
	var tiers []string
	for _, cp := range c.m.ClusterPoliciesOf(e, d) {
		if cp.Tier == policy.AdminTier {
			p.admin = append(p.admin, cp)
		} else {
			p.baseline = append(p.baseline, cp)
		}
		tiers = append(tiers, cp.Tier.String()+":"+cp.Ref())
	}
	if len(p.policies) == 0 && len(p.admin) == 0 && len(p.baseline) == 0 {
		return nil
	}
	if d == policy.Ingress {
		p.named = namedPorts(e)
	}
	p.key = d.String() + "|" + e.Namespace + "|" + strings.Join(refs, ",") + "|" + strings.Join(p.named, ",")
	if len(tiers) > 0 {
		// Only profiles under cluster-wide policy have this part, so the
		// numbers of the others stay what they were before those existed.
		p.key += "|" + strings.Join(tiers, ",")
	}
	return p
}

// ids hands out profile and class numbers: a hash of the key, so that a
// profile or class keeps its number while pods and others come and go,
// and churn changes only the elements it must.
type ids struct{ used map[uint32]string }

func newIDs() *ids { return &ids{used: map[uint32]string{}} }

func (x *ids) id(key string) uint32 {
	for i := 0; ; i++ {
		h := fnv.New32a()
		h.Write([]byte(key))
		if i > 0 {
			fmt.Fprintf(h, "#%d", i) // a collision: deterministic, as keys come in sorted order
		}
		v := h.Sum32()
		if v == 0 {
			continue
		}
		if owner, taken := x.used[v]; !taken || owner == key {
			x.used[v] = key
			return v
		}
	}
}

// direction compiles one direction: the profile map of the isolated local
// pods, and the allow sets of their profiles.
func (c *compiler) direction(d policy.Direction, pods []local, x *ids) ([]*Set, []Profile) {
	byKey := map[string]*profile{}
	for _, p := range pods {
		pr := c.profileOf(p.e, d)
		if pr == nil {
			continue
		}
		if have := byKey[pr.key]; have != nil {
			have.pods = append(have.pods, p)
			continue
		}
		pr.pods = []local{p}
		byKey[pr.key] = pr
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	name, podsSet, denySet, netsSet, peer := MapIngressProfile, SetIngressPods, SetIngressDenyPods, SetIngressNets, "source"
	if d == policy.Egress {
		name, podsSet, denySet, netsSet, peer = MapEgressProfile, SetEgressPods, SetEgressDenyPods, SetEgressNets, "destination"
	}
	pm := &Set{Name: name, Key: []Type{TypeIPv4}, Value: TypeProfile,
		Comment: "local pods that a policy governs for " + d.String() + ", and their profile"}
	ps := &Set{Name: podsSet, Key: []Type{TypeProfile, TypeProfile, TypeProto, TypePort}, Interval: true, ProfileMap: name,
		Comment: d.String() + " allowed by profile, " + peer + " pod class, protocol and port"}
	ds := &Set{Name: denySet, Key: []Type{TypeProfile, TypeProfile, TypeProto, TypePort}, Interval: true, ProfileMap: name,
		Comment: d.String() + " denied by profile, " + peer + " pod class, protocol and port, though its address range is allowed"}
	ns := &Set{Name: netsSet, Key: []Type{TypeProfile, TypeIPv4, TypeProto, TypePort}, Interval: true, ProfileMap: name,
		Comment: d.String() + " allowed by profile, " + peer + " address range, protocol and port"}
	var profiles []Profile
	for _, k := range keys {
		pr := byKey[k]
		id := x.id(k)
		doc := Profile{ID: id, Direction: d.String(), Namespace: pr.rep.Namespace, NamedPorts: pr.named}
		for _, pol := range pr.policies {
			doc.Policies = append(doc.Policies, pol.Ref())
		}
		for _, cp := range pr.admin {
			doc.Admin = append(doc.Admin, cp.Ref())
		}
		for _, cp := range pr.baseline {
			doc.Baseline = append(doc.Baseline, cp.Ref())
		}
		for _, p := range pr.pods {
			doc.Pods = append(doc.Pods, p.Ref)
			pm.Elements = append(pm.Elements, Element{Key: []Datum{Addr(p.Addr)}, Value: Num(id), Comment: p.Ref})
		}
		profiles = append(profiles, doc)
		nets, atoms := c.netElements(pr, id)
		allow, deny := c.podElements(pr, id, atoms)
		ps.Elements = append(ps.Elements, allow...)
		ds.Elements = append(ds.Elements, deny...)
		ns.Elements = append(ns.Elements, nets...)
	}
	for _, s := range []*Set{pm, ps, ds, ns} {
		sortElements(s.Elements)
	}
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].ID < profiles[j].ID })
	return []*Set{pm, ps, ds, ns}, profiles
}

// box is a protocol range times a port range: the unit of what a set
// element allows. Protocols 0-255 with ports 0-65535 is "everything" (a
// rule without ports allows every protocol, ICMP included).
type box struct {
	pLo, pHi uint8
	lo, hi   uint16
}

var allBox = box{0, 0xff, 0, 0xffff}

// portRange is an inclusive range of ports.
type portRange struct{ lo, hi uint16 }

// l4 are the protocols whose ports rules name, in protocol order.
var l4 = [3]struct {
	num   uint8
	proto corev1.Protocol
}{{protoTCP, corev1.ProtocolTCP}, {protoUDP, corev1.ProtocolUDP}, {protoSCTP, corev1.ProtocolSCTP}}

// portSpace is a set of (protocol, port) pairs, the traffic a decision is
// about: for TCP, UDP and SCTP, ranges of ports (sorted, disjoint, never
// touching); every other protocol in full or not at all, since rules name
// ports of those three only. The tiers are walked on it: what a rule
// matches, what is still undecided, what is allowed.
type portSpace struct {
	ports [3][]portRange
	other bool
}

// full is every protocol and port. The operations below never change the
// ranges of their operands, so one value serves every caller.
var full = portSpace{ports: [3][]portRange{{{0, 0xffff}}, {{0, 0xffff}}, {{0, 0xffff}}}, other: true}

func fullSpace() portSpace { return full }

func (s portSpace) empty() bool {
	return !s.other && len(s.ports[0]) == 0 && len(s.ports[1]) == 0 && len(s.ports[2]) == 0
}

// isFull reports whether s is every protocol and port.
func (s portSpace) isFull() bool {
	if !s.other {
		return false
	}
	for i := range s.ports {
		if len(s.ports[i]) != 1 || s.ports[i][0] != (portRange{0, 0xffff}) {
			return false
		}
	}
	return true
}

func (s portSpace) equal(o portSpace) bool {
	if s.other != o.other {
		return false
	}
	for i := range s.ports {
		if !slices.Equal(s.ports[i], o.ports[i]) {
			return false
		}
	}
	return true
}

// add puts one range into protocol i.
func (s *portSpace) add(i int, r portRange) {
	s.ports[i] = unionRanges(s.ports[i], []portRange{r})
}

func (s portSpace) union(o portSpace) portSpace {
	switch {
	case o.empty():
		return s
	case s.empty():
		return o
	}
	out := portSpace{other: s.other || o.other}
	for i := range s.ports {
		out.ports[i] = unionRanges(s.ports[i], o.ports[i])
	}
	return out
}

// unionRanges merges two sorted lists of ranges that never touch within
// themselves into a new one, in one pass: the union is the hot path of
// the tier walk.
func unionRanges(a, b []portRange) []portRange {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	out := make([]portRange, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var r portRange
		if len(b) == 0 || len(a) > 0 && a[0].lo <= b[0].lo {
			r, a = a[0], a[1:]
		} else {
			r, b = b[0], b[1:]
		}
		if n := len(out); n > 0 && uint32(r.lo) <= uint32(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (s portSpace) intersect(o portSpace) portSpace {
	switch {
	case s.empty() || o.empty():
		return portSpace{}
	case s.isFull():
		return o
	case o.isFull():
		return s
	}
	out := portSpace{other: s.other && o.other}
	for i := range s.ports {
		for _, a := range s.ports[i] {
			for _, b := range o.ports[i] {
				if lo, hi := max(a.lo, b.lo), min(a.hi, b.hi); lo <= hi {
					out.ports[i] = append(out.ports[i], portRange{lo, hi})
				}
			}
		}
	}
	return out
}

func (s portSpace) minus(o portSpace) portSpace {
	if s.empty() || o.empty() {
		return s
	}
	out := portSpace{other: s.other && !o.other}
	for i := range s.ports {
		rest := slices.Clone(s.ports[i])
		for _, x := range o.ports[i] {
			var next []portRange
			for _, r := range rest {
				if x.hi < r.lo || x.lo > r.hi {
					next = append(next, r)
					continue
				}
				if x.lo > r.lo {
					next = append(next, portRange{r.lo, x.lo - 1})
				}
				if x.hi < r.hi {
					next = append(next, portRange{x.hi + 1, r.hi})
				}
			}
			rest = next
		}
		out.ports[i] = rest
	}
	return out
}

// boxes writes the space as set elements' protocol and port fields, in
// protocol order: everything as one box, else a box per port range of
// TCP, UDP and SCTP, and the other protocols as the protocol ranges
// between them, merged with a neighbour whose ports are all open.
func (s portSpace) boxes() []box {
	if s.isFull() {
		return []box{allBox}
	}
	type run struct {
		pLo, pHi uint8
		ports    []portRange
	}
	var runs []run
	all := []portRange{{0, 0xffff}}
	push := func(lo, hi uint8, ports []portRange) {
		if len(ports) == 0 {
			return
		}
		if n := len(runs); n > 0 && runs[n-1].pHi+1 == lo && slices.Equal(runs[n-1].ports, all) && slices.Equal(ports, all) {
			runs[n-1].pHi = hi
			return
		}
		runs = append(runs, run{lo, hi, ports})
	}
	var next uint16 // the first protocol number not written yet
	for i, p := range l4 {
		if s.other && uint16(p.num) > next {
			push(uint8(next), p.num-1, all)
		}
		push(p.num, p.num, s.ports[i])
		next = uint16(p.num) + 1
	}
	if s.other {
		push(uint8(next), 0xff, all)
	}
	var out []box
	for _, r := range runs {
		for _, pr := range r.ports {
			out = append(out, box{r.pLo, r.pHi, pr.lo, pr.hi})
		}
	}
	return out
}

// ruleSpace is the traffic a rule's ports match at destination dst (nil:
// an address that is no pod's, where a named port means nothing). It
// follows policy.Port.Matches: a named port of no protocol (a cluster-wide
// policy's) is the container port of that name, whatever its protocol.
func ruleSpace(all bool, ports []policy.Port, dst *policy.Endpoint) portSpace {
	if all {
		return fullSpace()
	}
	var s portSpace
	for _, p := range ports {
		for i, l := range l4 {
			if p.Protocol != l.proto && (p.Protocol != "" || p.Name == "") {
				continue
			}
			switch {
			case p.Name != "":
				if dst == nil {
					continue
				}
				if n, ok := resolvePort(dst, p.Name, l.proto); ok {
					s.add(i, portRange{uint16(n), uint16(n)})
				}
			case p.Port == 0:
				s.add(i, portRange{0, 0xffff})
			case p.EndPort != 0:
				s.add(i, portRange{uint16(p.Port), uint16(p.EndPort)})
			default:
				s.add(i, portRange{uint16(p.Port), uint16(p.Port)})
			}
		}
	}
	return s
}

// resolvePort is the number a named port has on e: the first container
// port with that name and protocol, as the verdict engine resolves it.
func resolvePort(e *policy.Endpoint, name string, proto corev1.Protocol) (int32, bool) {
	for _, cp := range e.Ports {
		if cp.Name == name && cp.Protocol == proto {
			return cp.Port, true
		}
	}
	return 0, false
}

// span is an inclusive range of IPv4 addresses as numbers.
type span struct{ lo, hi uint32 }

// ruleSpans returns the addresses that r's peers match as addresses: every
// address for a rule without peers, else its IPv4 ipBlocks minus their
// exceptions (policy.IPBlock.Contains). Selector peers match only pods.
func ruleSpans(r *policy.Rule) []span {
	if r.AllPeers {
		return []span{{0, 0xffffffff}}
	}
	var out []span
	for _, pe := range r.Peers {
		if pe.IPBlock == nil || !pe.IPBlock.CIDR.Addr().Is4() {
			continue
		}
		s := prefixSpan(pe.IPBlock.CIDR)
		parts := []span{s}
		for _, ex := range pe.IPBlock.Except {
			if !ex.Addr().Is4() {
				continue
			}
			parts = subtract(parts, prefixSpan(ex))
		}
		out = append(out, parts...)
	}
	return out
}

// clusterRuleSpans is ruleSpans for a rule of a cluster-wide policy: its
// IPv4 networks, every address of the Model's nodes for a nodes peer (each
// address its own span, as a nodes peer matches some nodes and not
// others), and every address for a peer read fail-closed.
func clusterRuleSpans(m *policy.Model, r *policy.ClusterRule) []span {
	var out []span
	for _, pe := range r.Peers {
		switch {
		case pe.All:
			return []span{{0, 0xffffffff}}
		case pe.Nodes != nil:
			for _, n := range m.Nodes {
				for _, a := range n.Addrs {
					if a.Is4() {
						out = append(out, span{addrNum(a), addrNum(a)})
					}
				}
			}
		default:
			for _, n := range pe.Networks {
				if n.Addr().Is4() {
					out = append(out, prefixSpan(n))
				}
			}
		}
	}
	return out
}

func prefixSpan(p netip.Prefix) span {
	p = p.Masked()
	lo := addrNum(p.Addr())
	hi := lo | uint32(uint64(1)<<(32-p.Bits())-1)
	return span{lo, hi}
}

// subtract removes x from every span of ss.
func subtract(ss []span, x span) []span {
	var out []span
	for _, s := range ss {
		if x.hi < s.lo || x.lo > s.hi {
			out = append(out, s)
			continue
		}
		if x.lo > s.lo {
			out = append(out, span{s.lo, x.lo - 1})
		}
		if x.hi < s.hi {
			out = append(out, span{x.hi + 1, s.hi})
		}
	}
	return out
}

// peerView is the other side of a decision: a class of pods (e, its
// representative, and one member's address), or an address that is no
// pod's (e nil).
type peerView struct {
	e    *policy.Endpoint
	addr netip.Addr
}

// decide is what profile pr allows of peer pv, through the tiers in the
// verdict engine's order: the Admin tier (the first matching rule of the
// policies by priority decides each (protocol, port); Pass hands it on),
// then NetworkPolicy when one isolates the pod (it decides all that is
// left), else the Baseline tier, then the default, which allows.
func (c *compiler) decide(pr *profile, pv peerView) portSpace {
	dst := pr.rep // ingress: named ports resolve at the local pod
	if pr.d == policy.Egress {
		dst = pv.e // egress: at the destination, when it is a pod
	}
	allowed, rest := c.tier(pr.admin, pr.d, pv, dst, fullSpace())
	if len(pr.policies) > 0 {
		var np portSpace
		for _, pol := range pr.policies {
			for i := range pol.Rules(pr.d) {
				r := &pol.Rules(pr.d)[i]
				if npMatches(pol.Namespace, r, pv) {
					np = np.union(c.space(r, r.AllPorts, r.Ports, dst))
				}
			}
		}
		return allowed.union(rest.intersect(np))
	}
	acc, rest := c.tier(pr.baseline, pr.d, pv, dst, rest)
	return allowed.union(acc).union(rest)
}

// tier walks the rules of one tier over the undecided traffic: it returns
// what the tier accepts, and what it leaves to the next tier (passed, or
// matched by no rule). What it denies is in neither.
func (c *compiler) tier(pols []*policy.ClusterPolicy, d policy.Direction, pv peerView, dst *policy.Endpoint, undecided portSpace) (acc, next portSpace) {
	var passed portSpace
	for _, p := range pols {
		for i := range p.Rules(d) {
			r := &p.Rules(d)[i]
			if undecided.empty() {
				return acc, passed
			}
			if !c.clusterMatches(r, pv) {
				continue
			}
			m := c.space(r, r.AllPorts, r.Ports, dst).intersect(undecided)
			switch r.Action {
			case policy.ActionAccept:
				acc = acc.union(m)
			case policy.ActionPass:
				passed = passed.union(m)
			}
			undecided = undecided.minus(m)
		}
	}
	return acc, undecided.union(passed)
}

// npMatches reports whether a NetworkPolicy rule's peers match pv, as
// Rule.matchPeer does.
func npMatches(ns string, r *policy.Rule, pv peerView) bool {
	if r.AllPeers {
		return true
	}
	for i := range r.Peers {
		pe := &r.Peers[i]
		if pv.e != nil && pe.MatchesEndpoint(ns, pv.e) || pv.e == nil && pe.MatchesAddr(pv.addr) {
			return true
		}
	}
	return false
}

// clusterMatches reports whether a cluster-wide rule's peers match pv.
func (c *compiler) clusterMatches(r *policy.ClusterRule, pv peerView) bool {
	for i := range r.Peers {
		pe := &r.Peers[i]
		if pv.e != nil && pe.MatchesEndpoint(c.m, pv.e) || pv.e == nil && pe.MatchesAddr(c.m, pv.addr) {
			return true
		}
	}
	return false
}

// atom is a range of addresses that no rule of a profile tells apart, and
// what the profile allows of an address in it that is no pod's.
type atom struct {
	s       span
	allowed portSpace
}

// atomAt returns what the atoms allow at address v.
func atomAt(atoms []atom, v uint32) portSpace {
	i := sort.Search(len(atoms), func(i int) bool { return atoms[i].s.hi >= v })
	if i < len(atoms) && atoms[i].s.lo <= v {
		return atoms[i].allowed
	}
	return portSpace{}
}

// netElements is what profile pr allows by address: the address space is
// cut at every bound of every ipBlock, network and node address of its
// rules into atoms that no rule tells apart, each decided as an address
// that is no pod's; neighbouring atoms with equal permissions are merged,
// so elements never overlap. No pod is involved, so pod churn never
// changes these elements. The atoms are returned for podElements.
func (c *compiler) netElements(pr *profile, id uint32) ([]Element, []atom) {
	cuts := map[uint64]bool{0: true}
	cut := func(ss []span) {
		for _, s := range ss {
			cuts[uint64(s.lo)] = true
			cuts[uint64(s.hi)+1] = true
		}
	}
	for _, pol := range pr.policies {
		for i := range pol.Rules(pr.d) {
			cut(ruleSpans(&pol.Rules(pr.d)[i]))
		}
	}
	for _, tier := range [][]*policy.ClusterPolicy{pr.admin, pr.baseline} {
		for _, p := range tier {
			for i := range p.Rules(pr.d) {
				cut(clusterRuleSpans(c.m, &p.Rules(pr.d)[i]))
			}
		}
	}
	bounds := make([]uint64, 0, len(cuts))
	for b := range cuts {
		if b <= 0xffffffff {
			bounds = append(bounds, b)
		}
	}
	slices.Sort(bounds)
	var atoms []atom
	for i, b := range bounds {
		end := uint64(0xffffffff)
		if i+1 < len(bounds) {
			end = bounds[i+1] - 1
		}
		allowed := c.decide(pr, peerView{addr: numAddr(uint32(b))})
		if n := len(atoms); n > 0 && atoms[n-1].s.hi+1 == uint32(b) && atoms[n-1].allowed.equal(allowed) {
			atoms[n-1].s.hi = uint32(end)
			continue
		}
		atoms = append(atoms, atom{span{uint32(b), uint32(end)}, allowed})
	}
	var out []Element
	for _, a := range atoms {
		for _, b := range a.allowed.boxes() {
			out = append(out, Element{Key: []Datum{Num(id), Range(a.s.lo, a.s.hi), Range(uint32(b.pLo), uint32(b.pHi)), Range(uint32(b.lo), uint32(b.hi))}})
		}
	}
	return out, atoms
}

// podElements is what profile pr decides by pod class. For each class of
// pods with addresses it compares what the tiers allow of its pods (C)
// with what the *_nets set allows at their addresses (N, the same for
// every member: a class holds the pods that the same ipBlocks and networks
// contain). The chain asks the allow set A, then the deny set D, then the
// nets set, so a pod is allowed A ∪ (N − D), which must be C. Of the ways
// to make it so, the profile takes the one with fewer elements:
//
//   - by difference: D = N − C, what a tier denies the class though its
//     range allows it (an Admin Deny of a namespace inside an allowed
//     network, say), and A anything from C − N to C (what the class needs
//     beyond the range's: selector peers, named ports); for NetworkPolicy
//     alone D is empty;
//   - by class alone: A = C, and D one element that denies every class
//     whatever A does not allow, for profiles whose tiers deny most
//     classes (a Baseline Deny of every other namespace, say).
func (c *compiler) podElements(pr *profile, id uint32, atoms []atom) (allow, deny []Element) {
	el := func(class span, b box) Element {
		return Element{Key: []Datum{Num(id), Range(class.lo, class.hi), Range(uint32(b.pLo), uint32(b.pHi)), Range(uint32(b.lo), uint32(b.hi))}}
	}
	type classBoxes struct {
		id                uint32
		all, least, extra []box // C, the smaller of C − N and C, N − C
	}
	var per []classBoxes
	nAll, nDiff := 0, 0
	for _, cl := range c.classes {
		a := cl.members[0].a
		classAllowed := c.decide(pr, peerView{e: cl.rep, addr: a})
		netAllowed := atomAt(atoms, addrNum(a))
		cb := classBoxes{id: cl.id, all: classAllowed.boxes()}
		cb.least = cb.all
		if !netAllowed.empty() {
			cb.extra = netAllowed.minus(classAllowed).boxes()
			if least := classAllowed.minus(netAllowed).boxes(); len(least) < len(cb.all) {
				cb.least = least
			}
		}
		nAll += len(cb.all)
		nDiff += len(cb.least) + len(cb.extra)
		per = append(per, cb)
	}
	// No comment naming the class's pods: it would change as pods come and
	// go, and an element's comment is part of the element.
	byClass := nAll+1 < nDiff
	for _, cb := range per {
		one := span{cb.id, cb.id}
		if byClass {
			for _, b := range cb.all {
				allow = append(allow, el(one, b))
			}
			continue
		}
		for _, b := range cb.least {
			allow = append(allow, el(one, b))
		}
		for _, b := range cb.extra {
			deny = append(deny, el(one, b))
		}
	}
	if byClass {
		deny = []Element{el(span{0, 0xffffffff}, allBox)}
	}
	return allow, deny
}

// unenforced says what the ruleset does not enforce of the Model: the
// domain names of cluster-wide policies, which nothing resolves.
func unenforced(m *policy.Model) []string {
	var out []string
	for _, p := range m.ClusterPolicies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				if names := r.DomainNames(); len(names) > 0 {
					out = append(out, fmt.Sprintf("%s %s rule %d (spec.%s[%d]): the domain names %s are not enforced: "+
						"nothing resolves them, so the rule is taken to match no address and traffic to those names is "+
						"decided by the rules after it", p.Ref(), d, r.Index+1, d, r.Index, strings.Join(names, ", ")))
				}
			}
		}
	}
	return out
}

// sortElements orders elements by key, field by field.
func sortElements(es []Element) {
	sort.SliceStable(es, func(i, j int) bool { return compareKeys(es[i].Key, es[j].Key) < 0 })
}

func compareKeys(a, b []Datum) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if a[i].Lo != b[i].Lo {
			if a[i].Lo < b[i].Lo {
				return -1
			}
			return 1
		}
		if a[i].Hi != b[i].Hi {
			if a[i].Hi < b[i].Hi {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

// chains are the same for every node and every Model: everything that
// changes is a set element (doc.go).
func chains() []*Chain {
	ipv6 := MatchIPv6{}
	in := func(set string, fields ...Field) MatchSet {
		m := MatchSet{Set: set}
		for _, f := range fields {
			m.Key = append(m.Key, Operand{Field: f})
		}
		return m
	}
	allow := func(profiles, set string, subject, peer Field, peerMap string) MatchSet {
		return MatchSet{Set: set, Key: []Operand{{Field: subject, Map: profiles}, {Field: peer, Map: peerMap}, {Field: FieldL4Proto}, {Field: FieldDPort}}}
	}
	drop := Verdict{Kind: Drop}
	return []*Chain{
		{Name: ChainPrerouting, Hook: HookPrerouting, Priority: PriorityRaw, Rules: []Rule{
			{Matches: []Match{ipv6, in(SetPodIfaces, FieldIIFName)}, Counter: true, Verdict: drop,
				Comment: "pods are IPv4-only"},
			{Matches: []Match{ipv6}, Verdict: Verdict{Kind: Accept},
				Comment: "other IPv6 is not ours; every rule below reads IPv4 headers"},
			{Matches: []Match{in(SetPodSrc, FieldIIFName, FieldSAddr)}, Verdict: Verdict{Kind: Accept},
				Comment: "a pod sending from its own address"},
			{Matches: []Match{in(SetPodIfaces, FieldIIFName)}, Counter: true, Verdict: drop,
				Comment: "anti-spoofing: any other source address from a pod"},
			{Matches: []Match{in(SetPodAddrs, FieldSAddr)}, Counter: true, Verdict: drop,
				Comment: "anti-spoofing: a local pod's address from another interface"},
			// Fail closed: the CNI plugin wires a pod before the agent
			// has compiled it into these sets; until then its veth is
			// neither trusted nor subject to its policy.
			{Matches: []Match{MatchIfnamePrefix{Field: FieldIIFName, Prefix: PodVethPrefix}}, Counter: true, Verdict: drop,
				Comment: "a pod veth that the rules do not know yet"},
		}},
		// Connections the L7 proxy takes are delivered to it, not
		// forwarded: they are judged here, on their first packet, by the
		// same egress and ingress chains, before table inet rampart_l7's
		// TPROXY (priority mangle) takes them. L3/L4 policy first, then
		// the L7 authorization.
		{Name: ChainL7, Hook: HookPrerouting, Priority: PriorityL7, Rules: []Rule{
			{Matches: []Match{MatchCtState{States: CtNew}, in(SetL7Targets, FieldDAddr, FieldL4Proto, FieldDPort)},
				Verdict: Verdict{Kind: Jump, Chain: ChainL7Checks}, Comment: "a new connection for the L7 proxy"},
			{Matches: []Match{MatchCtState{States: CtNew}, in(SetL7Pods, FieldDAddr, FieldL4Proto)}, Counter: true, Verdict: drop,
				Comment: "a TCP port of an L7 pod that no container declares: refused"},
		}},
		{Name: ChainL7Checks, Rules: []Rule{
			{Verdict: Verdict{Kind: Jump, Chain: ChainEgress}},
			{Verdict: Verdict{Kind: Jump, Chain: ChainIngress}},
			// Allowed: on to the proxy's TPROXY (a later priority),
			// past the refusal of the pod's other ports below.
			{Verdict: Verdict{Kind: Accept}, Comment: "allowed: on to the L7 proxy"},
		}},
		{Name: ChainForward, Hook: HookForward, Priority: PriorityFilter, Rules: []Rule{
			{Matches: []Match{ipv6, in(SetPodIfaces, FieldOIFName)}, Counter: true, Verdict: drop,
				Comment: "pods are IPv4-only"},
			{Matches: []Match{ipv6}, Verdict: Verdict{Kind: Accept}},
			{Matches: []Match{MatchCtState{States: CtEstablished | CtRelated}}, Verdict: Verdict{Kind: Accept},
				Comment: "replies of allowed connections"},
			{Matches: []Match{MatchIfnamePrefix{Field: FieldOIFName, Prefix: PodVethPrefix}, MatchSet{Set: SetPodIfaces, Key: []Operand{{Field: FieldOIFName}}, Negate: true}},
				Counter: true, Verdict: drop, Comment: "to a pod veth that the rules do not know yet"},
			// Without these, a TCP connection whose conntrack entry was
			// deleted because the policy now denies it would be picked up
			// again mid-stream, from its other end, as a new flow in the
			// opposite direction, and its packets would pass as replies.
			{Matches: []Match{in(SetPodIfaces, FieldIIFName), MatchTCPNotSyn{}}, Counter: true, Verdict: drop,
				Comment: "TCP that is neither tracked nor a connection start"},
			{Matches: []Match{in(SetPodIfaces, FieldOIFName), MatchTCPNotSyn{}}, Counter: true, Verdict: drop,
				Comment: "TCP that is neither tracked nor a connection start"},
			{Verdict: Verdict{Kind: Jump, Chain: ChainEgress}},
			{Verdict: Verdict{Kind: Jump, Chain: ChainIngress}},
		}},
		{Name: ChainEgress, Rules: []Rule{
			{Matches: []Match{allow(MapEgressProfile, SetEgressPods, FieldSAddr, FieldDAddr, MapPodClass)}, Verdict: Verdict{Kind: Return}},
			{Matches: []Match{allow(MapEgressProfile, SetEgressDenyPods, FieldSAddr, FieldDAddr, MapPodClass)}, Counter: true, Verdict: drop,
				Comment: "a tier denies this pod though its address range is allowed"},
			{Matches: []Match{allow(MapEgressProfile, SetEgressNets, FieldSAddr, FieldDAddr, "")}, Verdict: Verdict{Kind: Return}},
			{Matches: []Match{in(MapEgressProfile, FieldSAddr)}, Counter: true, Verdict: drop,
				Comment: "governed for egress and no tier allows"},
		}},
		{Name: ChainIngress, Rules: []Rule{
			{Matches: []Match{allow(MapIngressProfile, SetIngressPods, FieldDAddr, FieldSAddr, MapPodClass)}, Verdict: Verdict{Kind: Return}},
			{Matches: []Match{allow(MapIngressProfile, SetIngressDenyPods, FieldDAddr, FieldSAddr, MapPodClass)}, Counter: true, Verdict: drop,
				Comment: "a tier denies this pod though its address range is allowed"},
			{Matches: []Match{allow(MapIngressProfile, SetIngressNets, FieldDAddr, FieldSAddr, "")}, Verdict: Verdict{Kind: Return}},
			{Matches: []Match{in(MapIngressProfile, FieldDAddr)}, Counter: true, Verdict: drop,
				Comment: "governed for ingress and no tier allows"},
		}},
	}
}
