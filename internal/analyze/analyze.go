// Package analyze is the analysis behind `rampart analyze`: for a whole
// policy.Model at once it says which workloads are isolated, who reaches
// whom, what is wrong with the segmentation (findings, each with a concrete
// fix), and, for one compromised workload, everything an attacker could
// reach from it. Renderers write the Report as text, JSON or Graphviz DOT.
//
// It works on the model's equivalence classes, never on pairs of endpoints,
// so that its cost grows with distinct workloads rather than pods:
//
//  1. probes: the ports asked about (the user's, or every port the
//     containers declare);
//  2. one policy.Matrix per probe, kept only as the rows this package needs
//     (probeRows), and folded into reach, the "reaches" relation between
//     classes;
//  3. summaries, findings and the blast radius are read off reach and the
//     rows; endpoints appear only when the report lists them.
//
// "A reaches B" (A and B different endpoints) means: some probe is allowed
// from A's class to B's class by the matrix, and B would answer on it: B's
// containers declare that port and protocol, or declare no ports at all (so
// nothing is known), or the probes were given explicitly by the user.
//
// Nothing here does I/O except writing a Report to an io.Writer.
package analyze

import (
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/rampartnet/rampart/internal/policy"
	corev1 "k8s.io/api/core/v1"
)

// Options are the questions of one analysis.
type Options struct {
	// Probes are the ports to ask about. When empty, every distinct
	// port/protocol that some endpoint's containers declare is asked, or
	// 80/TCP when none declares any.
	Probes []policy.Probe
	// Compromised is the "namespace/name" of an endpoint whose blast radius
	// to compute, or "".
	Compromised string
}

// Report is the result of Analyze. Its exported fields are its JSON form;
// field names are stable.
type Report struct {
	Summary   Summary    `json:"summary"`
	Workloads []Workload `json:"workloads"`
	// Findings are sorted by severity (high first), kind, subject.
	Findings []Finding `json:"findings"`
	// Classes is the reachability summary, one entry per class.
	Classes     []ClassReach `json:"classes"`
	BlastRadius *BlastRadius `json:"blastRadius,omitempty"`

	a *analysis // for the DOT renderer, which needs the pairs
}

// Summary counts what was analyzed.
type Summary struct {
	Endpoints  int `json:"endpoints"`
	Namespaces int `json:"namespaces"`
	Policies   int `json:"policies"`
	// ClusterPolicies counts the cluster-wide policies of both tiers.
	ClusterPolicies int `json:"clusterPolicies"`
	Classes         int `json:"classes"`
	// Probes are the ports asked about, as "80/TCP".
	Probes []string `json:"probes"`
	// ProbesGiven is true when the user chose the probes; then a
	// destination counts as reached on a probe even if it does not declare
	// that port.
	ProbesGiven bool          `json:"probesGiven"`
	Findings    FindingCounts `json:"findings"`
}

// FindingCounts counts findings by severity.
type FindingCounts struct {
	High   int `json:"high"`
	Medium int `json:"medium"`
	Low    int `json:"low"`
	Info   int `json:"info"`
}

// Workload is one endpoint and its isolation.
type Workload struct {
	Ref       string `json:"ref"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	// Class is the ID of the endpoint's class in Classes.
	Class       int  `json:"class"`
	HostNetwork bool `json:"hostNetwork"`
	// IngressIsolated: some policy selects the endpoint and isolates its
	// ingress (IngressPolicies lists them). A hostNetwork endpoint is never
	// isolated, whatever selects it: NetworkPolicy does not apply to it.
	IngressIsolated bool     `json:"ingressIsolated"`
	IngressPolicies []string `json:"ingressPolicies,omitempty"`
	EgressIsolated  bool     `json:"egressIsolated"`
	EgressPolicies  []string `json:"egressPolicies,omitempty"`
	// IngressClusterPolicies and EgressClusterPolicies are the cluster-wide
	// policies ("ClusterNetworkPolicy name") that select the endpoint and
	// have rules in that direction, in the order they are evaluated (the
	// Admin tier first). They decide before NetworkPolicy (the Admin tier)
	// or for what no NetworkPolicy isolates (the Baseline tier).
	IngressClusterPolicies []string `json:"ingressClusterPolicies,omitempty"`
	EgressClusterPolicies  []string `json:"egressClusterPolicies,omitempty"`
	Pos                    string   `json:"pos,omitempty"` // file:line of the manifest
}

// ClassReach is the reachability of one class: endpoints that every policy
// treats alike. Counts are per member: how many other endpoints one member
// reaches, and how many other endpoints reach one member.
type ClassReach struct {
	ID        int      `json:"id"`
	Namespace string   `json:"namespace"`
	Members   []string `json:"members"`
	Reaches   int      `json:"reaches"`
	ReachedBy int      `json:"reachedBy"`
	// FromNamespaces are the namespaces with a pod that reaches a member
	// (its own included when another pod of it does).
	FromNamespaces []string `json:"fromNamespaces"`
}

// BlastRadius is everything reachable, transitively, from one endpoint.
type BlastRadius struct {
	Compromised string `json:"compromised"`
	// Reachable is sorted by depth, then endpoint.
	Reachable []Reached `json:"reachable"`
}

// Reached is one endpoint of a blast radius. Path is the shortest chain of
// connections that gets there, the lexicographically smallest of them when
// several are shortest; Depth is its length.
type Reached struct {
	Endpoint string `json:"endpoint"`
	Depth    int    `json:"depth"`
	Path     []Hop  `json:"path"`
}

// Hop is one connection of a path, with the probes it is allowed on.
type Hop struct {
	From  string   `json:"from"`
	To    string   `json:"to"`
	Ports []string `json:"ports"`
}

func (h Hop) String() string {
	return fmt.Sprintf("%s -> %s (%s)", h.From, h.To, joinLimit(h.Ports, 4))
}

// Analyze analyzes the model. It fails only for a bad option: an unknown
// compromised endpoint, or a malformed probe.
func Analyze(m *policy.Model, opt Options) (*Report, error) {
	var comp *policy.Endpoint
	if opt.Compromised != "" {
		if comp = m.Endpoint(opt.Compromised); comp == nil {
			return nil, fmt.Errorf("compromised endpoint %q: no pod or workload of that namespace/name in the input "+
				"(want namespace/name of one of the %d endpoints, e.g. %s)", opt.Compromised, len(m.Endpoints), example(m))
		}
	}
	probes, err := chooseProbes(m, opt.Probes)
	if err != nil {
		return nil, err
	}
	a := newAnalysis(m, probes, len(opt.Probes) > 0)
	a.computeReach()

	r := &Report{a: a}
	r.Summary = Summary{
		Endpoints:       len(m.Endpoints),
		Namespaces:      len(m.Namespaces),
		Policies:        len(m.Policies),
		ClusterPolicies: len(m.ClusterPolicies),
		Classes:         a.n,
		ProbesGiven:     a.explicit,
	}
	for _, p := range probes {
		r.Summary.Probes = append(r.Summary.Probes, p.String())
	}
	r.Workloads = a.workloads()
	r.Classes = a.classReach()
	r.Findings = a.findings()
	if comp != nil {
		r.BlastRadius = a.blastRadius(comp)
		r.Findings = append(r.Findings, blastFinding(comp, r.BlastRadius))
	}
	sortFindings(r.Findings)
	for _, f := range r.Findings {
		switch f.Severity {
		case High:
			r.Summary.Findings.High++
		case Medium:
			r.Summary.Findings.Medium++
		case Low:
			r.Summary.Findings.Low++
		default:
			r.Summary.Findings.Info++
		}
	}
	return r, nil
}

func example(m *policy.Model) string {
	if len(m.Endpoints) == 0 {
		return "web/frontend"
	}
	return m.Endpoints[0].Ref()
}

// chooseProbes checks the user's probes, or derives them from the
// containers' declared ports.
func chooseProbes(m *policy.Model, given []policy.Probe) ([]policy.Probe, error) {
	seen := map[policy.Probe]bool{}
	var out []policy.Probe
	if len(given) > 0 {
		for _, p := range given {
			switch p.Protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				return nil, fmt.Errorf("probe %s: protocol must be TCP, UDP or SCTP", p)
			}
			if p.Name == "" && (p.Port < 1 || p.Port > 65535) {
				return nil, fmt.Errorf("probe %s: port must be 1-65535 or a port name", p)
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
		return out, nil
	}
	for _, e := range m.Endpoints {
		for _, cp := range e.Ports {
			p := policy.Probe{Port: cp.Port, Protocol: cp.Protocol}
			if cp.Port < 1 || cp.Port > 65535 || seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return []policy.Probe{{Port: 80, Protocol: corev1.ProtocolTCP}}, nil
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out, nil
}

// analysis is the state shared by the steps of one Analyze.
type analysis struct {
	m        *policy.Model
	classes  []*policy.Class
	n        int
	probes   []policy.Probe
	explicit bool

	// rows[p] is what the matrix of probe p allows, restricted to the
	// destinations that take p.
	rows []*probeRows
	// reach[s] is the set of classes that a member of s reaches (another
	// pod: s itself is in it only when s has two members or more).
	reach []bitset

	nsNames   []string // namespaces that have endpoints, sorted
	nsIndex   map[string]int
	nsOf      []int   // class → index in nsNames
	nsClasses [][]int // namespace index → its classes

	isoIngress, isoEgress [][]string // class → NetworkPolicies isolating it
	// cpIngress, cpEgress: class → cluster-wide policies selecting it with
	// rules in that direction.
	cpIngress, cpEgress [][]string
	nsReach             []bitset // namespace → classes some pod of it reaches
	dns                 []*policy.Endpoint
}

// probeRows keeps, for one probe, the allowed pairs whose destination takes
// the probe, as bit rows over a compressed column space: their total size is
// classes × (destinations that declare the port), not classes² × probes.
type probeRows struct {
	probe policy.Probe
	col   []int32 // class → column, -1 when the class does not take the probe
	dst   []int32 // column → class
	w     int     // words per row
	bits  []uint64
}

func (r *probeRows) row(s int) bitset { return bitset(r.bits[s*r.w : (s+1)*r.w]) }

// allows reports whether a member of s reaches a (different) member of d
// on the probe.
func (r *probeRows) allows(s, d int) bool {
	c := r.col[d]
	return c >= 0 && r.row(s).has(int(c))
}

func newAnalysis(m *policy.Model, probes []policy.Probe, explicit bool) *analysis {
	a := &analysis{m: m, classes: m.Classes(), probes: probes, explicit: explicit, nsIndex: map[string]int{}}
	a.n = len(a.classes)
	for _, c := range a.classes {
		if _, ok := a.nsIndex[c.Namespace]; !ok {
			a.nsIndex[c.Namespace] = -1
			a.nsNames = append(a.nsNames, c.Namespace)
		}
	}
	sort.Strings(a.nsNames)
	for i, ns := range a.nsNames {
		a.nsIndex[ns] = i
	}
	a.nsOf = make([]int, a.n)
	a.nsClasses = make([][]int, len(a.nsNames))
	for i, c := range a.classes {
		a.nsOf[i] = a.nsIndex[c.Namespace]
		a.nsClasses[a.nsOf[i]] = append(a.nsClasses[a.nsOf[i]], i)
	}
	a.isoIngress = make([][]string, a.n)
	a.isoEgress = make([][]string, a.n)
	a.cpIngress = make([][]string, a.n)
	a.cpEgress = make([][]string, a.n)
	for i, c := range a.classes {
		rep := c.Rep()
		if rep.HostNetwork {
			continue // no policy isolates the host network
		}
		for _, p := range m.ClusterPoliciesOf(rep, policy.Ingress) {
			a.cpIngress[i] = append(a.cpIngress[i], p.Ref())
		}
		for _, p := range m.ClusterPoliciesOf(rep, policy.Egress) {
			a.cpEgress[i] = append(a.cpEgress[i], p.Ref())
		}
		for _, p := range m.PoliciesIn(c.Namespace) {
			if !p.Selects(rep) {
				continue
			}
			if p.Isolates(policy.Ingress) {
				a.isoIngress[i] = append(a.isoIngress[i], p.Ref())
			}
			if p.Isolates(policy.Egress) {
				a.isoEgress[i] = append(a.isoEgress[i], p.Ref())
			}
		}
	}
	return a
}

// takes reports whether class d answers on probe p (see the package
// comment).
func (a *analysis) takes(d int, p policy.Probe) bool {
	if a.explicit {
		return true
	}
	ports := a.classes[d].Rep().Ports
	if len(ports) == 0 {
		return true
	}
	for _, cp := range ports {
		if cp.Port == p.Port && cp.Protocol == p.Protocol {
			return true
		}
	}
	return false
}

// computeReach computes one matrix per probe and folds it into rows and
// reach. The matrices are computed one after the other (policy serializes
// them) while the rows of the previous one are filled on the other cores.
func (a *analysis) computeReach() {
	a.reach = make([]bitset, a.n)
	wn := words(a.n)
	reachWords := make([]uint64, a.n*wn) // one allocation for all rows
	for s := range a.reach {
		a.reach[s] = bitset(reachWords[s*wn : (s+1)*wn])
	}
	a.rows = make([]*probeRows, len(a.probes))
	for i, p := range a.probes {
		r := &probeRows{probe: p, col: make([]int32, a.n)}
		for d := 0; d < a.n; d++ {
			r.col[d] = -1
			if a.takes(d, p) {
				r.col[d] = int32(len(r.dst))
				r.dst = append(r.dst, int32(d))
			}
		}
		r.w = words(len(r.dst))
		r.bits = make([]uint64, a.n*r.w)
		a.rows[i] = r
	}

	matrices := make(chan *policy.Matrix, 1)
	go func() {
		defer close(matrices)
		for i, p := range a.probes {
			if len(a.rows[i].dst) == 0 {
				matrices <- nil
				continue
			}
			matrices <- a.m.Matrix(p)
		}
	}()
	workers := runtime.GOMAXPROCS(0)
	i := 0
	for mx := range matrices {
		if mx != nil {
			a.fill(a.rows[i], mx, workers)
		}
		i++
	}
	// A class of one member has no "other pod of the same class".
	for s, c := range a.classes {
		if len(c.Members) > 1 {
			continue
		}
		a.reach[s].clear(s)
		for _, r := range a.rows {
			if col := r.col[s]; col >= 0 {
				r.row(s).clear(int(col))
			}
		}
	}
}

// fill copies what mx allows into r's rows and into reach. Each worker
// owns a range of rows, and fills run one after the other, so no lock.
func (a *analysis) fill(r *probeRows, mx *policy.Matrix, workers int) {
	parallel(a.n, workers, func(lo, hi int) {
		for s := lo; s < hi; s++ {
			// Build each word in a register, 64 columns at a time: no
			// store in the inner loop, no branch on the outcome.
			row := r.row(s)
			for base := 0; base < len(r.dst); base += 64 {
				var w uint64
				for i, d := range r.dst[base:min(base+64, len(r.dst))] {
					var bit uint64
					if mx.ClassAllowed(s, int(d)) {
						bit = 1
					}
					w |= bit << uint(i)
				}
				row[base>>6] = w
			}
			rs := a.reach[s]
			for c := range row.each {
				rs.set(int(r.dst[c]))
			}
		}
	})
}

// parallel runs f over [0, n) split into contiguous chunks, one per worker.
func parallel(n, workers int, f func(lo, hi int)) {
	if workers < 2 || n < 256 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// pairProbes returns the probes on which a member of s reaches a
// (different) member of d.
func (a *analysis) pairProbes(s, d int) []string {
	var out []string
	for _, r := range a.rows {
		if r.allows(s, d) {
			out = append(out, r.probe.String())
		}
	}
	return out
}

// others is how many endpoints of class d a member of class s can be
// connected to: all of them, or all but itself when s is d.
func (a *analysis) others(s, d int) int {
	n := len(a.classes[d].Members)
	if s == d {
		n--
	}
	return n
}

func (a *analysis) workloads() []Workload {
	out := make([]Workload, 0, len(a.m.Endpoints))
	for _, e := range a.m.Endpoints {
		c := a.m.ClassOf(e).ID
		w := Workload{
			Ref: e.Ref(), Namespace: e.Namespace, Name: e.Name, Kind: e.Kind, Class: c,
			HostNetwork:     e.HostNetwork,
			IngressIsolated: len(a.isoIngress[c]) > 0, IngressPolicies: a.isoIngress[c],
			EgressIsolated: len(a.isoEgress[c]) > 0, EgressPolicies: a.isoEgress[c],
			IngressClusterPolicies: a.cpIngress[c], EgressClusterPolicies: a.cpEgress[c],
		}
		w.Pos = endpointPos(e)
		out = append(out, w)
	}
	return out
}

// nsReachSets returns, per namespace, the classes that some pod of it
// reaches.
func (a *analysis) nsReachSets() []bitset {
	if a.nsReach != nil {
		return a.nsReach
	}
	out := make([]bitset, len(a.nsNames))
	for ni, cs := range a.nsClasses {
		b := newBitset(a.n)
		for _, s := range cs {
			b.or(a.reach[s])
		}
		out[ni] = b
	}
	a.nsReach = out
	return out
}

func (a *analysis) classReach() []ClassReach {
	out := make([]ClassReach, a.n)
	reachedBy := make([]int, a.n)
	for s := range a.n {
		for d := range a.reach[s].each {
			out[s].Reaches += a.others(s, d)
			reachedBy[d] += a.others(d, s)
		}
	}
	nsr := a.nsReachSets()
	for d, c := range a.classes {
		cr := &out[d]
		cr.ID, cr.Namespace, cr.ReachedBy = d, c.Namespace, reachedBy[d]
		cr.Members = make([]string, len(c.Members))
		for i, e := range c.Members {
			cr.Members[i] = e.Ref()
		}
		cr.FromNamespaces = []string{}
		for ni, b := range nsr {
			if b.has(d) {
				cr.FromNamespaces = append(cr.FromNamespaces, a.nsNames[ni])
			}
		}
	}
	return out
}

// blastRadius runs a breadth-first search over the "reaches" relation from
// the compromised endpoint. It runs over classes: members of a class have
// the same neighbours, so every member of a class is reached at the class's
// depth, by the same path but for the last hop. Visiting neighbours in
// class order (classes are sorted by their first member) and taking each
// class's first member as its hop makes the first path found to each class
// the lexicographically smallest among the shortest.
//
// The other members of the compromised endpoint's own class are the one
// exception: they are never visited as a class (the search starts there),
// so they are reached by the first class found to reach the compromised
// class.
func (a *analysis) blastRadius(comp *policy.Endpoint) *BlastRadius {
	c0 := a.m.ClassOf(comp).ID
	depth := make([]int, a.n)
	parent := make([]int, a.n)
	for i := range depth {
		depth[i] = -1
	}
	depth[c0] = 0
	queue := []int{c0}
	selfDepth, selfParent := -1, -1
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for v := range a.reach[u].each {
			if v == c0 {
				if selfDepth < 0 {
					selfDepth, selfParent = depth[u]+1, u
				}
				continue
			}
			if depth[v] < 0 {
				depth[v], parent[v] = depth[u]+1, u
				queue = append(queue, v)
			}
		}
	}
	hopFrom := func(u int) string {
		if u == c0 {
			return comp.Ref()
		}
		return a.classes[u].Members[0].Ref()
	}
	// prefix[u] is the path to u's first member, for u visited.
	prefix := map[int][]Hop{c0: nil}
	var pathTo func(u int) []Hop
	pathTo = func(u int) []Hop {
		if p, ok := prefix[u]; ok {
			return p
		}
		pu := parent[u]
		head := pathTo(pu)
		p := make([]Hop, len(head), len(head)+1)
		copy(p, head)
		p = append(p, Hop{From: hopFrom(pu), To: hopFrom(u), Ports: a.pairProbes(pu, u)})
		prefix[u] = p
		return p
	}
	br := &BlastRadius{Compromised: comp.Ref(), Reachable: []Reached{}}
	add := func(e *policy.Endpoint, u, pu, d int) {
		head := pathTo(pu)
		p := make([]Hop, len(head), len(head)+1)
		copy(p, head)
		p = append(p, Hop{From: hopFrom(pu), To: e.Ref(), Ports: a.pairProbes(pu, u)})
		br.Reachable = append(br.Reachable, Reached{Endpoint: e.Ref(), Depth: d, Path: p})
	}
	for u := range a.n {
		if u == c0 || depth[u] < 0 {
			continue
		}
		for _, e := range a.classes[u].Members {
			add(e, u, parent[u], depth[u])
		}
	}
	if selfDepth > 0 {
		for _, e := range a.classes[c0].Members {
			if e != comp {
				add(e, c0, selfParent, selfDepth)
			}
		}
	}
	sort.Slice(br.Reachable, func(i, j int) bool {
		x, y := br.Reachable[i], br.Reachable[j]
		if x.Depth != y.Depth {
			return x.Depth < y.Depth
		}
		return x.Endpoint < y.Endpoint
	})
	return br
}
