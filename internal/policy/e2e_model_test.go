package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The Kubernetes e2e model (test/e2e/network/netpol in kubernetes/kubernetes):
// namespaces x, y and z (labelled ns=<name>), each with pods a, b and c
// (labelled pod=<name>), every pod serving 80 and 81 on TCP, UDP and SCTP
// with container ports named serve-<port>-<proto>. Addresses, which the
// upstream suite reads from the running pods, are fixed here.
var e2eNamespaces = []string{"x", "y", "z"}
var e2ePods = []string{"a", "b", "c"}

func e2eAddr(ns, pod string) string {
	return fmt.Sprintf("198.18.%d.%d", strings.Index("xyz", ns)+1, strings.Index("abc", pod)+10)
}

func e2eSnapshot(t testing.TB, policies ...string) *cluster.Snapshot {
	t.Helper()
	s := &cluster.Snapshot{}
	for _, ns := range e2eNamespaces {
		n := &cluster.Namespace{Declared: true}
		n.Name = ns
		n.Labels = map[string]string{"ns": ns}
		s.Namespaces = append(s.Namespaces, n)
		for _, pod := range e2ePods {
			p := &cluster.Pod{Kind: "Pod"}
			p.Name, p.Namespace = pod, ns
			p.Labels = map[string]string{"pod": pod}
			c := corev1.Container{Name: "cont"}
			for _, port := range []int32{80, 81} {
				for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
					c.Ports = append(c.Ports, corev1.ContainerPort{
						Name:          fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto))),
						ContainerPort: port, Protocol: proto,
					})
				}
			}
			p.Spec.Containers = []corev1.Container{c}
			p.Status.PodIP = e2eAddr(ns, pod)
			s.Pods = append(s.Pods, p)
		}
	}
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

// reachability is the upstream suite's expectation table: everything
// allowed, then adjusted by expect calls, with loopback always allowed.
type reachability map[[2]string]bool

// expect sets from → to, where each side is "ns/pod" with * for any part.
func (r reachability) expect(from, to string, allowed bool) reachability {
	for _, f := range e2eRefs() {
		for _, t := range e2eRefs() {
			if refMatches(from, f) && refMatches(to, t) {
				r[[2]string{f, t}] = allowed
			}
		}
	}
	return r
}

func refMatches(pattern, ref string) bool {
	pn, pp, _ := strings.Cut(pattern, "/")
	rn, rp, _ := strings.Cut(ref, "/")
	return (pn == "*" || pn == rn) && (pp == "*" || pp == rp)
}

func e2eRefs() []string {
	var refs []string
	for _, ns := range e2eNamespaces {
		for _, p := range e2ePods {
			refs = append(refs, ns+"/"+p)
		}
	}
	return refs
}

func allowAll() reachability { return reachability{}.expect("*/*", "*/*", true) }

// Upstream cases, named after the "It(...)" they port. Policies live in the
// namespace they name; the probe is 80/TCP unless the case says otherwise.
var e2eCases = []struct {
	name     string
	policies []string
	probe    string
	want     func() reachability
}{
	{
		name: "should support a 'default-deny-ingress' policy",
		policies: []string{`
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}`},
		want: func() reachability { return allowAll().expect("*/*", "x/*", false) },
	},
	{
		name: "should support a 'default-deny-all' policy",
		policies: []string{`
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/*", false).expect("x/*", "*/*", false)
		},
	},
	{
		name: "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
		policies: []string{`
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("x/b", "x/a", true)
		},
	},
	{
		name: "should enforce policy to allow ingress traffic from pods in all namespaces",
		policies: []string{`
metadata: {name: allow-all-ns, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {}}]}]`},
		want: allowAll,
	},
	{
		name: "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
		policies: []string{`
metadata: {name: allow-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("y/*", "x/a", true)
		},
	},
	{
		name: "should enforce policy based on NamespaceSelector with MatchExpressions",
		policies: []string{`
metadata: {name: allow-ns-in-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: ["y"]}]}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("y/*", "x/a", true)
		},
	},
	{
		name: "should enforce policy based on PodSelector with MatchExpressions",
		policies: []string{`
metadata: {name: allow-pod-in-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("x/b", "x/a", true)
		},
	},
	{
		name: "should enforce policy based on NamespaceSelector with MatchExpressions NotIn",
		policies: []string{`
metadata: {name: allow-ns-not-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: ["y"]}]}}]}]`},
		want: func() reachability {
			return allowAll().expect("y/*", "x/a", false)
		},
	},
	{
		name: "should enforce policy based on PodSelector or NamespaceSelector",
		policies: []string{`
metadata: {name: or, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}}, {podSelector: {matchLabels: {pod: b}}}]}]`},
		want: func() reachability {
			return allowAll().expect("x/c", "x/a", false)
		},
	},
	{
		name: "should enforce policy based on PodSelector and NamespaceSelector",
		policies: []string{`
metadata: {name: and, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}, podSelector: {matchLabels: {pod: b}}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("y/b", "x/a", true).expect("z/b", "x/a", true)
		},
	},
	{
		name: "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
		policies: []string{`
metadata: {name: multi, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}, podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).
				expect("y/b", "x/a", true).expect("y/c", "x/a", true).
				expect("z/b", "x/a", true).expect("z/c", "x/a", true)
		},
	},
	{
		name: "should enforce policy based on Ports",
		policies: []string{`
metadata: {name: port-81-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 81, protocol: TCP}]}]`},
		want: func() reachability { return allowAll().expect("*/*", "x/a", false) },
	},
	{
		name:  "should enforce policy based on Ports (81 allowed from y)",
		probe: "81/TCP",
		policies: []string{`
metadata: {name: port-81-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 81, protocol: TCP}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("y/*", "x/a", true)
		},
	},
	{
		name:  "should enforce multiple, stacked policies with overlapping podSelectors",
		probe: "80/TCP",
		policies: []string{`
metadata: {name: port-81-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 81, protocol: TCP}]}]`, `
metadata: {name: port-80-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 80, protocol: TCP}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("y/*", "x/a", true)
		},
	},
	{
		name: "should support allow-all policy",
		policies: []string{`
metadata: {name: allow-all, namespace: x}
spec: {podSelector: {}, ingress: [{}]}`},
		want: allowAll,
	},
	{
		name:  "should allow ingress access on one named port",
		probe: "81/TCP",
		policies: []string{`
metadata: {name: named-81, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve-81-tcp}]}]`},
		want: allowAll,
	},
	{
		name:  "should allow ingress access on one named port (80 denied)",
		probe: "80/TCP",
		policies: []string{`
metadata: {name: named-81, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve-81-tcp}]}]`},
		want: func() reachability { return allowAll().expect("*/*", "x/*", false) },
	},
	{
		name:  "should allow egress access on one named port",
		probe: "80/UDP",
		policies: []string{`
metadata: {name: egress-named-80-udp, namespace: x}
spec:
  podSelector: {}
  egress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
  policyTypes: [Egress]`},
		want: allowAll,
	},
	{
		name:  "should allow egress access on one named port (81 denied)",
		probe: "81/UDP",
		policies: []string{`
metadata: {name: egress-named-80-udp, namespace: x}
spec:
  podSelector: {}
  egress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
  policyTypes: [Egress]`},
		want: func() reachability { return allowAll().expect("x/*", "*/*", false) },
	},
	{
		name: "should deny ingress from pods on other namespaces",
		policies: []string{`
metadata: {name: same-ns-only, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {}}]}]`},
		want: func() reachability { return allowAll().expect("y/*", "x/*", false).expect("z/*", "x/*", false) },
	},
	{
		name: "should deny egress from pods based on PodSelector",
		policies: []string{`
metadata: {name: deny-egress-a, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}`},
		want: func() reachability { return allowAll().expect("x/a", "*/*", false) },
	},
	{
		name:  "should work with Ingress, Egress specified together",
		probe: "80/TCP",
		policies: []string{`
metadata: {name: both, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
  egress: [{ports: [{port: 80, protocol: TCP}]}]
  policyTypes: [Ingress, Egress]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("x/b", "x/a", true)
		},
	},
	{
		name:  "should work with Ingress, Egress specified together (81 egress denied)",
		probe: "81/TCP",
		policies: []string{`
metadata: {name: both, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
  egress: [{ports: [{port: 80, protocol: TCP}]}]
  policyTypes: [Ingress, Egress]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("x/b", "x/a", true).expect("x/a", "*/*", false)
		},
	},
	{
		name: "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
		policies: []string{`
metadata: {name: x-a-egress-to-y-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: a}}}]}]
  policyTypes: [Egress]`, `
metadata: {name: y-allows-x-a, namespace: "y"}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]}]`},
		want: func() reachability {
			return allowAll().expect("x/a", "*/*", false).expect("*/*", "y/*", false).expect("x/a", "y/a", true)
		},
	},
	{
		name:  "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
		probe: "81/UDP",
		policies: []string{`
metadata: {name: any-tcp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: TCP}]}]`},
		want: func() reachability { return allowAll().expect("*/*", "x/a", false) },
	},
	{
		name:  "should enforce ingress policy allowing any port traffic to a server on a specific protocol (TCP allowed)",
		probe: "81/TCP",
		policies: []string{`
metadata: {name: any-tcp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: TCP}]}]`},
		want: allowAll,
	},
	{
		name: "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
		policies: []string{`
metadata: {name: only-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: TCP}]}]`, `
metadata: {name: allow-all, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, ingress: [{}]}`},
		want: allowAll,
	},
	{
		name: "should enforce multiple egress policies with egress allow-all policy taking precedence",
		policies: []string{`
metadata: {name: only-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{ports: [{port: 81, protocol: TCP}]}]
  policyTypes: [Egress]`, `
metadata: {name: allow-all, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, egress: [{}], policyTypes: [Egress]}`},
		want: allowAll,
	},
	{
		name: "should allow egress access to server in CIDR block",
		policies: []string{`
metadata: {name: egress-to-cidr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{ipBlock: {cidr: 198.18.2.11/32}}]}]
  policyTypes: [Egress]`},
		want: func() reachability {
			return allowAll().expect("x/a", "*/*", false).expect("x/a", "y/b", true)
		},
	},
	{
		name: "should enforce except clause while egress access to server in CIDR block",
		policies: []string{`
metadata: {name: egress-except, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{ipBlock: {cidr: 198.18.0.0/16, except: [198.18.2.11/32]}}]}]
  policyTypes: [Egress]`},
		want: func() reachability { return allowAll().expect("x/a", "y/b", false) },
	},
	{
		name: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
		policies: []string{`
metadata: {name: egress-except, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress:
  - to: [{ipBlock: {cidr: 198.18.0.0/16, except: [198.18.2.11/32]}}]
  - to: [{ipBlock: {cidr: 198.18.2.11/32}}]
  policyTypes: [Egress]`},
		want: allowAll,
	},
	{
		name: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
		policies: []string{`
metadata: {name: deny-egress-a, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}`, `
metadata: {name: deny-ingress-b, namespace: x}
spec: {podSelector: {matchLabels: {pod: b}}, policyTypes: [Ingress]}`},
		want: func() reachability {
			return allowAll().expect("x/a", "*/*", false).expect("*/*", "x/b", false)
		},
	},
	{
		name:  "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP'",
		probe: "81/TCP",
		policies: []string{`
metadata: {name: sctp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: SCTP}]}]`},
		want: func() reachability { return allowAll().expect("*/*", "x/a", false) },
	},
	{
		name:  "should properly isolate pods that are selected by a policy allowing SCTP",
		probe: "81/SCTP",
		policies: []string{`
metadata: {name: sctp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: SCTP}]}]`},
		want: allowAll,
	},
	{
		name:  "should not allow access by TCP when a policy specifies only UDP",
		probe: "81/TCP",
		policies: []string{`
metadata: {name: udp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: UDP}]}]`},
		want: func() reachability { return allowAll().expect("*/*", "x/a", false) },
	},
	{
		name: "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
		policies: []string{`
metadata: {name: default-label, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "y"}}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("y/*", "x/a", true)
		},
	},
	{
		name:  "should enforce policy based on Ports range (endPort)",
		probe: "81/TCP",
		policies: []string{`
metadata: {name: range, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 80, endPort: 81, protocol: TCP}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("y/*", "x/a", true)
		},
	},
	{
		name: "NotIn on a label the peer lacks matches it (DoesNotExist too)",
		policies: []string{`
metadata: {name: notin, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [web]}, {key: role, operator: DoesNotExist}]}}]}]`},
		want: func() reachability {
			return allowAll().expect("*/*", "x/a", false).expect("x/*", "x/a", true)
		},
	},
	{
		name: "empty from list allows every source",
		policies: []string{`
metadata: {name: empty-from, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [], ports: []}]`},
		want: allowAll,
	},
	{
		name: "empty egress list with no policyTypes does not isolate egress",
		policies: []string{`
metadata: {name: empty-egress, namespace: x}
spec: {podSelector: {}, egress: []}`},
		want: func() reachability { return allowAll().expect("*/*", "x/*", false) },
	},
}

func TestE2EModel(t *testing.T) {
	for _, tc := range e2eCases {
		t.Run(tc.name, func(t *testing.T) {
			m, diags := NewModel(e2eSnapshot(t, tc.policies...))
			if len(diags) > 0 {
				t.Fatalf("diagnostics: %v", diags)
			}
			probe := tc.probe
			if probe == "" {
				probe = "80/TCP"
			}
			pr, err := ParseProbe(probe)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want()
			for _, r := range e2eRefs() {
				want[[2]string{r, r}] = true // loopback
			}
			mx := m.Matrix(pr)
			var bad []string
			for _, f := range e2eRefs() {
				for _, to := range e2eRefs() {
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
