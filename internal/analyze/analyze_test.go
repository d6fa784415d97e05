package analyze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// A world is a small cluster written in Go: namespaces with labels, pods,
// and NetworkPolicies in YAML. Pods are declared in pods.yaml, one per
// line; policy i in p<i>.yaml, so that findings can be checked for
// file:line.
type world struct {
	namespaces map[string]string // name → "k=v,k=v"
	pods       []tpod
	policies   []string
	// cluster are manifests of cluster-wide policies, apiVersion and kind
	// included, read from c<i>.yaml.
	cluster []string
}

type tpod struct {
	ref    string // "namespace/name"
	labels string // "app=web,tier=frontend"
	ports  string // "80/TCP,dns:53/UDP"
	host   bool   // hostNetwork
}

func parseLabels(t testing.TB, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if s == "" {
		return out
	}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("bad label %q", kv)
		}
		out[k] = v
	}
	return out
}

func (w world) snapshot(t testing.TB) *cluster.Snapshot {
	t.Helper()
	s := &cluster.Snapshot{}
	var names []string
	for n := range w.namespaces {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		n := &cluster.Namespace{Declared: true}
		n.Name, n.Labels = name, parseLabels(t, w.namespaces[name])
		s.Namespaces = append(s.Namespaces, n)
	}
	for i, tp := range w.pods {
		ns, name, _ := strings.Cut(tp.ref, "/")
		p := &cluster.Pod{Kind: "Deployment", Origin: cluster.NewOrigin("pods.yaml", &yaml.Node{Kind: yaml.MappingNode, Line: i + 1})}
		p.Name, p.Namespace, p.Labels = name, ns, parseLabels(t, tp.labels)
		p.Spec.HostNetwork = tp.host
		c := corev1.Container{Name: "main"}
		if tp.ports != "" {
			for ps := range strings.SplitSeq(tp.ports, ",") {
				pname, rest, ok := strings.Cut(ps, ":")
				if !ok {
					pname, rest = "", ps
				}
				num, proto, _ := strings.Cut(rest, "/")
				n, err := strconv.Atoi(num)
				if err != nil {
					t.Fatalf("bad port %q", ps)
				}
				c.Ports = append(c.Ports, corev1.ContainerPort{Name: pname, ContainerPort: int32(n), Protocol: corev1.Protocol(proto)})
			}
		}
		p.Spec.Containers = []corev1.Container{c}
		s.Pods = append(s.Pods, p)
	}
	for i, doc := range w.policies {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &node); err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
		np := &cluster.NetworkPolicy{Origin: cluster.NewOrigin(fmt.Sprintf("p%d.yaml", i), node.Content[0])}
		if err := sigsyaml.UnmarshalStrict([]byte(doc), &np.NetworkPolicy); err != nil {
			t.Fatalf("policy %d does not parse: %v\n%s", i, err, doc)
		}
		s.NetworkPolicies = append(s.NetworkPolicies, np)
	}
	for i, doc := range w.cluster {
		cluster.LoadBytes(fmt.Sprintf("c%d.yaml", i), []byte(doc), s)
	}
	if cluster.HasErrors(s.Diagnostics) {
		t.Fatalf("cluster-wide policies: %v", s.Diagnostics)
	}
	return s
}

func (w world) model(t testing.TB) *policy.Model {
	t.Helper()
	m, diags := policy.NewModel(w.snapshot(t))
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	return m
}

// lineOf is the 1-based line of the first line of doc that contains s.
func lineOf(t testing.TB, doc, s string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in\n%s", s, doc)
	return 0
}

func analyze(t testing.TB, m *policy.Model, opt Options) *Report {
	t.Helper()
	r, err := Analyze(m, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func probes(t testing.TB, ss ...string) []policy.Probe {
	var out []policy.Probe
	for _, s := range ss {
		p, err := policy.ParseProbe(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// want is a finding expected (or expected not to be there): kind and
// subject always; path and severity when set.
type want struct {
	kind, subject, path string
	sev                 Severity
}

func (w want) matches(f Finding) bool {
	return f.Kind == w.kind && f.Subject == w.subject && (w.path == "" || f.Path == w.path)
}

const dnsPolicy = `metadata: {name: allow-dns, namespace: %s}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{port: 53, protocol: UDP}]`

var findingCases = []struct {
	name  string
	w     world
	opt   Options
	fire  []want
	quiet []want
}{
	{
		name: "default deny: only an empty podSelector counts; kube-system at info; host-network namespaces skipped",
		w: world{
			pods: []tpod{
				{ref: "a/web", labels: "app=web", ports: "80/TCP"},
				{ref: "b/web", labels: "app=web", ports: "80/TCP"},
				{ref: "c/web", labels: "app=web", ports: "80/TCP"},
				{ref: "kube-system/coredns", labels: "k8s-app=kube-dns", ports: "dns:53/UDP"},
				{ref: "hostonly/agent", labels: "app=agent", host: true},
			},
			policies: []string{
				`metadata: {name: deny-all, namespace: b}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}`,
				fmt.Sprintf(dnsPolicy, "b"),
				`metadata: {name: web-only, namespace: c}
spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress, Egress]}`,
			},
		},
		fire: []want{
			{kind: KindNoDefaultDenyIngress, subject: "a", sev: Medium},
			{kind: KindNoDefaultDenyEgress, subject: "a", sev: Low},
			{kind: KindNoDefaultDenyIngress, subject: "c", sev: Medium},
			{kind: KindNoDefaultDenyEgress, subject: "c", sev: Low},
			{kind: KindNoDefaultDenyIngress, subject: "kube-system", sev: Info},
			{kind: KindNoDefaultDenyEgress, subject: "kube-system", sev: Info},
		},
		quiet: []want{
			{kind: KindNoDefaultDenyIngress, subject: "b"},
			{kind: KindNoDefaultDenyEgress, subject: "b"},
			{kind: KindNoDefaultDenyIngress, subject: "hostonly"},
			{kind: KindNoDefaultDenyEgress, subject: "hostonly"},
		},
	},
	{
		name: "reachable from every namespace: open by omission (high), by a rule (medium), not on an undeclared port",
		w:    exposureWorld,
		fire: []want{
			{kind: KindReachableFromEveryNamespace, subject: "a/open", sev: High},
			{kind: KindReachableFromEveryNamespace, subject: "b/shared", sev: Medium},
		},
		quiet: []want{
			{kind: KindReachableFromEveryNamespace, subject: "b/private"},
			{kind: KindReachableFromEveryNamespace, subject: "c/locked"},
			{kind: KindReachableFromEveryNamespace, subject: "d/svc"}, // admitted only on 80, serves 443
		},
	},
	{
		name: "reachable from every namespace: explicit probes count undeclared ports",
		w:    exposureWorld,
		opt:  Options{Probes: probes(nil, "80/TCP")},
		fire: []want{
			{kind: KindReachableFromEveryNamespace, subject: "d/svc", sev: Medium},
			{kind: KindReachableFromEveryNamespace, subject: "a/open", sev: High},
		},
		quiet: []want{
			{kind: KindReachableFromEveryNamespace, subject: "b/shared"}, // only on 8080
			{kind: KindReachableFromEveryNamespace, subject: "c/locked"},
		},
	},
	{
		name: "reachable from every namespace: needs another namespace",
		w: world{pods: []tpod{
			{ref: "a/x", labels: "app=x", ports: "80/TCP"},
			{ref: "a/y", labels: "app=y", ports: "80/TCP"},
		}},
		quiet: []want{
			{kind: KindReachableFromEveryNamespace, subject: "a/x"},
			{kind: KindReachableFromEveryNamespace, subject: "a/y"},
		},
	},
	{
		name: "egress open to the internet; DNS to an external resolver when the model has no DNS server",
		w:    internetWorld,
		fire: []want{
			{kind: KindEgressOpenToInternet, subject: "e/free", sev: Medium},
			{kind: KindEgressOpenToInternet, subject: "e/https", path: "spec.egress[0]", sev: Low},
			{kind: KindEgressOpenToInternet, subject: "e/nat", path: "spec.egress[0].to[0]", sev: Medium},
			{kind: KindEgressOpenToInternet, subject: "e/v6", path: "spec.egress[0].to[0]", sev: Low},
			{kind: KindEgressBlocksDNS, subject: "e/https", sev: High},
			{kind: KindEgressBlocksDNS, subject: "e/private", sev: High},
			{kind: KindEgressBlocksDNS, subject: "e/denied", sev: High},
		},
		quiet: []want{
			{kind: KindEgressOpenToInternet, subject: "e/private"},
			{kind: KindEgressOpenToInternet, subject: "e/denied"},
			{kind: KindEgressBlocksDNS, subject: "e/free"}, // not egress-isolated
			{kind: KindEgressBlocksDNS, subject: "e/nat"},  // 0.0.0.0/0 on all ports
		},
	},
	{
		name: "egress blocks DNS: to the cluster's DNS server, by egress or by its ingress",
		w:    dnsWorld,
		fire: []want{
			{kind: KindEgressBlocksDNS, subject: "f/nodns", sev: High},
			{kind: KindEgressBlocksDNS, subject: "g/client", sev: High},
		},
		quiet: []want{
			{kind: KindEgressBlocksDNS, subject: "f/withdns"},
			{kind: KindEgressBlocksDNS, subject: "f/free"},
			{kind: KindEgressBlocksDNS, subject: "f/db"},
			{kind: KindEgressBlocksDNS, subject: "kube-system/coredns"},
		},
	},
	{
		name: "host network: never isolated, whatever selects it",
		w:    hostWorld,
		fire: []want{
			{kind: KindReachableFromEveryNamespace, subject: "a/agent", sev: High},
			{kind: KindEgressOpenToInternet, subject: "a/agent", sev: Medium},
			{kind: KindPolicySelectsNothing, subject: "a/deny-agent", sev: Low},
		},
		quiet: []want{
			{kind: KindEgressBlocksDNS, subject: "a/agent"},
			{kind: KindNoDefaultDenyIngress, subject: "a"},
		},
	},
	{
		name: "selectors that match nothing",
		w:    selectorWorld,
		fire: []want{
			{kind: KindPolicySelectsNothing, subject: "h/ghost", path: "spec.podSelector", sev: Low},
			{kind: KindPolicySelectsNothing, subject: "h/hostonly", sev: Low},
			{kind: KindPolicySelectsNothing, subject: "i/lonely", sev: Low},
			{kind: KindPeerMatchesNothing, subject: "h/ok", path: "spec.ingress[0].from[1]", sev: Low},
			{kind: KindPeerMatchesNothing, subject: "h/ok", path: "spec.ingress[0].from[2]", sev: Low},
			{kind: KindPeerMatchesNothing, subject: "h/ok", path: "spec.egress[0].to[0]", sev: Low},
			{kind: KindPeerMatchesNothing, subject: "h/ok", path: "spec.egress[1].to[0]", sev: Low},
		},
		quiet: []want{
			{kind: KindPolicySelectsNothing, subject: "h/ok"},
			{kind: KindPeerMatchesNothing, subject: "h/ok", path: "spec.ingress[0].from[0]"},
			{kind: KindPeerMatchesNothing, subject: "h/ok", path: "spec.ingress[0].from[3]"}, // ipBlock
			{kind: KindPeerMatchesNothing, subject: "h/ok", path: "spec.egress[2].to[0]"},
		},
	},
}

var hostWorld = world{
	pods: []tpod{
		{ref: "a/agent", labels: "app=agent", ports: "9100/TCP", host: true},
		{ref: "b/x", labels: "app=x"},
		{ref: "c/y", labels: "app=y"},
	},
	policies: []string{
		`metadata: {name: deny-agent, namespace: a}
spec: {podSelector: {matchLabels: {app: agent}}, policyTypes: [Ingress, Egress]}`,
	},
}

var dnsWorld = world{
	namespaces: map[string]string{"f": "team=f", "g": "team=g"},
	pods: []tpod{
		{ref: "kube-system/coredns", labels: "k8s-app=kube-dns", ports: "dns:53/UDP,dns-tcp:53/TCP"},
		{ref: "f/nodns", labels: "app=nodns"},
		{ref: "f/withdns", labels: "app=withdns"},
		{ref: "f/free", labels: "app=free"},
		{ref: "f/db", labels: "app=db", ports: "5432/TCP"},
		{ref: "g/client", labels: "app=client"},
	},
	policies: []string{
		`metadata: {name: nodns, namespace: f}
spec:
  podSelector: {matchLabels: {app: nodns}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: db}}}]}]`,
		`metadata: {name: withdns, namespace: f}
spec:
  podSelector: {matchLabels: {app: withdns}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{port: dns, protocol: UDP}]`,
		fmt.Sprintf(dnsPolicy, "g"),
		`metadata: {name: dns-from-f, namespace: kube-system}
spec:
  podSelector: {matchLabels: {k8s-app: kube-dns}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: f}}}]}]`,
	},
}

var exposureWorld = world{
	namespaces: map[string]string{"a": "team=a", "b": "team=b", "c": "team=c", "d": "team=d"},
	pods: []tpod{
		{ref: "a/open", labels: "app=open", ports: "80/TCP"},
		{ref: "b/shared", labels: "app=shared", ports: "8080/TCP"},
		{ref: "b/private", labels: "app=private", ports: "9000/TCP"},
		{ref: "c/locked", labels: "app=locked", ports: "80/TCP"},
		{ref: "d/svc", labels: "app=svc", ports: "443/TCP"},
	},
	policies: []string{
		`metadata: {name: deny, namespace: b}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
		`metadata: {name: shared-all, namespace: b}
spec:
  podSelector: {matchLabels: {app: shared}}
  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 8080}]}]`,
		`metadata: {name: deny, namespace: c}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
		`metadata: {name: deny, namespace: d}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
		`metadata: {name: allow-80, namespace: d}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 80}]}]`,
	},
}

var internetWorld = world{
	pods: []tpod{
		{ref: "e/free", labels: "app=free"},
		{ref: "e/https", labels: "app=https"},
		{ref: "e/nat", labels: "app=nat"},
		{ref: "e/v6", labels: "app=v6"},
		{ref: "e/private", labels: "app=private"},
		{ref: "e/denied", labels: "app=denied"},
	},
	policies: []string{
		`metadata: {name: https-out, namespace: e}
spec:
  podSelector: {matchLabels: {app: https}}
  policyTypes: [Egress]
  egress: [{ports: [{port: 443}]}]`,
		`metadata: {name: nat-out, namespace: e}
spec:
  podSelector: {matchLabels: {app: nat}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}`,
		`metadata: {name: v6-out, namespace: e}
spec:
  podSelector: {matchLabels: {app: v6}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: "::/0"}}]
    ports: [{port: 443}]`,
		`metadata: {name: private-out, namespace: e}
spec:
  podSelector: {matchLabels: {app: private}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]`,
		`metadata: {name: denied, namespace: e}
spec: {podSelector: {matchLabels: {app: denied}}, policyTypes: [Egress]}`,
	},
}

var selectorWorld = world{
	pods: []tpod{
		{ref: "h/web", labels: "app=web", ports: "80/TCP"},
		{ref: "h/agent", labels: "app=agent", host: true},
	},
	policies: []string{
		`metadata: {name: ghost, namespace: h}
spec:
  podSelector:
    matchLabels: {app: ghost}
  policyTypes: [Ingress]`,
		`metadata: {name: hostonly, namespace: h}
spec: {podSelector: {matchLabels: {app: agent}}, policyTypes: [Ingress]}`,
		`metadata: {name: ok, namespace: h}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    - podSelector: {matchLabels: {app: nope}}
    - namespaceSelector: {matchLabels: {team: nobody}}
    - ipBlock: {cidr: 10.0.0.0/8}
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: h}}, podSelector: {matchLabels: {app: agent}}}]
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: i}}}]
  - to: [{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}]`,
		`metadata: {name: lonely, namespace: i}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
	},
}

func TestFindings(t *testing.T) {
	for _, tc := range findingCases {
		t.Run(tc.name, func(t *testing.T) {
			r := analyze(t, tc.w.model(t), tc.opt)
			for _, w := range tc.fire {
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
				if w.sev != "" && got.Severity != w.sev {
					t.Errorf("%s %s: severity %s, want %s (%s)", w.kind, w.subject, got.Severity, w.sev, got.Message)
				}
				if got.Message == "" || (got.Hint == "" && got.Kind != KindBlastRadius) {
					t.Errorf("%s %s: empty message or hint: %+v", w.kind, w.subject, *got)
				}
			}
			for _, w := range tc.quiet {
				for _, f := range r.Findings {
					if w.matches(f) {
						t.Errorf("unexpected %s finding for %s %s: %s", f.Kind, f.Subject, f.Path, f.Message)
					}
				}
			}
			if t.Failed() {
				var buf bytes.Buffer
				r.WriteText(&buf)
				t.Log("\n" + buf.String())
			}
		})
	}
}

func findOne(t *testing.T, r *Report, kind, subject, path string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Kind == kind && f.Subject == subject && (path == "" || f.Path == path) {
			return f
		}
	}
	t.Fatalf("no %s finding for %s %s", kind, subject, path)
	return Finding{}
}

// Findings point at the line to change.
func TestFindingPositions(t *testing.T) {
	r := analyze(t, selectorWorld.model(t), Options{})
	f := findOne(t, r, KindPolicySelectsNothing, "h/ghost", "")
	if want := fmt.Sprintf("p0.yaml:%d", lineOf(t, selectorWorld.policies[0], "matchLabels: {app: ghost}")); f.Pos != want {
		t.Errorf("policy-selects-nothing at %q, want %q", f.Pos, want)
	}
	f = findOne(t, r, KindPeerMatchesNothing, "h/ok", "spec.ingress[0].from[2]")
	if want := fmt.Sprintf("p2.yaml:%d", lineOf(t, selectorWorld.policies[2], "team: nobody")); f.Pos != want {
		t.Errorf("peer-matches-nothing at %q, want %q", f.Pos, want)
	}
	if !strings.Contains(f.Message, `namespaceSelector "team=nobody" matches no namespace`) {
		t.Errorf("message %q", f.Message)
	}
	f = findOne(t, r, KindPolicySelectsNothing, "h/hostonly", "")
	if !strings.Contains(f.Message, "only hostNetwork pods") {
		t.Errorf("message %q", f.Message)
	}

	r = analyze(t, internetWorld.model(t), Options{})
	f = findOne(t, r, KindEgressOpenToInternet, "e/nat", "")
	if want := fmt.Sprintf("p1.yaml:%d", lineOf(t, internetWorld.policies[1], "ipBlock")); f.Pos != want {
		t.Errorf("egress-open-to-internet at %q, want %q", f.Pos, want)
	}
	if !strings.Contains(f.Message, "e/nat-out spec.egress[0].to[0] allows ipBlock 0.0.0.0/0 except 10.0.0.0/8 on all ports") {
		t.Errorf("message %q", f.Message)
	}
	f = findOne(t, r, KindEgressOpenToInternet, "e/free", "")
	if f.Pos != "pods.yaml:1" {
		t.Errorf("unisolated endpoint at %q, want its manifest pods.yaml:1", f.Pos)
	}
	f = findOne(t, r, KindEgressBlocksDNS, "e/https", "")
	if !strings.Contains(f.Message, "198.51.100.53") || !strings.Contains(f.Hint, "k8s-app: kube-dns") ||
		!strings.Contains(f.Hint, "{port: 53, protocol: TCP}") {
		t.Errorf("dns finding: %+v", f)
	}
}

// The rule-based internet check agrees with the verdict engine on an
// address of TEST-NET-3.
func TestInternetAgreesWithVerdict(t *testing.T) {
	m := internetWorld.model(t)
	r := analyze(t, m, Options{})
	out, err := m.Party("203.0.113.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Endpoints {
		if e.Name == "v6" {
			continue // an IPv6 block says nothing of an IPv4 address
		}
		flagged := false
		for _, f := range r.Findings {
			flagged = flagged || (f.Kind == KindEgressOpenToInternet && f.Subject == e.Ref())
		}
		open := false
		for _, p := range probes(t, "443/TCP", "80/TCP", "53/UDP") {
			open = open || m.Verdict(p.Query(policy.Party{Endpoint: e}, out)).Allowed
		}
		if flagged != open {
			t.Errorf("%s: flagged %v, verdict to 203.0.113.1 allowed %v", e.Ref(), flagged, open)
		}
	}
}

func TestDNSIngressMessage(t *testing.T) {
	r := analyze(t, dnsWorld.model(t), Options{})
	f := findOne(t, r, KindEgressBlocksDNS, "g/client", "")
	if !strings.Contains(f.Message, "ingress of kube-system/coredns (isolated by kube-system/dns-from-f)") {
		t.Errorf("message %q", f.Message)
	}
	f = findOne(t, r, KindEgressBlocksDNS, "f/nodns", "")
	if !strings.Contains(f.Message, "no egress rule of its policies allows DNS (53/UDP) to kube-system/coredns") ||
		!strings.Contains(f.Hint, "namespace: f") {
		t.Errorf("finding %+v", f)
	}
}

// shopWorld: wordpress in web reaches mysql and the api in data; both
// reach the cache; only mysql reaches redis; the api reaches wordpress
// back, so the second wordpress pod is two hops away from the first.
var shopWorld = world{
	namespaces: map[string]string{"web": "team=web", "data": "team=data", "ops": "team=ops"},
	pods: []tpod{
		{ref: "web/wordpress-1", labels: "app=wordpress", ports: "http:80/TCP"},
		{ref: "web/wordpress-2", labels: "app=wordpress", ports: "http:80/TCP"},
		{ref: "data/api", labels: "app=api", ports: "8080/TCP"},
		{ref: "data/mysql", labels: "app=mysql", ports: "3306/TCP"},
		{ref: "data/cache", labels: "app=cache", ports: "6379/TCP"},
		{ref: "data/redis", labels: "app=redis", ports: "6379/TCP"},
		{ref: "ops/backup", labels: "app=backup"},
	},
	policies: []string{
		`metadata: {name: deny, namespace: web}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
		`metadata: {name: wordpress-from-api, namespace: web}
spec:
  podSelector: {matchLabels: {app: wordpress}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: data}}, podSelector: {matchLabels: {app: api}}}], ports: [{port: http}]}]`,
		`metadata: {name: deny, namespace: data}
spec: {podSelector: {}, policyTypes: [Ingress]}`,
		`metadata: {name: from-wordpress, namespace: data}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [mysql, api]}]}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: web}}, podSelector: {matchLabels: {app: wordpress}}}]
    ports: [{port: 3306}, {port: 8080}]`,
		`metadata: {name: cache, namespace: data}
spec:
  podSelector: {matchLabels: {app: cache}}
  ingress: [{from: [{podSelector: {matchExpressions: [{key: app, operator: In, values: [mysql, api]}]}}], ports: [{port: 6379}]}]`,
		`metadata: {name: redis, namespace: data}
spec:
  podSelector: {matchLabels: {app: redis}}
  ingress: [{from: [{podSelector: {matchLabels: {app: mysql}}}], ports: [{port: 6379}]}]`,
		`metadata: {name: deny, namespace: ops}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}`,
	},
}

func TestBlastRadius(t *testing.T) {
	m := shopWorld.model(t)
	r := analyze(t, m, Options{Compromised: "web/wordpress-1"})
	br := r.BlastRadius
	if br == nil || br.Compromised != "web/wordpress-1" {
		t.Fatalf("blast radius %+v", br)
	}
	var got []string
	for _, re := range br.Reachable {
		hops := make([]string, len(re.Path))
		for i, h := range re.Path {
			hops[i] = h.String()
		}
		if len(re.Path) != re.Depth {
			t.Errorf("%s: depth %d, path of %d hops", re.Endpoint, re.Depth, len(re.Path))
		}
		got = append(got, fmt.Sprintf("%d %s: %s", re.Depth, re.Endpoint, strings.Join(hops, " | ")))
	}
	wantPaths := []string{
		"1 data/api: web/wordpress-1 -> data/api (8080/TCP)",
		"1 data/mysql: web/wordpress-1 -> data/mysql (3306/TCP)",
		// Through the api, not mysql: data/api < data/mysql.
		"2 data/cache: web/wordpress-1 -> data/api (8080/TCP) | data/api -> data/cache (6379/TCP)",
		// Only mysql reaches redis: wordpress does not, directly.
		"2 data/redis: web/wordpress-1 -> data/mysql (3306/TCP) | data/mysql -> data/redis (6379/TCP)",
		// Its own class, back through the api.
		"2 web/wordpress-2: web/wordpress-1 -> data/api (8080/TCP) | data/api -> web/wordpress-2 (80/TCP)",
	}
	if strings.Join(got, "\n") != strings.Join(wantPaths, "\n") {
		t.Errorf("blast radius:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantPaths, "\n"))
	}
	f := findOne(t, r, KindBlastRadius, "web/wordpress-1", "")
	if f.Severity != High || !strings.Contains(f.Message, "5 endpoints in 2 namespaces (2 directly, up to 2 hops away)") {
		t.Errorf("blast finding %+v", f)
	}

	// From ops/backup, whose egress is denied: nothing.
	r = analyze(t, m, Options{Compromised: "ops/backup"})
	if len(r.BlastRadius.Reachable) != 0 {
		t.Errorf("backup reaches %+v", r.BlastRadius.Reachable)
	}
	if f := findOne(t, r, KindBlastRadius, "ops/backup", ""); f.Severity != Info {
		t.Errorf("blast finding %+v", f)
	}

	// Without --compromised there is neither the section nor the finding.
	r = analyze(t, m, Options{})
	if r.BlastRadius != nil {
		t.Error("blast radius without a compromised endpoint")
	}
	for _, f := range r.Findings {
		if f.Kind == KindBlastRadius {
			t.Errorf("finding %+v", f)
		}
	}
}

func TestHostNetwork(t *testing.T) {
	r := analyze(t, hostWorld.model(t), Options{})
	w := r.Workloads[0]
	if w.Ref != "a/agent" || !w.HostNetwork || w.IngressIsolated || w.EgressIsolated || len(w.IngressPolicies) > 0 {
		t.Errorf("workload %+v", w)
	}
	f := findOne(t, r, KindReachableFromEveryNamespace, "a/agent", "")
	if !strings.Contains(f.Message, "host network") {
		t.Errorf("message %q", f.Message)
	}
}

// A model without endpoints still analyzes, and renders.
func TestEmptyModel(t *testing.T) {
	r := analyze(t, world{policies: selectorWorld.policies[3:]}.model(t), Options{Compromised: ""})
	if r.Summary.Endpoints != 0 || r.Summary.Classes != 0 || len(r.Findings) != 1 ||
		r.Findings[0].Kind != KindPolicySelectsNothing {
		t.Errorf("report %+v", r)
	}
	if out := render(t, r); !strings.Contains(out, "digraph rampart {\n") {
		t.Errorf("output:\n%s", out)
	}
}

func TestBadOptions(t *testing.T) {
	m := shopWorld.model(t)
	if _, err := Analyze(m, Options{Compromised: "web/nope"}); err == nil ||
		!strings.Contains(err.Error(), `"web/nope"`) || !strings.Contains(err.Error(), "data/api") {
		t.Errorf("unknown compromised endpoint: %v", err)
	}
	if _, err := Analyze(m, Options{Probes: []policy.Probe{{Port: 80}}}); err == nil {
		t.Error("probe without a protocol accepted")
	}
	if _, err := Analyze(m, Options{Probes: []policy.Probe{{Protocol: corev1.ProtocolTCP}}}); err == nil {
		t.Error("probe without a port accepted")
	}
}

func TestProbes(t *testing.T) {
	r := analyze(t, shopWorld.model(t), Options{})
	if got, want := strings.Join(r.Summary.Probes, " "), "80/TCP 3306/TCP 6379/TCP 8080/TCP"; got != want || r.Summary.ProbesGiven {
		t.Errorf("probes %q (given %v), want %q", got, r.Summary.ProbesGiven, want)
	}
	r = analyze(t, world{pods: []tpod{{ref: "a/x"}, {ref: "a/y"}}}.model(t), Options{})
	if got := strings.Join(r.Summary.Probes, " "); got != "80/TCP" {
		t.Errorf("probes without declared ports: %q", got)
	}
	r = analyze(t, shopWorld.model(t), Options{Probes: probes(t, "http/TCP", "6379/TCP", "http/TCP")})
	if got := strings.Join(r.Summary.Probes, " "); got != "http/TCP 6379/TCP" || !r.Summary.ProbesGiven {
		t.Errorf("given probes: %q", got)
	}
}

func TestReachSummary(t *testing.T) {
	m := shopWorld.model(t)
	r := analyze(t, m, Options{})
	byMember := map[string]ClassReach{}
	for _, c := range r.Classes {
		for _, e := range c.Members {
			byMember[e] = c
		}
	}
	for _, tc := range []struct {
		ref       string
		reaches   int
		reachedBy int
		from      string
	}{
		// wordpress: api, mysql (not the other wordpress: web denies it);
		// reached by the api only.
		{"web/wordpress-1", 2, 1, "data"},
		// api: cache, and both wordpress pods; reached by both wordpress pods.
		{"data/api", 3, 2, "web"},
		{"data/redis", 0, 1, "data"},
		// backup's egress is denied; ops denies ingress.
		{"ops/backup", 0, 0, ""},
	} {
		c := byMember[tc.ref]
		if c.Reaches != tc.reaches || c.ReachedBy != tc.reachedBy || strings.Join(c.FromNamespaces, ",") != tc.from {
			t.Errorf("%s: reaches %d, reached by %d from %v; want %d, %d, %s",
				tc.ref, c.Reaches, c.ReachedBy, c.FromNamespaces, tc.reaches, tc.reachedBy, tc.from)
		}
	}
	if len(byMember["web/wordpress-1"].Members) != 2 {
		t.Errorf("wordpress class %+v", byMember["web/wordpress-1"])
	}
	// Workloads.
	for _, w := range r.Workloads {
		if w.Ref == "ops/backup" && (!w.IngressIsolated || !w.EgressIsolated || w.EgressPolicies[0] != "ops/deny") {
			t.Errorf("backup %+v", w)
		}
		if w.Ref == "web/wordpress-1" && (strings.Join(w.IngressPolicies, ",") != "web/deny,web/wordpress-from-api" || w.EgressIsolated) {
			t.Errorf("wordpress %+v", w)
		}
	}
}

func TestJSON(t *testing.T) {
	r := analyze(t, shopWorld.model(t), Options{Compromised: "web/wordpress-1"})
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if err := back.WriteText(io.Discard); err != nil {
		t.Errorf("text of a decoded report: %v", err)
	}
	if err := back.WriteDOT(io.Discard); err == nil {
		t.Error("DOT of a decoded report: no error")
	}
	if !strings.HasPrefix(buf.String(), "{\n  \"summary\": {") {
		t.Errorf("not indented:\n%.200s", buf.String())
	}
	var doc struct {
		Summary struct {
			Endpoints, Namespaces, Policies, Classes int
			Probes                                   []string
			ProbesGiven                              bool `json:"probesGiven"`
			Findings                                 map[string]int
		}
		Workloads []map[string]any
		Findings  []map[string]any
		Classes   []map[string]any
		Blast     struct {
			Compromised string
			Reachable   []struct {
				Endpoint string
				Depth    int
				Path     []struct {
					From, To string
					Ports    []string
				}
			}
		} `json:"blastRadius"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Summary
	if s.Endpoints != 7 || s.Namespaces != 3 || s.Policies != 7 || s.Classes != 6 || len(s.Probes) != 4 || s.ProbesGiven {
		t.Errorf("summary %+v", s)
	}
	if s.Findings["high"]+s.Findings["medium"]+s.Findings["low"]+s.Findings["info"] != len(doc.Findings) {
		t.Errorf("finding counts %v for %d findings", s.Findings, len(doc.Findings))
	}
	w := doc.Workloads[0]
	for _, k := range []string{"ref", "namespace", "name", "kind", "class", "hostNetwork", "ingressIsolated", "egressIsolated", "pos"} {
		if _, ok := w[k]; !ok {
			t.Errorf("workload without %q: %v", k, w)
		}
	}
	for _, f := range doc.Findings {
		for _, k := range []string{"kind", "severity", "subject", "subjectKind", "namespace", "message"} {
			if _, ok := f[k]; !ok {
				t.Errorf("finding without %q: %v", k, f)
			}
		}
	}
	if first := doc.Findings[0]; first["kind"] != KindBlastRadius || first["severity"] != "high" {
		t.Errorf("first finding %v, want the high blast radius", first)
	}
	for _, k := range []string{"id", "namespace", "members", "reaches", "reachedBy", "fromNamespaces"} {
		if _, ok := doc.Classes[0][k]; !ok {
			t.Errorf("class without %q: %v", k, doc.Classes[0])
		}
	}
	if doc.Blast.Compromised != "web/wordpress-1" || len(doc.Blast.Reachable) != 5 {
		t.Fatalf("blastRadius %+v", doc.Blast)
	}
	re := doc.Blast.Reachable[3]
	if re.Endpoint != "data/redis" || re.Depth != 2 || re.Path[1].From != "data/mysql" || re.Path[1].To != "data/redis" ||
		strings.Join(re.Path[1].Ports, ",") != "6379/TCP" {
		t.Errorf("redis %+v", re)
	}
}

func TestDOT(t *testing.T) {
	r := analyze(t, shopWorld.model(t), Options{Compromised: "web/wordpress-1"})
	var buf bytes.Buffer
	if err := r.WriteDOT(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "digraph rampart {\n") || !strings.HasSuffix(out, "}\n") ||
		strings.Count(out, "{") != strings.Count(out, "}") {
		t.Fatalf("not a digraph:\n%s", out)
	}
	for _, s := range []string{
		`subgraph "cluster_data" {`,
		`label="data";`,
		`"web/wordpress-1" [label="wordpress-1\nDeployment", style="rounded,filled", fillcolor=red, fontcolor=white];`,
		`"data/redis" [label="redis\nDeployment", color=red, fontcolor=red];`,
		`"web/wordpress-1" -> "data/mysql" [label="3306/TCP", color=red, fontcolor=red, penwidth=2];`,
		`"data/mysql" -> "data/redis" [label="6379/TCP", color=red, fontcolor=red, penwidth=2];`,
		`"data/mysql" -> "data/cache" [label="6379/TCP", color=red, fontcolor=red];`,
		`"data/api" -> "web/wordpress-2" [label="80/TCP", color=red, fontcolor=red, penwidth=2];`,
		`"data/api" -> "web/wordpress-1" [label="80/TCP", color=red, fontcolor=red];`,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("DOT lacks %s", s)
		}
	}
	// Exactly the reaching pairs, and nothing from the isolated backup.
	edges := strings.Count(out, " -> ")
	if edges != 9 || strings.Contains(out, `"ops/backup" ->`) || strings.Contains(out, `"web/wordpress-1" -> "data/redis"`) {
		t.Errorf("%d edges:\n%s", edges, out)
	}
	if strings.Contains(out, `"ops/backup" [label="backup\nDeployment", color=red`) {
		t.Error("backup highlighted")
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *policy.Model
		opt  Options
	}{
		{"shop", shopWorld.model(t), Options{Compromised: "web/wordpress-1"}},
		{"internet", internetWorld.model(t), Options{}},
		{"exposure", exposureWorld.model(t), Options{Probes: probes(t, "80/TCP", "8080/TCP")}},
		{"generated", genModel(3, 400, 40, 120), Options{Compromised: "middle"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opt.Compromised == "middle" {
				tc.opt.Compromised = middle(tc.m)
			}
			r := analyze(t, tc.m, tc.opt)
			var buf bytes.Buffer
			if err := r.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			last := -1
			for _, s := range []string{"rampart analyze: ", "\nISOLATION", "\nFINDINGS", "\nREACHABILITY", "\nBLAST RADIUS"} {
				i := strings.Index(out, s)
				if s == "\nBLAST RADIUS" && tc.opt.Compromised == "" {
					if i >= 0 {
						t.Error("blast radius section without --compromised")
					}
					continue
				}
				if i <= last {
					t.Errorf("section %q at %d, after %d", s, i, last)
				}
				last = i
			}
			for i, l := range strings.Split(out, "\n") {
				if len(l) > 120 {
					t.Errorf("line %d has %d characters: %s", i+1, len(l), l)
				}
			}
			// High before medium before low.
			hi, me, lo := strings.Index(out, "\n[high]"), strings.Index(out, "\n[medium]"), strings.Index(out, "\n[low]")
			if (hi >= 0 && me >= 0 && hi > me) || (me >= 0 && lo >= 0 && me > lo) {
				t.Errorf("severities out of order: high %d, medium %d, low %d", hi, me, lo)
			}
			if t.Failed() || testing.Verbose() {
				t.Log("\n" + out)
			}
		})
	}
}

func TestTextShop(t *testing.T) {
	r := analyze(t, shopWorld.model(t), Options{Compromised: "web/wordpress-1"})
	var buf bytes.Buffer
	r.WriteText(&buf)
	out := buf.String()
	for _, s := range []string{
		"rampart analyze: 7 endpoints, 3 namespaces, 7 policies, 6 classes, 4 probes\nprobes: 80/TCP, 3306/TCP, 6379/TCP, 8080/TCP\n",
		"  1  web/wordpress-1 -> data/mysql (3306/TCP)\n",
		"  2  web/wordpress-1 -> data/mysql (3306/TCP) -> data/redis (6379/TCP)\n",
		"[low] no-default-deny-egress (2 namespaces)\n  data, web\n",
		"[medium] egress-open-to-internet: 4 endpoints in data\n  - api, cache, mysql, redis: egress to any address",
		"[medium] egress-open-to-internet: 2 endpoints in web\n  - wordpress-1, wordpress-2: egress to any address",
		"  fix: as above, in namespace web\n",
		"      metadata: {name: default-deny-egress, namespace: data}\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("text lacks %q", s)
		}
	}
	if t.Failed() {
		t.Log("\n" + out)
	}
}

// middle is the endpoint in the middle of the model, to compromise.
func middle(m *policy.Model) string { return m.Endpoints[len(m.Endpoints)/2].Ref() }

func render(t testing.TB, r *Report) string {
	var buf bytes.Buffer
	for _, f := range []func(w *bytes.Buffer) error{
		func(w *bytes.Buffer) error { return r.WriteText(w) },
		func(w *bytes.Buffer) error { return r.WriteJSON(w) },
		func(w *bytes.Buffer) error { return r.WriteDOT(w) },
	} {
		if err := f(&buf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// The same input gives byte-identical output, whether the model is reused
// or rebuilt.
func TestDeterministic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model func() *policy.Model
		opt   Options
	}{
		{"shop", func() *policy.Model { return shopWorld.model(t) }, Options{Compromised: "web/wordpress-1"}},
		{"generated", func() *policy.Model { return genModel(7, 600, 30, 150) }, Options{Compromised: "middle"}},
		{"generated with tiers", func() *policy.Model { return genModelTiers(7, 600, 30, 150) }, Options{Compromised: "middle"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.model()
			if tc.opt.Compromised == "middle" {
				tc.opt.Compromised = middle(m)
			}
			first := render(t, analyze(t, m, tc.opt))
			if again := render(t, analyze(t, m, tc.opt)); again != first {
				t.Error("second analysis of the same model differs")
			}
			if again := render(t, analyze(t, tc.model(), tc.opt)); again != first {
				t.Error("analysis of a rebuilt model differs")
			}
		})
	}
}

// The class-level relation agrees with the verdict engine on every pair of
// endpoints, and the blast radius with a plain breadth-first search over
// endpoints.
func TestReachAgreesWithVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *policy.Model
	}{
		{"shop", shopWorld.model(t)},
		{"exposure", exposureWorld.model(t)},
		{"generated", genModel(11, 160, 12, 70)},
		{"generated with tiers", genModelTiers(11, 160, 12, 70)},
		{"random with cluster-wide policies", randomModel(t, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			r := analyze(t, m, Options{})
			a := r.a
			reaches := func(x, y *policy.Endpoint) []string {
				var on []string
				for _, p := range a.probes {
					if x != y && a.takes(m.ClassOf(y).ID, p) && m.Verdict(p.Query(policy.Party{Endpoint: x}, policy.Party{Endpoint: y})).Allowed {
						on = append(on, p.String())
					}
				}
				return on
			}
			adj := map[*policy.Endpoint][]*policy.Endpoint{}
			bad := 0
			for _, x := range m.Endpoints {
				for _, y := range m.Endpoints {
					want := reaches(x, y)
					cx, cy := m.ClassOf(x).ID, m.ClassOf(y).ID
					got := a.reach[cx].has(cy) && x != y
					if got != (len(want) > 0) || (got && strings.Join(a.pairProbes(cx, cy), ",") != strings.Join(want, ",")) {
						if bad++; bad < 10 {
							t.Errorf("%s -> %s: class relation %v on %v, verdicts %v", x.Ref(), y.Ref(), got, a.pairProbes(cx, cy), want)
						}
					}
					if len(want) > 0 {
						adj[x] = append(adj[x], y)
					}
				}
			}
			// Endpoint-level BFS, neighbours in order: lexicographically
			// smallest shortest paths.
			for _, start := range []*policy.Endpoint{m.Endpoints[0], m.Endpoints[len(m.Endpoints)/2]} {
				path := map[*policy.Endpoint][]string{start: {start.Ref()}}
				queue := []*policy.Endpoint{start}
				for len(queue) > 0 {
					u := queue[0]
					queue = queue[1:]
					for _, v := range adj[u] {
						if _, ok := path[v]; !ok {
							path[v] = append(append([]string(nil), path[u]...), v.Ref())
							queue = append(queue, v)
						}
					}
				}
				br := analyze(t, m, Options{Compromised: start.Ref()}).BlastRadius
				if len(br.Reachable) != len(path)-1 {
					t.Errorf("from %s: %d reached, plain BFS %d", start.Ref(), len(br.Reachable), len(path)-1)
				}
				for _, re := range br.Reachable {
					hops := []string{re.Path[0].From}
					for _, h := range re.Path {
						hops = append(hops, h.To)
					}
					want := path[m.Endpoint(re.Endpoint)]
					if strings.Join(hops, " ") != strings.Join(want, " ") {
						t.Errorf("from %s to %s: path %v, plain BFS %v", start.Ref(), re.Endpoint, hops, want)
					}
				}
			}
		})
	}
}

// BenchmarkAnalyzeLarge is the scale target: 10,000 workloads in 500
// namespaces with 2,000 policies, default probes.
func BenchmarkAnalyzeLarge(b *testing.B) {
	m := genModel(1, 10000, 500, 2000)
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
			b.ReportMetric(float64(len(r.Summary.Probes)), "probes")
			b.ReportMetric(float64(len(r.Findings)), "findings")
		}
	}
}
