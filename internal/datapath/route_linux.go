package datapath

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
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

// netState is the device's routes and rules, as installed. Its netlink
// handle was opened where the device was made, so that SetPeers, called
// from any thread, changes routes in the device's network namespace, not
// in whichever namespace the calling thread happens to be in. Guarded by
// Device.peersMu once the device runs.
type netState struct {
	h      *netlink.Handle
	link   netlink.Link
	routes map[routeKey]netlink.Route
	rules  []*netlink.Rule
	mark   uint32 // fwmark once the rule is installed (kept until Close)
}

// routeKey is what makes a route distinct to the kernel, for our routes:
// its table and destination.
type routeKey struct {
	table int
	dst   netip.Prefix
}

// newNetState brings the TUN device up, in the calling thread's network
// namespace.
func newNetState(tunName string) (_ *netState, err error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	link, err := h.LinkByName(tunName)
	if err != nil {
		return nil, fmt.Errorf("find TUN device %s: %w", tunName, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", tunName, err)
	}
	return &netState{h: h, link: link, routes: map[routeKey]netlink.Route{}}, nil
}

// wantRoutes are the routes that send the peers' traffic into TUN: their
// remote subnets in tunnel mode, the peer's address in transport mode.
// Where two peers claim one prefix, the first has it, as in the SPD.
func (s *netState) wantRoutes(cfg *Config, peers []*peerState) map[routeKey]netlink.Route {
	want := map[routeKey]netlink.Route{}
	add := func(r netlink.Route, pfx netip.Prefix) {
		k := routeKey{r.Table, pfx}
		if _, dup := want[k]; !dup {
			want[k] = r
		}
	}
	idx := s.link.Attrs().Index
	for _, p := range peers {
		switch p.cfg.Mode {
		case esp.ModeTunnel:
			src := s.localSource(p.cfg.LocalSubnets)
			for _, pfx := range p.cfg.RemoteSubnets {
				r := netlink.Route{LinkIndex: idx, Dst: ipNet(pfx), Scope: netlink.SCOPE_LINK}
				if src.IsValid() && src.Is4() == pfx.Addr().Is4() {
					r.Src = src.AsSlice()
				}
				if pfx.Contains(p.cfg.Endpoint.Addr()) {
					// The selectors hold the peer's own address (a node's
					// traffic to another node): ESP to it must not loop.
					r.Table = transportTable
				}
				add(r, pfx)
			}
		case esp.ModeTransport:
			pfx := netip.PrefixFrom(p.cfg.Endpoint.Addr(), p.cfg.Endpoint.Addr().BitLen())
			add(netlink.Route{LinkIndex: idx, Dst: ipNet(pfx), Scope: netlink.SCOPE_LINK, Src: cfg.LocalAddr.AsSlice(),
				Table: transportTable}, pfx)
		}
	}
	return want
}

// needsMark reports whether want has a route that only unmarked packets
// may take: the sockets must mark theirs before it is installed.
func needsMark(want map[routeKey]netlink.Route) bool {
	for k := range want {
		if k.table == transportTable {
			return true
		}
	}
	return false
}

// add installs the routes of want that are missing or differ (RouteReplace
// changes one in place, so its traffic is not interrupted), and the rule
// for the marked table before the first route into it. If the kernel
// refuses one, add undoes what it did and returns the error: nothing
// changed.
func (s *netState) add(want map[routeKey]netlink.Route) (err error) {
	type change struct {
		k      routeKey
		old    netlink.Route
		hadOld bool
	}
	var done []change
	newRule := false
	defer func() {
		if err == nil {
			return
		}
		for _, c := range slices.Backward(done) {
			if c.hadOld {
				_ = s.h.RouteReplace(&c.old)
				s.routes[c.k] = c.old
			} else {
				r := s.routes[c.k]
				_ = s.h.RouteDel(&r)
				delete(s.routes, c.k)
			}
		}
		if newRule {
			s.removeRules()
		}
	}()
	for _, k := range sortedKeys(want) {
		r := want[k]
		old, had := s.routes[k]
		if had && sameRoute(old, r) {
			continue
		}
		if k.table == transportTable && s.mark == 0 {
			if err := s.addRules(); err != nil {
				return err
			}
			newRule = true
		}
		if err := s.h.RouteReplace(&r); err != nil {
			where := ""
			if k.table != 0 {
				where = fmt.Sprintf(" in table %d", k.table)
			}
			return fmt.Errorf("route %s to %s%s: %w", k.dst, s.link.Attrs().Name, where, err)
		}
		s.routes[k] = r
		done = append(done, change{k, old, had})
	}
	return nil
}

// prune removes the installed routes that are not in want; what is already
// gone is not an error. The rule stays until Close: with its table empty,
// it only sends lookups on to the main table.
func (s *netState) prune(want map[routeKey]netlink.Route) error {
	var errs []error
	for _, k := range sortedKeys(s.routes) {
		if _, keep := want[k]; keep {
			continue
		}
		r := s.routes[k]
		if err := s.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s from %s: %w", k.dst, s.link.Attrs().Name, err))
		}
		delete(s.routes, k)
	}
	return errors.Join(errs...)
}

// addRules installs the rule that sends every unmarked packet to the
// table of the peers' addresses.
func (s *netState) addRules() error {
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
		if err := s.h.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
			s.removeRules()
			return fmt.Errorf("add rule 'not fwmark %#x lookup %d': %w", fwmark, transportTable, err)
		}
		s.rules = append(s.rules, rule)
	}
	s.mark = fwmark
	return nil
}

func (s *netState) removeRules() {
	for _, r := range s.rules {
		_ = s.h.RuleDel(r)
	}
	s.rules, s.mark = nil, 0
}

// remove undoes everything; what is already gone is not an error.
func (s *netState) remove() {
	s.removeRules()
	for k, r := range s.routes {
		_ = s.h.RouteDel(&r)
		delete(s.routes, k)
	}
	s.h.Close()
}

func sortedKeys(m map[routeKey]netlink.Route) []routeKey {
	keys := make([]routeKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeKey) int {
		if c := cmp.Compare(a.table, b.table); c != 0 {
			return c
		}
		if c := a.dst.Addr().Compare(b.dst.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.dst.Bits(), b.dst.Bits())
	})
	return keys
}

func sameRoute(a, b netlink.Route) bool {
	return a.LinkIndex == b.LinkIndex && a.Table == b.Table && a.Scope == b.Scope &&
		a.Dst.String() == b.Dst.String() && a.Src.Equal(b.Src)
}

// localSource picks an address of this host inside the local subnets, so
// that traffic the host itself sends to the peer's subnets has a source the
// peer's selectors accept.
func (s *netState) localSource(subnets []netip.Prefix) netip.Addr {
	addrs, err := s.h.AddrList(nil, netlink.FAMILY_ALL)
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

// currentNetns is the calling thread's network namespace: the device's,
// when New runs.
func currentNetns() (vnetns.NsHandle, error) {
	return vnetns.Get()
}

// listenUDPIn opens a UDP socket on port in the namespace ns. A socket
// stays in the namespace it was made in, so only the making needs the
// namespace: it is done on a goroutine of its own with its OS thread
// locked (containernetworking/plugins pkg/ns); if moving the thread back
// fails, the thread stays locked and the runtime discards it.
func listenUDPIn(ns vnetns.NsHandle, port int) (*net.UDPConn, error) {
	type result struct {
		c   *net.UDPConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		listen := func() (*net.UDPConn, error) { return net.ListenUDP("udp", &net.UDPAddr{Port: port}) }
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("get the current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		if orig.Equal(ns) {
			c, err := listen()
			runtime.UnlockOSThread()
			done <- result{c, err}
			return
		}
		if err := vnetns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("enter the device's network namespace: %w", err)}
			return
		}
		c, err := listen()
		if serr := vnetns.Set(orig); serr != nil {
			done <- result{c, err} // the socket is in ns all the same
			return
		}
		runtime.UnlockOSThread()
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
