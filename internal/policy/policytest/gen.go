// Package policytest generates random clusters and policies for tests and
// benchmarks: the randomized comparison of the verdict engine with the
// class matrix, the differential test against an independent
// implementation, and the benchmarks at 10,000 pods. Generation is
// deterministic for a seed.
package policytest

import (
	"fmt"
	"io"
	"math/rand"
	"sort"
	"strings"

	"github.com/rampartnet/rampart/internal/cluster"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Options shape a generated cluster.
type Options struct {
	Namespaces int
	Workloads  int // spread over the namespaces
	Policies   int
	// PodIPs gives every workload an address (as a bare Pod with
	// status.podIP) so that ipBlocks can match pods; without it workloads
	// are Deployments with no known address.
	PodIPs bool
	// NoIPBlocks leaves ipBlock peers out.
	NoIPBlocks bool
	// NoNamedPorts writes numeric ports only in policies.
	NoNamedPorts bool
	// NamedPortsIngressOnly writes named ports in ingress rules only:
	// np-guard refuses a named port in an egress rule that can also reach
	// addresses, though upstream lets it match pods only.
	NamedPortsIngressOnly bool
	// Protocols to use in ports; default TCP, UDP and SCTP.
	Protocols []corev1.Protocol
	// ClusterPolicies is how many cluster-wide policies to add: most of
	// them v1alpha2 ClusterNetworkPolicies of either tier, some v1alpha1
	// AdminNetworkPolicies, and at most one BaselineAdminNetworkPolicy.
	// With any, the cluster also gets two labelled nodes, each with a
	// hostNetwork pod, for the nodes peers. Priorities are drawn from a
	// few values, so that ties happen.
	ClusterPolicies int
}

// Vocabulary: small, so that selectors often match something.
var (
	apps  = []string{"web", "api", "db", "cache", "queue", "auth", "dns", "batch"}
	tiers = []string{"frontend", "backend", "data"}
	teams = []string{"red", "blue", "green"}
	envs  = []string{"prod", "dev"}
	// Ports every workload may serve, with their names.
	ports = []struct {
		name  string
		port  int32
		proto corev1.Protocol
	}{
		{"serve-80-tcp", 80, corev1.ProtocolTCP},
		{"serve-81-tcp", 81, corev1.ProtocolTCP},
		{"serve-80-udp", 80, corev1.ProtocolUDP},
		{"serve-81-udp", 81, corev1.ProtocolUDP},
		{"serve-80-sctp", 80, corev1.ProtocolSCTP},
		{"serve-81-sctp", 81, corev1.ProtocolSCTP},
		{"http-alt", 8080, corev1.ProtocolTCP},
	}
)

// ipBlocks are CIDRs with exceptions that are valid inside them.
var ipBlocks = []struct {
	cidr   string
	except []string
}{
	{"198.18.0.0/15", []string{"198.18.1.0/28", "198.18.1.128/25"}},
	{"198.18.1.0/24", []string{"198.18.1.0/28", "198.18.1.128/25"}},
	{"0.0.0.0/0", []string{"198.18.1.0/28", "203.0.113.0/25", "198.18.0.0/15"}},
	{"203.0.113.0/24", []string{"203.0.113.0/25"}},
}

// Probes are the ports the generated workloads serve, for matrices.
func Probes() []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = fmt.Sprintf("%d/%s", p.port, p.proto)
	}
	return out
}

// Generate builds a random cluster.
func Generate(seed int64, o Options) *cluster.Snapshot {
	r := rand.New(rand.NewSource(seed))
	g := &gen{r: r, o: o}
	if len(g.o.Protocols) == 0 {
		g.o.Protocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
	}
	s := &cluster.Snapshot{}
	for i := 0; i < o.Namespaces; i++ {
		ns := &cluster.Namespace{Declared: true}
		ns.Name = fmt.Sprintf("ns%d", i)
		ns.Labels = map[string]string{"team": g.pick(teams), "env": g.pick(envs)}
		if r.Intn(4) == 0 {
			delete(ns.Labels, "env")
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
		s.Namespaces = append(s.Namespaces, ns)
		g.namespaces = append(g.namespaces, ns.Name)
	}
	for i := 0; i < o.Workloads; i++ {
		ns := g.namespaces[i%len(g.namespaces)]
		p := &cluster.Pod{Kind: "Deployment", SpecPath: "spec.template.spec", LabelsPath: "spec.template.metadata.labels"}
		p.Name, p.Namespace = fmt.Sprintf("w%d", i), ns
		p.Labels = map[string]string{"app": g.pick(apps), "tier": g.pick(tiers)}
		if r.Intn(3) == 0 {
			p.Labels["role"] = g.pick([]string{"primary", "replica"})
		}
		if r.Intn(5) == 0 {
			delete(p.Labels, "tier")
		}
		c := corev1.Container{Name: "main", Image: "registry.example/app:1"}
		for _, pt := range ports {
			if r.Intn(3) > 0 {
				c.Ports = append(c.Ports, corev1.ContainerPort{Name: pt.name, ContainerPort: pt.port, Protocol: pt.proto})
			}
		}
		p.Spec.Containers = []corev1.Container{c}
		if o.PodIPs {
			p.Kind, p.SpecPath, p.LabelsPath = "Pod", "spec", "metadata.labels"
			p.Status.PodIP = fmt.Sprintf("198.18.%d.%d", 1+i/250, 1+i%250)
		}
		s.Pods = append(s.Pods, p)
	}
	for i := 0; i < o.Policies; i++ {
		s.NetworkPolicies = append(s.NetworkPolicies, g.policy(i))
	}
	// Cluster-wide policies draw their numbers after everything else, so
	// that a seed gives the same namespaces, pods and NetworkPolicies with
	// or without them.
	if o.ClusterPolicies > 0 {
		g.nodes(s)
		banp := false
		for i := 0; i < o.ClusterPolicies; i++ {
			switch k := r.Intn(8); {
			case k == 0 && !banp:
				banp = true
				s.BaselineAdminNetworkPolicies = append(s.BaselineAdminNetworkPolicies, g.banp())
			case k <= 2:
				s.AdminNetworkPolicies = append(s.AdminNetworkPolicies, g.anp(i))
			default:
				s.ClusterNetworkPolicies = append(s.ClusterNetworkPolicies, g.cnp(i))
			}
		}
	}
	return s
}

type gen struct {
	r          *rand.Rand
	o          Options
	namespaces []string
}

func (g *gen) pick(xs []string) string { return xs[g.r.Intn(len(xs))] }

func (g *gen) policy(i int) *cluster.NetworkPolicy {
	r := g.r
	np := &cluster.NetworkPolicy{}
	np.Name = fmt.Sprintf("p%d", i)
	np.Namespace = g.pick(g.namespaces)
	np.Spec.PodSelector = g.selector(map[string][]string{"app": apps, "tier": tiers, "role": {"primary", "replica"}})
	hasIngress, hasEgress := true, r.Intn(2) == 0
	switch r.Intn(4) {
	case 0:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case 1:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		hasIngress, hasEgress = false, true
	case 2:
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
		hasEgress = true
	}
	if hasIngress {
		for k := r.Intn(3); k > 0; k-- {
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: g.peers(), Ports: g.ports(g.o.NoNamedPorts)})
		}
	}
	if hasEgress {
		for k := r.Intn(3); k > 0; k-- {
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: g.peers(), Ports: g.ports(g.o.NoNamedPorts || g.o.NamedPortsIngressOnly)})
		}
	}
	return np
}

func (g *gen) selector(keys map[string][]string) metav1.LabelSelector {
	r := g.r
	var sel metav1.LabelSelector
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if r.Intn(3) != 0 {
			continue
		}
		vals := keys[k]
		switch r.Intn(6) {
		case 0, 1:
			if sel.MatchLabels == nil {
				sel.MatchLabels = map[string]string{}
			}
			sel.MatchLabels[k] = g.pick(vals)
		case 2:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: k, Operator: metav1.LabelSelectorOpIn, Values: g.values(vals)})
		case 3:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: k, Operator: metav1.LabelSelectorOpNotIn, Values: g.values(vals)})
		case 4:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: k, Operator: metav1.LabelSelectorOpExists})
		case 5:
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: k, Operator: metav1.LabelSelectorOpDoesNotExist})
		}
	}
	return sel
}

func (g *gen) values(vals []string) []string {
	n := 1 + g.r.Intn(2)
	seen := map[string]bool{}
	var out []string
	for len(out) < n && len(out) < len(vals) {
		v := g.pick(vals)
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func (g *gen) peers() []networkingv1.NetworkPolicyPeer {
	r := g.r
	var out []networkingv1.NetworkPolicyPeer
	for k := r.Intn(3); k > 0; k-- {
		var p networkingv1.NetworkPolicyPeer
		switch r.Intn(6) {
		case 0:
			s := g.selector(map[string][]string{"app": apps, "tier": tiers})
			p.PodSelector = &s
		case 1:
			s := g.selector(map[string][]string{"team": teams, "env": envs, corev1.LabelMetadataName: g.namespaces})
			p.NamespaceSelector = &s
		case 2, 3:
			ps := g.selector(map[string][]string{"app": apps, "tier": tiers})
			ns := g.selector(map[string][]string{"team": teams, "env": envs})
			p.PodSelector, p.NamespaceSelector = &ps, &ns
		case 4:
			if g.o.NoIPBlocks {
				s := metav1.LabelSelector{}
				p.NamespaceSelector = &s
				break
			}
			blk := ipBlocks[r.Intn(len(ipBlocks))]
			b := &networkingv1.IPBlock{CIDR: blk.cidr}
			if r.Intn(2) == 0 {
				b.Except = []string{blk.except[r.Intn(len(blk.except))]}
			}
			p.IPBlock = b
		case 5:
			s := metav1.LabelSelector{}
			p.PodSelector = &s
		}
		out = append(out, p)
	}
	return out
}

func (g *gen) ports(numeric bool) []networkingv1.NetworkPolicyPort {
	r := g.r
	var out []networkingv1.NetworkPolicyPort
	for k := r.Intn(3); k > 0; k-- {
		proto := g.o.Protocols[r.Intn(len(g.o.Protocols))]
		p := networkingv1.NetworkPolicyPort{Protocol: &proto}
		switch r.Intn(5) {
		case 0:
			p.Protocol = nil // defaults to TCP
			v := intstr.FromInt32(int32(80 + r.Intn(2)))
			p.Port = &v
		case 1:
			v := intstr.FromInt32(int32(80 + r.Intn(2)))
			p.Port = &v
		case 2:
			pt := ports[r.Intn(len(ports))]
			v := intstr.FromString(pt.name)
			if numeric {
				v = intstr.FromInt32(pt.port)
			}
			p.Port = &v
		case 3:
			v := intstr.FromInt32(80)
			end := int32(81 + r.Intn(8000))
			p.Port, p.EndPort = &v, &end
		case 4:
			// every port of the protocol
		}
		out = append(out, p)
	}
	return out
}

// WriteYAML writes the snapshot's objects as manifests: Namespaces,
// Deployments (or Pods) and NetworkPolicies, one document each.
func WriteYAML(w io.Writer, s *cluster.Snapshot) error {
	var docs []any
	for _, ns := range s.Namespaces {
		n := ns.Namespace
		n.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
		docs = append(docs, n)
	}
	for _, p := range s.Pods {
		if p.Kind == "Pod" {
			pod := p.Pod
			pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
			docs = append(docs, pod)
			continue
		}
		d := appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}}
		d.Name, d.Namespace = p.Name, p.Namespace
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: p.Labels}
		d.Spec.Template.Labels = p.Labels
		d.Spec.Template.Spec = p.Spec
		docs = append(docs, d)
	}
	// Nodes and the cluster-wide policies as plain maps: their typed forms
	// marshal empty status fields that are not worth stripping.
	object := func(apiVersion, kind string, meta metav1.ObjectMeta, fields map[string]any) map[string]any {
		m := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
		for k, v := range fields {
			m[k] = v
		}
		return m
	}
	for _, n := range s.Nodes {
		docs = append(docs, object("v1", "Node", n.ObjectMeta, map[string]any{
			"status": map[string]any{"addresses": n.Status.Addresses}}))
	}
	for _, np := range s.NetworkPolicies {
		n := np.NetworkPolicy
		n.TypeMeta = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
		docs = append(docs, n)
	}
	for _, p := range s.ClusterNetworkPolicies {
		docs = append(docs, object("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy", p.ObjectMeta,
			map[string]any{"spec": p.Spec}))
	}
	for _, p := range s.AdminNetworkPolicies {
		docs = append(docs, object("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy", p.ObjectMeta,
			map[string]any{"spec": p.Spec}))
	}
	for _, p := range s.BaselineAdminNetworkPolicies {
		docs = append(docs, object("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy", p.ObjectMeta,
			map[string]any{"spec": p.Spec}))
	}
	for _, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "---\n%s", stripEmpty(b)); err != nil {
			return err
		}
	}
	return nil
}

// stripEmpty drops the "creationTimestamp: null", "status: {}" and
// "resources: {}" lines that marshalling typed objects adds.
func stripEmpty(b []byte) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(l)
		if t == "creationTimestamp: null" || t == "status: {}" || t == "resources: {}" || t == "strategy: {}" {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
