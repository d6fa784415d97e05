package authz

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/istio"
)

// load decodes YAML manifests of AuthorizationPolicies as files would
// hold them.
func load(t *testing.T, docs ...string) (*Engine, []cluster.Diagnostic) {
	t.Helper()
	var objs []*cluster.AuthorizationPolicy
	for i, d := range docs {
		var ap istio.AuthorizationPolicy
		o, ds := cluster.DecodeObject("policy.yaml", []byte(d), "security.istio.io/v1", "AuthorizationPolicy", &ap)
		if len(ds) > 0 {
			t.Fatalf("document %d: %v", i, ds)
		}
		objs = append(objs, &cluster.AuthorizationPolicy{AuthorizationPolicy: ap, Origin: o})
	}
	return Load(objs, Options{})
}

func mustLoad(t *testing.T, docs ...string) *Engine {
	t.Helper()
	e, ds := load(t, docs...)
	if cluster.HasErrors(ds) {
		t.Fatalf("errors: %v", ds)
	}
	return e
}

var (
	search = Workload{Namespace: "prod", Name: "search", Labels: map[string]string{"app": "search"}, Services: []string{"search"}}
	web    = Workload{Namespace: "prod", Name: "web", Labels: map[string]string{"app": "web"}}
	apiSA  = Caller{IP: netip.MustParseAddr("198.19.1.10"), Pod: true, Namespace: "prod", ServiceAccount: "api"}
	other  = Caller{IP: netip.MustParseAddr("198.19.2.10"), Pod: true, Namespace: "prod", ServiceAccount: "frontend"}
	stage  = Caller{IP: netip.MustParseAddr("198.19.2.11"), Pod: true, Namespace: "staging"}
	world  = Caller{IP: netip.MustParseAddr("203.0.113.5")}
)

func req(from Caller, to Workload, method, path string) Request {
	return Request{From: from, To: to, DestIP: netip.MustParseAddr("198.19.1.20"), Port: 8080,
		HTTP: &HTTP{Method: method, Path: path, Host: "search.prod.svc:8080", Header: http.Header{}}}
}

// onlyPostFromAPI is the example: search takes only POST from
// the api service account.
const onlyPostFromAPI = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: search-post, namespace: prod}
spec:
  selector: {matchLabels: {app: search}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/prod/sa/api"]}
    to:
    - operation: {methods: ["POST"]}
`

func TestEvaluate(t *testing.T) {
	cases := []struct {
		name     string
		policies []string
		req      Request
		allowed  bool
		reason   string // in Result.Reason
	}{
		{"no policy: allowed", nil, req(other, search, "GET", "/"), true, "no ALLOW or DENY"},
		{"POST from api", []string{onlyPostFromAPI}, req(apiSA, search, "POST", "/api"), true, "prod/search-post rule 0: ALLOW"},
		{"GET from api", []string{onlyPostFromAPI}, req(apiSA, search, "GET", "/api"), false, "no rule of the ALLOW policies"},
		{"POST from another account", []string{onlyPostFromAPI}, req(other, search, "POST", "/api"), false, "search-post"},
		{"POST from outside the cluster", []string{onlyPostFromAPI}, req(world, search, "POST", "/api"), false, "search-post"},
		{"another workload is not selected", []string{onlyPostFromAPI}, req(other, web, "GET", "/"), true, "no ALLOW or DENY"},
		{"DENY before ALLOW", []string{onlyPostFromAPI, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: prod}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
`}, req(apiSA, search, "POST", "/admin/users"), false, "prod/no-admin rule 0: DENY"},
		{"ALLOW without rules denies all", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: prod}
spec: {}
`}, req(apiSA, web, "GET", "/"), false, "deny-all"},
		{"an empty rule allows all", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: prod}
spec: {rules: [{}]}
`}, req(world, web, "DELETE", "/x"), true, "allow-all rule 0"},
		{"DENY without rules denies nothing", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nothing, namespace: prod}
spec: {action: DENY}
`}, req(world, web, "DELETE", "/x"), true, "no ALLOW or DENY"},
		{"root namespace applies everywhere", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny-staging, namespace: istio-system}
spec:
  action: DENY
  rules: [{from: [{source: {namespaces: ["staging"]}}]}]
`}, req(stage, search, "GET", "/"), false, "istio-system/mesh-deny-staging"},
		{"another namespace's policy does not apply", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: staging}
spec: {}
`}, req(stage, search, "GET", "/"), true, "no ALLOW or DENY"},
		{"notNamespaces", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: same-ns, namespace: prod}
spec:
  action: DENY
  rules: [{from: [{source: {notNamespaces: ["prod"]}}]}]
`}, req(stage, search, "GET", "/"), false, "same-ns rule 0: DENY"},
		{"notNamespaces lets the namespace in", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: same-ns, namespace: prod}
spec:
  action: DENY
  rules: [{from: [{source: {notNamespaces: ["prod"]}}]}]
`}, req(other, search, "GET", "/"), true, ""},
		{"principal prefix", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: prod-only, namespace: prod}
spec:
  rules: [{from: [{source: {principals: ["cluster.local/ns/prod/*"]}}]}]
`}, req(other, search, "GET", "/"), true, "prod-only rule 0"},
		{"ipBlocks", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: office, namespace: prod}
spec:
  rules: [{from: [{source: {ipBlocks: ["203.0.113.0/24"]}}]}]
`}, req(world, search, "GET", "/"), true, "office rule 0"},
		{"path suffix and notMethods", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: read-json, namespace: prod}
spec:
  rules: [{to: [{operation: {paths: ["*.json"], notMethods: ["DELETE"]}}]}]
`}, req(world, search, "DELETE", "/a.json"), false, "read-json"},
		{"hosts with and without port, case-insensitive", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: host, namespace: prod}
spec:
  rules: [{to: [{operation: {hosts: ["SEARCH.prod.svc"]}}]}]
`}, req(world, search, "GET", "/"), true, "host rule 0"},
		{"notHosts excludes the host with its port too", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: host, namespace: prod}
spec:
  rules: [{to: [{operation: {notHosts: ["search.prod.svc"]}}]}]
`}, req(world, search, "GET", "/"), false, "host"},
		{"ports", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: port, namespace: prod}
spec:
  rules: [{to: [{operation: {ports: ["9090"]}}]}]
`}, req(apiSA, search, "GET", "/"), false, "port"},
		{"when header", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: token, namespace: prod}
spec:
  rules: [{when: [{key: "request.headers[x-token]", values: ["s3cr3t*"]}]}]
`}, func() Request {
			r := req(world, search, "GET", "/")
			r.HTTP.Header.Set("X-Token", "s3cr3t-1")
			return r
		}(), true, "token rule 0"},
		{"when header absent", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: token, namespace: prod}
spec:
  rules: [{when: [{key: "request.headers[x-token]", values: ["*"]}]}]
`}, req(world, search, "GET", "/"), false, "token"},
		{"when source.principal", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: prod}
spec:
  rules: [{when: [{key: source.principal, notValues: ["cluster.local/ns/prod/sa/api"]}]}]
`}, req(apiSA, search, "GET", "/"), false, "p"},
		{"JWT in ALLOW never matches", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: jwt, namespace: prod}
spec:
  rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]
`}, req(apiSA, search, "GET", "/"), false, "jwt"},
		{"JWT in DENY always matches", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: jwt, namespace: prod}
spec:
  action: DENY
  rules: [{when: [{key: "request.auth.claims[group]", values: ["admin"]}]}]
`}, req(apiSA, search, "GET", "/"), false, "jwt rule 0: DENY"},
		{"TCP: ALLOW rule with HTTP fields does not match", []string{onlyPostFromAPI},
			func() Request { r := req(apiSA, search, "", ""); r.HTTP = nil; return r }(), false, "search-post"},
		{"TCP: DENY rule's HTTP fields are ignored", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-delete, namespace: prod}
spec:
  action: DENY
  rules: [{to: [{operation: {methods: ["DELETE"]}}]}]
`}, func() Request { r := req(apiSA, search, "", ""); r.HTTP = nil; return r }(), false, "no-delete rule 0: DENY"},
		{"targetRefs Service", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: svc, namespace: prod}
spec:
  targetRefs: [{kind: Service, group: "", name: search}]
  rules: [{from: [{source: {serviceAccounts: ["prod/api"]}}]}]
`}, req(other, search, "GET", "/"), false, "svc"},
		{"AUDIT changes nothing", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: prod}
spec: {action: AUDIT, rules: [{}]}
`}, req(other, search, "GET", "/"), true, "no ALLOW or DENY"},
		{"CUSTOM fails closed", []string{`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: prod}
spec: {action: CUSTOM, provider: {name: opa}, rules: [{}]}
`}, req(apiSA, search, "GET", "/"), false, "CUSTOM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := mustLoad(t, c.policies...)
			got := e.Evaluate(c.req)
			if got.Allowed != c.allowed || !strings.Contains(got.Reason, c.reason) {
				t.Errorf("allowed %v (%s); want %v (%q)", got.Allowed, got.Reason, c.allowed, c.reason)
			}
		})
	}
}

func TestSelects(t *testing.T) {
	e := mustLoad(t, onlyPostFromAPI)
	if !e.Selects(search) || e.Selects(web) {
		t.Errorf("selects search %v, web %v", e.Selects(search), e.Selects(web))
	}
	audit := mustLoad(t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit, namespace: prod}
spec: {action: AUDIT, rules: [{}]}
`)
	if audit.Selects(web) {
		t.Error("an AUDIT policy alone needs no proxy")
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, doc, path, want string
		sev                   cluster.Severity
	}{
		{"bad action", `spec: {action: REJECT}`, "spec.action", `"REJECT" is not an action`, cluster.Error},
		{"selector and targetRefs", `spec: {selector: {matchLabels: {app: a}}, targetRefs: [{kind: Service, name: a}]}`, "spec.selector", "mutually exclusive", cluster.Error},
		{"gateway target", `spec: {targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]}`, "spec.targetRefs[0].kind", "Service targets only", cluster.Error},
		{"empty source", `spec: {rules: [{from: [{source: {}}]}]}`, "spec.rules[0].from[0].source", "at least one field", cluster.Error},
		{"empty operation", `spec: {rules: [{to: [{operation: {}}]}]}`, "spec.rules[0].to[0].operation", "at least one field", cluster.Error},
		{"bad ipBlock", `spec: {rules: [{from: [{source: {ipBlocks: ["10.0.0.300/8"]}}]}]}`, "spec.rules[0].from[0].source.ipBlocks[0]", "neither an IP address nor a CIDR", cluster.Error},
		{"bad port", `spec: {rules: [{to: [{operation: {ports: ["http"]}}]}]}`, "spec.rules[0].to[0].operation.ports[0]", "not a port number", cluster.Error},
		{"star inside", `spec: {rules: [{to: [{operation: {paths: ["/a*b"]}}]}]}`, "spec.rules[0].to[0].operation.paths[0]", "may only begin or end", cluster.Error},
		{"lowercase method", `spec: {rules: [{to: [{operation: {methods: ["post"]}}]}]}`, "spec.rules[0].to[0].operation.methods[0]", `meant "POST"`, cluster.Warning},
		{"path without slash", `spec: {rules: [{to: [{operation: {paths: ["api"]}}]}]}`, "spec.rules[0].to[0].operation.paths[0]", `meant "/api"`, cluster.Warning},
		{"unknown when key", `spec: {rules: [{when: [{key: request.method, values: [GET]}]}]}`, "spec.rules[0].when[0].key", "not a condition key", cluster.Error},
		{"when without values", `spec: {rules: [{when: [{key: source.ip}]}]}`, "spec.rules[0].when[0]", "needs values", cluster.Error},
		{"CUSTOM without provider", `spec: {action: CUSTOM, rules: [{}]}`, "spec.provider", "needs provider.name", cluster.Error},
		{"invalid name", `spec: {}`, "metadata.name", "not a valid name", cluster.Error},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "p"
			if c.name == "invalid name" {
				name = "Not_Valid"
			}
			doc := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " + name + ", namespace: prod}\n" + c.doc + "\n"
			e, ds := load(t, doc)
			found := false
			for _, d := range ds {
				if d.Path == c.path && strings.Contains(d.Message, c.want) && d.Severity == c.sev && d.File == "policy.yaml" && d.Line > 0 {
					found = true
				}
			}
			if !found {
				t.Errorf("diagnostics %v; want %s at %s: %q", ds, c.sev, c.path, c.want)
			}
			if c.sev == cluster.Error && len(e.Policies()) != 0 {
				t.Error("an invalid policy was kept")
			}
		})
	}
}

func TestLint(t *testing.T) {
	e := mustLoad(t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: prod}
spec:
  selector: {matchLabels: {app: search}}
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/prod/sa/api
        - cluster.local/ns/prod/sa/Bad_Name
        - cluster.local/ns/nowhere/sa/api
        - example.org/ns/prod/sa/api
        - prod/api
        - cluster.local/ns/prod/*
        namespaces: [prod, gone]
`, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: q, namespace: prod}
spec: {selector: {matchLabels: {app: nothing}}}
`)
	ds := Lint(e, map[string]bool{"prod": true}, []Workload{search, web})
	want := map[string]string{
		"spec.rules[0].from[0].source.principals[1]": "not a valid ServiceAccount name",
		"spec.rules[0].from[0].source.principals[2]": `namespace "nowhere" does not exist`,
		"spec.rules[0].from[0].source.principals[3]": "trust domain",
		"spec.rules[0].from[0].source.principals[4]": "not a workload principal",
		"spec.rules[0].from[0].source.namespaces[1]": `namespace "gone" does not exist`,
		"spec.selector": "picks no pod",
	}
	for _, d := range ds {
		if w, ok := want[d.Path]; ok && strings.Contains(d.Message, w) {
			delete(want, d.Path)
			continue
		}
		t.Errorf("unexpected: %v", d)
	}
	for path, msg := range want {
		t.Errorf("missing at %s: %q", path, msg)
	}
}

func TestDirectory(t *testing.T) {
	s := &cluster.Snapshot{}
	cluster.LoadBytes("c.yaml", []byte(`apiVersion: v1
kind: Pod
metadata: {name: search-0, namespace: prod, labels: {app: search}}
spec: {serviceAccountName: search, containers: [{name: c, image: x}]}
status: {podIP: 198.19.1.20}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: prod, labels: {app: api}}
spec: {containers: [{name: c, image: x}]}
status: {podIPs: [{ip: 198.19.2.10}]}
---
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: kube-system}
spec: {hostNetwork: true, containers: [{name: c, image: x}]}
status: {podIP: 198.18.0.11}
---
apiVersion: v1
kind: Service
metadata: {name: search, namespace: prod}
spec: {selector: {app: search}, ports: [{port: 80}]}
`), s)
	s.Finish()
	d := NewDirectory(s)
	w, ok := d.WorkloadAt(netip.MustParseAddr("198.19.1.20"))
	if !ok || w.Name != "search-0" || len(w.Services) != 1 || w.Services[0] != "search" {
		t.Errorf("workload %+v %v", w, ok)
	}
	c := d.Caller(netip.MustParseAddr("198.19.2.10"))
	if !c.Pod || c.Principal(DefaultTrustDomain) != "cluster.local/ns/prod/sa/default" {
		t.Errorf("caller %+v: principal %q", c, c.Principal(DefaultTrustDomain))
	}
	if c := d.Caller(netip.MustParseAddr("198.19.1.20")); c.Principal(DefaultTrustDomain) != "cluster.local/ns/prod/sa/search" {
		t.Errorf("principal %q", c.Principal(DefaultTrustDomain))
	}
	if c := d.Caller(netip.MustParseAddr("198.18.0.11")); c.Pod {
		t.Error("a host-network pod's address names a workload identity")
	}
	if c := d.Caller(netip.MustParseAddr("203.0.113.9")); c.Pod || c.IP.String() != "203.0.113.9" {
		t.Errorf("outside caller %+v", c)
	}
}
