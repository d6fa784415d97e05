// Package authz decides HTTP requests by Istio's AuthorizationPolicy
// (security.istio.io v1 and v1beta1), as Istio's sidecars and waypoints
// do, for a node proxy that has no sidecar: the caller is known by its
// pod address, which the node trusts because pod traffic between nodes
// arrives only through IKE-authenticated tunnels from the node that owns
// the address, and local pods are anti-spoofed.
//
// The order is Istio's (https://istio.io/latest/docs/concepts/security/#implicit-enablement):
//
//  1. a CUSTOM policy that matches: Rampart has no external authorizer, so
//     the request is denied (fail closed) and lint says so;
//  2. a DENY policy that matches: denied;
//  3. no ALLOW policy applies to the workload: allowed;
//  4. an ALLOW policy that matches: allowed;
//  5. otherwise denied.
//
// AUDIT policies change nothing. A policy applies to the pods its selector
// picks in its namespace (all of them without one), or to the pods behind
// the Services its targetRefs name; in the root namespace (istio-system
// unless configured) a policy without selector applies to every workload.
//
// What the node cannot know (JWT request principals, connection.sni, the
// request.auth.* conditions) is judged fail closed: such a rule never
// matches in an ALLOW policy and always matches in a DENY policy. The
// same goes for a request that is not HTTP (a TCP connection): an ALLOW
// rule with HTTP-only fields (methods, paths, hosts, request headers)
// does not match it; a DENY rule's HTTP-only fields are ignored.
//
// The package is pure: no I/O. Load turns the objects into an Engine and
// diagnostics (file:line and field path); Lint adds what can never match.
package authz

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/rampartnet/rampart/internal/cluster"
)

// Action is what a matching policy does.
type Action int

const (
	Allow Action = iota
	Deny
	Audit
	Custom
)

func (a Action) String() string {
	return [...]string{"ALLOW", "DENY", "AUDIT", "CUSTOM"}[a]
}

// Options are the mesh's settings.
type Options struct {
	// RootNamespace is Istio's root namespace: its policies apply to
	// every workload (default istio-system).
	RootNamespace string
	// TrustDomain is the first part of the principals,
	// <trust domain>/ns/<namespace>/sa/<service account> (default
	// cluster.local).
	TrustDomain string
}

// Defaults of Options.
const (
	DefaultRootNamespace = "istio-system"
	DefaultTrustDomain   = "cluster.local"
)

func (o *Options) defaults() {
	if o.RootNamespace == "" {
		o.RootNamespace = DefaultRootNamespace
	}
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
}

// Workload is a request's destination: a pod, or a workload's pod
// template.
type Workload struct {
	Namespace, Name string
	Labels          map[string]string
	// Services are the names of the Services (of Namespace) that select
	// it, for policies attached by targetRefs.
	Services []string
}

// Caller is the request's source as the node knows it. Pod is false for
// an address that is no pod of the cluster (a node, the outside): it then
// has no namespace and no principal, and only ipBlocks can match it.
type Caller struct {
	IP             netip.Addr
	Pod            bool
	Namespace      string
	ServiceAccount string
}

// Principal is the caller's workload identity in trust domain td
// ("cluster.local/ns/default/sa/api"), "" for a caller that is no pod.
func (c Caller) Principal(td string) string {
	if !c.Pod {
		return ""
	}
	sa := c.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	return td + "/ns/" + c.Namespace + "/sa/" + sa
}

// HTTP is what an HTTP request says of itself.
type HTTP struct {
	Method string
	// Path without the query string.
	Path   string
	Host   string
	Header http.Header
}

// Request is one request (or, with HTTP nil, one TCP connection).
type Request struct {
	From Caller
	To   Workload
	// DestIP and Port are where the caller connected.
	DestIP netip.Addr
	Port   int
	HTTP   *HTTP
}

// Result is a decision and what made it.
type Result struct {
	Allowed bool
	// Policy and Rule are the policy and rule (index into its rules)
	// that decided; Policy is nil when no policy matched (allowed because
	// none applies, or denied because no ALLOW policy matched).
	Policy *Policy
	Rule   int
	// Applied are the policies that apply to the workload, whether they
	// matched or not.
	Applied []*Policy
	Reason  string
}

// Engine decides requests by a set of policies.
type Engine struct {
	opts     Options
	policies []*Policy // by namespace, then name
}

// Policies are the engine's policies, by namespace and name.
func (e *Engine) Policies() []*Policy { return e.policies }

// Options are the engine's settings, defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Applying returns the policies that apply to w.
func (e *Engine) Applying(w Workload) []*Policy {
	var out []*Policy
	for _, p := range e.policies {
		if p.applies(w, e.opts.RootNamespace) {
			out = append(out, p)
		}
	}
	return out
}

// Selects reports whether any policy other than AUDIT applies to w: its
// traffic then needs the L7 proxy.
func (e *Engine) Selects(w Workload) bool {
	for _, p := range e.Applying(w) {
		if p.Action != Audit {
			return true
		}
	}
	return false
}

// Evaluate decides r in Istio's order (package doc).
func (e *Engine) Evaluate(r Request) Result {
	applied := e.Applying(r.To)
	res := Result{Applied: applied, Rule: -1}
	for _, a := range []Action{Custom, Deny} {
		for _, p := range applied {
			if p.Action != a {
				continue
			}
			if i := p.match(r, e.opts); i >= 0 {
				res.Policy, res.Rule = p, i
				if a == Custom {
					res.Reason = fmt.Sprintf("%s rule %d: CUSTOM (external authorizer %q), which Rampart cannot ask: denied", p.Ref(), i, p.Provider)
				} else {
					res.Reason = fmt.Sprintf("%s rule %d: DENY", p.Ref(), i)
				}
				return res
			}
		}
	}
	var allows []string
	for _, p := range applied {
		if p.Action != Allow {
			continue
		}
		allows = append(allows, p.Ref())
		if i := p.match(r, e.opts); i >= 0 {
			res.Allowed, res.Policy, res.Rule = true, p, i
			res.Reason = fmt.Sprintf("%s rule %d: ALLOW", p.Ref(), i)
			return res
		}
	}
	if len(allows) == 0 {
		res.Allowed = true
		res.Reason = "no ALLOW or DENY AuthorizationPolicy applies: allowed"
		return res
	}
	res.Reason = "no rule of the ALLOW policies that apply matches: " + strings.Join(allows, ", ")
	return res
}

// Policy is one AuthorizationPolicy, validated.
type Policy struct {
	Namespace, Name string
	Action          Action
	// Provider names a CUSTOM policy's authorizer.
	Provider string
	// Selector is the selector's matchLabels; HasSelector is false for a
	// policy without selector (all the namespace's workloads; all of the
	// mesh in the root namespace). Services are targetRefs' Services.
	Selector    map[string]string
	HasSelector bool
	Services    []string
	Rules       []Rule
	Origin      *cluster.Origin
}

// Ref is "AuthorizationPolicy namespace/name".
func (p *Policy) Ref() string { return "AuthorizationPolicy " + p.Namespace + "/" + p.Name }

func (p *Policy) applies(w Workload, root string) bool {
	if len(p.Services) > 0 {
		if w.Namespace != p.Namespace {
			return false
		}
		for _, s := range p.Services {
			for _, ws := range w.Services {
				if s == ws {
					return true
				}
			}
		}
		return false
	}
	if p.Namespace != w.Namespace && p.Namespace != root {
		return false
	}
	for k, v := range p.Selector {
		if got, ok := w.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// match returns the index of the first rule that matches r, or -1.
func (p *Policy) match(r Request, o Options) int {
	for i := range p.Rules {
		if p.Rules[i].match(r, o, p.Action == Allow || p.Action == Audit) {
			return i
		}
	}
	return -1
}

// Rule is a rule of a policy: every part given must match.
type Rule struct {
	From []Source
	To   []Operation
	When []Condition
}

// match: strict is true for ALLOW (what cannot be judged does not match),
// false for DENY and CUSTOM (it matches: fail closed).
func (r *Rule) match(req Request, o Options, strict bool) bool {
	if len(r.From) > 0 && !anyOf(r.From, func(s *Source) bool { return s.match(req, o, strict) }) {
		return false
	}
	if len(r.To) > 0 && !anyOf(r.To, func(op *Operation) bool { return op.match(req, strict) }) {
		return false
	}
	for i := range r.When {
		if !r.When[i].match(req, o, strict) {
			return false
		}
	}
	return true
}

func anyOf[T any](list []T, f func(*T) bool) bool {
	for i := range list {
		if f(&list[i]) {
			return true
		}
	}
	return false
}

// Source is who sends: every field given must match.
type Source struct {
	Principals, NotPrincipals           []string
	Namespaces, NotNamespaces           []string
	ServiceAccounts, NotServiceAccounts []string // "namespace/name"
	IPBlocks, NotIPBlocks               []netip.Prefix
	// RequestPrincipals: JWT identities, which the node cannot know.
	RequestPrincipals bool
}

func (s *Source) match(req Request, o Options, strict bool) bool {
	c := req.From
	if s.RequestPrincipals {
		return !strict
	}
	principal := c.Principal(o.TrustDomain)
	sa := ""
	if c.Pod {
		sa = c.Namespace + "/" + c.ServiceAccount
		if c.ServiceAccount == "" {
			sa = c.Namespace + "/default"
		}
	}
	return field(s.Principals, s.NotPrincipals, principal, c.Pod, matchString) &&
		field(s.Namespaces, s.NotNamespaces, c.Namespace, c.Pod, matchString) &&
		field(s.ServiceAccounts, s.NotServiceAccounts, sa, c.Pod, func(p, v string) bool { return p == v }) &&
		prefixes(s.IPBlocks, s.NotIPBlocks, c.IP)
}

// field matches a value against a field's values and not-values. A
// caller that has no such value (known false: not a pod) matches no
// value, and every not-value list.
func field(values, notValues []string, v string, known bool, m func(pattern, v string) bool) bool {
	if len(values) > 0 && (!known || !anyString(values, v, m)) {
		return false
	}
	return !(known && anyString(notValues, v, m))
}

func anyString(patterns []string, v string, m func(pattern, v string) bool) bool {
	for _, p := range patterns {
		if m(p, v) {
			return true
		}
	}
	return false
}

func prefixes(in, notIn []netip.Prefix, a netip.Addr) bool {
	contains := func(list []netip.Prefix) bool {
		for _, p := range list {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if len(in) > 0 && !contains(in) {
		return false
	}
	return !contains(notIn)
}

// matchString is Istio's string match: "*" is any non-empty value,
// "abc*" a prefix, "*abc" a suffix, anything else exact.
func matchString(pattern, v string) bool {
	switch {
	case pattern == "*":
		return v != ""
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(v, pattern[1:])
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, pattern[:len(pattern)-1])
	}
	return pattern == v
}

func matchFold(pattern, v string) bool {
	return matchString(strings.ToLower(pattern), strings.ToLower(v))
}

// Operation is what the request does: every field given must match.
type Operation struct {
	Hosts, NotHosts     []string
	Ports, NotPorts     []int
	Methods, NotMethods []string
	Paths, NotPaths     []string
}

// httpOnly reports whether the operation has fields that only an HTTP
// request has.
func (op *Operation) httpOnly() bool {
	return len(op.Hosts)+len(op.NotHosts)+len(op.Methods)+len(op.NotMethods)+len(op.Paths)+len(op.NotPaths) > 0
}

func (op *Operation) match(req Request, strict bool) bool {
	if len(op.Ports) > 0 && !containsInt(op.Ports, req.Port) || containsInt(op.NotPorts, req.Port) {
		return false
	}
	h := req.HTTP
	if h == nil {
		// A TCP connection: HTTP-only fields never match it in an
		// ALLOW rule, and are ignored in a DENY rule.
		return !(strict && op.httpOnly())
	}
	// Istio matches the Host header with and without its port: a value
	// matches when either form does, and a not-value excludes either.
	hosts := []string{h.Host}
	if hp, err := netip.ParseAddrPort(h.Host); err == nil {
		hosts = append(hosts, hp.Addr().String())
	} else if i := strings.LastIndexByte(h.Host, ':'); i > 0 && !strings.Contains(h.Host, "]") {
		hosts = append(hosts, h.Host[:i])
	}
	anyHost := func(patterns []string) bool {
		for _, host := range hosts {
			if anyString(patterns, host, matchFold) {
				return true
			}
		}
		return false
	}
	if len(op.Hosts) > 0 && !anyHost(op.Hosts) || anyHost(op.NotHosts) {
		return false
	}
	return field(op.Methods, op.NotMethods, h.Method, true, matchString) &&
		field(op.Paths, op.NotPaths, h.Path, true, matchString)
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Condition is a when condition on one attribute.
type Condition struct {
	Key string
	// Header is the header name of request.headers[NAME].
	Header            string
	Values, NotValues []string
	// Prefixes are Values and NotValues parsed, for the address keys.
	prefixes, notPrefixes []netip.Prefix
	// Unknown: a key the node cannot judge (request.auth.*,
	// connection.sni, experimental.*).
	Unknown bool
}

func (c *Condition) match(req Request, o Options, strict bool) bool {
	if c.Unknown {
		return !strict
	}
	switch c.Key {
	case "source.ip", "remote.ip":
		return prefixes(c.prefixes, c.notPrefixes, req.From.IP)
	case "destination.ip":
		return prefixes(c.prefixes, c.notPrefixes, req.DestIP)
	case "destination.port":
		return field(c.Values, c.NotValues, fmt.Sprint(req.Port), true, func(p, v string) bool { return p == v })
	case "source.namespace":
		return field(c.Values, c.NotValues, req.From.Namespace, req.From.Pod, matchString)
	case "source.principal":
		return field(c.Values, c.NotValues, req.From.Principal(o.TrustDomain), req.From.Pod, matchString)
	}
	// request.headers[NAME]
	if req.HTTP == nil {
		return !strict
	}
	vals := req.HTTP.Header.Values(c.Header)
	if len(vals) == 0 {
		return len(c.Values) == 0 // absent: matches only a notValues-only condition
	}
	v := strings.Join(vals, ",")
	return field(c.Values, c.NotValues, v, true, matchString)
}

// sortPolicies orders policies by namespace and name, as decisions and
// reports list them.
func sortPolicies(ps []*Policy) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Namespace != ps[j].Namespace {
			return ps[i].Namespace < ps[j].Namespace
		}
		return ps[i].Name < ps[j].Name
	})
}
