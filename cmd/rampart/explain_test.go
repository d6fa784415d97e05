package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// explain names the tier and the rule of a cluster-wide policy that
// decided, with its file:line; the JSON form carries the same.
func TestExplainTiers(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		contains []string
	}{
		{[]string{"--from", "shop/storefront", "--to", "kube-system/metrics-server", "--probe", "10250/TCP"}, []string{
			"DENIED",
			"egress at shop/storefront: denied (admin tier)",
			`- admin tier: ClusterNetworkPolicy protect-kube-system (priority 10) egress rule 2 "deny-the-rest-of-kube-system" peer 1: Deny, spec.egress[1].to[0] at ../../examples/guardrails/guardrails.yaml:32`,
		}},
		{[]string{"--from", "shop/storefront", "--to", "blog/comments", "--probe", "3000/TCP"}, []string{
			"ingress at blog/comments: denied (baseline tier)",
			`baseline tier: ClusterNetworkPolicy tenant-blog (priority 110) ingress rule 2 "not-from-other-tenants" peer 1: Deny`,
		}},
		{[]string{"--from", "shop/storefront", "--to", "blog/wordpress", "--probe", "80/TCP"}, []string{
			"ALLOWED", "ingress at blog/wordpress: allowed (network-policy)",
		}},
	} {
		args := append([]string{"explain", "../../examples/guardrails"}, tc.args...)
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

	code, out, errOut := runCLI("explain", "../../examples/guardrails", "--from", "shop/storefront", "--to",
		"kube-system/metrics-server", "--probe", "10250/TCP", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Egress struct {
			By          string `json:"by"`
			ClusterRule struct {
				Tier   string `json:"tier"`
				Policy string `json:"policy"`
				Rule   int    `json:"rule"`
				Action string `json:"action"`
			} `json:"clusterRule"`
		} `json:"egress"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if r := got.Egress.ClusterRule; got.Egress.By != "admin" || r.Tier != "admin" || r.Policy != "ClusterNetworkPolicy protect-kube-system" ||
		r.Rule != 2 || r.Action != "Deny" {
		t.Errorf("JSON: %+v", got)
	}
}

// A Pass names the rule that passed; reach notes domain names on stderr;
// lint warns about ties.
func TestTiersCLI(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/a.yaml", `apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {containers: [{name: c}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: pass-x}
spec:
  priority: 5
  subject: {namespaces: {}}
  egress:
  - {name: to-x, action: Pass, to: [{namespaces: {}}]}
  - {name: partner, action: Allow, to: [{domainNames: [partner.example]}]}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: same}
spec: {tier: Admin, priority: 5, subject: {namespaces: {}}}
`)
	code, out, errOut := runCLI("explain", dir, "--from", "x/a", "--to", "x/b")
	if code != 0 || !strings.Contains(out, `passed on by admin tier: AdminNetworkPolicy pass-x (priority 5) egress rule 1 "to-x" peer 1: Pass`) {
		t.Errorf("explain: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("reach", dir, "-o", "json")
	if code != 0 || !strings.Contains(errOut, "note: AdminNetworkPolicy pass-x egress rule 2") || !strings.HasPrefix(out, "[") {
		t.Errorf("reach: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, _ = runCLI("lint", dir, "--strict")
	if code != 1 || !strings.Contains(out, "same priority (5) as AdminNetworkPolicy pass-x") || !strings.Contains(out, "not enforced") {
		t.Errorf("lint: exit %d\n%s", code, out)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
