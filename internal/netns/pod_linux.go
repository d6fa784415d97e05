package netns

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
)

// podGateway is the pods' default gateway, answered by proxy ARP on the
// host veth, as internal/cni wires pods.
var podGateway = net.IPv4(169, 254, 1, 1).To4()

// WireRoutedPod wires pod to node as internal/cni's ADD does, reduced to
// what routing and the policy rules rely on, for tests and benchmarks
// that need a pod without the plugin: a veth (veth on the node, eth0 in
// the pod with addr/32), the pod's default route via 169.254.1.1, proxy
// ARP for it on the host veth, and the node's /32 route to the pod.
func WireRoutedPod(node, pod *NS, veth string, addr netip.Addr) error {
	if err := Veth(End{NS: node, Name: veth}, End{NS: pod, Name: "eth0", Addrs: []netip.Prefix{netip.PrefixFrom(addr, 32)}}, 0); err != nil {
		return err
	}
	err := pod.withNetlink(func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		idx := eth0.Attrs().Index
		if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: podGateway, Mask: net.CIDRMask(32, 32)}}); err != nil {
			return fmt.Errorf("route to the gateway: %w", err)
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: podGateway}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netns: pod %s: %w", pod.Name, err)
	}
	err = node.Do(func() error {
		for file, v := range map[string]string{
			"/proc/sys/net/ipv4/conf/" + veth + "/proxy_arp":    "1",
			"/proc/sys/net/ipv4/neigh/" + veth + "/proxy_delay": "0",
		} {
			if err := os.WriteFile(file, []byte(v+"\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = node.withNetlink(func(h *netlink.Handle) error {
			l, err := h.LinkByName(veth)
			if err != nil {
				return err
			}
			return h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
				Dst: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		})
	}
	if err != nil {
		return fmt.Errorf("netns: node %s, veth %s: %w", node.Name, veth, err)
	}
	return nil
}
