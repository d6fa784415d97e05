package agent

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rampartnet/rampart/internal/cni"
	"github.com/rampartnet/rampart/internal/nft"
	"github.com/rampartnet/rampart/internal/policy"
)

// applyPolicy compiles the manifests' policy for this node's pods and makes
// it the node's table in one transaction.
func (a *Agent) applyPolicy() error {
	m, snap, err := a.loadModel()
	if err != nil {
		return err
	}
	local := a.localPods(m)
	plan, err := a.planL7(snap, local)
	if err != nil {
		return err
	}
	node := nft.Node{Name: a.cfg.NodeName}
	for _, e := range local {
		veth, err := podVeth(e)
		if err != nil {
			// Not wired (yet): it can neither send nor receive.
			a.log.Debug("pod without a veth", "pod", e.Ref(), "err", err)
			continue
		}
		node.Pods = append(node.Pods, nft.Pod{Ref: e.Ref(), Veth: veth})
	}
	// A selected pod that is not wired yet passes nothing anyway.
	for _, lp := range plan.pods {
		if slices.ContainsFunc(node.Pods, func(p nft.Pod) bool { return p.Ref == lp.Ref }) {
			node.L7 = append(node.L7, lp)
		}
	}
	rs, err := nft.Compile(m, node)
	if err != nil {
		return err
	}
	for _, u := range rs.Unenforced {
		// Such as domain-name peers: what the policy says and the kernel
		// does not do (it allows no more than the policy does).
		a.log.Warn("not enforced", "what", u)
	}
	start := time.Now()
	if a.rules == nil {
		a.rules = nft.NewApplier(0)
	}
	var st nft.Stats
	err = a.applyL7(plan, func() (err error) {
		st, err = a.rules.Apply(rs)
		return err
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.status.Applied, a.status.LocalPods, a.status.Policies = time.Now(), len(node.Pods), len(m.Policies)
	a.status.Generation++
	a.stats.elements, a.stats.rules = st.Elements, st.Rules
	a.mu.Unlock()
	a.log.Info("policy applied", "pods", len(node.Pods), "policies", len(m.Policies), "rules", st.Rules,
		"elements", st.Elements, "incremental", st.Incremental, "added", st.Added, "deleted", st.Deleted,
		"unreachable", st.Unreachable, "wholeTableBecause", st.Fallback,
		"conntrackDeleted", st.ConntrackDeleted, "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// localPods are the endpoints of this node that have their own network
// namespace and an address in the node's pod CIDR.
func (a *Agent) localPods(m *policy.Model) []*policy.Endpoint {
	var out []*policy.Endpoint
	for _, e := range m.Endpoints {
		if e.Node != a.cfg.NodeName || e.HostNetwork {
			continue
		}
		for _, ip := range e.IPs {
			if a.cfg.PodCIDR.Contains(ip) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// podVeth finds the host veth of a pod: the link its /32 is routed to,
// which the CNI plugin names rmp….
func podVeth(e *policy.Endpoint) (string, error) {
	for _, ip := range e.IPs {
		if !ip.Is4() {
			continue
		}
		routes, err := netlink.RouteGet(net.IP(ip.AsSlice()))
		if err != nil || len(routes) == 0 {
			continue
		}
		link, err := netlink.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			continue
		}
		if name := link.Attrs().Name; strings.HasPrefix(name, cni.HostVethPrefix) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no route to %v through a pod veth", e.IPs)
}
