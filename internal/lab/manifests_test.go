package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/internal/analyze"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
)

// fakeLab lays out a snapshot as Up would, with addresses handed out in
// order instead of by the CNI plugin, and writes its manifests.
func fakeLab(t *testing.T, s *cluster.Snapshot, nodes int) *State {
	t.Helper()
	plan, err := MakePlan(s, nodes)
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Name: "t", Dir: t.TempDir()}
	next := map[string]int{}
	for _, n := range plan.Nodes {
		st.Nodes = append(st.Nodes, NodeState{Name: n.Name, Address: n.Address, PodCIDR: n.PodCIDR})
	}
	for _, p := range plan.Pods {
		n := plan.Node(p.Node)
		ps := PodState{Ref: p.Ref, Node: p.Node, HostNetwork: p.HostNetwork, Address: n.Address}
		if !p.HostNetwork {
			next[p.Node]++
			a := n.PodCIDR.Addr().As4()
			a[3] = byte(1 + next[p.Node])
			ps.Address = netip.AddrFrom4(a)
		}
		st.Pods = append(st.Pods, ps)
	}
	os.MkdirAll(st.manifestsDir(), 0o755)
	b, err := clusterManifest(s, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st.clusterFile(), b, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policiesManifest(policiesOf(s), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st.policiesFile(), p, 0o644); err != nil {
		t.Fatal(err)
	}
	return st
}

// reachRows is `rampart reach` on a model, without the addresses.
func reachRows(t *testing.T, m *policy.Model, probes []policy.Probe) []analyze.ReachRow {
	t.Helper()
	tab, err := analyze.Reach(m, probes, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tab.Rows()
}

// The lab's manifests decide as the input does: the bundled examples.
func TestLabManifestsKeepVerdicts(t *testing.T) {
	for _, dir := range []string{"../../examples/wordpress/open", "../../examples/wordpress/hardened", "../../examples/netpol-e2e"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s, _, err := loadInput([]string{dir})
			if err != nil {
				t.Fatal(err)
			}
			m1, _, err := policy.FromSnapshot(s, false)
			if err != nil {
				t.Fatal(err)
			}
			st := fakeLab(t, s, 3)
			m2, err := loadLabModel(st)
			if err != nil {
				t.Fatal(err)
			}
			probes := append(DefaultProbes(m1), policy.Probe{Port: 8080, Protocol: corev1.ProtocolTCP}, policy.Probe{Name: "http", Protocol: corev1.ProtocolTCP})
			if a, b := reachRows(t, m1, probes), reachRows(t, m2, probes); !reflect.DeepEqual(a, b) {
				t.Errorf("the lab's manifests decide otherwise than the input")
			}
			for _, e := range m2.Endpoints {
				ps := st.pod(e.Ref())
				if e.Kind != "Pod" || e.Node != ps.Node || len(e.IPs) != 1 || e.IPs[0] != ps.Address {
					t.Errorf("%s in the lab's manifests: %s on %q with %v, want a Pod on %s with %s", e.Ref(), e.Kind, e.Node, e.IPs, ps.Node, ps.Address)
				}
			}
			if len(m2.Nodes) != 3 || m2.Nodes[0].Addrs[0] != NodeAddress(1) {
				t.Errorf("nodes %+v", m2.Nodes)
			}
		})
	}
}

// Every upstream case, with ipBlocks on the lab's addresses, decides in
// the lab's manifests as the upstream table says.
func TestLabManifestsUpstreamCases(t *testing.T) {
	base := policytest.E2ESnapshot(nil)
	st := fakeLab(t, base, 3)
	addr := func(ref string) string { return st.pod(ref).Address.String() }
	for i, tc := range policytest.E2ECases {
		docs, err := tc.Render(addr, ClusterCIDR.String())
		if err != nil {
			t.Fatal(err)
		}
		var nps []*cluster.NetworkPolicy
		for _, d := range docs {
			np := &cluster.NetworkPolicy{}
			if err := yaml.UnmarshalStrict([]byte(d), &np.NetworkPolicy); err != nil {
				t.Fatalf("%s: %v", tc.Name, err)
			}
			nps = append(nps, np)
		}
		p, err := policiesManifest(&cluster.Snapshot{NetworkPolicies: nps}, i)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(st.policiesFile(), p, 0o644)
		m, err := loadLabModel(st)
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		pr, _ := policy.ParseProbe(tc.ProbeSpec())
		want := tc.Expected()
		for _, r := range reachRows(t, m, []policy.Probe{pr}) {
			if r.Allowed != want[[2]string{r.From, r.To}] {
				t.Errorf("%s: %s -> %s = %v", tc.Name, r.From, r.To, r.Allowed)
			}
		}
	}
}

func TestPoliciesManifestSaysWhereFrom(t *testing.T) {
	s, _, err := loadInput([]string{"../../examples/wordpress/hardened/policies.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := policiesManifest(policiesOf(s), 7)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if !strings.HasPrefix(out, "# Written by `rampart lab`: policy set 7, 12 NetworkPolicies, 0 cluster policies, 0 AuthorizationPolicies.") ||
		strings.Count(out, "\n# from ../../examples/wordpress/hardened/policies.yaml:") != 12 ||
		!strings.Contains(out, "# from ../../examples/wordpress/hardened/policies.yaml:48\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: allow-dns\n  namespace: data\n") {
		t.Errorf("policies.yaml:\n%s", out)
	}
	if strings.Contains(out, "creationTimestamp") || strings.Contains(out, "status:") {
		t.Errorf("noise in policies.yaml:\n%s", out)
	}
}

func TestDefaultProbes(t *testing.T) {
	s, _, err := loadInput([]string{"../../examples/wordpress/open"})
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := policy.FromSnapshot(s, false)
	var got []string
	for _, p := range DefaultProbes(m) {
		got = append(got, p.String())
	}
	if want := "53/TCP 80/TCP 3306/TCP 6379/TCP 8080/TCP 8443/TCP 9153/TCP 53/UDP"; strings.Join(got, " ") != want {
		t.Errorf("DefaultProbes = %v, want %s", got, want)
	}
	empty, _ := policy.NewModel(&cluster.Snapshot{})
	if got := DefaultProbes(empty); len(got) != 1 || got[0].String() != "80/TCP" {
		t.Errorf("DefaultProbes of nothing = %v", got)
	}
}

func TestPluginConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "10-rampart.conflist")
	os.WriteFile(path, []byte(`{"cniVersion":"1.0.0","name":"rampart","plugins":[{"type":"rampart-cni","podCIDR":"198.19.1.0/24","mtu":1415}]}`), 0o644)
	b, err := pluginConf(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"cniVersion":"1.0.0","mtu":1415,"name":"rampart","podCIDR":"198.19.1.0/24","type":"rampart-cni"}`; string(b) != want {
		t.Errorf("pluginConf = %s, want %s", b, want)
	}
	os.WriteFile(path, []byte(`{"plugins":[]}`), 0o644)
	if _, err := pluginConf(path); err == nil {
		t.Error("a conflist without a plugin accepted")
	}
}

func TestParseProbes(t *testing.T) {
	got, err := ParseProbes([]string{"80/TCP,81/udp", "serve-80-sctp/SCTP"})
	if err != nil || fmt.Sprint(got) != "[80/TCP 81/UDP serve-80-sctp/SCTP]" {
		t.Errorf("ParseProbes = %v, %v", got, err)
	}
	if _, err := ParseProbes([]string{"80/ICMP"}); err == nil {
		t.Error("80/ICMP accepted")
	}
}

// TestPoliciesManifestClusterTiers: the cluster-scoped tiers go into the
// lab's policy set and read back as they were.
func TestPoliciesManifestClusterTiers(t *testing.T) {
	s, err := cluster.Load("../../examples/guardrails")
	if err != nil {
		t.Fatal(err)
	}
	n := len(s.ClusterNetworkPolicies) + len(s.AdminNetworkPolicies) + len(s.BaselineAdminNetworkPolicies)
	if n == 0 {
		t.Fatal("examples/guardrails has no cluster policies")
	}
	b, err := policiesManifest(policiesOf(s), 3)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := cluster.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(back.ClusterNetworkPolicies) + len(back.AdminNetworkPolicies) + len(back.BaselineAdminNetworkPolicies); got != n ||
		len(back.NetworkPolicies) != len(s.NetworkPolicies) || cluster.HasErrors(back.Diagnostics) {
		t.Errorf("read back %d cluster policies (want %d), %d NetworkPolicies (want %d): %v", got, n, len(back.NetworkPolicies), len(s.NetworkPolicies), back.Diagnostics)
	}
	for i, p := range back.ClusterNetworkPolicies {
		if p.Spec.Priority != s.ClusterNetworkPolicies[i].Spec.Priority || p.Spec.Tier != s.ClusterNetworkPolicies[i].Spec.Tier {
			t.Errorf("%s: tier %s priority %d, want %s %d", p.Name, p.Spec.Tier, p.Spec.Priority, s.ClusterNetworkPolicies[i].Spec.Tier, s.ClusterNetworkPolicies[i].Spec.Priority)
		}
	}
}
