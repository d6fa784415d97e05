package analyze

import (
	"fmt"
	"math/rand"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	npav1alpha2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// genModel generates a synthetic cluster of realistic shape, the same for
// a seed: pods workloads (Deployments, StatefulSets, a few DaemonSets,
// each with its own app label, so nearly one class per workload) spread
// over namespaces (the first is kube-system with CoreDNS), and about
// policies NetworkPolicies:
//
//   - a default-deny ingress policy in 85% of namespaces, half of them
//     denying egress too, each of those with a DNS egress policy;
//   - then, until the budget is spent: allow a workload's port from
//     workloads of its namespace (app labels, sometimes the named port),
//     allow it from namespaces of a team or environment (namespaceSelector),
//     a few "shared" services open to every namespace, and egress to
//     ipBlocks (the internet but the private ranges on 443, or a private
//     database range).
func genModel(seed int64, pods, namespaces, policies int) *policy.Model {
	m, _ := policy.NewModel(genSnapshot(seed, pods, namespaces, policies, false))
	return m
}

// genModelTiers is genModel with the guardrails a cluster administrator
// adds in cluster-wide policy: in the Admin tier, every namespace but
// kube-system may query CoreDNS and reach nothing else of kube-system; in
// the Baseline tier, the namespaces of each of a few teams accept
// connections from that team only, and the production namespaces are
// denied egress to the internet but for 443, with a Pass for pod traffic.
func genModelTiers(seed int64, pods, namespaces, policies int) *policy.Model {
	m, _ := policy.NewModel(genSnapshot(seed, pods, namespaces, policies, true))
	return m
}

func genSnapshot(seed int64, pods, namespaces, policies int, tiers bool) *cluster.Snapshot {
	rng := rand.New(rand.NewSource(seed))
	s := &cluster.Snapshot{}
	type profile struct {
		kind  string
		tier  string
		ports []corev1.ContainerPort
	}
	cp := func(name string, port int32, proto corev1.Protocol) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: proto}
	}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	profiles := map[string]profile{
		"web":      {"Deployment", "frontend", []corev1.ContainerPort{cp("http", 80, tcp), cp("metrics", 9090, tcp)}},
		"api":      {"Deployment", "backend", []corev1.ContainerPort{cp("http", 8080, tcp), cp("metrics", 9090, tcp)}},
		"grpc":     {"Deployment", "backend", []corev1.ContainerPort{cp("grpc", 50051, tcp)}},
		"gateway":  {"Deployment", "frontend", []corev1.ContainerPort{cp("https", 443, tcp), cp("http", 80, tcp)}},
		"postgres": {"StatefulSet", "data", []corev1.ContainerPort{cp("postgres", 5432, tcp)}},
		"mysql":    {"StatefulSet", "data", []corev1.ContainerPort{cp("mysql", 3306, tcp)}},
		"redis":    {"StatefulSet", "data", []corev1.ContainerPort{cp("redis", 6379, tcp)}},
		"mongo":    {"StatefulSet", "data", []corev1.ContainerPort{cp("mongo", 27017, tcp)}},
		"kafka":    {"StatefulSet", "data", []corev1.ContainerPort{cp("kafka", 9092, tcp)}},
		"search":   {"StatefulSet", "data", []corev1.ContainerPort{cp("http", 9200, tcp), cp("transport", 9300, tcp)}},
		"memcache": {"Deployment", "data", []corev1.ContainerPort{cp("memcache", 11211, tcp)}},
		"statsd":   {"DaemonSet", "backend", []corev1.ContainerPort{cp("statsd", 8125, udp)}},
		"worker":   {"Deployment", "backend", nil}, // declares no port
	}
	kinds := []string{"web", "web", "api", "api", "api", "grpc", "gateway", "postgres", "mysql", "redis",
		"redis", "mongo", "kafka", "search", "memcache", "statsd", "worker", "worker"}
	teams := 40
	envs := []string{"prod", "staging", "dev"}

	type workload struct {
		ns, app, kind string
		port          corev1.ContainerPort
		hasPort       bool
	}
	nsNames := make([]string, namespaces)
	byNS := make([][]workload, namespaces)
	for i := range nsNames {
		name := fmt.Sprintf("ns-%03d", i)
		lbl := map[string]string{
			"team": fmt.Sprintf("team-%02d", rng.Intn(teams)),
			"env":  envs[rng.Intn(len(envs))],
		}
		if i == 0 {
			name, lbl = "kube-system", nil
		}
		nsNames[i] = name
		n := &cluster.Namespace{Declared: true}
		n.Name, n.Labels = name, lbl
		s.Namespaces = append(s.Namespaces, n)
	}
	addPod := func(ns, name, kind string, lbl map[string]string, ports []corev1.ContainerPort) {
		p := &cluster.Pod{Kind: kind, Origin: cluster.NewOrigin("gen.yaml", nil)}
		p.Name, p.Namespace, p.Labels = name, ns, lbl
		p.Spec.Containers = []corev1.Container{{Name: "main", Ports: ports}}
		s.Pods = append(s.Pods, p)
	}
	addPod("kube-system", "coredns", "Deployment", map[string]string{"k8s-app": "kube-dns"},
		[]corev1.ContainerPort{cp("dns", 53, udp), cp("dns-tcp", 53, tcp), cp("metrics", 9153, tcp)})
	for i := 1; i < pods; i++ {
		ni := i % namespaces
		ns := nsNames[ni]
		kind := kinds[rng.Intn(len(kinds))]
		pr := profiles[kind]
		app := fmt.Sprintf("%s-%d", kind, i)
		lbl := map[string]string{"app": app, "tier": pr.tier, "app.kubernetes.io/part-of": fmt.Sprintf("sys-%d", rng.Intn(5))}
		addPod(ns, app, pr.kind, lbl, pr.ports)
		w := workload{ns: ns, app: app, kind: kind}
		if len(pr.ports) > 0 {
			w.port, w.hasPort = pr.ports[0], true
		}
		byNS[ni] = append(byNS[ni], w)
	}

	count := 0
	add := func(ns, name string, spec networkingv1.NetworkPolicySpec) {
		np := &cluster.NetworkPolicy{Origin: cluster.NewOrigin("gen.yaml", nil)}
		np.Name, np.Namespace, np.Spec = name, ns, spec
		s.NetworkPolicies = append(s.NetworkPolicies, np)
		count++
	}
	ptr := func(p corev1.Protocol) *corev1.Protocol { return &p }
	numPort := func(n int32, p corev1.Protocol) networkingv1.NetworkPolicyPort {
		v := intstr.FromInt32(n)
		return networkingv1.NetworkPolicyPort{Port: &v, Protocol: ptr(p)}
	}
	namedPort := func(n string, p corev1.Protocol) networkingv1.NetworkPolicyPort {
		v := intstr.FromString(n)
		return networkingv1.NetworkPolicyPort{Port: &v, Protocol: ptr(p)}
	}
	sel := func(kv ...string) *metav1.LabelSelector {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &metav1.LabelSelector{MatchLabels: m}
	}
	dnsPeer := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: sel("kubernetes.io/metadata.name", "kube-system"),
		PodSelector:       sel("k8s-app", "kube-dns"),
	}
	for i := 1; i < namespaces && count < policies; i++ {
		if rng.Float64() >= 0.85 {
			continue
		}
		ns := nsNames[i]
		if rng.Intn(2) == 0 {
			add(ns, "default-deny", networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}})
			if count < policies {
				add(ns, "allow-dns", networkingv1.NetworkPolicySpec{
					PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
					Egress: []networkingv1.NetworkPolicyEgressRule{{
						To:    []networkingv1.NetworkPolicyPeer{dnsPeer},
						Ports: []networkingv1.NetworkPolicyPort{numPort(53, udp), numPort(53, tcp)},
					}},
				})
			}
		} else {
			add(ns, "default-deny-ingress", networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}})
		}
	}
	for n := 0; count < policies; n++ {
		ni := 1 + rng.Intn(namespaces-1)
		ns, ws := nsNames[ni], byNS[ni]
		if len(ws) < 2 {
			continue
		}
		dst := ws[rng.Intn(len(ws))]
		if !dst.hasPort {
			continue
		}
		port := numPort(dst.port.ContainerPort, dst.port.Protocol)
		if rng.Intn(3) == 0 {
			port = namedPort(dst.port.Name, dst.port.Protocol)
		}
		target := *sel("app", dst.app)
		name := fmt.Sprintf("allow-%s-%d", dst.app, n)
		switch r := rng.Intn(100); {
		case r < 55: // from workloads of the namespace
			src := ws[rng.Intn(len(ws))]
			peers := []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", src.app)}}
			if rng.Intn(4) == 0 {
				peers = append(peers, networkingv1.NetworkPolicyPeer{PodSelector: sel("tier", "frontend")})
			}
			add(ns, name, networkingv1.NetworkPolicySpec{PodSelector: target,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: []networkingv1.NetworkPolicyPort{port}}}})
		case r < 80: // from the namespaces of a team, or of an environment
			nsSel := sel("team", fmt.Sprintf("team-%02d", rng.Intn(teams)))
			if rng.Intn(3) == 0 {
				nsSel = sel("env", envs[rng.Intn(len(envs))])
			}
			peer := networkingv1.NetworkPolicyPeer{NamespaceSelector: nsSel}
			if rng.Intn(2) == 0 {
				peer.PodSelector = sel("tier", "frontend")
			}
			add(ns, name, networkingv1.NetworkPolicySpec{PodSelector: target,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{peer},
					Ports: []networkingv1.NetworkPolicyPort{port}}}})
		case r < 85: // a shared service, open to every namespace
			add(ns, name, networkingv1.NetworkPolicySpec{PodSelector: target,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
					Ports: []networkingv1.NetworkPolicyPort{port}}}})
		default: // egress to ipBlocks, with DNS
			block := networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}}
			ports := []networkingv1.NetworkPolicyPort{numPort(443, tcp)}
			if rng.Intn(2) == 0 {
				block = networkingv1.IPBlock{CIDR: "10.20.0.0/16"}
				ports = []networkingv1.NetworkPolicyPort{numPort(5432, tcp)}
			}
			add(ns, name, networkingv1.NetworkPolicySpec{PodSelector: target,
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{
					{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &block}}, Ports: ports},
					{To: []networkingv1.NetworkPolicyPeer{dnsPeer}, Ports: []networkingv1.NetworkPolicyPort{numPort(53, udp)}},
				}})
		}
	}
	if tiers {
		addGuardrails(s, rng, teams)
	}
	return s
}

// addGuardrails adds genModelTiers' cluster-wide policies.
func addGuardrails(s *cluster.Snapshot, rng *rand.Rand, teams int) {
	sel := func(kv ...string) *metav1.LabelSelector {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &metav1.LabelSelector{MatchLabels: m}
	}
	cnp := func(name string, tier npav1alpha2.Tier, priority int32, subject *metav1.LabelSelector) *cluster.ClusterNetworkPolicy {
		p := &cluster.ClusterNetworkPolicy{Origin: cluster.NewOrigin("gen-tiers.yaml", nil)}
		p.Name, p.Spec.Tier, p.Spec.Priority = name, tier, priority
		p.Spec.Subject.Namespaces = subject
		s.ClusterNetworkPolicies = append(s.ClusterNetworkPolicies, p)
		return p
	}
	port := func(proto corev1.Protocol, n int32) npav1alpha2.ClusterNetworkPolicyProtocol {
		dp := &npav1alpha2.Port{Number: n}
		if proto == corev1.ProtocolUDP {
			return npav1alpha2.ClusterNetworkPolicyProtocol{UDP: &npav1alpha2.ClusterNetworkPolicyProtocolUDP{DestinationPort: dp}}
		}
		return npav1alpha2.ClusterNetworkPolicyProtocol{TCP: &npav1alpha2.ClusterNetworkPolicyProtocolTCP{DestinationPort: dp}}
	}
	ks := cnp("protect-kube-system", npav1alpha2.AdminTier, 10, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}}}})
	ks.Spec.Egress = []npav1alpha2.ClusterNetworkPolicyEgressRule{
		{Name: "dns", Action: npav1alpha2.ClusterNetworkPolicyRuleActionAccept,
			To: []npav1alpha2.ClusterNetworkPolicyEgressPeer{{Pods: &npav1alpha2.NamespacedPod{
				NamespaceSelector: *sel("kubernetes.io/metadata.name", "kube-system"), PodSelector: *sel("k8s-app", "kube-dns")}}},
			Protocols: []npav1alpha2.ClusterNetworkPolicyProtocol{port(corev1.ProtocolUDP, 53), port(corev1.ProtocolTCP, 53)}},
		{Name: "rest", Action: npav1alpha2.ClusterNetworkPolicyRuleActionDeny,
			To: []npav1alpha2.ClusterNetworkPolicyEgressPeer{{Namespaces: sel("kubernetes.io/metadata.name", "kube-system")}}},
	}
	for i, t := range rng.Perm(teams)[:min(5, teams)] {
		team := fmt.Sprintf("team-%02d", t)
		p := cnp("isolate-"+team, npav1alpha2.BaselineTier, int32(100+i), sel("team", team))
		p.Spec.Ingress = []npav1alpha2.ClusterNetworkPolicyIngressRule{
			{Action: npav1alpha2.ClusterNetworkPolicyRuleActionAccept,
				From: []npav1alpha2.ClusterNetworkPolicyIngressPeer{{Namespaces: sel("team", team)}}},
			{Action: npav1alpha2.ClusterNetworkPolicyRuleActionDeny,
				From: []npav1alpha2.ClusterNetworkPolicyIngressPeer{{Namespaces: &metav1.LabelSelector{}}}},
		}
	}
	prod := cnp("prod-egress", npav1alpha2.BaselineTier, 50, sel("env", "prod"))
	prod.Spec.Egress = []npav1alpha2.ClusterNetworkPolicyEgressRule{
		{Action: npav1alpha2.ClusterNetworkPolicyRuleActionPass,
			To: []npav1alpha2.ClusterNetworkPolicyEgressPeer{{Namespaces: &metav1.LabelSelector{}}}},
		{Action: npav1alpha2.ClusterNetworkPolicyRuleActionAccept,
			To:        []npav1alpha2.ClusterNetworkPolicyEgressPeer{{Networks: []npav1alpha2.CIDR{"0.0.0.0/0"}}},
			Protocols: []npav1alpha2.ClusterNetworkPolicyProtocol{port(corev1.ProtocolTCP, 443)}},
		{Action: npav1alpha2.ClusterNetworkPolicyRuleActionDeny,
			To: []npav1alpha2.ClusterNetworkPolicyEgressPeer{{Networks: []npav1alpha2.CIDR{"0.0.0.0/0"}}}},
	}
}
