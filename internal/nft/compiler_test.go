package nft

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the compiler's output")

// loadModel reads manifests into a Model, failing on any error diagnostic.
func loadModel(t testing.TB, paths ...string) *policy.Model {
	t.Helper()
	snap, err := cluster.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return modelOf(t, snap)
}

func modelOf(t testing.TB, snap *cluster.Snapshot) *policy.Model {
	t.Helper()
	if cluster.HasErrors(snap.Diagnostics) {
		t.Fatalf("loading: %v", snap.Diagnostics)
	}
	m, diags := policy.NewModel(snap)
	if cluster.HasErrors(diags) {
		t.Fatalf("model: %v", diags)
	}
	return m
}

// nodeOf makes the Node of the model's pods on node name, with veths
// rmp0, rmp1, ... in the order of their refs.
func nodeOf(m *policy.Model, name string) Node {
	n := Node{Name: name}
	for _, e := range m.Endpoints {
		if e.Node == name && !e.HostNetwork {
			n.Pods = append(n.Pods, Pod{Ref: e.Ref(), Veth: fmt.Sprintf("rmp%d", len(n.Pods))})
		}
	}
	return n
}

// TestGolden compiles each testdata/*.yaml for node1 and compares the
// rendered ruleset with testdata/*.golden (go test -update rewrites
// them). Each ruleset is also run against the verdict engine.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, f)
			rs, err := Compile(m, nodeOf(m, "node1"))
			if err != nil {
				t.Fatal(err)
			}
			got := rs.String()
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the compiler's output (go test -update rewrites it):\n%s", golden, lineDiff(string(want), got))
			}
			again, _ := Compile(m, nodeOf(m, "node1"))
			if again.String() != got {
				t.Error("two compilations of the same input differ")
			}
			a := checkAgainstVerdict(t, m, rs, interestingProbes(m))
			t.Logf("%d flows: %d allowed, %d denied", a.flows, a.allowed, a.denied)
		})
	}
}

// lineDiff lists the lines that differ, for a readable failure.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// TestRandomAgreesWithVerdict is the differential test: random clusters
// with addresses, with and without cluster-wide policies, a third of the
// pods local, every pair and probe.
func TestRandomAgreesWithVerdict(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	var total agreement
	for run := int64(1); run <= int64(2*seeds); run++ {
		// Odd runs without cluster-wide policies, even runs with.
		seed, cps := (run+1)/2, 0
		if run%2 == 0 {
			cps = 6
		}
		snap := policytest.Generate(seed, policytest.Options{Namespaces: 4, Workloads: 24, Policies: 12, PodIPs: true,
			ClusterPolicies: cps})
		m := modelOf(t, snap)
		n := Node{Name: "n1"}
		for i, e := range m.Endpoints {
			if i%3 == int(seed%3) && !e.HostNetwork {
				n.Pods = append(n.Pods, Pod{Ref: e.Ref(), Veth: fmt.Sprintf("rmp%d", i)})
			}
		}
		rs, err := Compile(m, n)
		if err != nil {
			t.Fatal(err)
		}
		var probes []probe
		for _, port := range []int32{1, 79, 80, 81, 82, 8080, 65535} {
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
				probes = append(probes, probe{proto, port})
			}
		}
		a := checkAgainstVerdict(t, m, rs, probes)
		total.flows += a.flows
		total.allowed += a.allowed
		total.denied += a.denied
	}
	if total.allowed < total.flows/10 || total.denied < total.flows/10 {
		t.Errorf("lopsided: %+v", total)
	}
	t.Logf("%+v", total)
}

func TestCompileErrors(t *testing.T) {
	m := loadModel(t, "testdata/two-policies.yaml")
	for _, tc := range []struct {
		name string
		pods []Pod
		want string
	}{
		{"unknown pod", []Pod{{Ref: "alpha/nope", Veth: "rmp0"}}, "not in the model"},
		{"no veth", []Pod{{Ref: "alpha/db"}}, "veth name"},
		{"long veth", []Pod{{Ref: "alpha/db", Veth: "rmp0123456789abc"}}, "veth name"},
		{"same veth", []Pod{{Ref: "alpha/db", Veth: "rmp0"}, {Ref: "alpha/cache", Veth: "rmp0"}}, "also pod alpha/db's"},
		{"foreign address", []Pod{{Ref: "alpha/db", Veth: "rmp0", Addr: netip.MustParseAddr("198.19.0.3")}}, "is not the pod's"},
		{"ipv6", []Pod{{Ref: "alpha/db", Veth: "rmp0", Addr: netip.MustParseAddr("fd00::1")}}, "only IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(m, Node{Name: "node1", Pods: tc.pods})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestChurnAddsElementsOnly: pods that come and match existing selectors,
// remote or local, change set elements only, and only by adding: the
// chains and the declarations of the sets stay as they were. A pod like
// one that exists (same namespace, labels and ports) adds its address to
// pod_class, and if local its veth, its address and its profiles, and
// nothing else.
func TestChurnAddsElementsOnly(t *testing.T) {
	base, err := os.ReadFile("testdata/named-ports.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more := string(base) + `
---
apiVersion: v1
kind: Pod
metadata: {name: api-2, namespace: alpha, labels: {app: api}}
spec:
  nodeName: node2
  containers:
  - name: c
    image: x
    ports: [{name: http, containerPort: 9090}, {name: dns, containerPort: 53, protocol: UDP}]
status: {podIP: 198.19.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-3, namespace: alpha, labels: {app: web}}
spec:
  nodeName: node1
  containers:
  - name: c
    image: x
    ports: [{name: http, containerPort: 8080}]
status: {podIP: 198.19.0.4}
`
	compile := func(text string) *Ruleset {
		s := &cluster.Snapshot{}
		cluster.LoadBytes("churn.yaml", []byte(text), s)
		s.Finish()
		m := modelOf(t, s)
		rs, err := Compile(m, nodeOf(m, "node1"))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	before, after := compile(string(base)), compile(more)
	if !reflect.DeepEqual(before.Chains, after.Chains) {
		t.Error("chains changed")
	}
	added := map[string]int{}
	for i, s := range before.Sets {
		a := after.Sets[i]
		if s.Name != a.Name || !reflect.DeepEqual(s.Key, a.Key) || s.Value != a.Value || s.Interval != a.Interval {
			t.Fatalf("set %s declared differently after churn", s.Name)
		}
		have := map[string]bool{}
		for _, e := range a.Elements {
			have[elementString(a, e)] = true
		}
		for _, e := range s.Elements {
			if !have[elementString(s, e)] {
				t.Errorf("set %s lost element %s", s.Name, elementString(s, e))
			}
		}
		if n := len(a.Elements) - len(s.Elements); n != 0 {
			added[s.Name] = n
		}
	}
	want := map[string]int{MapPodClass: 2, SetPodAddrs: 1, SetPodIfaces: 1, SetPodSrc: 1, MapIngressProfile: 1, MapEgressProfile: 1}
	if !reflect.DeepEqual(added, want) {
		t.Errorf("elements added per set: got %v, want %v", added, want)
	}
	if len(before.Profiles) != len(after.Profiles) || len(before.Classes) != len(after.Classes) {
		t.Errorf("profiles %d -> %d, classes %d -> %d", len(before.Profiles), len(after.Profiles), len(before.Classes), len(after.Classes))
	}
}

// TestConformance compiles every step of the conformance suite of
// sigs.k8s.io/network-policy-api (policytest.ConformanceCases) for a node
// that holds every pod of the houses, and checks upstream's answer to each
// probe through the interpreter, and every flow on the probes' ports
// against the verdict engine.
func TestConformance(t *testing.T) {
	probes := 0
	for _, c := range policytest.ConformanceCases {
		t.Run(c.Name, func(t *testing.T) {
			snap, err := c.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range c.Steps {
				for _, mut := range step.Mutate {
					if err := mut(snap); err != nil {
						t.Fatalf("%s: %v", step.Name, err)
					}
				}
				m := modelOf(t, snap)
				n := Node{Name: "worker-1"}
				for _, e := range m.Endpoints {
					if !e.HostNetwork {
						n.Pods = append(n.Pods, Pod{Ref: e.Ref(), Veth: fmt.Sprintf("rmp%d", len(n.Pods))})
					}
				}
				rs, err := Compile(m, n)
				if err != nil {
					t.Fatal(err)
				}
				ev := NewEvaluator(rs)
				var ports []probe
				for _, p := range step.Probes {
					probes++
					src := m.Endpoint(policytest.ConformanceRef(p.From))
					dst := m.Endpoint(policytest.ConformanceRef(p.To))
					if src == nil || dst == nil {
						t.Fatalf("%s: no pod %s or %s", step.Name, p.From, p.To)
					}
					pr := probe{corev1.Protocol(p.Protocol), p.Port}
					ports = append(ports, pr)
					got, by, err := ev.Forwarded(src.IPs[0], dst.IPs[0], protoNum(pr.proto), uint16(pr.port))
					if err != nil {
						t.Fatal(err)
					}
					if got != p.Want {
						t.Errorf("%s: %s -> %s %d/%s: the rules say %v (%s), upstream %v", step.Name, p.From, p.To,
							p.Port, p.Protocol, got, by, p.Want)
					}
				}
				checkAgainstVerdict(t, m, rs, ports)
			}
		})
	}
	if probes < 289 {
		t.Errorf("%d probes run, the suite has 289", probes)
	}
}

// The port space the tiers are walked on: set operations, and how a space
// becomes the protocol and port fields of elements.
func TestPortSpace(t *testing.T) {
	tcp := func(rs ...portRange) portSpace { var s portSpace; s.ports[0] = rs; return s }
	udp := func(rs ...portRange) portSpace { var s portSpace; s.ports[1] = rs; return s }
	boxes := func(s portSpace) string {
		var out []string
		for _, b := range s.boxes() {
			out = append(out, fmt.Sprintf("%d-%d:%d-%d", b.pLo, b.pHi, b.lo, b.hi))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name string
		got  portSpace
		want string
	}{
		{"full", fullSpace(), "0-255:0-65535"},
		{"empty", portSpace{}, ""},
		{"union merges touching ranges", tcp(portRange{80, 80}).union(tcp(portRange{81, 90}, portRange{100, 100})), "6-6:80-90 6-6:100-100"},
		{"union of protocols", tcp(portRange{80, 80}).union(udp(portRange{53, 53})), "6-6:80-80 17-17:53-53"},
		{"full minus one port", fullSpace().minus(tcp(portRange{80, 80})), "0-5:0-65535 6-6:0-79 6-6:81-65535 7-255:0-65535"},
		{"full minus a protocol", fullSpace().minus(udp(portRange{0, 0xffff})), "0-16:0-65535 18-255:0-65535"},
		{"minus the other protocols", fullSpace().minus(portSpace{other: true}), "6-6:0-65535 17-17:0-65535 132-132:0-65535"},
		{"intersect", tcp(portRange{1, 100}).intersect(tcp(portRange{50, 60}, portRange{90, 200})), "6-6:50-60 6-6:90-100"},
		{"intersect with everything", fullSpace().intersect(udp(portRange{53, 53})), "17-17:53-53"},
		{"minus a range inside", tcp(portRange{0, 0xffff}).minus(tcp(portRange{1000, 2000})), "6-6:0-999 6-6:2001-65535"},
	} {
		if got := boxes(tc.got); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if !fullSpace().minus(portSpace{}).isFull() || fullSpace().minus(tcp(portRange{0, 0})).isFull() {
		t.Error("isFull")
	}
}

// TestL7ChainJudgesFirst: the connections of a pod that the L7 proxy
// takes are judged by the egress and ingress chains in prerouting, on
// their first packet, before the proxy's TPROXY; its undeclared TCP ports
// take no new connection; other pods' are not touched there (the forward
// chain judges them).
func TestL7ChainJudgesFirst(t *testing.T) {
	m := loadModel(t, "testdata/two-policies.yaml")
	n := nodeOf(m, "node1")
	if len(n.Pods) == 0 {
		t.Fatal("no local pod")
	}
	l7 := n.Pods[0].Ref
	// The reference: the same node's table without L7, forwarding.
	plain, err := Compile(m, n)
	if err != nil {
		t.Fatal(err)
	}
	ref := NewEvaluator(plain)
	n.L7 = []L7Pod{{Ref: l7, Ports: []uint16{5432, 8080}}}
	rs, err := Compile(m, n)
	if err != nil {
		t.Fatal(err)
	}
	ev := NewEvaluator(rs)
	dst := m.Endpoint(l7).IPs[0]
	checked, allowed := 0, 0
	for _, src := range m.Endpoints {
		for _, port := range []uint16{22, 80, 5432, 8080} {
			if len(src.IPs) == 0 || src.IPs[0] == dst {
				continue
			}
			p := Packet{Src: src.IPs[0], Dst: dst, Proto: protoTCP, DPort: port, TCPFlags: TCPSyn}
			if lp, ok := ev.byAddr[p.Src]; ok {
				p.IIF = lp.Veth
			}
			pre, _, err := ev.Eval(HookPrerouting, p)
			if err != nil {
				t.Fatal(err)
			}
			fwd, _, err := ref.Forwarded(p.Src, p.Dst, protoTCP, port)
			if err != nil {
				t.Fatal(err)
			}
			// What prerouting lets through to the proxy (ports 5432 and
			// 8080) is exactly what the table would forward; the pod's
			// other TCP ports take no new connection.
			if proxied := port == 5432 || port == 8080; proxied && pre != fwd || !proxied && pre {
				t.Errorf("%s -> %s:%d: prerouting %v, forwarding %v", src.Ref(), l7, port, pre, fwd)
			}
			checked++
			if fwd && (port == 5432 || port == 8080) {
				allowed++
			}
			// A packet of an established connection is the proxy's
			// business: not judged again.
			p.Ct, p.TCPFlags = CtEstablished, TCPAck
			if pass, by, _ := ev.Eval(HookPrerouting, p); !pass && strings.HasPrefix(by, ChainL7) {
				t.Errorf("established %s -> %s:%d dropped by %s", src.Ref(), l7, port, by)
			}
		}
	}
	if checked == 0 || allowed == 0 {
		t.Fatalf("%d flows checked, %d of them allowed to the proxy's ports: the test needs both", checked, allowed)
	}
	// Without L7 the prerouting hook judges no connection by policy.
	n.L7 = nil
	rs, _ = Compile(m, n)
	ev = NewEvaluator(rs)
	for _, src := range m.Endpoints {
		if len(src.IPs) == 0 || src.IPs[0] == dst || ev.IsLocal(src.IPs[0]) {
			continue
		}
		if pass, by, _ := ev.Eval(HookPrerouting, Packet{Src: src.IPs[0], Dst: dst, Proto: protoTCP, DPort: 80, TCPFlags: TCPSyn}); !pass {
			t.Errorf("without L7, %s -> %s dropped in prerouting by %s", src.Ref(), l7, by)
		}
	}
	if _, err := Compile(m, Node{Name: "node1", Pods: n.Pods, L7: []L7Pod{{Ref: "nowhere/pod"}}}); err == nil {
		t.Error("an L7 pod that is not local was compiled")
	}
}
