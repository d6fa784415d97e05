package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	corev1 "k8s.io/api/core/v1"
)

// clusterSnapshot is the e2e model (namespaces x, y, z labelled ns=<name>,
// pods a, b, c in each) with manifests read from docs, one file each
// (p0.yaml, p1.yaml, ...), so that diagnostics have lines.
func clusterSnapshot(t testing.TB, docs ...string) *cluster.Snapshot {
	t.Helper()
	s := policytest.E2ESnapshot(e2eAddr)
	for i, d := range docs {
		cluster.LoadBytes(fmt.Sprintf("p%d.yaml", i), []byte(strings.TrimLeft(d, "\n")), s)
	}
	s.Finish()
	if cluster.HasErrors(s.Diagnostics) {
		t.Fatalf("loading: %v", s.Diagnostics)
	}
	return s
}

func clusterModel(t testing.TB, docs ...string) *Model {
	t.Helper()
	m, diags, err := FromSnapshot(clusterSnapshot(t, docs...), false)
	if err != nil {
		t.Fatalf("%v: %v", err, diags)
	}
	return m
}

const (
	cnpHead = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
	anpHead = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\n"
	bnpHead = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\n"
)

// Each case is one cluster-wide policy over the e2e model and the one
// diagnostic it must produce, with its field path.
func TestValidateClusterPolicies(t *testing.T) {
	long := strings.Repeat("r", 101)
	many := "[" + strings.Repeat("{action: Deny, to: [{namespaces: {}}]},", 26) + "]"
	for _, tc := range []struct {
		name, doc string
		sev       cluster.Severity
		path      string
		contains  string
	}{
		{"tier missing", cnpHead + `metadata: {name: p}
spec: {priority: 1, subject: {namespaces: {}}}`, cluster.Error, "spec.tier", "Required value"},
		{"tier value", cnpHead + `metadata: {name: p}
spec: {tier: admin, priority: 1, subject: {namespaces: {}}}`, cluster.Error, "spec.tier", `"Admin", "Baseline"`},
		{"priority range", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1001, subject: {namespaces: {}}}`, cluster.Error, "spec.priority", "between 0 and 1000"},
		{"priority missing", cnpHead + `metadata: {name: p}
spec: {tier: Admin, subject: {namespaces: {}}}`, cluster.Error, "spec.priority", "Required value"},
		{"subject with both", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}}`,
			cluster.Error, "spec.subject", "at most 1 properties"},
		{"subject empty", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {}}`, cluster.Error, "spec.subject", "at least 1 properties"},
		{"v1alpha1 action in v1alpha2", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Allow, to: [{namespaces: {}}]}]}`,
			cluster.Error, "spec.egress[0].action", `"Accept", "Deny", "Pass"`},
		{"action missing", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{to: [{namespaces: {}}]}]}`,
			cluster.Error, "spec.egress[0].action", "Required value"},
		{"no peer", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: []}]}`,
			cluster.Error, "spec.ingress[0].from", "at least 1 items"},
		{"peer with two fields", cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{namespaces: {}, networks: [198.18.0.0/16]}]}]`,
			cluster.Error, "spec.egress[0].to[0]", "at most 1 properties"},
		{"empty peer", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{}]}]}`,
			cluster.Error, "spec.egress[0].to[0]", "at least 1 properties"},
		{"bad CIDR", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [198.18.0.0/33]}]}]}`,
			cluster.Error, "spec.egress[0].to[0].networks[0]", "Invalid CIDR"},
		{"duplicate network", cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{networks: [198.18.0.0/16, 198.18.0.0/16]}]}]`,
			cluster.Error, "spec.egress[0].to[0].networks[1]", "Duplicate value"},
		{"host bits", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [198.18.0.1/16]}]}]}`,
			cluster.Warning, "spec.egress[0].to[0].networks[0]", "host bits"},
		{"domain names in a Deny rule", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{domainNames: [example.com]}]}]}`,
			cluster.Error, "spec.egress[0].to[0].domainNames", "only supported for Accept rules"},
		{"domain names are not enforced", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Accept, to: [{domainNames: ["*.example.com"]}]}]}`,
			cluster.Warning, "spec.egress[0].to[0].domainNames", "not enforced"},
		{"bad domain name", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Accept, to: [{domainNames: ["ex*.com"]}]}]}`,
			cluster.Error, "spec.egress[0].to[0].domainNames[0]", "not a domain name"},
		{"named port with networks", cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{networks: [198.18.0.0/16]}], protocols: [{destinationNamedPort: serve-80-tcp}]}]`,
			cluster.Error, "spec.egress[0]", "cannot be set with namedPorts"},
		{"two protocols in an entry", cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}, udp: {destinationPort: {number: 80}}}]}]`,
			cluster.Error, "spec.ingress[0].protocols[0]", "at most 1 properties"},
		{"tcp without a port", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {}}]}]}`,
			cluster.Error, "spec.ingress[0].protocols[0].tcp", "destinationPort"},
		{"range backwards", cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{sctp: {destinationPort: {range: {start: 90, end: 90}}}}]}]`,
			cluster.Error, "spec.ingress[0].protocols[0].sctp.destinationPort.range", "Start port must be less than End port"},
		{"port number", cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{udp: {destinationPort: {number: 70000}}}]}]`,
			cluster.Error, "spec.ingress[0].protocols[0].udp.destinationPort.number", "between 1 and 65535"},
		{"rule name", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{name: ` + long + `, action: Deny, from: [{namespaces: {}}]}]}`,
			cluster.Error, "spec.ingress[0].name", "longer than 100"},
		{"too many rules", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: ` + many + `}`,
			cluster.Error, "spec.egress", "at most 25 items"},
		{"bad selector", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {matchExpressions: [{key: ns, operator: In}]}}}`,
			cluster.Error, "spec.subject.namespaces.matchExpressions[0].values", "must be specified"},
		{"namespace on a cluster-scoped object", cnpHead + `metadata: {name: p, namespace: x}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}`, cluster.Warning, "metadata.namespace", "cluster-scoped"},
		{"subject selects nothing", cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: nope}}}}}`,
			cluster.Warning, "spec.subject", "selects no pod"},
		{"v1alpha2 action in v1alpha1", anpHead + `metadata: {name: p}
spec: {priority: 1, subject: {namespaces: {}}, egress: [{action: Accept, to: [{namespaces: {}}]}]}`,
			cluster.Error, "spec.egress[0].action", `"Allow", "Deny", "Pass"`},
		{"v1alpha1 port entry with two fields", anpHead + `metadata: {name: p}
spec:
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{portNumber: {port: 80}, namedPort: http}]}]`,
			cluster.Error, "spec.ingress[0].ports[0]", "at most 1 properties"},
		{"v1alpha1 protocol", anpHead + `metadata: {name: p}
spec:
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{portNumber: {protocol: ICMP, port: 80}}]}]`,
			cluster.Error, "spec.ingress[0].ports[0].portNumber.protocol", "supported values"},
		{"v1alpha1 range backwards", anpHead + `metadata: {name: p}
spec:
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{portRange: {start: 90, end: 80}}]}]`,
			cluster.Error, "spec.ingress[0].ports[0].portRange", "Start port must be less than End port"},
		{"v1alpha1 domain names in a Pass rule", anpHead + `metadata: {name: p}
spec: {priority: 1, subject: {namespaces: {}}, egress: [{action: Pass, to: [{domainNames: [example.com]}]}]}`,
			cluster.Error, "spec.egress[0].to[0].domainNames", "only supported for Allow rules"},
		{"baseline singleton", bnpHead + `metadata: {name: other}
spec: {subject: {namespaces: {}}}`, cluster.Error, "metadata.name", `metadata.name="default"`},
		{"no Pass in the baseline", bnpHead + `metadata: {name: default}
spec: {subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {}}]}]}`,
			cluster.Error, "spec.ingress[0].action", `"Allow", "Deny"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags := Validate(clusterSnapshot(t, tc.doc))
			if len(diags) != 1 {
				t.Fatalf("diagnostics = %v", diags)
			}
			d := diags[0]
			if d.Severity != tc.sev || d.Path != tc.path || !strings.Contains(d.String(), tc.contains) ||
				!strings.HasSuffix(d.Object, " p") && !strings.HasSuffix(d.Object, "other") && !strings.HasSuffix(d.Object, "default") {
				t.Errorf("got %s (path %q)", d, d.Path)
			}
			if d.File != "p0.yaml" || d.Line == 0 {
				t.Errorf("no file:line: %s", d)
			}
		})
	}
}

// Ties of priority within a tier, and the two Baseline kinds side by side,
// are warned about, on the policy applied second.
func TestValidateTies(t *testing.T) {
	diags := Validate(clusterSnapshot(t,
		cnpHead+"metadata: {name: b}\nspec: {tier: Admin, priority: 5, subject: {namespaces: {}}}",
		anpHead+"metadata: {name: a}\nspec: {priority: 5, subject: {namespaces: {}}}",
		cnpHead+"metadata: {name: c}\nspec: {tier: Baseline, priority: 5, subject: {namespaces: {}}}",
		cnpHead+"metadata: {name: d}\nspec: {tier: Admin, priority: 6, subject: {namespaces: {}}}",
		bnpHead+"metadata: {name: default}\nspec: {subject: {namespaces: {}}}",
	))
	var got []string
	for _, d := range diags {
		got = append(got, d.Object+": "+d.Message)
	}
	if len(diags) != 2 || diags[0].Object != "ClusterNetworkPolicy b" || diags[0].Path != "spec.priority" ||
		!strings.Contains(diags[0].Message, "same priority (5) as AdminNetworkPolicy a in the Admin tier") ||
		!strings.Contains(diags[0].Message, "applies AdminNetworkPolicy a first") ||
		diags[1].Object != "BaselineAdminNetworkPolicy default" || !strings.Contains(diags[1].Message, "after them") {
		t.Errorf("diagnostics:\n%s", strings.Join(got, "\n"))
	}
}

// verdictOf decides ns/pod -> ns/pod on a probe.
func verdictOf(t testing.TB, m *Model, from, to, probe string) Result {
	t.Helper()
	pr, err := ParseProbe(probe)
	if err != nil {
		t.Fatal(err)
	}
	src, err := m.Party(from)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := m.Party(to)
	if err != nil {
		t.Fatal(err)
	}
	return m.Verdict(pr.Query(src, dst))
}

// The semantics that the conformance suite leaves open, each decided one
// way and held to it here (cluster.go lists them).
func TestClusterSemantics(t *testing.T) {
	for _, tc := range []struct {
		name     string
		docs     []string
		from, to string
		probe    string
		allowed  bool
		by       string // the evaluator of the side that decides
		policy   string // the cluster policy whose rule decided
	}{
		{"v1alpha1 Allow is Accept, and overrides NetworkPolicy", []string{
			anpHead + `metadata: {name: allow}
spec: {priority: 3, subject: {namespaces: {matchLabels: {ns: x}}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}`,
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\nspec: {podSelector: {}}",
		}, "y/a", "x/a", "80/TCP", true, "admin", "AdminNetworkPolicy allow"},
		{"same priority: by name", []string{
			cnpHead + `metadata: {name: b-accept}
spec: {tier: Admin, priority: 5, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{namespaces: {}}]}]}`,
			cnpHead + `metadata: {name: a-deny}
spec: {tier: Admin, priority: 5, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}`,
		}, "y/a", "x/a", "80/TCP", false, "admin", "ClusterNetworkPolicy a-deny"},
		{"lower priority number first", []string{
			cnpHead + `metadata: {name: a-deny}
spec: {tier: Admin, priority: 6, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}`,
			cnpHead + `metadata: {name: b-accept}
spec: {tier: Admin, priority: 5, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{namespaces: {}}]}]}`,
		}, "y/a", "x/a", "80/TCP", true, "admin", "ClusterNetworkPolicy b-accept"},
		{"the v1alpha1 baseline comes after the v1alpha2 baseline", []string{
			bnpHead + `metadata: {name: default}
spec: {subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}`,
			cnpHead + `metadata: {name: z}
spec: {tier: Baseline, priority: 1000, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{namespaces: {}}]}]}`,
		}, "y/a", "x/a", "80/TCP", true, "baseline", "ClusterNetworkPolicy z"},
		{"a Pass in the baseline tier falls to the default", []string{
			cnpHead + `metadata: {name: pass}
spec: {tier: Baseline, priority: 1, subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {}}]}]}`,
			cnpHead + `metadata: {name: deny}
spec: {tier: Baseline, priority: 2, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}`,
		}, "y/a", "x/a", "80/TCP", true, "default", ""},
		{"NetworkPolicy overrides the baseline", []string{
			cnpHead + `metadata: {name: deny}
spec: {tier: Baseline, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}`,
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow, namespace: x}\nspec: {podSelector: {}, ingress: [{}]}",
		}, "y/a", "x/a", "80/TCP", true, "network-policy", ""},
		{"a named port without protocol matches the container port's", []string{
			cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: serve-81-udp}]}]`,
		}, "y/a", "x/a", "81/UDP", false, "admin", "ClusterNetworkPolicy p"},
		{"... and no other protocol", []string{
			cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: serve-81-udp}]}]`,
		}, "y/a", "x/a", "81/TCP", true, "default", ""},
		{"domain names match no address", []string{
			cnpHead + `metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress:
  - {action: Accept, to: [{domainNames: [example.com]}]}
  - {action: Deny, to: [{networks: [0.0.0.0/0]}]}`,
		}, "x/a", "192.0.2.10", "443/TCP", false, "admin", "ClusterNetworkPolicy p"},
		{"networks match pods too", []string{
			cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [` + e2eBlock + `]}]}]}`,
		}, "x/a", "y/b", "80/TCP", false, "admin", "ClusterNetworkPolicy p"},
		{"hostNetwork pods are never subjects", []string{
			cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}`,
		}, "y/a", "x/host", "80/TCP", true, "host-network", ""},
		{"an empty peer fails closed in a Deny rule", []string{
			cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{}]}]}`,
		}, "y/a", "x/a", "80/TCP", false, "admin", "ClusterNetworkPolicy p"},
		{"... and matches nothing in an Accept rule", []string{
			cnpHead + `metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{}]}]}`,
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\nspec: {podSelector: {}}",
		}, "y/a", "x/a", "80/TCP", false, "network-policy", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clusterSnapshot(t, tc.docs...)
			host := &cluster.Pod{Kind: "Pod", SpecPath: "spec", LabelsPath: "metadata.labels"}
			host.Name, host.Namespace, host.Labels = "host", "x", map[string]string{"pod": "host"}
			host.Spec.HostNetwork = true
			s.Pods = append(s.Pods, host)
			// NewModel, not FromSnapshot: some cases are invalid on purpose,
			// to see how the model reads what the API would refuse.
			m, diags := NewModel(s)
			if len(diags) > 0 {
				t.Fatalf("model: %v", diags)
			}
			v := verdictOf(t, m, tc.from, tc.to, tc.probe)
			dec := v.Ingress
			if !v.Egress.Allowed || v.Egress.By != "default" && v.Egress.By != "external" {
				dec = v.Egress
			}
			if v.Allowed != tc.allowed || dec.By != tc.by {
				t.Fatalf("allowed %v by %s, want %v by %s\negress: %s\ningress: %s", v.Allowed, dec.By, tc.allowed, tc.by,
					v.Egress.Reason, v.Ingress.Reason)
			}
			if tc.policy != "" && (dec.ClusterRule == nil || dec.ClusterRule.Policy != tc.policy) {
				t.Errorf("decided by %+v, want a rule of %s", dec.ClusterRule, tc.policy)
			}
		})
	}
}

// The decision names the rule that decided, where it is, and the Pass that
// led there; domain names that the engine could not decide are noted.
func TestClusterVerdictExplains(t *testing.T) {
	m := clusterModel(t, cnpHead+`metadata: {name: guard}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {ns: x}}}
  egress:
  - name: to-partner
    action: Accept
    to: [{domainNames: [partner.example]}]
  - name: pods-to-namespaces
    action: Pass
    to:
    - pods: {namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: a}}}
    protocols: [{tcp: {destinationPort: {range: {start: 80, end: 90}}}}]
  - name: rest
    action: Deny
    to: [{networks: [0.0.0.0/0]}]`,
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: x}\n"+
			"spec: {podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {}}]}]}")

	v := verdictOf(t, m, "x/a", "y/a", "80/TCP")
	if !v.Allowed || v.Egress.By != "network-policy" || v.Egress.PassedBy == nil {
		t.Fatalf("x/a -> y/a: %+v", v.Egress)
	}
	if p := v.Egress.PassedBy; p.Policy != "ClusterNetworkPolicy guard" || p.Rule != 2 || p.Name != "pods-to-namespaces" ||
		p.Action != ActionPass || p.Peer != 1 || p.Port != 1 || p.Path != "spec.egress[1].to[0]" || p.Pos != "p0.yaml:15" {
		t.Errorf("passed by %+v", *p)
	}

	v = verdictOf(t, m, "x/a", "y/b", "80/TCP")
	r := v.Egress.ClusterRule
	if v.Allowed || v.Egress.By != "admin" || r == nil || r.Rule != 3 || r.Action != ActionDeny || r.Pos != "p0.yaml:19" {
		t.Fatalf("x/a -> y/b: %+v", v.Egress)
	}
	if want := `admin tier: ClusterNetworkPolicy guard (priority 10) egress rule 3 "rest" peer 1: Deny`; r.String() != want {
		t.Errorf("rule = %q, want %q", r.String(), want)
	}
	if len(v.Egress.Notes) != 0 {
		t.Errorf("notes about domain names for a pod: %v", v.Egress.Notes)
	}

	v = verdictOf(t, m, "x/a", "203.0.113.9", "443/TCP")
	if v.Allowed || len(v.Egress.Notes) != 1 || !strings.Contains(v.Egress.Notes[0], "partner.example") ||
		!strings.Contains(v.Egress.Notes[0], "203.0.113.9") {
		t.Errorf("to an address: %+v", v.Egress)
	}

	// The default names the cluster policies that had their say.
	v = verdictOf(t, m, "y/a", "x/a", "80/TCP")
	if !v.Allowed || v.Ingress.By != "default" || !strings.Contains(v.Egress.Reason, "no policy isolates") {
		t.Errorf("y/a -> x/a: %+v", v)
	}
}

// A nodes peer matches the nodes' addresses, and the hostNetwork pods on
// them, by the node's labels.
func TestNodesPeer(t *testing.T) {
	s := clusterSnapshot(t, cnpHead+`metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{nodes: {matchLabels: {role: control}}}]}]`)
	for i, role := range []string{"control", "worker"} {
		n := &cluster.Node{}
		n.Name, n.Labels = "n"+role, map[string]string{"role": role}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.19.9.%d", i+1)}}
		s.Nodes = append(s.Nodes, n)
		p := &cluster.Pod{Kind: "Pod"}
		p.Name, p.Namespace = "agent-"+role, "z"
		p.Spec.HostNetwork, p.Spec.NodeName = true, n.Name
		s.Pods = append(s.Pods, p)
	}
	m, diags := NewModel(s)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	for _, tc := range []struct {
		to      string
		allowed bool
	}{
		{"198.19.9.1", false}, {"198.19.9.2", true}, {"z/agent-control", false}, {"z/agent-worker", true}, {"y/a", true},
	} {
		if v := verdictOf(t, m, "x/a", tc.to, "10250/TCP"); v.Allowed != tc.allowed {
			t.Errorf("x/a -> %s: allowed %v, want %v (%s)", tc.to, v.Allowed, tc.allowed, v.Egress.Reason)
		}
	}
}
