package main

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The generated cluster: policytest.Generate's workloads and policies (a
// small label vocabulary, pod and namespace selectors, In/NotIn/Exists
// expressions, numeric and named ports on TCP, UDP and SCTP, ipBlocks with
// exceptions), each workload made into -replicas bare Pods with the same
// labels and container ports, each with an address and a node. (With
// -replicas 1 nearly every pod is a class of its own: policytest draws
// each workload's container ports at random.)
//
// Node "node1" is the node under test: every (pods/local)-th pod is on it,
// with an address in 198.19.0.0/24; the others are spread over nodes
// node2... with addresses from 198.19.1.0 on. Two more pods of node1, in a
// namespace "bench" of their own, carry the measured flow: bench/client
// (198.19.0.250) to bench/server (198.19.0.251), TCP 5201 (iperf3) and 80
// (the probe). Policies bench-in (server ingress) and bench-out (client
// egress) allow exactly that and replace two generated ones, so the total
// stays at -policies; since no generated policy lives in "bench", those two
// alone decide the flow, and editing bench-in flips the probe for sure.
// The generated policies still see both pods as peers (their labels come
// from the same vocabulary).

const (
	nodeName   = "node1"
	benchNS    = "bench"
	iperfPort  = 5201
	probePort  = 80
	clientAddr = "198.19.0.250"
	serverAddr = "198.19.0.251"
)

type clusterOpts struct {
	pods, namespaces, policies, local int
	replicas                          int // pods per generated workload
	seed                              int64
}

// localAddr is the address of the i-th local pod, remoteAddr of the i-th
// remote one.
func localAddr(i int) string { return fmt.Sprintf("198.19.0.%d", 1+i) }
func remoteAddr(i int) string {
	return fmt.Sprintf("198.19.%d.%d", 1+i/250, 1+i%250)
}

func generate(o clusterOpts) (*cluster.Snapshot, error) {
	if o.local < 1 || o.local > 240 || o.pods < o.local+2 || o.policies < 2 {
		return nil, fmt.Errorf("want 1 to 240 local pods, more pods than that plus 2, and at least 2 policies")
	}
	if o.replicas < 1 {
		o.replicas = 1
	}
	s := policytest.Generate(o.seed, policytest.Options{
		Namespaces: o.namespaces, Workloads: (o.pods - 2 + o.replicas - 1) / o.replicas, Policies: o.policies, PodIPs: true,
	})
	// Replicas: pods of one workload share its namespace, labels and
	// container ports, as the pods of a Deployment do.
	var pods []*cluster.Pod
	for _, p := range s.Pods {
		for r := 0; r < o.replicas && len(pods) < o.pods-2; r++ {
			q := *p
			q.Name = fmt.Sprintf("%s-%d", p.Name, r)
			pods = append(pods, &q)
		}
	}
	s.Pods = pods
	every := (o.pods - 2) / (o.local)
	nl, nr := 0, 0
	for i, p := range s.Pods {
		if i%every == 0 && nl < o.local {
			p.Spec.NodeName, p.Status.PodIP = nodeName, localAddr(nl)
			nl++
			continue
		}
		p.Spec.NodeName, p.Status.PodIP = fmt.Sprintf("node%d", 2+nr%49), remoteAddr(nr)
		nr++
	}
	ns := &cluster.Namespace{Declared: true}
	ns.Name = benchNS
	ns.Labels = map[string]string{"team": "red", "env": "prod", corev1.LabelMetadataName: benchNS}
	s.Namespaces = append(s.Namespaces, ns)
	for _, b := range []struct{ name, role, addr string }{{"client", "client", clientAddr}, {"server", "server", serverAddr}} {
		p := &cluster.Pod{Kind: "Pod", SpecPath: "spec", LabelsPath: "metadata.labels"}
		p.Name, p.Namespace = b.name, benchNS
		p.Labels = map[string]string{"app": "web", "tier": "frontend", "bench": b.role}
		p.Spec.NodeName, p.Status.PodIP = nodeName, b.addr
		p.Spec.Containers = []corev1.Container{{Name: "main", Image: "registry.example/app:1",
			Ports: []corev1.ContainerPort{{Name: "iperf", ContainerPort: iperfPort, Protocol: corev1.ProtocolTCP}}}}
		s.Pods = append(s.Pods, p)
	}
	s.NetworkPolicies[0] = benchIn(true)
	s.NetworkPolicies[1] = benchOut()
	for i := 1; i <= 50; i++ { // the nodes, with underlay addresses (node1's is its uplink's)
		n := &cluster.Node{}
		n.Name = fmt.Sprintf("node%d", i)
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.18.0.%d", i)}}
		s.Nodes = append(s.Nodes, n)
	}
	return s, nil
}

func tcpPort(p int) networkingv1.NetworkPolicyPort {
	proto := corev1.ProtocolTCP
	port := intstr.FromInt32(int32(p))
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port}
}

// benchIn lets bench/client reach bench/server on 5201, and on 80 if probe.
func benchIn(probe bool) *cluster.NetworkPolicy {
	np := &cluster.NetworkPolicy{}
	np.Name, np.Namespace = "bench-in", benchNS
	np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"bench": "server"}}
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	ports := []networkingv1.NetworkPolicyPort{tcpPort(iperfPort)}
	if probe {
		ports = append(ports, tcpPort(probePort))
	}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: benchNS}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"bench": "client"}},
		}},
		Ports: ports,
	}}
	return np
}

func benchOut() *cluster.NetworkPolicy {
	np := &cluster.NetworkPolicy{}
	np.Name, np.Namespace = "bench-out", benchNS
	np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"bench": "client"}}
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"bench": "server"}}}},
		Ports: []networkingv1.NetworkPolicyPort{tcpPort(iperfPort), tcpPort(probePort)},
	}}
	return np
}

// withPolicy is s with policy name replaced by np (shallow: the other
// objects are shared, which is fine as nothing mutates them).
func withPolicy(s *cluster.Snapshot, np *cluster.NetworkPolicy) *cluster.Snapshot {
	c := *s
	c.NetworkPolicies = slices.Clone(s.NetworkPolicies)
	for i, p := range c.NetworkPolicies {
		if p.Name == np.Name && p.Namespace == np.Namespace {
			c.NetworkPolicies[i] = np
		}
	}
	return &c
}

// withPod is s plus a copy of the pod at index like, renamed, on node, at
// addr.
func withPod(s *cluster.Snapshot, like int, name, node string, addr netip.Addr) *cluster.Snapshot {
	c := *s
	q := *s.Pods[like]
	q.Name, q.Spec.NodeName, q.Status.PodIP = name, node, addr.String()
	c.Pods = append(slices.Clone(s.Pods), &q)
	return &c
}

// withoutPod is s without the pod at index i.
func withoutPod(s *cluster.Snapshot, i int) *cluster.Snapshot {
	c := *s
	c.Pods = slices.Delete(slices.Clone(s.Pods), i, i+1)
	return &c
}
