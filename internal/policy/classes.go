package policy

import (
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Equivalence classes: endpoints that no policy can tell apart are one
// class, and the matrix is computed over classes, so its cost grows with
// distinct workloads rather than pods (Cilium reduces pods to identities in
// the same way). Two endpoints are in one class when they share
//
//   - the namespace (and so its labels, and which policies apply),
//   - the pod labels,
//   - the container ports (named ports resolve against them),
//   - hostNetwork,
//   - which ipBlocks and networks (of NetworkPolicies and cluster-wide
//     policies) contain their addresses,
//   - and, only when the model has hostNetwork pods on known nodes, the node
//     (a pod always reaches the hostNetwork pods of its own node, and the
//     nodes peers of cluster-wide policies match hostNetwork pods by their
//     node's labels).
//
// Everything else a policy reads of an endpoint is one of these: the
// subjects and the namespaces and pods peers of cluster-wide policies read
// namespace and pod labels, as NetworkPolicy selectors do.
//
// A class is a set of distinct pods: the pair (class, same class) means two
// different pods of one class. Loopback (an endpoint to itself) is decided
// per endpoint, by Matrix.Allowed.

// Class is a set of endpoints that every policy treats alike.
type Class struct {
	ID        int
	Namespace string
	Members   []*Endpoint // sorted by Ref
	// Key is the class's canonical description, for humans and tests.
	Key string
}

// Rep is the class's representative endpoint.
func (c *Class) Rep() *Endpoint { return c.Members[0] }

type classIndex struct {
	m       *Model
	classes []*Class
	byNS    map[string][]int
	n       int
	all     bitset

	blocks   []*IPBlock // distinct ipBlocks of all policies, by String()
	blockIdx map[string]int
	member   []bitset // class → which blocks contain a member's address

	mu         sync.Mutex // guards the caches below
	peerSets   map[string]bitset
	nsMatches  map[string][]string
	portSets   map[string]bitset
	hostOnNode map[string]bitset

	// Scratch sets of decide, reused under mu: only what decide returns is
	// kept. tacc, tdeny, tund and tmatch are clusterTier's.
	undecided, acc            bitset
	tacc, tdeny, tund, tmatch bitset
}

// Classes returns the model's equivalence classes, sorted by their first
// member.
func (m *Model) Classes() []*Class { return m.classIndex().classes }

// ClassOf returns the class of an endpoint.
func (m *Model) ClassOf(e *Endpoint) *Class { return m.classIndex().classes[e.class] }

func (m *Model) classIndex() *classIndex {
	m.classesOnce.Do(func() { m.classes = buildClasses(m) })
	return m.classes
}

func buildClasses(m *Model) *classIndex {
	ci := &classIndex{
		m:          m,
		byNS:       map[string][]int{},
		blockIdx:   map[string]int{},
		peerSets:   map[string]bitset{},
		nsMatches:  map[string][]string{},
		portSets:   map[string]bitset{},
		hostOnNode: map[string]bitset{},
	}
	for _, p := range m.Policies {
		for _, d := range []Direction{Ingress, Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					if pe.IPBlock == nil {
						continue
					}
					k := pe.IPBlock.String()
					if _, ok := ci.blockIdx[k]; !ok {
						ci.blockIdx[k] = len(ci.blocks)
						ci.blocks = append(ci.blocks, pe.IPBlock)
					}
				}
			}
		}
	}
	for _, p := range m.ClusterPolicies {
		for _, d := range []Direction{Ingress, Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					for _, n := range pe.Networks {
						b := &IPBlock{CIDR: n}
						k := b.String()
						if _, ok := ci.blockIdx[k]; !ok {
							ci.blockIdx[k] = len(ci.blocks)
							ci.blocks = append(ci.blocks, b)
						}
					}
				}
			}
		}
	}
	splitByNode := false
	for _, e := range m.Endpoints {
		if e.HostNetwork && e.Node != "" {
			splitByNode = true
		}
	}
	byKey := map[string]*Class{}
	var memberBits []bitset
	for _, e := range m.Endpoints {
		blocks := newBitset(len(ci.blocks))
		for i, b := range ci.blocks {
			for _, a := range e.IPs {
				if b.Contains(a) {
					blocks.set(i)
					break
				}
			}
		}
		key := classKey(e, blocks, splitByNode)
		c := byKey[key]
		if c == nil {
			c = &Class{ID: len(ci.classes), Namespace: e.Namespace, Key: key}
			byKey[key] = c
			ci.classes = append(ci.classes, c)
			memberBits = append(memberBits, blocks)
			ci.byNS[e.Namespace] = append(ci.byNS[e.Namespace], c.ID)
		}
		c.Members = append(c.Members, e)
		e.class = c.ID
	}
	ci.member = memberBits
	ci.n = len(ci.classes)
	ci.all = newBitset(ci.n)
	for i := 0; i < ci.n; i++ {
		ci.all.set(i)
	}
	return ci
}

func classKey(e *Endpoint, blocks bitset, byNode bool) string {
	var b strings.Builder
	b.WriteString(e.Namespace)
	b.WriteString("|")
	keys := make([]string, 0, len(e.Labels))
	for k := range e.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(e.Labels[k])
		b.WriteString(",")
	}
	b.WriteString("|")
	ports := make([]string, 0, len(e.Ports))
	for _, p := range e.Ports {
		ports = append(ports, p.Name+":"+string(p.Protocol)+":"+strconv.Itoa(int(p.Port)))
	}
	sort.Strings(ports)
	b.WriteString(strings.Join(ports, ","))
	if e.HostNetwork {
		b.WriteString("|hostNetwork")
	}
	b.WriteString("|")
	b.WriteString(blocks.key())
	if byNode {
		b.WriteString("|node=")
		b.WriteString(e.Node)
	}
	return b.String()
}

// Matrix is the reachability of every class to every class for one probe.
type Matrix struct {
	Probe   Probe
	Classes []*Class
	// egress[s] is the set of destination classes that s's egress allows;
	// ingress[d] the set of source classes that d's ingress allows;
	// allowed[s] the destinations where both agree.
	egress, ingress, allowed []bitset
}

// Matrix computes the class matrix for one probe.
func (m *Model) Matrix(pr Probe) *Matrix {
	ci := m.classIndex()
	ci.mu.Lock()
	defer ci.mu.Unlock()
	mx := &Matrix{Probe: pr, Classes: ci.classes,
		egress: make([]bitset, ci.n), ingress: make([]bitset, ci.n), allowed: make([]bitset, ci.n)}
	for c := 0; c < ci.n; c++ {
		mx.egress[c] = ci.decide(c, Egress, pr)
		mx.ingress[c] = ci.decide(c, Ingress, pr)
	}
	// A named probe reaches only destinations that have that port.
	reachable := ci.all
	if pr.Name != "" {
		reachable = newBitset(ci.n)
		for d, c := range ci.classes {
			if _, ok := c.Rep().resolvePort(pr.Name, pr.Protocol); ok {
				reachable.set(d)
			}
		}
	}
	// admits[s] is the set of destinations whose ingress admits s: the
	// transpose of ingress, so that allowed is a word-wise AND rather than
	// a column lookup per pair. Destinations that admit every class (not
	// isolated) go in bulk into open.
	w := len(ci.all)
	slab := make([]uint64, ci.n*w)
	admits := make([]bitset, ci.n)
	for s := range admits {
		admits[s] = bitset(slab[s*w : (s+1)*w : (s+1)*w])
	}
	open := newBitset(ci.n)
	for d := 0; d < ci.n; d++ {
		if mx.ingress[d].equal(ci.all) {
			open.set(d)
			continue
		}
		for s := range mx.ingress[d].each() {
			admits[s].set(d)
		}
	}
	for s := 0; s < ci.n; s++ {
		row := admits[s] // reuse the slab: allowed = egress & reachable & (admits | open)
		for i := range row {
			row[i] = (row[i] | open[i]) & mx.egress[s][i] & reachable[i]
		}
		mx.allowed[s] = row
	}
	return mx
}

// decide runs the evaluator chain for class c as the subject of direction d,
// over all peer classes at once.
func (ci *classIndex) decide(c int, d Direction, pr Probe) bitset {
	accepted := newBitset(ci.n)
	if ci.undecided == nil {
		ci.undecided, ci.acc = newBitset(ci.n), newBitset(ci.n)
		ci.tacc, ci.tdeny, ci.tund, ci.tmatch = newBitset(ci.n), newBitset(ci.n), newBitset(ci.n), newBitset(ci.n)
	}
	undecided := ci.undecided
	copy(undecided, ci.all)
	for _, e := range chain {
		acc, deny := e.classes(ci, c, d, pr)
		if acc != nil {
			accepted.orAnd(acc, undecided)
			undecided.andNot(acc)
		}
		if deny != nil {
			undecided.andNot(deny)
		}
		if undecided.empty() {
			break
		}
	}
	return accepted
}

// Allowed reports whether src may connect to dst on the matrix's probe.
func (mx *Matrix) Allowed(src, dst *Endpoint) bool {
	if src == dst {
		return true
	}
	return mx.allowed[src.class].has(dst.class)
}

// ClassAllowed reports whether a pod of class s may connect to a
// (different) pod of class d.
func (mx *Matrix) ClassAllowed(s, d int) bool { return mx.allowed[s].has(d) }

// EgressAllows and IngressAllows report one direction alone.
func (mx *Matrix) EgressAllows(s, d int) bool  { return mx.egress[s].has(d) }
func (mx *Matrix) IngressAllows(d, s int) bool { return mx.ingress[d].has(s) }

// Reachable returns the classes that class s reaches, in order.
func (mx *Matrix) Reachable(s int) []int {
	var out []int
	for d := range mx.allowed[s].each() {
		out = append(out, d)
	}
	return out
}

// The class form of each evaluator: what it accepts and denies of all peer
// classes when class c is the subject. Returning nil means "pass" for all.

func (loopback) classes(*classIndex, int, Direction, Probe) (bitset, bitset) {
	return nil, nil // loopback is per endpoint, never per class
}

func (nodeLocal) classes(ci *classIndex, c int, _ Direction, _ Probe) (bitset, bitset) {
	node := ci.classes[c].Rep().Node
	if node == "" {
		return nil, nil
	}
	if s, ok := ci.hostOnNode[node]; ok {
		return s, nil
	}
	s := newBitset(ci.n)
	for i, cl := range ci.classes {
		if r := cl.Rep(); r.HostNetwork && r.Node == node {
			s.set(i)
		}
	}
	ci.hostOnNode[node] = s
	return s, nil
}

func (hostNetwork) classes(ci *classIndex, c int, _ Direction, _ Probe) (bitset, bitset) {
	if ci.classes[c].Rep().HostNetwork {
		return ci.all, nil
	}
	return nil, nil
}

func (external) classes(*classIndex, int, Direction, Probe) (bitset, bitset) {
	return nil, nil // every class is a pod of the cluster
}

func (defaultAllow) classes(ci *classIndex, _ int, _ Direction, _ Probe) (bitset, bitset) {
	return ci.all, nil
}

func (networkPolicy) classes(ci *classIndex, c int, d Direction, pr Probe) (bitset, bitset) {
	rep := ci.classes[c].Rep()
	isolated := false
	acc := ci.acc
	clear(acc)
	for _, p := range ci.m.policiesIn[rep.Namespace] {
		if !p.Isolates(d) || !p.Selector.Matches(rep.Labels) {
			continue
		}
		isolated = true
		for i := range p.Rules(d) {
			r := &p.Rules(d)[i]
			peers := ci.rulePeers(p.Namespace, r)
			if d == Ingress {
				// The subject is the destination: its ports decide.
				num, ok := pr.resolve(rep)
				if !ok {
					continue
				}
				if _, ok := r.matchPort(rep, num, pr.Protocol); ok {
					acc.or(peers)
				}
				continue
			}
			acc.orAnd(peers, ci.portSet(r.AllPorts, r.Ports, pr))
		}
	}
	if !isolated {
		return nil, nil
	}
	// Everything acc does not accept is denied; decide applies the accept
	// first, so denying all of the rest is denying all.
	return acc, ci.all
}

// resolve returns the port number a probe means at destination e.
func (pr Probe) resolve(e *Endpoint) (int32, bool) {
	if pr.Name == "" {
		return pr.Port, true
	}
	return e.resolvePort(pr.Name, pr.Protocol)
}

// rulePeers is the set of classes a rule's peers match.
func (ci *classIndex) rulePeers(policyNS string, r *Rule) bitset {
	if r.AllPeers {
		return ci.all
	}
	if len(r.Peers) == 1 {
		return ci.peerSet(policyNS, &r.Peers[0])
	}
	s := newBitset(ci.n)
	for i := range r.Peers {
		s.or(ci.peerSet(policyNS, &r.Peers[i]))
	}
	return s
}

// peerSet is the set of classes one peer matches, cached by the peer's
// canonical form: many policies repeat the same selectors.
func (ci *classIndex) peerSet(policyNS string, pe *Peer) bitset {
	if pe.IPBlock != nil {
		k := "ip|" + pe.IPBlock.String()
		if s, ok := ci.peerSets[k]; ok {
			return s
		}
		s := newBitset(ci.n)
		bi := ci.blockIdx[pe.IPBlock.String()]
		for c := range ci.classes {
			if ci.member[c].has(bi) {
				s.set(c)
			}
		}
		ci.peerSets[k] = s
		return s
	}
	podKey, nsKey := "-", "-"
	if pe.Pods != nil {
		podKey = "p:" + pe.Pods.String()
	}
	if pe.Namespaces != nil {
		nsKey = "n:" + pe.Namespaces.String()
	} else {
		nsKey = "in:" + policyNS
	}
	k := nsKey + "|" + podKey
	if s, ok := ci.peerSets[k]; ok {
		return s
	}
	var namespaces []string
	if pe.Namespaces == nil {
		namespaces = []string{policyNS}
	} else {
		var ok bool
		if namespaces, ok = ci.nsMatches[nsKey]; !ok {
			for _, ns := range ci.m.Namespaces {
				if pe.Namespaces.Matches(ns.Labels) {
					namespaces = append(namespaces, ns.Name)
				}
			}
			ci.nsMatches[nsKey] = namespaces
		}
	}
	s := newBitset(ci.n)
	for _, ns := range namespaces {
		for _, c := range ci.byNS[ns] {
			rep := ci.classes[c].Rep()
			if rep.HostNetwork {
				continue
			}
			if pe.Pods == nil || pe.Pods.Matches(rep.Labels) {
				s.set(c)
			}
		}
	}
	ci.peerSets[k] = s
	return s
}

// portSet is the set of destination classes at which an egress rule's
// ports cover the probe. Without named ports on either side it is all or
// nothing; otherwise it depends on each destination's container ports.
func (ci *classIndex) portSet(all bool, ports []Port, pr Probe) bitset {
	if all {
		return ci.all
	}
	named := pr.Name != ""
	for _, p := range ports {
		named = named || p.Name != ""
	}
	if !named {
		if _, ok := matchPorts(false, ports, nil, pr.Port, pr.Protocol); ok {
			return ci.all
		}
		return newBitset(ci.n)
	}
	var kb strings.Builder
	kb.WriteString(pr.String())
	for _, p := range ports {
		kb.WriteString("|")
		kb.WriteString(p.String())
	}
	k := kb.String()
	if s, ok := ci.portSets[k]; ok {
		return s
	}
	s := newBitset(ci.n)
	for d, c := range ci.classes {
		rep := c.Rep()
		num, ok := pr.resolve(rep)
		if !ok {
			continue
		}
		if _, ok := matchPorts(false, ports, rep, num, pr.Protocol); ok {
			s.set(d)
		}
	}
	ci.portSets[k] = s
	return s
}

// classes is the tier for every peer class at once: rules in order, each
// deciding the peers that match it and that no rule before it decided.
// Accept and Deny are returned; what a Pass matched is left undecided, for
// the evaluators after this one.
func (t clusterTier) classes(ci *classIndex, c int, d Direction, pr Probe) (bitset, bitset) {
	pols := ci.m.TierPolicies(t.tier)
	rep := ci.classes[c].Rep()
	if len(pols) == 0 || rep.HostNetwork {
		return nil, nil
	}
	acc, deny, und, match := ci.tacc, ci.tdeny, ci.tund, ci.tmatch
	clear(acc)
	clear(deny)
	copy(und, ci.all)
	selected := false
	for _, p := range pols {
		if len(p.Rules(d)) == 0 || !p.Selects(rep) {
			continue
		}
		selected = true
		for i := range p.Rules(d) {
			r := &p.Rules(d)[i]
			ports := ci.all
			if d == Ingress {
				// The subject is the destination: its ports decide.
				num, ok := pr.resolve(rep)
				if !ok {
					continue
				}
				if _, ok := r.matchPort(rep, num, pr.Protocol); !ok {
					continue
				}
			} else {
				ports = ci.portSet(r.AllPorts, r.Ports, pr)
			}
			peers := ci.clusterPeers(r)
			for w := range match {
				match[w] = peers[w] & ports[w] & und[w]
			}
			switch r.Action {
			case ActionAccept:
				acc.or(match)
			case ActionDeny:
				deny.or(match)
			}
			und.andNot(match)
		}
	}
	if !selected {
		return nil, nil
	}
	return acc, deny
}

// clusterPeers is the set of classes a cluster-wide rule's peers match.
func (ci *classIndex) clusterPeers(r *ClusterRule) bitset {
	if len(r.Peers) == 1 {
		return ci.clusterPeerSet(&r.Peers[0])
	}
	s := newBitset(ci.n)
	for i := range r.Peers {
		s.or(ci.clusterPeerSet(&r.Peers[i]))
	}
	return s
}

// clusterPeerSet is the set of classes one peer of a cluster-wide rule
// matches, cached by the peer's canonical form.
func (ci *classIndex) clusterPeerSet(pe *ClusterPeer) bitset {
	var k string
	switch {
	case pe.All:
		return ci.all
	case len(pe.DomainNames) > 0:
		k = "cp|domains" // no address is a domain name
	case pe.Nodes != nil:
		k = "cp|nodes:" + pe.Nodes.String()
	case len(pe.Networks) > 0:
		k = "cp|net:" + pe.String()
	case pe.Pods != nil:
		k = "cp|ns:" + pe.Namespaces.String() + "|pod:" + pe.Pods.String()
	default:
		k = "cp|ns:" + pe.Namespaces.String()
	}
	if s, ok := ci.peerSets[k]; ok {
		return s
	}
	s := newBitset(ci.n)
	switch {
	case len(pe.DomainNames) > 0:
	case len(pe.Networks) > 0:
		for _, n := range pe.Networks {
			bi := ci.blockIdx[(&IPBlock{CIDR: n}).String()]
			for c := range ci.classes {
				if ci.member[c].has(bi) {
					s.set(c)
				}
			}
		}
	default:
		// Selectors: namespaces and pods read labels, nodes the node of a
		// hostNetwork pod, all of which a class's members share.
		for c, cl := range ci.classes {
			if pe.MatchesEndpoint(ci.m, cl.Rep()) {
				s.set(c)
			}
		}
	}
	ci.peerSets[k] = s
	return s
}

// bitset is a fixed-size set of small integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int)      { b[i/64] |= 1 << (uint(i) % 64) }
func (b bitset) clear(i int)    { b[i/64] &^= 1 << (uint(i) % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(uint(i)%64)) != 0 }
func (b bitset) clone() bitset  { return append(bitset(nil), b...) }
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}
func (b bitset) andNot(o bitset) {
	for i := range b {
		b[i] &^= o[i]
	}
}

// orAnd sets b |= x & y.
func (b bitset) orAnd(x, y bitset) {
	for i := range b {
		b[i] |= x[i] & y[i]
	}
}
func (b bitset) and(o bitset) bitset {
	out := make(bitset, len(b))
	for i := range b {
		out[i] = b[i] & o[i]
	}
	return out
}
func (b bitset) equal(o bitset) bool {
	for i := range b {
		if b[i] != o[i] {
			return false
		}
	}
	return true
}
func (b bitset) empty() bool {
	for _, w := range b {
		if w != 0 {
			return false
		}
	}
	return true
}
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// each yields the members in increasing order.
func (b bitset) each() func(func(int) bool) {
	return func(yield func(int) bool) {
		for i, w := range b {
			for w != 0 {
				t := bits.TrailingZeros64(w)
				if !yield(i*64 + t) {
					return
				}
				w &= w - 1
			}
		}
	}
}

func (b bitset) key() string {
	var sb strings.Builder
	for _, w := range b {
		sb.WriteString(strconv.FormatUint(w, 36))
		sb.WriteString(".")
	}
	return sb.String()
}
