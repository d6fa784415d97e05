package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/rampartnet/rampart/internal/authz"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
)

// l7View is the HTTP authorization layer over a model, as the nodes'
// L7 proxies apply it: the AuthorizationPolicies and the pods' identities.
type l7View struct {
	e *authz.Engine
	d *authz.Directory
}

// authzDiagnostics validates the snapshot's AuthorizationPolicies and
// lints them against its namespaces and pods.
func authzDiagnostics(snap *cluster.Snapshot, mesh authz.Options) (*l7View, []cluster.Diagnostic) {
	e, ds := authz.Load(snap.AuthorizationPolicies, mesh)
	d := authz.NewDirectory(snap)
	namespaces := map[string]bool{}
	for _, n := range snap.Namespaces {
		namespaces[n.Name] = true
	}
	var workloads []authz.Workload
	for _, p := range snap.Pods {
		if w, ok := d.Workload(p.Namespace + "/" + p.Name); ok {
			workloads = append(workloads, w)
		}
	}
	ds = append(ds, authz.Lint(e, namespaces, workloads)...)
	cluster.SortDiagnostics(ds)
	return &l7View{e: e, d: d}, ds
}

// parseHTTP reads --http METHOD:/path.
func parseHTTP(s string) (*authz.HTTP, error) {
	if s == "" {
		return nil, nil
	}
	method, path, ok := strings.Cut(s, ":")
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("--http %q: want METHOD:/path, e.g. POST:/api", s)
	}
	path, _, _ = strings.Cut(path, "?")
	return &authz.HTTP{Method: method, Path: path, Header: http.Header{}}, nil
}

// l7Decision is what the destination node's L7 proxy does with a
// connection that L3/L4 policy allowed.
type l7Decision struct {
	// Applies: AuthorizationPolicies select the destination.
	Applies bool   `json:"applies"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
	// Policies are the AuthorizationPolicies that apply.
	Policies []string `json:"policies,omitempty"`
}

// decide follows the node: a destination pod that AuthorizationPolicies
// select takes TCP on its declared ports through the L7 proxy (HTTP only,
// each request decided) and no TCP connection on its other ports.
func (v *l7View) decide(q policy.Query, pr policy.Probe, port int32, req *authz.HTTP) l7Decision {
	dst := q.To.Endpoint
	if dst == nil {
		return l7Decision{}
	}
	if src := q.From.Endpoint; src == dst || src != nil && src.HostNetwork && src.Node == dst.Node {
		// A pod reaching itself never leaves its namespace, and the
		// node's own traffic goes out, not through prerouting: neither
		// meets the proxy.
		return l7Decision{}
	}
	w, ok := v.d.Workload(dst.Ref())
	if !ok || !v.e.Selects(w) || pr.Protocol != corev1.ProtocolTCP {
		return l7Decision{}
	}
	out := l7Decision{Applies: true}
	for _, p := range v.e.Applying(w) {
		ref := p.Ref()
		if p.Origin != nil {
			ref += at(p.Origin.Pos(""))
		}
		out.Policies = append(out.Policies, ref)
	}
	declared := false
	for _, p := range dst.Ports {
		if p.Protocol == corev1.ProtocolTCP && p.Port == port {
			declared = true
		}
	}
	switch {
	case !declared:
		out.Reason = fmt.Sprintf("AuthorizationPolicies select %s and no container declares TCP port %d: the node refuses the connection", dst.Ref(), port)
		return out
	case req == nil:
		out.Reason = "AuthorizationPolicies select the destination: its node's L7 proxy takes HTTP only (give --http METHOD:/path for a request)"
		return out
	}
	var caller authz.Caller
	switch {
	case q.From.Endpoint != nil:
		caller, _ = v.d.CallerOf(q.From.Endpoint.Ref(), q.From.Addr)
	default:
		caller = v.d.Caller(q.From.Addr)
	}
	res := v.e.Evaluate(authz.Request{From: caller, To: w, DestIP: q.To.Addr, Port: int(port), HTTP: req})
	out.Allowed, out.Reason = res.Allowed, res.Reason
	if p := caller.Principal(v.e.Options().TrustDomain); p != "" {
		out.Reason += " (caller " + p + ")"
	}
	return out
}

func writeL7Text(w io.Writer, d l7Decision, req *authz.HTTP) {
	if !d.Applies {
		if req != nil {
			fmt.Fprintf(w, "  L7: no AuthorizationPolicy selects the destination: %s %s passes as any traffic does\n", req.Method, req.Path)
		}
		return
	}
	state, what := "refused", "the connection"
	if req != nil {
		state, what = "denied (403)", req.Method+" "+req.Path
	}
	if d.Allowed {
		state = "allowed"
	}
	fmt.Fprintf(w, "  L7 (AuthorizationPolicy) for %s: %s\n    %s\n", what, state, d.Reason)
	for _, p := range d.Policies {
		fmt.Fprintf(w, "    - %s\n", p)
	}
}
