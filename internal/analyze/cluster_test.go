package analyze

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
)

// randomModel is a random cluster of policytest.Generate with cluster-wide
// policies of both tiers, nodes and hostNetwork pods.
func randomModel(t testing.TB, seed int64) *policy.Model {
	t.Helper()
	snap := policytest.Generate(seed, policytest.Options{Namespaces: 4, Workloads: 30, Policies: 10, PodIPs: true, ClusterPolicies: 8})
	m, diags := policy.NewModel(snap)
	if len(diags) > 0 {
		t.Fatalf("model: %v", diags)
	}
	return m
}

const cnp = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"

// tierWorld: an Admin tier that keeps everyone but the bank out of
// kube-system but for DNS, and out of the vault; the shop allows itself
// what the Admin tier denies; a Baseline tier that isolates the bank, and
// closes its egress, DNS included.
var tierWorld = world{
	namespaces: map[string]string{"shop": "tenant=shop", "bank": "tenant=bank", "kube-system": "", "vault": ""},
	pods: []tpod{
		{ref: "shop/web", labels: "app=web", ports: "http:80/TCP"},
		{ref: "shop/db", labels: "app=db", ports: "5432/TCP"},
		{ref: "bank/api", labels: "app=api", ports: "8443/TCP"},
		{ref: "vault/secrets", labels: "app=secrets", ports: "8200/TCP"},
		{ref: "kube-system/coredns", labels: "k8s-app=kube-dns", ports: "dns:53/UDP"},
		{ref: "kube-system/metrics", labels: "k8s-app=metrics", ports: "443/TCP"},
	},
	policies: []string{
		// The shop's owner allows its web egress to the metrics server and
		// the vault: dead, the Admin tier denies both first.
		`metadata: {name: web-out, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: metrics}}}]
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: vault}}}]
    ports: [{port: 8200}]
  - to: [{podSelector: {}}]`,
		// ... and the db its ingress from the vault, which nothing denies.
		`metadata: {name: db-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{namespaceSelector: {}}]}]`,
	},
	cluster: []string{
		cnp + `metadata: {name: guard}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, bank]}]}}
  egress:
  - name: dns
    action: Accept
    to: [{pods: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}}]
    protocols: [{udp: {destinationPort: {number: 53}}}]
  - name: partner
    action: Accept
    to: [{domainNames: [partner.example.com]}]
  - name: no-kube-system
    action: Deny
    to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
  - name: vault-for-the-bank-only
    action: Deny
    to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: vault}}}]
`,
		cnp + `metadata: {name: bank}
spec:
  tier: Baseline
  priority: 10
  subject: {namespaces: {matchLabels: {tenant: bank}}}
  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {tenant: shop}}}]}]
  egress: [{action: Deny, to: [{namespaces: {}}, {networks: [0.0.0.0/0]}]}]
`,
	},
}

func TestClusterFindings(t *testing.T) {
	m := tierWorld.model(t)
	r := analyze(t, m, Options{})
	fire := []want{
		{kind: KindOverriddenByAdmin, subject: "shop/web-out", path: "spec.egress[0]", sev: Low},
		{kind: KindOverriddenByAdmin, subject: "shop/web-out", path: "spec.egress[1]", sev: Low},
		{kind: KindDomainNamesNotEnforced, subject: "ClusterNetworkPolicy guard", path: "spec.egress[1].to[0]", sev: Info},
		// The bank's Baseline Deny of every address takes DNS too.
		{kind: KindEgressBlocksDNS, subject: "bank/api", sev: High},
		// Egress to the internet, decided through the tiers: open for the
		// shop (the Admin tier says nothing of it), closed for the bank.
		{kind: KindEgressOpenToInternet, subject: "shop/db", sev: Medium},
	}
	quiet := []want{
		// A rule that allows something the Admin tier lets through.
		{kind: KindOverriddenByAdmin, subject: "shop/web-out", path: "spec.egress[2]"},
		{kind: KindOverriddenByAdmin, subject: "shop/db-in"},
		{kind: KindEgressOpenToInternet, subject: "bank/api"},
		// The vault and the bank are isolated by no NetworkPolicy, but a
		// Baseline rule keeps the shop out of the bank.
		{kind: KindReachableFromEveryNamespace, subject: "bank/api"},
	}
	for _, w := range fire {
		var got *Finding
		for i := range r.Findings {
			if w.matches(r.Findings[i]) {
				got = &r.Findings[i]
				break
			}
		}
		if got == nil {
			t.Errorf("no %s finding for %s %s", w.kind, w.subject, w.path)
			continue
		}
		if got.Severity != w.sev || got.Message == "" || got.Hint == "" {
			t.Errorf("%s %s: severity %s (want %s), message %q, hint %q", w.kind, w.subject, got.Severity, w.sev, got.Message, got.Hint)
		}
	}
	for _, w := range quiet {
		for _, f := range r.Findings {
			if w.matches(f) {
				t.Errorf("unexpected %s finding for %s %s: %s", f.Kind, f.Subject, f.Path, f.Message)
			}
		}
	}

	// The positions: the dead rule's line, and the Admin rule that kills it.
	f := findOne(t, r, KindOverriddenByAdmin, "shop/web-out", "spec.egress[1]")
	if want := fmt.Sprintf("p0.yaml:%d", lineOf(t, tierWorld.policies[0], "vault}}}]")); f.Pos != want {
		t.Errorf("overridden rule at %q, want %q", f.Pos, want)
	}
	if want := fmt.Sprintf(`"vault-for-the-bank-only" peer 1: Deny (c0.yaml:%d)`, lineOf(t, tierWorld.cluster[0], "kubernetes.io/metadata.name: vault")); !strings.Contains(f.Message, want) {
		t.Errorf("message %q does not name %s", f.Message, want)
	}
	f = findOne(t, r, KindEgressBlocksDNS, "bank/api", "")
	if !strings.Contains(f.Message, "baseline tier: ClusterNetworkPolicy bank") || f.Pos == "" {
		t.Errorf("dns finding %+v", f)
	}

	// The isolation table and JSON say which cluster-wide policies select
	// an endpoint.
	for _, wl := range r.Workloads {
		if wl.Ref == "bank/api" && (strings.Join(wl.EgressClusterPolicies, ",") != "ClusterNetworkPolicy bank" ||
			strings.Join(wl.IngressClusterPolicies, ",") != "ClusterNetworkPolicy bank") {
			t.Errorf("bank/api: %+v", wl)
		}
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "cluster: bank") || !strings.Contains(buf.String(), "(and 2 cluster-wide policies)") {
		t.Errorf("text output:\n%s", buf.String())
	}
}

// The internet finding of classes under cluster-wide policy agrees with
// the verdict engine, on random clusters.
func TestClusterInternetAgreesWithVerdict(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		m := randomModel(t, seed)
		r := analyze(t, m, Options{})
		a := r.a
		internet, ok := a.internetAddr()
		if !ok {
			continue
		}
		for d, c := range a.classes {
			if len(a.cpEgress[d]) == 0 {
				continue
			}
			open := false
			for _, p := range append(append([]policy.Probe(nil), internetProbes...), a.probes...) {
				open = open || m.Verdict(p.Query(policy.Party{Endpoint: c.Rep()}, internet)).Allowed
			}
			flagged := false
			for _, f := range r.Findings {
				flagged = flagged || f.Kind == KindEgressOpenToInternet && f.Subject == c.Rep().Ref()
			}
			if flagged != open {
				t.Errorf("seed %d: %s: flagged %v, verdict to %s allowed %v", seed, c.Rep().Ref(), flagged, internet, open)
			}
		}
	}
}

// Reach notes what the table cannot show: domain names.
func TestReachNotes(t *testing.T) {
	tab, err := Reach(tierWorld.model(t), probes(t, "80/TCP"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Notes) != 1 || !strings.Contains(tab.Notes[0], "partner.example.com") ||
		!strings.Contains(tab.Notes[0], "ClusterNetworkPolicy guard egress rule 2 (spec.egress[1])") {
		t.Errorf("notes = %q", tab.Notes)
	}
}

// The guardrails example: the Admin tier keeps the tenants out of
// kube-system but for DNS; the Baseline tier keeps them apart, but where a
// namespace's own NetworkPolicy says otherwise.
func TestGuardrailsExample(t *testing.T) {
	snap, err := cluster.Load("../../examples/guardrails")
	if err != nil {
		t.Fatal(err)
	}
	m, diags, err := policy.FromSnapshot(snap, false)
	if err != nil || len(diags) > 0 {
		t.Fatalf("%v: %v", err, diags)
	}
	for _, tc := range []struct {
		from, to, probe string
		allowed         bool
		by              string
	}{
		{"shop/storefront", "kube-system/coredns", "53/UDP", true, "admin"},
		{"shop/storefront", "kube-system/coredns", "53/TCP", true, "admin"},
		{"shop/storefront", "kube-system/coredns", "9153/TCP", false, "admin"},
		{"blog/wordpress", "kube-system/metrics-server", "10250/TCP", false, "admin"},
		{"shop/storefront", "shop/orders-db", "5432/TCP", true, "baseline"},
		{"shop/storefront", "blog/comments", "3000/TCP", false, "baseline"},
		{"blog/comments", "shop/orders-db", "5432/TCP", false, "baseline"},
		{"shop/storefront", "blog/wordpress", "80/TCP", true, "network-policy"},
		{"kube-system/metrics-server", "shop/storefront", "8080/TCP", true, "default"},
	} {
		pr, _ := policy.ParseProbe(tc.probe)
		from, to := m.Endpoint(tc.from), m.Endpoint(tc.to)
		v := m.Verdict(pr.Query(policy.Party{Endpoint: from}, policy.Party{Endpoint: to}))
		dec := v.Ingress
		if v.Egress.By != "default" {
			dec = v.Egress
		}
		if v.Allowed != tc.allowed || dec.By != tc.by {
			t.Errorf("%s -> %s %s: allowed %v by %s, want %v by %s (%s; %s)", tc.from, tc.to, tc.probe,
				v.Allowed, dec.By, tc.allowed, tc.by, v.Egress.Reason, v.Ingress.Reason)
		}
	}
	r := analyze(t, m, Options{})
	named := false
	for _, f := range r.Findings {
		if f.Kind == KindOverriddenByAdmin || f.Kind == KindEgressBlocksDNS {
			t.Errorf("the example has a %s finding: %s %s", f.Kind, f.Subject, f.Message)
		}
		// The tenants have no default-deny NetworkPolicy, but a Baseline
		// tier policy decides what none allows: "from anywhere" would
		// be false.
		if f.Kind == KindNoDefaultDenyIngress && f.Subject == "blog" {
			named = true
			if !strings.Contains(f.Message, "ClusterNetworkPolicy tenant-blog") || strings.Contains(f.Message, "from anywhere") || f.Severity != Low {
				t.Errorf("blog's no-default-deny-ingress: [%s] %s", f.Severity, f.Message)
			}
		}
	}
	if !named {
		t.Error("no no-default-deny-ingress finding for blog")
	}
}

// BenchmarkAnalyzeLargeTiers is BenchmarkAnalyzeLarge with the guardrails
// of genModelTiers: cluster-wide policies in both tiers.
func BenchmarkAnalyzeLargeTiers(b *testing.B) {
	m := genModelTiers(1, 10000, 500, 2000)
	classes := len(m.Classes())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Analyze(m, Options{Compromised: middle(m)})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.ReportMetric(float64(classes), "classes")
			b.ReportMetric(float64(len(r.Findings)), "findings")
		}
	}
}
