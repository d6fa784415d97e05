package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// A connection is allowed when both ends agree: the source's egress and
// the destination's ingress. Each direction is decided by a chain of
// evaluators, in order; each answers Accept, Deny or Next, and the first
// that does not say Next decides. Later tiers (L7 authorization) are new
// evaluators in the chain: callers of Verdict do not change.
//
//	loopback       a pod always reaches itself
//	node           traffic between a pod and its own node is always allowed
//	host-network   hostNetwork pods are not isolated by any policy
//	external       a side outside the cluster has no policy of ours
//	admin          the Admin tier of cluster-wide policy (cluster.go): the
//	               first matching rule by priority Accepts, Denies, or
//	               Passes to the tiers below
//	network-policy NetworkPolicy: isolated pods accept only what a rule allows
//	baseline       the Baseline tier, for pods no NetworkPolicy isolates
//	default        everything else is allowed

// Action is an evaluator's answer for one direction of one flow.
type Action int

const (
	// Next passes the decision to the next evaluator.
	Next Action = iota
	// Accept allows this direction.
	Accept
	// Deny drops the flow.
	Deny
)

func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Deny:
		return "deny"
	default:
		return "next"
	}
}

// Party is one end of a connection: an endpoint of the model, or an
// address. An address that belongs to a pod is resolved to that pod by
// Model.Party; one that belongs to a node keeps its address and names the node.
type Party struct {
	Endpoint *Endpoint
	Addr     netip.Addr
	Node     *Node // set when Addr is a node's address
}

func (p Party) String() string {
	switch {
	case p.Endpoint != nil:
		return p.Endpoint.Ref()
	case p.Node != nil:
		return fmt.Sprintf("%s (node %s)", p.Addr, p.Node.Name)
	default:
		return p.Addr.String()
	}
}

// Query asks whether From may open a connection to To on one port.
type Query struct {
	From, To Party
	// Port is the destination port; PortName a named port of the
	// destination pod, resolved against its container ports.
	Port     int32
	PortName string
	Protocol corev1.Protocol
	// HTTP is the optional L7 part of the query. NetworkPolicy does not
	// look at it; L7 authorization evaluators will.
	HTTP *HTTPRequest
}

// HTTPRequest is the L7 part of a query.
type HTTPRequest struct {
	Method string
	Path   string
}

// Result is the answer to a Query.
type Result struct {
	Allowed bool `json:"allowed"`
	// Port is the destination port number the query resolved to (a named
	// port becomes a number here; 0 when it did not resolve).
	Port int32 `json:"port"`
	// Egress is the decision at the source, Ingress at the destination.
	Egress  Decision `json:"egress"`
	Ingress Decision `json:"ingress"`
}

// Decision is the outcome of one direction and what decided it.
type Decision struct {
	Allowed bool `json:"allowed"`
	// By names the evaluator that decided.
	By string `json:"by"`
	// IsolatedBy lists the policies that select the pod in this direction.
	IsolatedBy []string `json:"isolatedBy,omitempty"`
	// Rules are the NetworkPolicy rules that allowed the connection.
	Rules []RuleRef `json:"rules,omitempty"`
	// ClusterRule is the rule of a cluster-wide policy that decided, when
	// the admin or baseline tier did.
	ClusterRule *ClusterRuleRef `json:"clusterRule,omitempty"`
	// PassedBy is the Admin tier rule whose Pass handed the decision to
	// the tiers below it.
	PassedBy *ClusterRuleRef `json:"passedBy,omitempty"`
	// Notes say what the engine could not decide on the way, such as
	// rules with domain names.
	Notes []string `json:"notes,omitempty"`
	// Reason says it in words.
	Reason string `json:"reason"`
}

// RuleRef points at the part of a policy that allowed a connection.
// Numbers are 1-based, as a person counts; Path is the 0-based field path.
type RuleRef struct {
	Policy    string    `json:"policy"`
	Direction Direction `json:"direction"`
	Rule      int       `json:"rule"`
	// Peer is 0 when the rule allows every peer; Port is 0 when it allows
	// every port.
	Peer int    `json:"peer"`
	Port int    `json:"port"`
	Path string `json:"path"`
	Pos  string `json:"pos,omitempty"` // file:line of the rule
}

func (r RuleRef) String() string {
	s := fmt.Sprintf("policy %s %s rule %d", r.Policy, r.Direction, r.Rule)
	if r.Peer > 0 {
		s += fmt.Sprintf(" peer %d", r.Peer)
	} else {
		s += " (any peer)"
	}
	if r.Port > 0 {
		s += fmt.Sprintf(" port %d", r.Port)
	}
	return s
}

// flow is a query with its port resolved, as evaluators see it.
type flow struct {
	src, dst Party
	port     int32 // 0: a named port that the destination does not have
	proto    corev1.Protocol
	q        *Query
}

// Evaluator decides one direction of a flow, or passes.
type Evaluator interface {
	Name() string
	// Evaluate decides direction d of f. For Egress the subject is the
	// source and the peer the destination; for Ingress the other way round.
	Evaluate(m *Model, f *flow, d Direction) Decision
	// classes is the same decision for every peer class at once (classes.go).
	classes(ci *classIndex, subject int, d Direction, pr Probe) (accept, deny bitset)
}

// chain is the order of evaluators; see the top of this file.
var chain = []Evaluator{loopback{}, nodeLocal{}, hostNetwork{}, external{},
	clusterTier{AdminTier}, networkPolicy{}, clusterTier{BaselineTier}, defaultAllow{}}

// Verdict decides a query.
func (m *Model) Verdict(q Query) Result {
	f := &flow{src: q.From, dst: q.To, port: q.Port, proto: q.Protocol, q: &q}
	if f.proto == "" {
		f.proto = corev1.ProtocolTCP
	}
	var unresolved string
	if q.PortName != "" {
		f.port = 0
		if q.To.Endpoint != nil {
			if n, ok := q.To.Endpoint.resolvePort(q.PortName, f.proto); ok {
				f.port = n
			}
		}
		if f.port == 0 {
			unresolved = fmt.Sprintf("%s has no %s port named %q", q.To, f.proto, q.PortName)
		}
	}
	r := Result{Port: f.port}
	r.Egress = m.decide(f, Egress)
	r.Ingress = m.decide(f, Ingress)
	r.Allowed = r.Egress.Allowed && r.Ingress.Allowed
	if unresolved != "" && q.From.Endpoint != q.To.Endpoint {
		// Nothing listens on a port that does not exist; say so rather
		// than blame a policy.
		r.Allowed = false
		r.Ingress = Decision{By: "port", Reason: unresolved}
	}
	return r
}

func (m *Model) decide(f *flow, d Direction) Decision {
	// What an evaluator that passes says on the way (a Pass, notes) goes
	// into the decision of the one that decides.
	var passed *ClusterRuleRef
	var notes []string
	for _, e := range chain {
		dec := e.Evaluate(m, f, d)
		notes = append(notes, dec.Notes...)
		if dec.PassedBy != nil {
			passed = dec.PassedBy
		}
		if dec.By != "" {
			dec.PassedBy, dec.Notes = passed, notes
			return dec
		}
	}
	panic("policy: evaluator chain ended without a decision") // defaultAllow always decides
}

// subject and peer of a direction.
func sides(f *flow, d Direction) (subject, peer Party) {
	if d == Egress {
		return f.src, f.dst
	}
	return f.dst, f.src
}

type loopback struct{}

func (loopback) Name() string { return "loopback" }
func (loopback) Evaluate(_ *Model, f *flow, _ Direction) Decision {
	if f.src.Endpoint != nil && f.src.Endpoint == f.dst.Endpoint {
		return Decision{Allowed: true, By: "loopback", Reason: "a pod can always reach itself"}
	}
	return Decision{}
}

type nodeLocal struct{}

func (nodeLocal) Name() string { return "node" }
func (nodeLocal) Evaluate(m *Model, f *flow, d Direction) Decision {
	subject, peer := sides(f, d)
	if subject.Endpoint == nil || subject.Endpoint.Node == "" {
		return Decision{}
	}
	if onNode(m, peer, subject.Endpoint.Node) {
		return Decision{Allowed: true, By: "node",
			Reason: fmt.Sprintf("traffic between a pod and its own node (%s) is always allowed", subject.Endpoint.Node)}
	}
	return Decision{}
}

// onNode reports whether the party is node (or a hostNetwork pod on it,
// which sends with the node's address).
func onNode(m *Model, p Party, node string) bool {
	if p.Node != nil {
		return p.Node.Name == node
	}
	if p.Endpoint != nil {
		return p.Endpoint.HostNetwork && p.Endpoint.Node == node
	}
	return false
}

type hostNetwork struct{}

func (hostNetwork) Name() string { return "host-network" }
func (hostNetwork) Evaluate(_ *Model, f *flow, d Direction) Decision {
	subject, _ := sides(f, d)
	if subject.Endpoint != nil && subject.Endpoint.HostNetwork {
		return Decision{Allowed: true, By: "host-network",
			Reason: subject.Endpoint.Ref() + " uses the host network, which no policy isolates (NetworkPolicy and cluster-wide policy alike)"}
	}
	return Decision{}
}

type external struct{}

func (external) Name() string { return "external" }
func (external) Evaluate(_ *Model, f *flow, d Direction) Decision {
	subject, _ := sides(f, d)
	if subject.Endpoint == nil {
		return Decision{Allowed: true, By: "external",
			Reason: subject.String() + " is not a pod of the cluster: no policy applies on its side"}
	}
	return Decision{}
}

type networkPolicy struct{}

func (networkPolicy) Name() string { return "network-policy" }
func (networkPolicy) Evaluate(m *Model, f *flow, d Direction) Decision {
	subject, peer := sides(f, d)
	e := subject.Endpoint
	dst := f.dst.Endpoint
	var isolatedBy []string
	var rules []RuleRef
	for _, p := range m.policiesIn[e.Namespace] {
		if !p.Isolates(d) || !p.Selector.Matches(e.Labels) {
			continue
		}
		isolatedBy = append(isolatedBy, p.Ref())
		for _, r := range p.Rules(d) {
			peerIdx, ok := r.matchPeer(p.Namespace, peer)
			if !ok {
				continue
			}
			portIdx, ok := r.matchPort(dst, f.port, f.proto)
			if !ok {
				continue
			}
			rules = append(rules, ruleRef(p, d, r.Index, peerIdx, portIdx))
		}
	}
	if len(isolatedBy) == 0 {
		return Decision{}
	}
	dec := Decision{By: "network-policy", IsolatedBy: isolatedBy, Rules: rules, Allowed: len(rules) > 0}
	what := fmt.Sprintf("%s to %s on %d/%s", d, peer, f.port, f.proto)
	if d == Ingress {
		what = fmt.Sprintf("ingress from %s on %d/%s", peer, f.port, f.proto)
	}
	if dec.Allowed {
		parts := make([]string, len(rules))
		for i, r := range rules {
			parts[i] = r.String()
		}
		dec.Reason = fmt.Sprintf("%s: allowed by %s", what, strings.Join(parts, "; "))
	} else {
		dec.Reason = fmt.Sprintf("%s: isolated by %s; no rule matched", what, joinAnd(isolatedBy))
	}
	return dec
}

func ruleRef(p *Policy, d Direction, rule, peer, port int) RuleRef {
	field := "from"
	if d == Egress {
		field = "to"
	}
	path := fmt.Sprintf("spec.%s[%d]", d, rule)
	r := RuleRef{Policy: p.Ref(), Direction: d, Rule: rule + 1, Path: path}
	if peer >= 0 {
		r.Peer = peer + 1
		r.Path += fmt.Sprintf(".%s[%d]", field, peer)
	}
	if port >= 0 {
		r.Port = port + 1
	}
	if p.origin != nil {
		r.Pos = p.origin.Pos(r.Path)
	}
	return r
}

// matchPeer returns the index of the first peer of r that matches party,
// -1 when the rule allows every peer.
func (r *Rule) matchPeer(policyNS string, party Party) (int, bool) {
	if r.AllPeers {
		return -1, true
	}
	for i := range r.Peers {
		pe := &r.Peers[i]
		if party.Endpoint != nil {
			if pe.MatchesEndpoint(policyNS, party.Endpoint) {
				return i, true
			}
		} else if pe.MatchesAddr(party.Addr) {
			return i, true
		}
	}
	return 0, false
}

// matchPort returns the index of the first port entry of r that covers the
// port, -1 when the rule allows every port.
func (r *Rule) matchPort(dst *Endpoint, port int32, proto corev1.Protocol) (int, bool) {
	return matchPorts(r.AllPorts, r.Ports, dst, port, proto)
}

// matchPorts returns the index of the first of ports that covers the port,
// -1 when all is set.
func matchPorts(all bool, ports []Port, dst *Endpoint, port int32, proto corev1.Protocol) (int, bool) {
	if all {
		return -1, true
	}
	for i := range ports {
		if ports[i].Matches(dst, port, proto) {
			return i, true
		}
	}
	return 0, false
}

type defaultAllow struct{}

func (defaultAllow) Name() string { return "default" }
func (defaultAllow) Evaluate(m *Model, f *flow, d Direction) Decision {
	subject, _ := sides(f, d)
	reason := fmt.Sprintf("no policy isolates %s for %s", subject, d)
	if subject.Endpoint != nil {
		if cps := m.ClusterPoliciesOf(subject.Endpoint, d); len(cps) > 0 {
			refs := make([]string, len(cps))
			for i, p := range cps {
				refs[i] = p.Ref()
			}
			reason = fmt.Sprintf("no NetworkPolicy isolates %s for %s, and no rule of %s decided", subject, d, joinAnd(refs))
		}
	}
	return Decision{Allowed: true, By: "default", Reason: reason}
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// Party resolves a reference: "namespace/name" names an endpoint; an IP
// address names the pod that has it, the node that has it, or an address
// outside the cluster.
func (m *Model) Party(ref string) (Party, error) {
	if a, err := netip.ParseAddr(ref); err == nil {
		a = a.Unmap()
		if e := m.byAddr[a]; e != nil {
			return Party{Endpoint: e, Addr: a}, nil
		}
		return Party{Addr: a, Node: m.nodeByAddr[a]}, nil
	}
	if e := m.byRef[ref]; e != nil {
		return Party{Endpoint: e}, nil
	}
	if !strings.Contains(ref, "/") {
		return Party{}, fmt.Errorf("%q is neither namespace/name nor an IP address", ref)
	}
	return Party{}, fmt.Errorf("no pod or workload %q in the input", ref)
}

// Probe is a port and protocol to ask about, as in "80/TCP" or "http/TCP".
type Probe struct {
	Port     int32
	Name     string
	Protocol corev1.Protocol
}

func (p Probe) String() string {
	if p.Name != "" {
		return p.Name + "/" + string(p.Protocol)
	}
	return fmt.Sprintf("%d/%s", p.Port, p.Protocol)
}

// ParseProbe reads "80/TCP", "80" (TCP), "http/TCP" or "53/udp".
func ParseProbe(s string) (Probe, error) {
	port, proto, _ := strings.Cut(s, "/")
	p := Probe{Protocol: corev1.Protocol(strings.ToUpper(proto))}
	if proto == "" {
		p.Protocol = corev1.ProtocolTCP
	}
	switch p.Protocol {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		return Probe{}, fmt.Errorf("probe %q: protocol must be TCP, UDP or SCTP", s)
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 1 || n > 65535 {
			return Probe{}, fmt.Errorf("probe %q: port must be 1-65535", s)
		}
		p.Port = int32(n)
		return p, nil
	}
	if port == "" {
		return Probe{}, fmt.Errorf("probe %q: want PORT/PROTOCOL, e.g. 80/TCP", s)
	}
	p.Name = port
	return p, nil
}

// Query builds the query of a probe between two parties.
func (p Probe) Query(from, to Party) Query {
	return Query{From: from, To: to, Port: p.Port, PortName: p.Name, Protocol: p.Protocol}
}
