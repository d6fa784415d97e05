package policytest

import (
	"fmt"

	"github.com/rampartnet/rampart/internal/cluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	npav1alpha1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	npav1alpha2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// Generated cluster-wide policies. A rule is drawn in a form common to
// both API versions (genRule), then written in the version's types.

// genNodes are the nodes of a cluster with cluster-wide policies.
var genNodes = []struct {
	name, addr string
	labels     map[string]string
}{
	{"node-a", "198.19.200.1", map[string]string{"role": "worker", "zone": "z1"}},
	{"node-b", "198.19.200.2", map[string]string{"role": "control", "zone": "z2"}},
}

// networks are the CIDRs of networks peers: some hold pods, some not.
var networks = []string{"198.18.0.0/15", "198.18.1.0/24", "198.18.1.0/28", "0.0.0.0/0", "203.0.113.0/25", "198.19.200.0/30"}

// nodes adds the nodes, each with a hostNetwork pod (whose address is the
// node's) for the nodes peers to match.
func (g *gen) nodes(s *cluster.Snapshot) {
	for i, n := range genNodes {
		node := &cluster.Node{}
		node.Name, node.Labels = n.name, n.labels
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.addr}}
		s.Nodes = append(s.Nodes, node)
		p := &cluster.Pod{Kind: "Pod", SpecPath: "spec", LabelsPath: "metadata.labels"}
		p.Name, p.Namespace = fmt.Sprintf("hostnet%d", i), g.namespaces[i%len(g.namespaces)]
		p.Labels = map[string]string{"app": g.pick(apps), "tier": g.pick(tiers)}
		p.Spec.HostNetwork, p.Spec.NodeName = true, n.name
		c := corev1.Container{Name: "main", Image: "registry.example/agent:1"}
		for _, pt := range ports {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: pt.name, ContainerPort: pt.port, Protocol: pt.proto})
		}
		p.Spec.Containers = []corev1.Container{c}
		p.Status.PodIP = n.addr
		s.Pods = append(s.Pods, p)
	}
}

// genPeer is one peer: exactly one field set.
type genPeer struct {
	namespaces  *metav1.LabelSelector
	pods        *[2]metav1.LabelSelector // namespaces, pods
	nodes       *metav1.LabelSelector
	networks    []string
	domainNames []string
}

// genPort is one port: a protocol with a number or a range, or a name.
type genPort struct {
	proto      corev1.Protocol
	start, end int32 // end 0: one port
	name       string
}

type genRule struct {
	action string // Accept, Deny or Pass
	peers  []genPeer
	ports  []genPort // nil: every port
}

func (g *gen) nsSelector() metav1.LabelSelector {
	return g.selector(map[string][]string{"team": teams, "env": envs, corev1.LabelMetadataName: g.namespaces})
}

func (g *gen) podSelector() metav1.LabelSelector {
	return g.selector(map[string][]string{"app": apps, "tier": tiers})
}

// rule draws a rule. Domain names go only into Accept egress rules, and
// named ports never with networks, nodes or domain names (the API's rules).
func (g *gen) clusterRule(d string, actions []string) genRule {
	r := g.r
	gr := genRule{action: actions[r.Intn(len(actions))]}
	addressPeer := false
	for k := 1 + r.Intn(2); k > 0; k-- {
		var p genPeer
		kinds := 2
		if d == "egress" {
			kinds = 5
		}
		switch r.Intn(kinds) {
		case 0:
			s := g.nsSelector()
			p.namespaces = &s
		case 1:
			p.pods = &[2]metav1.LabelSelector{g.nsSelector(), g.podSelector()}
		case 2:
			s := g.selector(map[string][]string{"role": {"worker", "control"}, "zone": {"z1", "z2"}})
			p.nodes = &s
			addressPeer = true
		case 3:
			p.networks = []string{networks[r.Intn(len(networks))]}
			if r.Intn(3) == 0 {
				p.networks = append(p.networks, networks[r.Intn(len(networks))])
				if p.networks[0] == p.networks[1] {
					p.networks = p.networks[:1]
				}
			}
			addressPeer = true
		case 4:
			if gr.action != "Accept" {
				s := g.nsSelector()
				p.namespaces = &s
				break
			}
			p.domainNames = []string{g.pick([]string{"example.com", "*.example.org", "registry.example"})}
			addressPeer = true
		}
		gr.peers = append(gr.peers, p)
	}
	if r.Intn(5) < 2 {
		return gr // every port
	}
	for k := 1 + r.Intn(2); k > 0; k-- {
		proto := g.o.Protocols[r.Intn(len(g.o.Protocols))]
		switch r.Intn(4) {
		case 0, 1:
			gr.ports = append(gr.ports, genPort{proto: proto, start: int32(80 + r.Intn(2))})
		case 2:
			gr.ports = append(gr.ports, genPort{proto: proto, start: 80, end: int32(81 + r.Intn(8000))})
		case 3:
			pt := ports[r.Intn(len(ports))]
			if addressPeer || g.o.NoNamedPorts {
				gr.ports = append(gr.ports, genPort{proto: pt.proto, start: pt.port})
			} else {
				gr.ports = append(gr.ports, genPort{name: pt.name})
			}
		}
	}
	return gr
}

// subject draws a subject: namespaces, or pods of namespaces.
func (g *gen) subject() (*metav1.LabelSelector, *[2]metav1.LabelSelector) {
	if g.r.Intn(2) == 0 {
		s := g.nsSelector()
		return &s, nil
	}
	return nil, &[2]metav1.LabelSelector{g.nsSelector(), g.podSelector()}
}

func (g *gen) rules(actions []string) (ingress, egress []genRule) {
	for k := g.r.Intn(3); k > 0; k-- {
		ingress = append(ingress, g.clusterRule("ingress", actions))
	}
	for k := g.r.Intn(3); k > 0; k-- {
		egress = append(egress, g.clusterRule("egress", actions))
	}
	return ingress, egress
}

func (g *gen) cnp(i int) *cluster.ClusterNetworkPolicy {
	p := &cluster.ClusterNetworkPolicy{}
	p.Name = fmt.Sprintf("cnp%d", i)
	p.Spec.Tier = npav1alpha2.AdminTier
	if g.r.Intn(2) == 0 {
		p.Spec.Tier = npav1alpha2.BaselineTier
	}
	p.Spec.Priority = int32(10 * g.r.Intn(4))
	ns, pods := g.subject()
	p.Spec.Subject.Namespaces = ns
	if pods != nil {
		p.Spec.Subject.Pods = &npav1alpha2.NamespacedPod{NamespaceSelector: pods[0], PodSelector: pods[1]}
	}
	in, eg := g.rules([]string{"Accept", "Deny", "Pass"})
	for _, r := range in {
		rule := npav1alpha2.ClusterNetworkPolicyIngressRule{Name: "in", Action: npav1alpha2.ClusterNetworkPolicyRuleAction(r.action),
			Protocols: protocols2(r.ports)}
		for _, pe := range r.peers {
			peer := npav1alpha2.ClusterNetworkPolicyIngressPeer{Namespaces: pe.namespaces}
			if pe.pods != nil {
				peer.Pods = &npav1alpha2.NamespacedPod{NamespaceSelector: pe.pods[0], PodSelector: pe.pods[1]}
			}
			rule.From = append(rule.From, peer)
		}
		p.Spec.Ingress = append(p.Spec.Ingress, rule)
	}
	for _, r := range eg {
		rule := npav1alpha2.ClusterNetworkPolicyEgressRule{Action: npav1alpha2.ClusterNetworkPolicyRuleAction(r.action),
			Protocols: protocols2(r.ports)}
		for _, pe := range r.peers {
			peer := npav1alpha2.ClusterNetworkPolicyEgressPeer{Namespaces: pe.namespaces, Nodes: pe.nodes}
			if pe.pods != nil {
				peer.Pods = &npav1alpha2.NamespacedPod{NamespaceSelector: pe.pods[0], PodSelector: pe.pods[1]}
			}
			for _, n := range pe.networks {
				peer.Networks = append(peer.Networks, npav1alpha2.CIDR(n))
			}
			for _, n := range pe.domainNames {
				peer.DomainNames = append(peer.DomainNames, npav1alpha2.DomainName(n))
			}
			rule.To = append(rule.To, peer)
		}
		p.Spec.Egress = append(p.Spec.Egress, rule)
	}
	return p
}

func protocols2(ps []genPort) []npav1alpha2.ClusterNetworkPolicyProtocol {
	var out []npav1alpha2.ClusterNetworkPolicyProtocol
	for _, p := range ps {
		if p.name != "" {
			out = append(out, npav1alpha2.ClusterNetworkPolicyProtocol{DestinationNamedPort: p.name})
			continue
		}
		dp := &npav1alpha2.Port{Number: p.start}
		if p.end != 0 {
			dp = &npav1alpha2.Port{Range: &npav1alpha2.PortRange{Start: p.start, End: p.end}}
		}
		var pr npav1alpha2.ClusterNetworkPolicyProtocol
		switch p.proto {
		case corev1.ProtocolUDP:
			pr.UDP = &npav1alpha2.ClusterNetworkPolicyProtocolUDP{DestinationPort: dp}
		case corev1.ProtocolSCTP:
			pr.SCTP = &npav1alpha2.ClusterNetworkPolicyProtocolSCTP{DestinationPort: dp}
		default:
			pr.TCP = &npav1alpha2.ClusterNetworkPolicyProtocolTCP{DestinationPort: dp}
		}
		out = append(out, pr)
	}
	return out
}

func ports1(ps []genPort) *[]npav1alpha1.AdminNetworkPolicyPort {
	if ps == nil {
		return nil
	}
	var out []npav1alpha1.AdminNetworkPolicyPort
	for _, p := range ps {
		switch {
		case p.name != "":
			name := p.name
			out = append(out, npav1alpha1.AdminNetworkPolicyPort{NamedPort: &name})
		case p.end != 0:
			out = append(out, npav1alpha1.AdminNetworkPolicyPort{PortRange: &npav1alpha1.PortRange{Protocol: p.proto, Start: p.start, End: p.end}})
		default:
			proto := p.proto
			if proto == corev1.ProtocolTCP && p.start == 81 {
				proto = "" // defaults to TCP
			}
			out = append(out, npav1alpha1.AdminNetworkPolicyPort{PortNumber: &npav1alpha1.Port{Protocol: proto, Port: p.start}})
		}
	}
	return &out
}

// v1alpha1 says Allow where v1alpha2 says Accept.
func action1(a string) string {
	if a == "Accept" {
		return "Allow"
	}
	return a
}

func egressPeers1(r genRule) []npav1alpha1.AdminNetworkPolicyEgressPeer {
	var out []npav1alpha1.AdminNetworkPolicyEgressPeer
	for _, pe := range r.peers {
		peer := npav1alpha1.AdminNetworkPolicyEgressPeer{Namespaces: pe.namespaces, Nodes: pe.nodes}
		if pe.pods != nil {
			peer.Pods = &npav1alpha1.NamespacedPod{NamespaceSelector: pe.pods[0], PodSelector: pe.pods[1]}
		}
		for _, n := range pe.networks {
			peer.Networks = append(peer.Networks, npav1alpha1.CIDR(n))
		}
		for _, n := range pe.domainNames {
			peer.DomainNames = append(peer.DomainNames, npav1alpha1.DomainName(n))
		}
		out = append(out, peer)
	}
	return out
}

func ingressPeers1(r genRule) []npav1alpha1.AdminNetworkPolicyIngressPeer {
	var out []npav1alpha1.AdminNetworkPolicyIngressPeer
	for _, pe := range r.peers {
		peer := npav1alpha1.AdminNetworkPolicyIngressPeer{Namespaces: pe.namespaces}
		if pe.pods != nil {
			peer.Pods = &npav1alpha1.NamespacedPod{NamespaceSelector: pe.pods[0], PodSelector: pe.pods[1]}
		}
		out = append(out, peer)
	}
	return out
}

func subject1(ns *metav1.LabelSelector, pods *[2]metav1.LabelSelector) npav1alpha1.AdminNetworkPolicySubject {
	s := npav1alpha1.AdminNetworkPolicySubject{Namespaces: ns}
	if pods != nil {
		s.Pods = &npav1alpha1.NamespacedPod{NamespaceSelector: pods[0], PodSelector: pods[1]}
	}
	return s
}

func (g *gen) anp(i int) *cluster.AdminNetworkPolicy {
	p := &cluster.AdminNetworkPolicy{}
	p.Name = fmt.Sprintf("anp%d", i)
	p.Spec.Priority = int32(10 * g.r.Intn(4))
	p.Spec.Subject = subject1(g.subject())
	in, eg := g.rules([]string{"Accept", "Deny", "Pass"})
	for _, r := range in {
		p.Spec.Ingress = append(p.Spec.Ingress, npav1alpha1.AdminNetworkPolicyIngressRule{
			Action: npav1alpha1.AdminNetworkPolicyRuleAction(action1(r.action)), From: ingressPeers1(r), Ports: ports1(r.ports)})
	}
	for _, r := range eg {
		p.Spec.Egress = append(p.Spec.Egress, npav1alpha1.AdminNetworkPolicyEgressRule{
			Action: npav1alpha1.AdminNetworkPolicyRuleAction(action1(r.action)), To: egressPeers1(r), Ports: ports1(r.ports)})
	}
	return p
}

func (g *gen) banp() *cluster.BaselineAdminNetworkPolicy {
	p := &cluster.BaselineAdminNetworkPolicy{}
	p.Name = "default"
	p.Spec.Subject = subject1(g.subject())
	in, eg := g.rules([]string{"Accept", "Deny"})
	for _, r := range in {
		p.Spec.Ingress = append(p.Spec.Ingress, npav1alpha1.BaselineAdminNetworkPolicyIngressRule{
			Action: npav1alpha1.BaselineAdminNetworkPolicyRuleAction(action1(r.action)), From: ingressPeers1(r), Ports: ports1(r.ports)})
	}
	for _, r := range eg {
		var to []npav1alpha1.BaselineAdminNetworkPolicyEgressPeer
		for _, pe := range egressPeers1(r) {
			if pe.DomainNames != nil {
				continue // BaselineAdminNetworkPolicy has no domainNames
			}
			to = append(to, npav1alpha1.BaselineAdminNetworkPolicyEgressPeer{Namespaces: pe.Namespaces, Pods: pe.Pods,
				Nodes: pe.Nodes, Networks: pe.Networks})
		}
		if len(to) == 0 {
			s := metav1.LabelSelector{}
			to = []npav1alpha1.BaselineAdminNetworkPolicyEgressPeer{{Namespaces: &s}}
		}
		p.Spec.Egress = append(p.Spec.Egress, npav1alpha1.BaselineAdminNetworkPolicyEgressRule{
			Action: npav1alpha1.BaselineAdminNetworkPolicyRuleAction(action1(r.action)), To: to, Ports: ports1(r.ports)})
	}
	return p
}
