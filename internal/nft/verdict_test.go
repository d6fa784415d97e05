package nft

import (
	"net/netip"
	"sort"
	"testing"

	"github.com/rampartnet/rampart/internal/policy"
	corev1 "k8s.io/api/core/v1"
)

// The compiled rules must decide as the verdict engine does. These helpers
// run the interpreter (eval.go) on the first packet of every flow that the
// node forwards, between every pair of interesting addresses, for every
// interesting port, and compare with Model.Verdict: the egress side when the
// source is local, the ingress side when the destination is.

// probe is one destination port.
type probe struct {
	proto corev1.Protocol
	port  int32
}

// agreement counts the answers of one comparison.
type agreement struct{ allowed, denied, flows int }

// checkAgainstVerdict fails t at the first flow where rs and the Model
// disagree.
func checkAgainstVerdict(t *testing.T, m *policy.Model, rs *Ruleset, probes []probe) agreement {
	t.Helper()
	ev := NewEvaluator(rs)
	own := map[netip.Addr]bool{}
	if n := m.NodeByName(rs.Node); n != nil {
		for _, a := range n.Addrs {
			own[a] = true
		}
	}
	var parties []netip.Addr
	for _, a := range interestingAddrs(m) {
		// Traffic with the node's own addresses never crosses FORWARD: it
		// is the node's, which the verdict engine always allows.
		if !own[a] {
			parties = append(parties, a)
		}
	}
	var res agreement
	for _, src := range parties {
		for _, dst := range parties {
			srcLocal, dstLocal := ev.IsLocal(src), ev.IsLocal(dst)
			if src == dst || (!srcLocal && !dstLocal) {
				continue
			}
			from, err := m.Party(src.String())
			if err != nil {
				t.Fatal(err)
			}
			to, err := m.Party(dst.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range probes {
				v := m.Verdict(policy.Query{From: from, To: to, Port: pr.port, Protocol: pr.proto})
				want := (!srcLocal || v.Egress.Allowed) && (!dstLocal || v.Ingress.Allowed)
				got, by, err := ev.Forwarded(src, dst, protoNum(pr.proto), uint16(pr.port))
				if err != nil {
					t.Fatal(err)
				}
				res.flows++
				if got {
					res.allowed++
				} else {
					res.denied++
				}
				if got != want {
					t.Fatalf("%s -> %s %d/%s: rules say %v (%s), verdict says %v\negress: %s\ningress: %s\n%s",
						from, to, pr.port, pr.proto, got, by, want, v.Egress.Reason, v.Ingress.Reason, rs)
				}
			}
		}
	}
	return res
}

// interestingAddrs are the pods' IPv4 addresses, the edges of every
// ipBlock and exception (and their neighbours outside), and a few
// addresses far from everything.
func interestingAddrs(m *policy.Model) []netip.Addr {
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) {
		if a.IsValid() && a.Is4() {
			seen[a] = true
		}
	}
	for _, e := range m.Endpoints {
		if !e.HostNetwork {
			for _, a := range e.IPs {
				add(a)
			}
		}
	}
	edges := func(p netip.Prefix) {
		s := prefixSpan(p)
		add(numAddr(s.lo))
		add(numAddr(s.hi))
		if s.lo > 0 {
			add(numAddr(s.lo - 1))
		}
		if s.hi < 0xffffffff {
			add(numAddr(s.hi + 1))
		}
	}
	for _, p := range m.Policies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					if pe.IPBlock == nil || !pe.IPBlock.CIDR.Addr().Is4() {
						continue
					}
					edges(pe.IPBlock.CIDR)
					for _, ex := range pe.IPBlock.Except {
						edges(ex)
					}
				}
			}
		}
	}
	// The networks of cluster-wide policies, and the nodes' addresses
	// (which nodes peers match; traffic to a hostNetwork pod carries its
	// node's address).
	for _, p := range m.ClusterPolicies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				for _, pe := range r.Peers {
					for _, n := range pe.Networks {
						if n.Addr().Is4() {
							edges(n)
						}
					}
				}
			}
		}
	}
	for _, n := range m.Nodes {
		for _, a := range n.Addrs {
			add(a)
		}
	}
	for _, s := range []string{"192.0.2.77", "203.0.113.200", "8.8.8.8"} {
		add(netip.MustParseAddr(s))
	}
	out := make([]netip.Addr, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// interestingProbes are every port number that a policy or a container
// names, the numbers next to each range's ends, and two far ones, each for
// every protocol.
func interestingProbes(m *policy.Model) []probe {
	nums := map[int32]bool{1: true, 65535: true}
	add := func(n int32) {
		if n >= 1 && n <= 65535 {
			nums[n] = true
		}
	}
	for _, e := range m.Endpoints {
		for _, cp := range e.Ports {
			add(cp.Port)
		}
	}
	ports := func(pts []policy.Port) {
		for _, pt := range pts {
			if pt.Port == 0 {
				continue
			}
			add(pt.Port)
			add(pt.Port - 1)
			add(pt.Port + 1)
			if pt.EndPort != 0 {
				add(pt.EndPort)
				add(pt.EndPort + 1)
			}
		}
	}
	for _, p := range m.Policies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				ports(r.Ports)
			}
		}
	}
	for _, p := range m.ClusterPolicies {
		for _, d := range []policy.Direction{policy.Ingress, policy.Egress} {
			for _, r := range p.Rules(d) {
				ports(r.Ports)
			}
		}
	}
	var out []probe
	for n := range nums {
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
			out = append(out, probe{proto, n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].port != out[j].port {
			return out[i].port < out[j].port
		}
		return out[i].proto < out[j].proto
	})
	return out
}
