package policytest

import (
	"embed"
	"fmt"
	"path"
	"strings"

	"github.com/rampartnet/rampart/internal/cluster"
	npav1alpha2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// The conformance suite of sigs.k8s.io/network-policy-api, as data: its
// cluster, its policies, and for each of its tests the steps in order,
// each with the changes it makes to the policies and the connections it
// probes with upstream's expected answers (conformance_cases.go). The
// verdict engine, the class matrix and the nftables compiler are each held
// to it.

//go:embed testdata/conformance
var conformanceFS embed.FS

// ConformanceCase is one upstream ConformanceTest.
type ConformanceCase struct {
	Name string
	// Manifest is the policies' file under testdata/conformance.
	Manifest string
	Steps    []ConformanceStep
}

// ConformanceStep is one t.Run of the test: the mutations it makes first,
// then its probes.
type ConformanceStep struct {
	Name   string
	Mutate []Mutation
	Probes []ConformanceProbe
}

// ConformanceProbe is one PokeServer: From ("house/pod") connects to the
// address of To on Port/Protocol, and Want is upstream's answer.
type ConformanceProbe struct {
	From, To string
	Protocol string
	Port     int32
	Want     bool
}

// Mutation changes the policies of a snapshot as an upstream step patches
// the live objects.
type Mutation func(s *cluster.Snapshot) error

// ConformanceNamespace is the namespace of a house: "gryffindor" is
// network-policy-conformance-gryffindor.
func ConformanceNamespace(house string) string { return "network-policy-conformance-" + house }

// ConformanceRef turns "house/pod" into the endpoint's "namespace/pod".
func ConformanceRef(ref string) string {
	house, pod, _ := strings.Cut(ref, "/")
	return ConformanceNamespace(house) + "/" + pod
}

// Snapshot reads the suite's cluster and the case's policies.
func (c ConformanceCase) Snapshot() (*cluster.Snapshot, error) {
	s := &cluster.Snapshot{}
	for _, f := range []string{"base/cluster.yaml", c.Manifest} {
		p := path.Join("testdata/conformance", f)
		data, err := conformanceFS.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cluster.LoadBytes(p, data, s)
	}
	s.Finish()
	if cluster.HasErrors(s.Diagnostics) {
		return nil, fmt.Errorf("%s: %v", c.Name, s.Diagnostics)
	}
	return s, nil
}

// clusterNetworkPolicy finds a policy to change. A changed policy no
// longer is what its document says: it keeps the file, not the lines.
func clusterNetworkPolicy(s *cluster.Snapshot, name string) (*cluster.ClusterNetworkPolicy, error) {
	for _, p := range s.ClusterNetworkPolicies {
		if p.Name == name {
			p.Origin = cluster.NewOrigin(p.Origin.File, nil)
			return p, nil
		}
	}
	return nil, fmt.Errorf("no ClusterNetworkPolicy %s", name)
}

// swapRules swaps rules i and j of one direction.
func swapRules(name, dir string, i, j int) Mutation {
	return func(s *cluster.Snapshot) error {
		p, err := clusterNetworkPolicy(s, name)
		if err != nil {
			return err
		}
		if dir == "egress" {
			e := p.Spec.Egress
			e[i], e[j] = e[j], e[i]
		} else {
			in := p.Spec.Ingress
			in[i], in[j] = in[j], in[i]
		}
		return nil
	}
}

// namedPort makes rule i match the named port alone.
func namedPort(name, dir string, i int, port string) Mutation {
	return func(s *cluster.Snapshot) error {
		p, err := clusterNetworkPolicy(s, name)
		if err != nil {
			return err
		}
		protos := []npav1alpha2.ClusterNetworkPolicyProtocol{{DestinationNamedPort: port}}
		if dir == "egress" {
			p.Spec.Egress[i].Protocols = protos
		} else {
			p.Spec.Ingress[i].Protocols = protos
		}
		return nil
	}
}

// prependNetworks inserts, first, a rule accepting egress to the pods'
// addresses as /32 networks.
func prependNetworks(name string, pods ...string) Mutation {
	return func(s *cluster.Snapshot) error {
		p, err := clusterNetworkPolicy(s, name)
		if err != nil {
			return err
		}
		var nets []npav1alpha2.CIDR
		for _, ref := range pods {
			ns, pod, _ := strings.Cut(ConformanceRef(ref), "/")
			found := false
			for _, sp := range s.Pods {
				if sp.Namespace == ns && sp.Name == pod {
					nets = append(nets, npav1alpha2.CIDR(sp.Status.PodIP+"/32"))
					found = true
				}
			}
			if !found {
				return fmt.Errorf("no pod %s", ref)
			}
		}
		rule := npav1alpha2.ClusterNetworkPolicyEgressRule{Name: "allow-egress-to-specific-podIPs",
			Action: npav1alpha2.ClusterNetworkPolicyRuleActionAccept,
			To:     []npav1alpha2.ClusterNetworkPolicyEgressPeer{{Networks: nets}}}
		p.Spec.Egress = append([]npav1alpha2.ClusterNetworkPolicyEgressRule{rule}, p.Spec.Egress...)
		return nil
	}
}

func setPriority(name string, priority int32) Mutation {
	return func(s *cluster.Snapshot) error {
		p, err := clusterNetworkPolicy(s, name)
		if err != nil {
			return err
		}
		p.Spec.Priority = priority
		return nil
	}
}

func setAction(name, dir string, i int, action string) Mutation {
	return func(s *cluster.Snapshot) error {
		p, err := clusterNetworkPolicy(s, name)
		if err != nil {
			return err
		}
		a := npav1alpha2.ClusterNetworkPolicyRuleAction(action)
		if dir == "egress" {
			p.Spec.Egress[i].Action = a
		} else {
			p.Spec.Ingress[i].Action = a
		}
		return nil
	}
}

func deleteNetworkPolicy(house, name string) Mutation {
	return func(s *cluster.Snapshot) error {
		ns := ConformanceNamespace(house)
		for i, np := range s.NetworkPolicies {
			if np.Namespace == ns && np.Name == name {
				s.NetworkPolicies = append(s.NetworkPolicies[:i], s.NetworkPolicies[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("no NetworkPolicy %s/%s", ns, name)
	}
}

// ConformanceCluster is the suite's cluster (namespaces, pods, nodes) as
// a manifest, for harnesses that build it for real (`rampart lab`).
func ConformanceCluster() ([]byte, error) {
	return conformanceFS.ReadFile("testdata/conformance/base/cluster.yaml")
}
