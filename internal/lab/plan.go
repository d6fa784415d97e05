package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rampartnet/rampart/internal/cluster"
)

// The address plan. Every address is inside namespaces the lab makes, and
// from 198.18.0.0/15 (RFC 2544's benchmarking block), as the architecture
// asks of tests and labs.
var (
	// UnderlayPrefix is the network between nodes: a bridge in the
	// underlay namespace holds its first address, which is every node's
	// default gateway (the CNI plugin needs a route to 169.254.1.1, and a
	// default route is one); node i has 198.18.0.(10+i).
	UnderlayPrefix = netip.MustParsePrefix("198.18.0.0/24")
	UnderlayGW     = netip.MustParseAddr("198.18.0.1")
	// ClusterCIDR holds every node's pod CIDR: node i has 198.19.i.0/24.
	ClusterCIDR = netip.MustParsePrefix("198.19.0.0/16")
)

// DefaultNodes is the number of nodes when neither --nodes nor the
// manifests say.
const DefaultNodes = 2

// MaxNodes bounds a lab: node addresses and pod CIDRs come from /24s.
const MaxNodes = 64

// NodeAddress is node i's (1-based) underlay address.
func NodeAddress(i int) netip.Addr {
	a := UnderlayPrefix.Addr().As4()
	a[3] = byte(10 + i)
	return netip.AddrFrom4(a)
}

// NodePodCIDR is node i's (1-based) pod CIDR.
func NodePodCIDR(i int) netip.Prefix {
	a := ClusterCIDR.Addr().As4()
	a[2] = byte(i)
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// Plan is what a lab will be made of, decided from the manifests alone.
type Plan struct {
	Nodes []PlannedNode
	Pods  []PlannedPod // sorted by ref
}

// PlannedNode is one node: its 1-based index, name and addresses.
type PlannedNode struct {
	Index   int
	Name    string
	Address netip.Addr
	PodCIDR netip.Prefix
}

// PlannedPod is one endpoint of the manifests (a Pod, or one pod standing
// for a workload) and the node it runs on.
type PlannedPod struct {
	Ref         string
	Node        string
	HostNetwork bool
}

// PlanError is a manifest that the lab cannot lay out, with file:line.
type PlanError struct {
	Diagnostics []cluster.Diagnostic
}

func (e *PlanError) Error() string {
	msgs := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		msgs[i] = d.String()
	}
	return strings.Join(msgs, "\n")
}

// MakePlan lays out a snapshot on nodes (0: as many as the manifests name,
// at least DefaultNodes). Node names are those of the manifests' Node
// objects, or when there are none, those that pods' spec.nodeName gives,
// then node-1, node-2, ... for the rest. A pod with spec.nodeName runs on
// that node, and it must be one of the lab's (with Node objects, one of
// them: an unknown node is an error, as its pod would never start); the
// others are spread, each on the node with the fewest pods so far.
func MakePlan(s *cluster.Snapshot, nodes int) (*Plan, error) {
	var diags []cluster.Diagnostic
	fail := func(o *cluster.Origin, object, path, format string, args ...any) {
		diags = append(diags, cluster.At(cluster.Error, o, object, path, format, args...))
	}
	var names, declaredNames []string
	declared := len(s.Nodes) > 0
	for _, n := range s.Nodes {
		names = append(names, n.Name)
		declaredNames = append(declaredNames, n.Name)
	}
	if !declared {
		for _, p := range s.Pods {
			if p.Spec.NodeName != "" && !slices.Contains(names, p.Spec.NodeName) {
				names = append(names, p.Spec.NodeName)
			}
		}
	}
	sort.Strings(names)
	if nodes == 0 {
		nodes = max(DefaultNodes, len(names))
	}
	if nodes < 1 || nodes > MaxNodes {
		return nil, fmt.Errorf("lab: %d nodes: want 1 to %d", nodes, MaxNodes)
	}
	if len(names) > nodes {
		return nil, fmt.Errorf("lab: the manifests name %d nodes (%s), more than the %d asked for: raise --nodes",
			len(names), strings.Join(names, ", "), nodes)
	}
	for _, n := range s.Nodes {
		for _, msg := range validation.IsDNS1123Subdomain(n.Name) {
			fail(n.Origin, cluster.ObjectName("Node", "", n.Name), "metadata.name", "%s (the lab names a node's certificate after it)", msg)
		}
	}
	for i := 1; len(names) < nodes; i++ {
		if n := fmt.Sprintf("node-%d", i); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	plan := &Plan{}
	load := map[string]int{}
	for i, n := range names {
		plan.Nodes = append(plan.Nodes, PlannedNode{Index: i + 1, Name: n, Address: NodeAddress(i + 1), PodCIDR: NodePodCIDR(i + 1)})
	}
	pods := slices.Clone(s.Pods)
	sort.Slice(pods, func(i, j int) bool { return ref(pods[i]) < ref(pods[j]) })
	// Pinned pods first, so the spread ones fill in around them.
	for _, p := range pods {
		if n := p.Spec.NodeName; n != "" {
			if !slices.Contains(names, n) || (declared && !slices.Contains(declaredNames, n)) {
				fail(p.Origin, cluster.ObjectName(p.Kind, p.Namespace, p.Name), p.SpecPath+".nodeName",
					"node %q is not one of the Nodes the manifests declare (%s)", n, strings.Join(declaredNames, ", "))
				continue
			}
			load[n]++
		}
	}
	if len(diags) > 0 {
		return nil, &PlanError{Diagnostics: diags}
	}
	for _, p := range pods {
		node := p.Spec.NodeName
		if node == "" {
			node = names[0]
			for _, n := range names[1:] {
				if load[n] < load[node] {
					node = n
				}
			}
			load[node]++
		}
		plan.Pods = append(plan.Pods, PlannedPod{Ref: ref(p), Node: node, HostNetwork: p.Spec.HostNetwork})
	}
	return plan, nil
}

func ref(p *cluster.Pod) string { return p.Namespace + "/" + p.Name }

// Node returns the planned node called name.
func (p *Plan) Node(name string) PlannedNode {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n
		}
	}
	return PlannedNode{}
}
