package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
)

func TestAddressPlan(t *testing.T) {
	for i, want := range map[int][2]string{
		1:        {"198.18.0.11", "198.19.1.0/24"},
		3:        {"198.18.0.13", "198.19.3.0/24"},
		MaxNodes: {"198.18.0.74", "198.19.64.0/24"},
	} {
		if got := NodeAddress(i).String(); got != want[0] {
			t.Errorf("NodeAddress(%d) = %s, want %s", i, got, want[0])
		}
		if got := NodePodCIDR(i).String(); got != want[1] {
			t.Errorf("NodePodCIDR(%d) = %s, want %s", i, got, want[1])
		}
		if !UnderlayPrefix.Contains(NodeAddress(i)) || NodeAddress(i) == UnderlayGW || !ClusterCIDR.Contains(NodePodCIDR(i).Addr()) {
			t.Errorf("node %d is outside the plan", i)
		}
	}
	// Everything inside 198.18.0.0/15, as the architecture asks of labs.
	lab := netip.MustParsePrefix("198.18.0.0/15")
	if !lab.Contains(UnderlayPrefix.Addr()) || !lab.Contains(ClusterCIDR.Addr()) {
		t.Error("the plan leaves 198.18.0.0/15")
	}
}

// snapshot loads manifests from a string.
func snapshot(t *testing.T, yaml string) *cluster.Snapshot {
	t.Helper()
	s := &cluster.Snapshot{}
	cluster.LoadBytes("in.yaml", []byte(yaml), s)
	s.Finish()
	if cluster.HasErrors(s.Diagnostics) {
		t.Fatalf("%v", s.Diagnostics)
	}
	return s
}

func pod(ns, name, node string, host bool) string {
	spec := "containers: [{name: c, image: x}]"
	if node != "" {
		spec += ", nodeName: " + node
	}
	if host {
		spec += ", hostNetwork: true"
	}
	return fmt.Sprintf("---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s}\nspec: {%s}\n", name, ns, spec)
}

func placement(p *Plan) string {
	var b strings.Builder
	for _, n := range p.Nodes {
		fmt.Fprintf(&b, "%s=%s,%s;", n.Name, n.Address, n.PodCIDR)
	}
	for _, q := range p.Pods {
		fmt.Fprintf(&b, " %s@%s", q.Ref, q.Node)
		if q.HostNetwork {
			b.WriteString("(host)")
		}
	}
	return b.String()
}

func TestMakePlan(t *testing.T) {
	deploy := "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: a}\n" +
		"spec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: x}]}}}\n"
	for _, tc := range []struct {
		name  string
		in    string
		nodes int
		want  string
	}{
		{"spread over the default nodes", pod("a", "p1", "", false) + pod("a", "p2", "", false) + pod("b", "p3", "", false),
			0, "node-1=198.18.0.11,198.19.1.0/24;node-2=198.18.0.12,198.19.2.0/24; a/p1@node-1 a/p2@node-2 b/p3@node-1"},
		{"a workload is one pod", deploy + pod("a", "p1", "", false), 3,
			"node-1=198.18.0.11,198.19.1.0/24;node-2=198.18.0.12,198.19.2.0/24;node-3=198.18.0.13,198.19.3.0/24; a/p1@node-1 a/web@node-2"},
		{"nodeName names nodes, the others fill around them",
			pod("a", "p1", "worker-b", false) + pod("a", "p2", "", false) + pod("a", "p3", "", false) + pod("a", "p4", "worker-b", true), 3,
			"worker-b=198.18.0.11,198.19.1.0/24;node-1=198.18.0.12,198.19.2.0/24;node-2=198.18.0.13,198.19.3.0/24; a/p1@worker-b a/p2@node-1 a/p3@node-2 a/p4@worker-b(host)"},
		{"Node objects name the nodes",
			"---\napiVersion: v1\nkind: Node\nmetadata: {name: zeta}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: alpha}\n" + pod("a", "p1", "zeta", false) + pod("a", "p2", "", false), 0,
			"alpha=198.18.0.11,198.19.1.0/24;zeta=198.18.0.12,198.19.2.0/24; a/p1@zeta a/p2@alpha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := MakePlan(snapshot(t, tc.in), tc.nodes)
			if err != nil {
				t.Fatal(err)
			}
			if got := placement(p); got != tc.want {
				t.Errorf("plan\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMakePlanRefuses(t *testing.T) {
	// A pod on a node the declared Nodes do not have: file:line of its
	// spec.nodeName.
	in := "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n" +
		"spec:\n  containers: [{name: c, image: x}]\n  nodeName: n2\n"
	_, err := MakePlan(snapshot(t, in), 0)
	var pe *PlanError
	if !errors.As(err, &pe) || len(pe.Diagnostics) != 1 || !strings.Contains(pe.Error(), `in.yaml:11: error: Pod a/p: spec.nodeName: node "n2" is not one of the Nodes the manifests declare (n1)`) {
		t.Errorf("unknown node: %v", err)
	}
	// More named nodes than --nodes.
	_, err = MakePlan(snapshot(t, pod("a", "p1", "n1", false)+pod("a", "p2", "n2", false)+pod("a", "p3", "n3", false)), 2)
	if err == nil || !strings.Contains(err.Error(), "name 3 nodes (n1, n2, n3), more than the 2 asked for") {
		t.Errorf("too many names: %v", err)
	}
	if _, err := MakePlan(snapshot(t, pod("a", "p", "", false)), MaxNodes+1); err == nil {
		t.Error("more than MaxNodes accepted")
	}
	// A Node name that cannot be a certificate's DNS name.
	_, err = MakePlan(snapshot(t, "---\napiVersion: v1\nkind: Node\nmetadata: {name: Bad_Name}\n"), 0)
	if !errors.As(err, &pe) {
		t.Errorf("invalid node name: %v", err)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"lab": true, "e2e123": true, "a": true, "": false, "Lab": false, "a-b": false, "1lab": false, "abcdefghijklm": false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}
