package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The Kubernetes e2e model (policytest.E2ESnapshot) with fixed addresses:
// the upstream suite reads them from the running pods.
func e2eAddr(ref string) string {
	ns, pod, _ := strings.Cut(ref, "/")
	return fmt.Sprintf("198.18.%d.%d", strings.Index("xyz", ns)+1, strings.Index("abc", pod)+10)
}

// e2eBlock holds every address e2eAddr gives.
const e2eBlock = "198.18.0.0/16"

func e2eSnapshot(t testing.TB, policies ...string) *cluster.Snapshot {
	t.Helper()
	s := policytest.E2ESnapshot(e2eAddr)
	for _, doc := range policies {
		np := &cluster.NetworkPolicy{}
		if err := yaml.UnmarshalStrict([]byte(doc), &np.NetworkPolicy); err != nil {
			t.Fatalf("policy does not parse: %v\n%s", err, doc)
		}
		np.Origin = cluster.NewOrigin("test.yaml", nil)
		s.NetworkPolicies = append(s.NetworkPolicies, np)
	}
	return s
}

func TestE2EModel(t *testing.T) {
	refs := policytest.E2ERefs()
	for _, tc := range policytest.E2ECases {
		t.Run(tc.Name, func(t *testing.T) {
			policies, err := tc.Render(e2eAddr, e2eBlock)
			if err != nil {
				t.Fatal(err)
			}
			m, diags := NewModel(e2eSnapshot(t, policies...))
			if len(diags) > 0 {
				t.Fatalf("diagnostics: %v", diags)
			}
			pr, err := ParseProbe(tc.ProbeSpec())
			if err != nil {
				t.Fatal(err)
			}
			want := tc.Expected()
			mx := m.Matrix(pr)
			var bad []string
			for _, f := range refs {
				for _, to := range refs {
					src, dst := m.Endpoint(f), m.Endpoint(to)
					w := want[[2]string{f, to}]
					v := m.Verdict(pr.Query(Party{Endpoint: src}, Party{Endpoint: dst}))
					if v.Allowed != w {
						bad = append(bad, fmt.Sprintf("verdict %s -> %s = %v, want %v (egress: %s; ingress: %s)",
							f, to, v.Allowed, w, v.Egress.Reason, v.Ingress.Reason))
					}
					if got := mx.Allowed(src, dst); got != w {
						bad = append(bad, fmt.Sprintf("matrix %s -> %s = %v, want %v", f, to, got, w))
					}
				}
			}
			if len(bad) > 0 {
				t.Errorf("%d wrong:\n%s", len(bad), strings.Join(bad, "\n"))
			}
		})
	}
}

// The rules that decide are named, so explain can say why.
func TestVerdictExplains(t *testing.T) {
	m, _ := NewModel(e2eSnapshot(t, `
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: c}}}]
  - from: [{podSelector: {matchLabels: {pod: c}}}, {podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: 81}, {port: 80}]`, `
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}`))
	pr, _ := ParseProbe("80/TCP")
	q := pr.Query(Party{Endpoint: m.Endpoint("x/b")}, Party{Endpoint: m.Endpoint("x/a")})
	v := m.Verdict(q)
	if !v.Allowed || v.Ingress.By != "network-policy" || len(v.Ingress.Rules) != 1 {
		t.Fatalf("verdict = %+v", v)
	}
	r := v.Ingress.Rules[0]
	if r.Policy != "x/x-a-allows-x-b" || r.Rule != 2 || r.Peer != 2 || r.Port != 2 || r.Path != "spec.ingress[1].from[1]" {
		t.Errorf("rule = %+v", r)
	}
	if got := r.String(); got != "policy x/x-a-allows-x-b ingress rule 2 peer 2 port 2" {
		t.Errorf("rule string = %q", got)
	}
	if want := []string{"x/deny-all", "x/x-a-allows-x-b"}; fmt.Sprint(v.Ingress.IsolatedBy) != fmt.Sprint(want) {
		t.Errorf("isolated by %v, want %v", v.Ingress.IsolatedBy, want)
	}
	if v.Egress.By != "default" {
		t.Errorf("egress decided by %q", v.Egress.By)
	}
	q.From = Party{Endpoint: m.Endpoint("y/b")}
	v = m.Verdict(q)
	if v.Allowed || !strings.Contains(v.Ingress.Reason, "isolated by x/deny-all and x/x-a-allows-x-b; no rule matched") {
		t.Errorf("denied verdict = %+v", v.Ingress)
	}
}

func TestVerdictSpecialParties(t *testing.T) {
	s := e2eSnapshot(t, `
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}`, `
metadata: {name: egress-to-net, namespace: x}
spec:
  podSelector: {}
  egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]}]`)
	node := &cluster.Node{}
	node.Name = "node-1"
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.100.1"}}
	s.Nodes = append(s.Nodes, node)
	s.Pods[0].Spec.NodeName = "node-1" // x/a
	host := &cluster.Pod{Kind: "DaemonSet"}
	host.Name, host.Namespace = "agent", "x"
	host.Labels = map[string]string{"pod": "a"}
	host.Spec.HostNetwork = true
	host.Spec.NodeName = "node-1"
	host.Status.PodIP = "198.18.100.1"
	s.Pods = append(s.Pods, host)
	m, diags := NewModel(s)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	pr, _ := ParseProbe("80/TCP")
	party := func(ref string) Party {
		p, err := m.Party(ref)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		from, to string
		allowed  bool
		by       string // the deciding evaluator of the direction that matters
	}{
		{"x/a", "x/a", true, "loopback"},
		{"198.18.1.10", "x/a", true, "loopback"}, // the pod's own address is the pod
		{"198.18.100.1", "x/a", true, "node"},    // its node
		{"x/a", "198.18.100.1", true, "node"},
		{"198.18.100.1", "x/b", false, "network-policy"}, // not its node (x/b has no nodeName)
		{"x/agent", "x/b", false, "network-policy"},      // hostNetwork pods are not selected as pods
		{"y/b", "x/agent", true, "host-network"},         // nor isolated
		{"x/b", "x/agent", false, "network-policy"},      // but x/b's egress is
		{"x/b", "203.0.113.7", true, "network-policy"},
		{"x/b", "203.0.113.200", false, "network-policy"},
		{"203.0.113.7", "x/b", false, "network-policy"},
		{"y/a", "203.0.113.200", true, "default"},
	} {
		v := m.Verdict(pr.Query(party(tc.from), party(tc.to)))
		by := v.Ingress.By
		if !v.Egress.Allowed || v.Egress.By == "loopback" || v.Egress.By == "node" || strings.Contains(tc.to, ".") {
			by = v.Egress.By
		}
		if v.Allowed != tc.allowed || by != tc.by {
			t.Errorf("%s -> %s: allowed=%v by %q, want %v by %q (egress %q, ingress %q)",
				tc.from, tc.to, v.Allowed, by, tc.allowed, tc.by, v.Egress.Reason, v.Ingress.Reason)
		}
	}
}

func TestParseProbe(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"80/TCP", "80/TCP", false},
		{"53/udp", "53/UDP", false},
		{"80", "80/TCP", false},
		{"http/TCP", "http/TCP", false},
		{"0/TCP", "", true},
		{"70000/TCP", "", true},
		{"80/ICMP", "", true},
		{"/TCP", "", true},
	} {
		p, err := ParseProbe(tc.in)
		if (err != nil) != tc.err || (err == nil && p.String() != tc.want) {
			t.Errorf("ParseProbe(%q) = %v, %v", tc.in, p, err)
		}
	}
}
