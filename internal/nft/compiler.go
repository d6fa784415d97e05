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

	ChainPrerouting = "prerouting"
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
// pod, the ingress side when the destination is one. The other side of a
// flow between nodes is enforced by the other node.
func Compile(m *policy.Model, n Node) (*Ruleset, error) {
	pods, err := localPods(m, n)
	if err != nil {
		return nil, err
	}
	rs := &Ruleset{Table: TableName, Node: n.Name}
	for _, p := range pods {
		rs.Pods = append(rs.Pods, p.LocalPod)
	}
	rs.Sets = append(rs.Sets, podSets(pods)...)

	ids := newIDs()
	c := &compiler{m: m}
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
// (named ports of egress rules resolve against them), and the ipBlocks of
// the Model that contain one of its addresses (Peer.MatchesEndpoint).
// hostNetwork pods have no pod address and no class.
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
	policies []*policy.Policy
	named    []string
	pods     []local
}

// profileOf returns the profile of pod e in direction d, or nil when no
// policy isolates e in d. Its key holds everything the decision depends
// on besides the rest of the cluster: the namespace, the isolating
// policies (their rules are read from the Model), and for ingress how the
// pod's named ports resolve (a named port in an ingress rule resolves
// against the destination, the pod itself).
func (c *compiler) profileOf(e *policy.Endpoint, d policy.Direction) *profile {
	p := &profile{d: d, rep: e}
	refs := []string{}
	for _, pol := range c.m.PoliciesIn(e.Namespace) {
		if pol.Isolates(d) && pol.Selects(e) {
			p.policies = append(p.policies, pol)
			refs = append(refs, pol.Ref())
		}
	}
	if len(p.policies) == 0 {
		return nil
	}
	if d == policy.Ingress {
		p.named = namedPorts(e)
	}
	p.key = d.String() + "|" + e.Namespace + "|" + strings.Join(refs, ",") + "|" + strings.Join(p.named, ",")
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

	name, podsSet, netsSet, peer := MapIngressProfile, SetIngressPods, SetIngressNets, "source"
	if d == policy.Egress {
		name, podsSet, netsSet, peer = MapEgressProfile, SetEgressPods, SetEgressNets, "destination"
	}
	pm := &Set{Name: name, Key: []Type{TypeIPv4}, Value: TypeProfile,
		Comment: "local pods isolated for " + d.String() + ", and their profile"}
	ps := &Set{Name: podsSet, Key: []Type{TypeProfile, TypeProfile, TypeProto, TypePort}, Interval: true, ProfileMap: name,
		Comment: d.String() + " allowed by profile, " + peer + " pod class, protocol and port"}
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
		for _, p := range pr.pods {
			doc.Pods = append(doc.Pods, p.Ref)
			pm.Elements = append(pm.Elements, Element{Key: []Datum{Addr(p.Addr)}, Value: Num(id), Comment: p.Ref})
		}
		profiles = append(profiles, doc)
		ps.Elements = append(ps.Elements, c.podElements(pr, id)...)
		ns.Elements = append(ns.Elements, c.netElements(pr, id)...)
	}
	for _, s := range []*Set{pm, ps, ns} {
		sortElements(s.Elements)
	}
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].ID < profiles[j].ID })
	return []*Set{pm, ps, ns}, profiles
}

// box is a protocol range times a port range: the unit of what a rule's
// ports allow. Protocols 0-255 with ports 0-65535 is "everything" (a rule
// without ports allows every protocol, ICMP included).
type box struct {
	pLo, pHi uint8
	lo, hi   uint16
}

var allBox = box{0, 0xff, 0, 0xffff}

// Which port entries ruleBoxes takes.
const (
	numeric = 1 << iota // numbers, ranges, whole protocols, and "all ports"
	named               // named ports, resolved against the destination
)

// ruleBoxes returns what r's ports allow at destination dst (nil: an
// address outside the cluster's pods, where a named port means nothing).
// It follows policy.Port.Matches.
func ruleBoxes(r *policy.Rule, dst *policy.Endpoint, kinds int) []box {
	if r.AllPorts {
		if kinds&numeric != 0 {
			return []box{allBox}
		}
		return nil
	}
	var out []box
	for _, p := range r.Ports {
		proto := protoNum(p.Protocol)
		switch {
		case p.Name != "":
			if kinds&named == 0 || dst == nil {
				continue
			}
			if n, ok := resolvePort(dst, p.Name, p.Protocol); ok {
				out = append(out, box{proto, proto, uint16(n), uint16(n)})
			}
		case kinds&numeric == 0:
		case p.Port == 0:
			out = append(out, box{proto, proto, 0, 0xffff})
		case p.EndPort != 0:
			out = append(out, box{proto, proto, uint16(p.Port), uint16(p.EndPort)})
		default:
			out = append(out, box{proto, proto, uint16(p.Port), uint16(p.Port)})
		}
	}
	return out
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

// normalize sorts boxes and merges what overlaps or touches, so that equal
// permissions compare equal and elements never overlap.
func normalize(bs []box) []box {
	if len(bs) == 0 {
		return nil
	}
	for _, b := range bs {
		if b == allBox {
			return []box{allBox}
		}
	}
	bs = slices.Clone(bs)
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].pLo != bs[j].pLo {
			return bs[i].pLo < bs[j].pLo
		}
		return bs[i].lo < bs[j].lo
	})
	out := bs[:1]
	for _, b := range bs[1:] {
		last := &out[len(out)-1]
		if b.pLo == last.pLo && uint32(b.lo) <= uint32(last.hi)+1 {
			last.hi = max(last.hi, b.hi)
			continue
		}
		out = append(out, b)
	}
	return out
}

// span is an inclusive range of IPv4 addresses as numbers.
type span struct{ lo, hi uint32 }

// ruleSpans returns the addresses that r's peers match as addresses: every
// address for a rule without peers, else its IPv4 ipBlocks minus their
// exceptions (policy.IPBlock.Contains). Selector peers match only pods:
// podElements has them.
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

func inSpans(ss []span, v uint32) bool {
	for _, s := range ss {
		if v >= s.lo && v <= s.hi {
			return true
		}
	}
	return false
}

// netElements is what profile pr allows by address: rules without peers
// and ipBlock peers, with the ports that do not depend on the peer being a
// pod. The address space is cut at every bound of every block into atoms
// that no rule tells apart; neighbouring atoms with equal permissions are
// merged, so elements never overlap. No pod is involved, so pod churn
// never changes these elements.
func (c *compiler) netElements(pr *profile, id uint32) []Element {
	type ruleNet struct {
		spans []span
		boxes []box
	}
	var rules []ruleNet
	cuts := map[uint64]bool{0: true}
	for _, pol := range pr.policies {
		for i := range pol.Rules(pr.d) {
			r := &pol.Rules(pr.d)[i]
			spans := ruleSpans(r)
			if len(spans) == 0 {
				continue
			}
			var boxes []box
			if pr.d == policy.Ingress {
				// The destination is the local pod: named ports resolve.
				boxes = ruleBoxes(r, pr.rep, numeric|named)
			} else {
				boxes = ruleBoxes(r, nil, numeric)
			}
			if len(boxes) == 0 {
				continue
			}
			rules = append(rules, ruleNet{spans, boxes})
			for _, s := range spans {
				cuts[uint64(s.lo)] = true
				cuts[uint64(s.hi)+1] = true
			}
		}
	}
	if len(rules) == 0 {
		return nil
	}
	bounds := make([]uint64, 0, len(cuts))
	for b := range cuts {
		if b <= 0xffffffff {
			bounds = append(bounds, b)
		}
	}
	slices.Sort(bounds)
	type atom struct {
		s     span
		boxes []box
	}
	var atoms []atom
	for i, b := range bounds {
		end := uint64(0xffffffff)
		if i+1 < len(bounds) {
			end = bounds[i+1] - 1
		}
		var bs []box
		for _, r := range rules {
			if inSpans(r.spans, uint32(b)) {
				bs = append(bs, r.boxes...)
			}
		}
		bs = normalize(bs)
		if n := len(atoms); n > 0 && atoms[n-1].s.hi+1 == uint32(b) && slices.Equal(atoms[n-1].boxes, bs) {
			atoms[n-1].s.hi = uint32(end)
			continue
		}
		atoms = append(atoms, atom{span{uint32(b), uint32(end)}, bs})
	}
	var out []Element
	for _, a := range atoms {
		for _, b := range a.boxes {
			out = append(out, Element{Key: []Datum{Num(id), Range(a.s.lo, a.s.hi), Range(uint32(b.pLo), uint32(b.pHi)), Range(uint32(b.lo), uint32(b.hi))}})
		}
	}
	return out
}

// podElements is what profile pr allows by pod class: for every class of
// pods with addresses, the ports of the rules whose peers select its pods
// (policy.Peer.MatchesEndpoint), named ports resolved against the
// destination. Where netElements already allows a rule's ports at every
// member's address (an ipBlock or a rule without peers), only what it
// cannot hold is added: for egress, named ports, which resolve against
// each destination pod's own container ports.
func (c *compiler) podElements(pr *profile, id uint32) []Element {
	type ruleRef struct {
		ns    string
		r     *policy.Rule
		spans []span
	}
	var rules []ruleRef
	for _, pol := range pr.policies {
		for i := range pol.Rules(pr.d) {
			r := &pol.Rules(pr.d)[i]
			rules = append(rules, ruleRef{pol.Namespace, r, ruleSpans(r)})
		}
	}
	var out []Element
	for _, cl := range c.classes {
		var bs []box
		for _, rr := range rules {
			r := rr.r
			matched := r.AllPeers
			for i := 0; !matched && i < len(r.Peers); i++ {
				matched = r.Peers[i].MatchesEndpoint(rr.ns, cl.rep)
			}
			if !matched {
				continue
			}
			covered := true // ruleSpans covers rules without peers
			for _, pa := range cl.members {
				covered = covered && inSpans(rr.spans, addrNum(pa.a))
			}
			dst := cl.rep // egress: the peer is the destination
			if pr.d == policy.Ingress {
				dst = pr.rep
			}
			switch {
			case !covered:
				bs = append(bs, ruleBoxes(r, dst, numeric|named)...)
			case pr.d == policy.Egress:
				bs = append(bs, ruleBoxes(r, dst, named)...)
			}
		}
		// No comment naming the class's pods: it would change as pods
		// come and go, and an element's comment is part of the element.
		for _, b := range normalize(bs) {
			out = append(out, Element{Key: []Datum{Num(id), Num(cl.id), Range(uint32(b.pLo), uint32(b.pHi)), Range(uint32(b.lo), uint32(b.hi))}})
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
			{Matches: []Match{allow(MapEgressProfile, SetEgressNets, FieldSAddr, FieldDAddr, "")}, Verdict: Verdict{Kind: Return}},
			{Matches: []Match{in(MapEgressProfile, FieldSAddr)}, Counter: true, Verdict: drop,
				Comment: "isolated for egress and no rule allows"},
		}},
		{Name: ChainIngress, Rules: []Rule{
			{Matches: []Match{allow(MapIngressProfile, SetIngressPods, FieldDAddr, FieldSAddr, MapPodClass)}, Verdict: Verdict{Kind: Return}},
			{Matches: []Match{allow(MapIngressProfile, SetIngressNets, FieldDAddr, FieldSAddr, "")}, Verdict: Verdict{Kind: Return}},
			{Matches: []Match{in(MapIngressProfile, FieldDAddr)}, Counter: true, Verdict: drop,
				Comment: "isolated for ingress and no rule allows"},
		}},
	}
}
