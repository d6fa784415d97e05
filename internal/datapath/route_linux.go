package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rampartnet/rampart/ipsec/esp"
)

// Transport mode, and tunnel mode with selectors that hold the peer's own
// address (node agents protect the nodes' own traffic too), send the
// host's traffic to a peer's underlay address through TUN, while the ESP
// packets to that same address must not loop back into TUN. As wg-quick does, the UDP socket marks its packets, and a
// rule sends every unmarked packet to a table that routes the peers'
// addresses to TUN.
const (
	fwmark         = 0x52504d // "RPM"
	transportTable = 0x5250   // "RP"
	rulePriority   = 5250
)

// netState is what setupNetwork installed, to be removed on close.
type netState struct {
	link   netlink.Link
	routes []netlink.Route
	rules  []*netlink.Rule
	mark   uint32
}

func setupNetwork(tunName string, cfg *Config, peers []*peerState) (_ *netState, err error) {
	link, err := netlink.LinkByName(tunName)
	if err != nil {
		return nil, fmt.Errorf("find TUN device %s: %w", tunName, err)
	}
	s := &netState{link: link}
	defer func() {
		if err != nil {
			s.remove()
		}
	}()
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", tunName, err)
	}
	for _, p := range peers {
		switch p.cfg.Mode {
		case esp.ModeTunnel:
			src := localSource(p.cfg.LocalSubnets)
			for _, pfx := range p.cfg.RemoteSubnets {
				r := netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(pfx), Scope: netlink.SCOPE_LINK}
				if src.IsValid() && src.Is4() == pfx.Addr().Is4() {
					r.Src = src.AsSlice()
				}
				if pfx.Contains(p.cfg.Endpoint.Addr()) {
					// The selectors hold the peer's own address (a node's
					// traffic to another node): ESP to it must not loop.
					if err := s.addMarked(r, pfx); err != nil {
						return nil, err
					}
					continue
				}
				if err := netlink.RouteReplace(&r); err != nil {
					return nil, fmt.Errorf("route %s to %s: %w", pfx, tunName, err)
				}
				s.routes = append(s.routes, r)
			}
		case esp.ModeTransport:
			pfx := netip.PrefixFrom(p.cfg.Endpoint.Addr(), p.cfg.Endpoint.Addr().BitLen())
			r := netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(pfx), Scope: netlink.SCOPE_LINK, Src: cfg.LocalAddr.AsSlice()}
			if err := s.addMarked(r, pfx); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// addMarked installs r in the table that only unmarked packets (all but
// the datapath's own UDP) look up, and the rule that sends them there.
func (s *netState) addMarked(r netlink.Route, pfx netip.Prefix) error {
	r.Table = transportTable
	if err := netlink.RouteReplace(&r); err != nil {
		return fmt.Errorf("route %s to %s in table %d: %w", pfx, s.link.Attrs().Name, transportTable, err)
	}
	s.routes = append(s.routes, r)
	if s.mark != 0 {
		return nil
	}
	s.mark = fwmark
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		rule := netlink.NewRule()
		rule.Family = family
		rule.Mark = fwmark
		rule.Invert = true
		rule.Table = transportTable
		rule.Priority = rulePriority
		// A process killed before it could clean up leaves the rule
		// behind (routes go with the TUN device, rules do not): take it
		// over.
		if err := netlink.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add rule 'not fwmark %#x lookup %d': %w", fwmark, transportTable, err)
		}
		s.rules = append(s.rules, rule)
	}
	return nil
}

// remove undoes setupNetwork; what is already gone is not an error.
func (s *netState) remove() {
	for _, r := range s.rules {
		_ = netlink.RuleDel(r)
	}
	for i := range s.routes {
		_ = netlink.RouteDel(&s.routes[i])
	}
	s.rules, s.routes = nil, nil
}

// localSource picks an address of this host inside the local subnets, so
// that traffic the host itself sends to the peer's subnets has a source the
// peer's selectors accept.
func localSource(subnets []netip.Prefix) netip.Addr {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		if covers(subnets, ip.Unmap()) {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// setMark sets SO_MARK on c (nil: nothing to do), so that its packets to a
// peer skip the routes into TUN, as the datapath's own socket's do.
func setMark(c *net.UDPConn, mark uint32) error {
	if c == nil {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
	}); err != nil {
		return err
	}
	return serr
}
