package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explain answers through all layers: L3/L4, then the AuthorizationPolicy
// that the destination's L7 proxy applies (examples/l7: search takes only
// POST from the api service account); lint reports AuthorizationPolicies.
func TestExplainHTTP(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		contains []string
	}{
		{[]string{"--from", "prod/api-local", "--to", "prod/search", "--probe", "8080/TCP", "--http", "POST:/query?x=1"}, []string{
			"on 8080/TCP, POST /query: ALLOWED",
			"L7 (AuthorizationPolicy) for POST /query: allowed",
			"AuthorizationPolicy prod/search-post-from-api rule 0: ALLOW (caller cluster.local/ns/prod/sa/api)",
			"- AuthorizationPolicy prod/search-post-from-api at ../../examples/l7/policies.yaml:",
		}},
		{[]string{"--from", "prod/api-remote", "--to", "prod/search", "--probe", "8080/TCP", "--http", "GET:/query"}, []string{
			"GET /query: DENIED", "L7 (AuthorizationPolicy) for GET /query: denied (403)",
		}},
		{[]string{"--from", "prod/frontend", "--to", "prod/search", "--probe", "8080/TCP", "--http", "POST:/query"}, []string{
			"DENIED", "(caller cluster.local/ns/prod/sa/frontend)",
		}},
		// Without a request: the proxy takes HTTP only.
		{[]string{"--from", "prod/api-local", "--to", "prod/search", "--probe", "8080/TCP"}, []string{
			"DENIED", "for the connection: refused", "takes HTTP only",
		}},
		// A port no container declares: refused by the node.
		{[]string{"--from", "prod/api-local", "--to", "prod/search", "--probe", "8081/TCP", "--http", "POST:/query"}, []string{
			"DENIED",
		}},
		// L3/L4 first: the NetworkPolicy allows 8080 only.
		{[]string{"--from", "prod/api-local", "--to", "prod/search", "--probe", "9090/TCP", "--http", "POST:/query"}, []string{
			"DENIED", "ingress at prod/search: denied",
		}},
		// Not selected: L7 does not apply.
		{[]string{"--from", "prod/search", "--to", "prod/api-local", "--probe", "8080/TCP", "--http", "DELETE:/x"}, []string{
			"ALLOWED", "L7: no AuthorizationPolicy selects the destination",
		}},
	} {
		args := append([]string{"explain", "../../examples/l7"}, tc.args...)
		code, out, errOut := runCLI(args...)
		if code != 0 {
			t.Fatalf("rampart %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		for _, c := range tc.contains {
			if !strings.Contains(out, c) {
				t.Errorf("rampart %s: output does not say %q:\n%s", strings.Join(args, " "), c, out)
			}
		}
	}
	code, out, _ := runCLI("explain", "../../examples/l7", "--from", "prod/frontend", "--to", "prod/search", "--probe", "8080/TCP", "--http", "POST:/q", "-o", "json")
	var got struct {
		Allowed bool
		L7      *l7Decision
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Allowed || got.L7 == nil || !got.L7.Applies || got.L7.Allowed {
		t.Errorf("explain -o json: exit %d, %+v\n%s", code, got, out)
	}
	if code, _, errOut := runCLI("explain", "../../examples/l7", "--from", "prod/frontend", "--to", "prod/search", "--http", "POST"); code == 0 || !strings.Contains(errOut, "METHOD:/path") {
		t.Errorf("--http POST: exit %d: %s", code, errOut)
	}
}

// reach --http: the matrix through the L7 layer; without it, a note.
func TestReachHTTP(t *testing.T) {
	code, out, _ := runCLI("reach", "../../examples/l7", "--probe", "8080/TCP", "--http", "POST:/query", "-o", "json")
	var rows []struct {
		From, To string
		Allowed  bool
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("reach --http: exit %d:\n%s", code, out)
	}
	for _, r := range rows {
		want := r.To != "prod/search" || r.From == "prod/api-local" || r.From == "prod/api-remote" || r.From == "prod/search"
		if r.Allowed != want {
			t.Errorf("POST %s -> %s: allowed %v, want %v", r.From, r.To, r.Allowed, want)
		}
	}
	if code, _, errOut := runCLI("reach", "../../examples/l7", "--probe", "8080/TCP"); code != 0 || !strings.Contains(errOut, "give --http") {
		t.Errorf("reach without --http: exit %d, no note: %s", code, errOut)
	}
}

func TestLintAuthorizationPolicies(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../../examples/l7/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), b, 0o644)
	os.WriteFile(filepath.Join(dir, "ap.yaml"), []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: typo, namespace: prod}
spec:
  selector: {matchLabels: {app: search}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/prod/sa/Api_Service"]}}]
    to: [{operation: {methods: ["post"]}}]
---
apiVersion: security.istio.io/v1alpha3
kind: AuthorizationPolicy
metadata: {name: old, namespace: prod}
spec: {}
`), 0o644)
	code, out, _ := runCLI("lint", dir)
	for _, want := range []string{
		"spec.rules[0].from[0].source.principals[0]", "not a valid ServiceAccount name",
		"spec.rules[0].to[0].operation.methods[0]", `meant "POST"`,
		"use apiVersion: security.istio.io/v1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lint does not say %q:\n%s", want, out)
		}
	}
	if code == 0 {
		t.Errorf("lint exit 0 with an error")
	}
}
