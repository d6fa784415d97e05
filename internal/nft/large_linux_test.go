package nft

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/policy/policytest"
)

// TestPrivilegedApplyLarge applies a ruleset of tens of thousands of
// elements: the batch must fit the socket and every element list its
// 16-bit attribute.
func TestPrivilegedApplyLarge(t *testing.T) {
	netns.RequirePrivileged(t)
	if testing.Short() {
		t.Skip("large")
	}
	n, err := netns.New(uniqueLabName(t) + "-large")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Delete() })
	f, err := os.Open(n.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// 150 workloads of 20 replicas each: 3,000 pods.
	snap := policytest.Generate(3, policytest.Options{Namespaces: 8, Workloads: 150, Policies: 60, PodIPs: true})
	var pods []*cluster.Pod
	for i, p := range snap.Pods {
		for r := range 20 {
			q := *p
			q.Name = fmt.Sprintf("%s-%d", p.Name, r)
			q.Status.PodIP = fmt.Sprintf("198.19.%d.%d", (i*20+r)/250, 1+(i*20+r)%250)
			pods = append(pods, &q)
		}
	}
	snap.Pods = pods
	m := modelOf(t, snap)
	node := Node{Name: "n1"}
	for i, e := range m.Endpoints {
		if i%30 == 0 {
			node.Pods = append(node.Pods, Pod{Ref: e.Ref(), Veth: fmt.Sprintf("rmp%d", i)})
		}
	}
	start := time.Now()
	rs, err := Compile(m, node)
	if err != nil {
		t.Fatal(err)
	}
	compiled := time.Since(start)
	start = time.Now()
	st, err := Apply(int(f.Fd()), rs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods, %d local, %d profiles, %d classes: compiled in %v, applied %+v in %v", len(m.Endpoints), len(rs.Pods), len(rs.Profiles), len(rs.Classes), compiled, st, time.Since(start))
	start = time.Now()
	if _, err := Apply(int(f.Fd()), rs); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied again in %v", time.Since(start))
}
