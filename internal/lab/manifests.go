package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
)

// The lab's manifests directory is what every agent reads
// (spec.policy.paths) and what the expected matrix is computed from, so
// that both see one cluster:
//
//	cluster.yaml   the Namespaces; a Node per lab node with its underlay
//	               address; a Pod per endpoint of the input (a workload
//	               becomes one Pod of its name) with its node
//	               (spec.nodeName) and the address the lab gave it
//	               (status.podIP); addresses in the input are ignored
//	policies.yaml  the NetworkPolicies in force, replaced whole by `lab apply`
//
// Objects are written from the decoded input, keeping only what policy
// looks at (names, labels, container ports, node, hostNetwork, service
// account), so the lab's cluster decides exactly as the input does.

// clusterManifest writes cluster.yaml for snapshot s laid out as st says.
func clusterManifest(s *cluster.Snapshot, st *State) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by `rampart lab up` for lab %s: the input's namespaces and\n", st.Name)
	fmt.Fprintf(&b, "# endpoints (one Pod each) with the lab's nodes and addresses.\n")
	var docs []any
	for _, ns := range s.Namespaces {
		docs = append(docs, object("v1", "Namespace", meta(ns.Name, "", ns.Labels), nil))
	}
	for _, n := range st.Nodes {
		docs = append(docs, map[string]any{
			"apiVersion": "v1", "kind": "Node", "metadata": meta(n.Name, "", nil),
			"status": map[string]any{"addresses": []map[string]string{{"type": "InternalIP", "address": n.Address.String()}}},
		})
	}
	for _, p := range s.Pods {
		ps := st.pod(ref(p))
		if ps == nil {
			return nil, fmt.Errorf("lab: no pod %s in the lab's state", ref(p))
		}
		spec := map[string]any{"nodeName": ps.Node, "containers": containers(p.Spec.Containers)}
		if sa := p.Spec.ServiceAccountName; sa != "" {
			// The pod's workload identity, which AuthorizationPolicies
			// name (cluster.local/ns/<namespace>/sa/<this>).
			spec["serviceAccountName"] = sa
		}
		if len(p.Spec.InitContainers) > 0 {
			spec["initContainers"] = containers(p.Spec.InitContainers)
		}
		if p.Spec.HostNetwork {
			spec["hostNetwork"] = true
		}
		m := meta(p.Name, p.Namespace, p.Labels)
		if p.Origin != nil {
			m["annotations"] = map[string]string{"rampart.dev/lab-source": fmt.Sprintf("%s %s at %s", p.Kind, ref(p), p.Origin.Pos(""))}
		}
		docs = append(docs, object("v1", "Pod", m, map[string]any{
			"spec":   spec,
			"status": map[string]any{"podIP": ps.Address.String(), "podIPs": []map[string]string{{"ip": ps.Address.String()}}},
		}))
	}
	if err := writeDocs(&b, docs); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// policiesManifest writes policies.yaml: the policies, each with a comment
// saying where it came from.
func policiesManifest(s *cluster.Snapshot, generation int) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by `rampart lab`: policy set %d, %d NetworkPolicies, %d cluster policies, %d AuthorizationPolicies.\n", generation,
		len(s.NetworkPolicies), len(s.ClusterNetworkPolicies)+len(s.AdminNetworkPolicies)+len(s.BaselineAdminNetworkPolicies), len(s.AuthorizationPolicies))
	add := func(origin *cluster.Origin, doc map[string]any) error {
		b.WriteString("---\n")
		if origin != nil && origin.File != "" {
			fmt.Fprintf(&b, "# from %s\n", origin.Pos(""))
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		b.Write(out)
		return nil
	}
	for _, np := range s.NetworkPolicies {
		if err := add(np.Origin, object("networking.k8s.io/v1", "NetworkPolicy", meta(np.Name, np.Namespace, np.Labels), map[string]any{"spec": np.Spec})); err != nil {
			return nil, err
		}
	}
	// The cluster-scoped tiers (policy.networking.k8s.io).
	for _, p := range s.ClusterNetworkPolicies {
		if err := add(p.Origin, object("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy", meta(p.Name, "", p.Labels), map[string]any{"spec": p.Spec})); err != nil {
			return nil, err
		}
	}
	for _, p := range s.AdminNetworkPolicies {
		if err := add(p.Origin, object("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy", meta(p.Name, "", p.Labels), map[string]any{"spec": p.Spec})); err != nil {
			return nil, err
		}
	}
	for _, p := range s.BaselineAdminNetworkPolicies {
		if err := add(p.Origin, object("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy", meta(p.Name, "", p.Labels), map[string]any{"spec": p.Spec})); err != nil {
			return nil, err
		}
	}
	// Istio's, which the agents' L7 proxies enforce.
	for _, p := range s.AuthorizationPolicies {
		if err := add(p.Origin, object("security.istio.io/v1", "AuthorizationPolicy", meta(p.Name, p.Namespace, p.Labels), map[string]any{"spec": p.Spec})); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// policiesOf is the policies of s alone: what `lab apply` replaces.
func policiesOf(s *cluster.Snapshot) *cluster.Snapshot {
	return &cluster.Snapshot{NetworkPolicies: s.NetworkPolicies, ClusterNetworkPolicies: s.ClusterNetworkPolicies,
		AdminNetworkPolicies: s.AdminNetworkPolicies, BaselineAdminNetworkPolicies: s.BaselineAdminNetworkPolicies,
		AuthorizationPolicies: s.AuthorizationPolicies}
}

func object(apiVersion, kind string, metadata map[string]any, rest map[string]any) map[string]any {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": metadata}
	for k, v := range rest {
		o[k] = v
	}
	return o
}

func meta(name, namespace string, labels map[string]string) map[string]any {
	m := map[string]any{"name": name}
	if namespace != "" {
		m["namespace"] = namespace
	}
	if len(labels) > 0 {
		m["labels"] = labels
	}
	return m
}

// containers keeps what policy reads of containers: their ports (named
// ports resolve against them).
func containers(cs []corev1.Container) []map[string]any {
	out := make([]map[string]any, 0, len(cs))
	for _, c := range cs {
		m := map[string]any{"name": c.Name}
		if c.Image != "" {
			m["image"] = c.Image
		}
		if len(c.Ports) > 0 {
			m["ports"] = c.Ports
		}
		out = append(out, m)
	}
	return out
}

func writeDocs(b *bytes.Buffer, docs []any) error {
	for _, d := range docs {
		out, err := yaml.Marshal(d)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(out)
	}
	return nil
}

// loadInput reads manifests as `rampart reach` does; input with errors is
// refused with every diagnostic.
func loadInput(paths []string) (*cluster.Snapshot, []cluster.Diagnostic, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("no manifest path given")
	}
	s, err := cluster.Load(paths...)
	if err != nil {
		return nil, nil, err
	}
	_, diags, err := policy.FromSnapshot(s, false)
	if errors.Is(err, policy.ErrInvalid) {
		return nil, diags, &InvalidError{Diagnostics: diags}
	}
	return s, diags, err
}

// InvalidError is input with errors: nothing was changed.
type InvalidError struct {
	Diagnostics []cluster.Diagnostic
}

func (e *InvalidError) Error() string {
	var msgs []string
	for _, d := range e.Diagnostics {
		if d.Severity == cluster.Error {
			msgs = append(msgs, d.String())
		}
	}
	return fmt.Sprintf("the input has %d error(s); nothing was changed:\n%s", len(msgs), strings.Join(msgs, "\n"))
}

// loadLabModel reads the lab's own cluster: cluster.yaml and
// policies.yaml, and nothing else that may lie in the directory.
func loadLabModel(st *State) (*policy.Model, error) {
	s, err := cluster.Load(st.clusterFile(), st.policiesFile())
	if err != nil {
		return nil, err
	}
	m, diags, err := policy.FromSnapshot(s, false)
	if errors.Is(err, policy.ErrInvalid) {
		return nil, fmt.Errorf("lab: its own manifests are invalid: %w", &InvalidError{Diagnostics: diags})
	}
	return m, err
}

// DefaultProbes are the ports the containers declare, TCP first, or
// 80/TCP when none does.
func DefaultProbes(m *policy.Model) []policy.Probe {
	seen := map[policy.Probe]bool{}
	var out []policy.Probe
	for _, e := range m.Endpoints {
		for _, p := range e.Ports {
			pr := policy.Probe{Port: p.Port, Protocol: p.Protocol}
			if !seen[pr] {
				seen[pr] = true
				out = append(out, pr)
			}
		}
	}
	if len(out) == 0 {
		return []policy.Probe{{Port: 80, Protocol: corev1.ProtocolTCP}}
	}
	order := map[corev1.Protocol]int{corev1.ProtocolTCP: 0, corev1.ProtocolUDP: 1, corev1.ProtocolSCTP: 2}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Protocol != out[j].Protocol {
			return order[out[i].Protocol] < order[out[j].Protocol]
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// resolvePort is the number a probe has at a destination: its port, or
// the destination's container port of that name and protocol.
func resolvePort(pr policy.Probe, dst *policy.Endpoint) (uint16, bool) {
	if pr.Name == "" {
		return uint16(pr.Port), true
	}
	for _, cp := range dst.Ports {
		if cp.Name == pr.Name && cp.Protocol == pr.Protocol {
			return uint16(cp.Port), true
		}
	}
	return 0, false
}

// addrOf is an endpoint's lab address.
func addrOf(e *policy.Endpoint) netip.Addr {
	if len(e.IPs) == 0 {
		return netip.Addr{}
	}
	return e.IPs[0]
}
