package policytest

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/rampartnet/rampart/internal/cluster"
	corev1 "k8s.io/api/core/v1"
)

// The Kubernetes e2e model (test/e2e/network/netpol in kubernetes/kubernetes):
// namespaces x, y and z (labelled ns=<name>), each with pods a, b and c
// (labelled pod=<name>), every pod serving 80 and 81 on TCP, UDP and SCTP
// with container ports named serve-<port>-<proto>. examples/netpol-e2e
// holds the same model as manifests.
var (
	E2ENamespaces = []string{"x", "y", "z"}
	E2EPods       = []string{"a", "b", "c"}
)

// E2ERefs are the model's pods as "ns/pod", in order.
func E2ERefs() []string {
	var refs []string
	for _, ns := range E2ENamespaces {
		for _, p := range E2EPods {
			refs = append(refs, ns+"/"+p)
		}
	}
	return refs
}

// E2ESnapshot is the model without policies. addr gives each pod's
// address ("ns/pod" → "198.18.1.10"); nil leaves addresses out.
func E2ESnapshot(addr func(ref string) string) *cluster.Snapshot {
	s := &cluster.Snapshot{}
	for _, ns := range E2ENamespaces {
		n := &cluster.Namespace{Declared: true}
		n.Name = ns
		n.Labels = map[string]string{"ns": ns}
		s.Namespaces = append(s.Namespaces, n)
		for _, pod := range E2EPods {
			p := &cluster.Pod{Kind: "Pod", SpecPath: "spec", LabelsPath: "metadata.labels"}
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
			if addr != nil {
				p.Status.PodIP = addr(ns + "/" + pod)
			}
			s.Pods = append(s.Pods, p)
		}
	}
	return s
}

// Reachability is the upstream suite's expectation table: everything
// allowed, then adjusted by Expect calls.
type Reachability map[[2]string]bool

// Expect sets from → to, where each side is "ns/pod" with * for any part.
func (r Reachability) Expect(from, to string, allowed bool) Reachability {
	for _, f := range E2ERefs() {
		for _, t := range E2ERefs() {
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

// AllowAll is the table of a cluster without policy.
func AllowAll() Reachability { return Reachability{}.Expect("*/*", "*/*", true) }

// E2ECase is one upstream case, named after the "It(...)" it ports.
// Policies are NetworkPolicy documents without apiVersion and kind, as
// text/template templates: {{addr "y/b"}} is a pod's address and {{podBlock}}
// a CIDR that holds every pod's address, so that ipBlock cases work
// whatever addresses the pods have (fixed ones in unit tests, the ones a
// lab hands out).
type E2ECase struct {
	Name     string
	Policies []string
	// Probe is the port and protocol the case is about; "" is 80/TCP.
	Probe string
	Want  func() Reachability
}

// ProbeSpec is the case's probe, "80/TCP" by default.
func (c E2ECase) ProbeSpec() string {
	if c.Probe == "" {
		return "80/TCP"
	}
	return c.Probe
}

// Expected is the upstream table, with every pod reaching itself.
func (c E2ECase) Expected() Reachability {
	want := c.Want()
	for _, r := range E2ERefs() {
		want[[2]string{r, r}] = true
	}
	return want
}

// Render fills in the policies' templates.
func (c E2ECase) Render(addr func(ref string) string, block string) ([]string, error) {
	funcs := template.FuncMap{"addr": addr, "podBlock": func() string { return block }}
	var out []string
	for i, p := range c.Policies {
		t, err := template.New(fmt.Sprintf("%s[%d]", c.Name, i)).Funcs(funcs).Option("missingkey=error").Parse(p)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		if err := t.Execute(&b, nil); err != nil {
			return nil, err
		}
		out = append(out, b.String())
	}
	return out, nil
}

// Manifest is the case's policies as one manifest file (apiVersion and
// kind added to each document).
func (c E2ECase) Manifest(addr func(ref string) string, block string) (string, error) {
	docs, err := c.Render(addr, block)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", c.Name)
	for _, d := range docs {
		fmt.Fprintf(&b, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n%s\n", strings.TrimLeft(d, "\n"))
	}
	return b.String(), nil
}

// E2ECases are the upstream cases. Policies live in the namespace they
// name; the probe is 80/TCP unless the case says otherwise. A case whose
// name ends in a parenthesis is the same policies probed on another port
// or protocol.
var E2ECases = []E2ECase{
	{
		Name: "should support a 'default-deny-ingress' policy",
		Policies: []string{`
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/*", false) },
	},
	{
		Name: "should support a 'default-deny-all' policy",
		Policies: []string{`
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/*", false).Expect("x/*", "*/*", false)
		},
	},
	{
		Name: "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
		Policies: []string{`
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("x/b", "x/a", true)
		},
	},
	{
		Name: "should enforce policy to allow ingress traffic from pods in all namespaces",
		Policies: []string{`
metadata: {name: allow-all-ns, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {}}]}]`},
		Want: AllowAll,
	},
	{
		Name: "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
		Policies: []string{`
metadata: {name: allow-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("y/*", "x/a", true)
		},
	},
	{
		Name: "should enforce policy based on NamespaceSelector with MatchExpressions",
		Policies: []string{`
metadata: {name: allow-ns-in-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: ["y"]}]}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("y/*", "x/a", true)
		},
	},
	{
		Name: "should enforce policy based on PodSelector with MatchExpressions",
		Policies: []string{`
metadata: {name: allow-pod-in-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("x/b", "x/a", true)
		},
	},
	{
		Name: "should enforce policy based on NamespaceSelector with MatchExpressions NotIn",
		Policies: []string{`
metadata: {name: allow-ns-not-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: ["y"]}]}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("y/*", "x/a", false)
		},
	},
	{
		Name: "should enforce policy based on PodSelector or NamespaceSelector",
		Policies: []string{`
metadata: {name: or, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}}, {podSelector: {matchLabels: {pod: b}}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("x/c", "x/a", false)
		},
	},
	{
		Name: "should enforce policy based on PodSelector and NamespaceSelector",
		Policies: []string{`
metadata: {name: and, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}, podSelector: {matchLabels: {pod: b}}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("y/b", "x/a", true).Expect("z/b", "x/a", true)
		},
	},
	{
		Name: "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
		Policies: []string{`
metadata: {name: multi, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}, podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).
				Expect("y/b", "x/a", true).Expect("y/c", "x/a", true).
				Expect("z/b", "x/a", true).Expect("z/c", "x/a", true)
		},
	},
	{
		Name: "should enforce policy based on Ports",
		Policies: []string{`
metadata: {name: port-81-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 81, protocol: TCP}]}]`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/a", false) },
	},
	{
		Name:  "should enforce policy based on Ports (81 allowed from y)",
		Probe: "81/TCP",
		Policies: []string{`
metadata: {name: port-81-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 81, protocol: TCP}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("y/*", "x/a", true)
		},
	},
	{
		Name:  "should enforce multiple, stacked policies with overlapping podSelectors",
		Probe: "80/TCP",
		Policies: []string{`
metadata: {name: port-81-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 81, protocol: TCP}]}]`, `
metadata: {name: port-80-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 80, protocol: TCP}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("y/*", "x/a", true)
		},
	},
	{
		Name: "should support allow-all policy",
		Policies: []string{`
metadata: {name: allow-all, namespace: x}
spec: {podSelector: {}, ingress: [{}]}`},
		Want: AllowAll,
	},
	{
		Name:  "should allow ingress access on one named port",
		Probe: "81/TCP",
		Policies: []string{`
metadata: {name: named-81, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve-81-tcp}]}]`},
		Want: AllowAll,
	},
	{
		Name:  "should allow ingress access on one named port (80 denied)",
		Probe: "80/TCP",
		Policies: []string{`
metadata: {name: named-81, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve-81-tcp}]}]`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/*", false) },
	},
	{
		Name:  "should allow egress access on one named port",
		Probe: "80/UDP",
		Policies: []string{`
metadata: {name: egress-named-80-udp, namespace: x}
spec:
  podSelector: {}
  egress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
  policyTypes: [Egress]`},
		Want: AllowAll,
	},
	{
		Name:  "should allow egress access on one named port (81 denied)",
		Probe: "81/UDP",
		Policies: []string{`
metadata: {name: egress-named-80-udp, namespace: x}
spec:
  podSelector: {}
  egress: [{ports: [{port: serve-80-udp, protocol: UDP}]}]
  policyTypes: [Egress]`},
		Want: func() Reachability { return AllowAll().Expect("x/*", "*/*", false) },
	},
	{
		Name: "should deny ingress from pods on other namespaces",
		Policies: []string{`
metadata: {name: same-ns-only, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {}}]}]`},
		Want: func() Reachability { return AllowAll().Expect("y/*", "x/*", false).Expect("z/*", "x/*", false) },
	},
	{
		Name: "should deny egress from pods based on PodSelector",
		Policies: []string{`
metadata: {name: deny-egress-a, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}`},
		Want: func() Reachability { return AllowAll().Expect("x/a", "*/*", false) },
	},
	{
		Name:  "should work with Ingress, Egress specified together",
		Probe: "80/TCP",
		Policies: []string{`
metadata: {name: both, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
  egress: [{ports: [{port: 80, protocol: TCP}]}]
  policyTypes: [Ingress, Egress]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("x/b", "x/a", true)
		},
	},
	{
		Name:  "should work with Ingress, Egress specified together (81 egress denied)",
		Probe: "81/TCP",
		Policies: []string{`
metadata: {name: both, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
  egress: [{ports: [{port: 80, protocol: TCP}]}]
  policyTypes: [Ingress, Egress]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("x/b", "x/a", true).Expect("x/a", "*/*", false)
		},
	},
	{
		Name: "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
		Policies: []string{`
metadata: {name: x-a-egress-to-y-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: a}}}]}]
  policyTypes: [Egress]`, `
metadata: {name: y-allows-x-a, namespace: "y"}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("x/a", "*/*", false).Expect("*/*", "y/*", false).Expect("x/a", "y/a", true)
		},
	},
	{
		Name:  "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
		Probe: "81/UDP",
		Policies: []string{`
metadata: {name: any-tcp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: TCP}]}]`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/a", false) },
	},
	{
		Name:  "should enforce ingress policy allowing any port traffic to a server on a specific protocol (TCP allowed)",
		Probe: "81/TCP",
		Policies: []string{`
metadata: {name: any-tcp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: TCP}]}]`},
		Want: AllowAll,
	},
	{
		Name: "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
		Policies: []string{`
metadata: {name: only-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: TCP}]}]`, `
metadata: {name: allow-all, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, ingress: [{}]}`},
		Want: AllowAll,
	},
	{
		Name: "should enforce multiple egress policies with egress allow-all policy taking precedence",
		Policies: []string{`
metadata: {name: only-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{ports: [{port: 81, protocol: TCP}]}]
  policyTypes: [Egress]`, `
metadata: {name: allow-all, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, egress: [{}], policyTypes: [Egress]}`},
		Want: AllowAll,
	},
	{
		Name: "should allow egress access to server in CIDR block",
		Policies: []string{`
metadata: {name: egress-to-cidr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{ipBlock: {cidr: '{{addr "y/b"}}/32'}}]}]
  policyTypes: [Egress]`},
		Want: func() Reachability {
			return AllowAll().Expect("x/a", "*/*", false).Expect("x/a", "y/b", true)
		},
	},
	{
		Name: "should enforce except clause while egress access to server in CIDR block",
		Policies: []string{`
metadata: {name: egress-except, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress: [{to: [{ipBlock: {cidr: '{{podBlock}}', except: ['{{addr "y/b"}}/32']}}]}]
  policyTypes: [Egress]`},
		Want: func() Reachability { return AllowAll().Expect("x/a", "y/b", false) },
	},
	{
		Name: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
		Policies: []string{`
metadata: {name: egress-except, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress:
  - to: [{ipBlock: {cidr: '{{podBlock}}', except: ['{{addr "y/b"}}/32']}}]
  - to: [{ipBlock: {cidr: '{{addr "y/b"}}/32'}}]
  policyTypes: [Egress]`},
		Want: AllowAll,
	},
	{
		Name: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
		Policies: []string{`
metadata: {name: deny-egress-a, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}`, `
metadata: {name: deny-ingress-b, namespace: x}
spec: {podSelector: {matchLabels: {pod: b}}, policyTypes: [Ingress]}`},
		Want: func() Reachability {
			return AllowAll().Expect("x/a", "*/*", false).Expect("*/*", "x/b", false)
		},
	},
	{
		Name:  "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP'",
		Probe: "81/TCP",
		Policies: []string{`
metadata: {name: sctp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: SCTP}]}]`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/a", false) },
	},
	{
		Name:  "should properly isolate pods that are selected by a policy allowing SCTP",
		Probe: "81/SCTP",
		Policies: []string{`
metadata: {name: sctp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: SCTP}]}]`},
		Want: AllowAll,
	},
	{
		Name:  "should properly isolate pods that are selected by a policy allowing SCTP (80 denied)",
		Probe: "80/SCTP",
		Policies: []string{`
metadata: {name: sctp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: SCTP}]}]`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/a", false) },
	},
	{
		Name:  "should not allow access by TCP when a policy specifies only UDP",
		Probe: "81/TCP",
		Policies: []string{`
metadata: {name: udp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: UDP}]}]`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/a", false) },
	},
	{
		Name:  "should not allow access by TCP when a policy specifies only UDP (UDP allowed)",
		Probe: "81/UDP",
		Policies: []string{`
metadata: {name: udp-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{port: 81, protocol: UDP}]}]`},
		Want: AllowAll,
	},
	{
		Name: "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
		Policies: []string{`
metadata: {name: default-label, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: "y"}}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("y/*", "x/a", true)
		},
	},
	{
		Name:  "should enforce policy based on Ports range (endPort)",
		Probe: "81/TCP",
		Policies: []string{`
metadata: {name: range, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}], ports: [{port: 80, endPort: 81, protocol: TCP}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("y/*", "x/a", true)
		},
	},
	{
		Name: "NotIn on a label the peer lacks matches it (DoesNotExist too)",
		Policies: []string{`
metadata: {name: notin, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [web]}, {key: role, operator: DoesNotExist}]}}]}]`},
		Want: func() Reachability {
			return AllowAll().Expect("*/*", "x/a", false).Expect("x/*", "x/a", true)
		},
	},
	{
		Name: "empty from list allows every source",
		Policies: []string{`
metadata: {name: empty-from, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [], ports: []}]`},
		Want: AllowAll,
	},
	{
		Name: "empty egress list with no policyTypes does not isolate egress",
		Policies: []string{`
metadata: {name: empty-egress, namespace: x}
spec: {podSelector: {}, egress: []}`},
		Want: func() Reachability { return AllowAll().Expect("*/*", "x/*", false) },
	},
}
