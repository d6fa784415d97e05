package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	corev1 "k8s.io/api/core/v1"
)

func TestDiff(t *testing.T) {
	a1, a2, a3 := Addr(netip.MustParseAddr("198.19.0.1")), Addr(netip.MustParseAddr("198.19.0.2")), Addr(netip.MustParseAddr("198.19.0.3"))
	base := func() *Ruleset {
		return &Ruleset{
			Table: TableName,
			Sets: []*Set{
				{Name: "pod_class", Key: []Type{TypeIPv4}, Value: TypeProfile, Elements: []Element{
					{Key: []Datum{a1}, Value: Num(7)}, {Key: []Datum{a2}, Value: Num(7)},
				}},
				{Name: "pod_addrs", Key: []Type{TypeIPv4}, Elements: []Element{{Key: []Datum{a1}}}},
			},
			Chains: []*Chain{{Name: "forward", Hook: HookForward, Rules: []Rule{{Verdict: Verdict{Kind: Drop}, Comment: "x"}}}},
		}
	}
	type want struct{ set, del, add []string }
	for _, tc := range []struct {
		name   string
		change func(*Ruleset)
		ok     bool
		want   []want
	}{
		{name: "same", change: func(*Ruleset) {}, ok: true},
		{name: "element added", ok: true, change: func(rs *Ruleset) {
			rs.Sets[1].Elements = append(rs.Sets[1].Elements, Element{Key: []Datum{a3}})
		}, want: []want{{set: []string{"pod_addrs"}, add: []string{"198.19.0.3"}}}},
		{name: "element removed", ok: true, change: func(rs *Ruleset) {
			rs.Sets[0].Elements = rs.Sets[0].Elements[:1]
		}, want: []want{{set: []string{"pod_class"}, del: []string{"198.19.0.2 : 0x00000007"}}}},
		{name: "map value changed", ok: true, change: func(rs *Ruleset) {
			rs.Sets[0].Elements[1].Value = Num(9)
		}, want: []want{{set: []string{"pod_class"}, del: []string{"198.19.0.2 : 0x00000007"}, add: []string{"198.19.0.2 : 0x00000009"}}}},
		{name: "comment changed", ok: true, change: func(rs *Ruleset) {
			rs.Sets[1].Elements[0].Comment = "pod a/b"
		}, want: []want{{set: []string{"pod_addrs"}, del: []string{"198.19.0.1"}, add: []string{`198.19.0.1 comment "pod a/b"`}}}},
		{name: "both sets", ok: true, change: func(rs *Ruleset) {
			rs.Sets[0].Elements = nil
			rs.Sets[1].Elements = nil
		}, want: []want{
			{set: []string{"pod_class"}, del: []string{"198.19.0.1 : 0x00000007", "198.19.0.2 : 0x00000007"}},
			{set: []string{"pod_addrs"}, del: []string{"198.19.0.1"}},
		}},
		{name: "rule changed", change: func(rs *Ruleset) { rs.Chains[0].Rules[0].Verdict = Verdict{Kind: Accept} }},
		{name: "rule added", change: func(rs *Ruleset) { rs.Chains[0].Rules = append(rs.Chains[0].Rules, Rule{Verdict: Verdict{Kind: Drop}}) }},
		{name: "set type changed", change: func(rs *Ruleset) { rs.Sets[1].Key = []Type{TypeIPv4, TypePort} }},
		{name: "set flags changed", change: func(rs *Ruleset) { rs.Sets[1].Interval = true }},
		{name: "set added", change: func(rs *Ruleset) { rs.Sets = append(rs.Sets, &Set{Name: "more", Key: []Type{TypeIPv4}}) }},
		{name: "table renamed", change: func(rs *Ruleset) { rs.Table = "other" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, new := base(), base()
			tc.change(new)
			c, ok := Diff(old, new)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var got []want
			for _, sc := range c.Sets {
				w := want{set: []string{sc.Set.Name}}
				for _, e := range sc.Del {
					w.del = append(w.del, elementString(sc.Set, e))
				}
				for _, e := range sc.Add {
					w.add = append(w.add, elementString(sc.Set, e))
				}
				got = append(got, w)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("changes\n got %v\nwant %v", got, tc.want)
			}
		})
	}
	if _, ok := Diff(nil, base()); ok {
		t.Error("a diff from nothing")
	}
}

// TestDiffReplays compiles random clusters before and after churn (pods
// come, go and change labels; policies come and go) and checks that the
// changes turn the old ruleset's elements into exactly the new ones' plus
// the unreachable ones left in place, and that those change no verdict.
func TestDiffReplays(t *testing.T) {
	unreachable := 0
	for seed := uint64(1); seed <= 8; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		snap := policytest.Generate(int64(seed), policytest.Options{Namespaces: 4, Workloads: 30, Policies: 12, PodIPs: true})
		var m *policy.Model
		compile := func() *Ruleset {
			m = modelOf(t, snap)
			n := Node{Name: "n1"}
			for i, e := range m.Endpoints {
				if i%3 == 0 {
					n.Pods = append(n.Pods, Pod{Ref: e.Ref(), Veth: fmt.Sprintf("rmp%d", i)})
				}
			}
			rs, err := Compile(m, n)
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}
		old := compile()
		// Churn: drop a few pods and policies, relabel one pod.
		for range 3 {
			i := r.IntN(len(snap.Pods))
			snap.Pods = slices.Delete(snap.Pods, i, i+1)
		}
		if len(snap.NetworkPolicies) > 2 {
			i := r.IntN(len(snap.NetworkPolicies))
			snap.NetworkPolicies = slices.Delete(snap.NetworkPolicies, i, i+1)
		}
		p := *snap.Pods[r.IntN(len(snap.Pods))]
		p.Labels = map[string]string{"app": "moved"}
		snap.Pods = append(snap.Pods, &p)
		new := compile()

		c, ok := Diff(old, new)
		if !ok {
			t.Fatalf("seed %d: churn changed the skeleton:\n%s\n%s", seed, Skeleton(old), Skeleton(new))
		}
		if c.Len() == 0 {
			t.Errorf("seed %d: churn changed no element", seed)
		}
		held := Kept(new, c)
		changed := map[string]SetChanges{}
		for _, sc := range c.Sets {
			changed[sc.Set.Name] = sc
		}
		for i, s := range old.Sets {
			have := map[string]bool{}
			for _, e := range s.Elements {
				have[elementID(e)] = true
			}
			for _, e := range changed[s.Name].Del {
				if !have[elementID(e)] {
					t.Fatalf("seed %d: set %s: deleting %s, which it does not hold", seed, s.Name, elementString(s, e))
				}
				delete(have, elementID(e))
			}
			for _, e := range changed[s.Name].Add {
				if have[elementID(e)] {
					t.Fatalf("seed %d: set %s: adding %s, which it holds", seed, s.Name, elementString(s, e))
				}
				have[elementID(e)] = true
			}
			for _, e := range changed[s.Name].Unreachable {
				if !have[elementID(e)] {
					t.Fatalf("seed %d: set %s: leaving %s, which it does not hold", seed, s.Name, elementString(s, e))
				}
			}
			want := map[string]bool{}
			for _, e := range held.Sets[i].Elements {
				want[elementID(e)] = true
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Errorf("seed %d: set %s: the changes give %d elements, the new ruleset and what stays have %d", seed, s.Name, len(have), len(want))
			}
		}
		// What stays cannot match: the table as the kernel then holds it
		// decides as the new Model does.
		var probes []probe
		for _, port := range []int32{1, 80, 8080} {
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
				probes = append(probes, probe{proto, port})
			}
		}
		checkAgainstVerdict(t, m, held, probes)
		// And the next diff, to the same ruleset, changes nothing.
		if c2, ok := Diff(held, new); !ok || c2.Len() != 0 || c2.Unreachable() != c.Unreachable() {
			t.Errorf("seed %d: diff from what the kernel holds to the same ruleset: ok %v, %d changes, %d unreachable (was %d)", seed, ok, c2.Len(), c2.Unreachable(), c.Unreachable())
		}
		unreachable += c.Unreachable()
	}
	if unreachable == 0 {
		t.Error("no churn left an unreachable element: the case is not tested")
	}
}
