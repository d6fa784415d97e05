package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// End is one end of a veth pair: the namespace it sits in, its link name
// there (at most 15 bytes, IFNAMSIZ-1) and the addresses to give it.
type End struct {
	NS    *NS
	Name  string
	Addrs []netip.Prefix
}

// Veth joins a.NS and b.NS with a veth pair named a.Name and b.Name, both
// with the given MTU (0: the kernel's default, 1500), gives each end its
// addresses, brings both up and waits until both are operationally up (see
// WaitUp). IPv6 addresses skip duplicate address detection, so they are
// usable at once. The pair is made in one netlink request with each end
// created directly in its namespace; nothing passes through the caller's
// namespace. If a later step fails the pair is removed again.
func Veth(a, b End, mtu int) error {
	if err := veth(a, b, mtu); err != nil {
		return err
	}
	return errors.Join(a.NS.WaitUp(a.Name), b.NS.WaitUp(b.Name))
}

// veth is Veth without the wait, for callers that make several links and
// wait once for all of them.
func veth(a, b End, mtu int) error {
	for _, e := range []End{a, b} {
		if e.NS == nil {
			return fmt.Errorf("netns: veth %s-%s: missing namespace", a.Name, b.Name)
		}
		if e.Name == "" || len(e.Name) > unix.IFNAMSIZ-1 {
			return fmt.Errorf("netns: veth end name %q: want 1 to %d bytes", e.Name, unix.IFNAMSIZ-1)
		}
	}
	peerFd, err := b.NS.fd()
	if err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs() // TxQLen -1: keep the kernel's, not 0
	attrs.Name = a.Name
	attrs.MTU = mtu // also the peer's (netlink.Veth sends base MTU to both)
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: b.Name, PeerNamespace: netlink.NsFd(peerFd)}
	what := fmt.Sprintf("veth %s/%s - %s/%s", a.NS.Name, a.Name, b.NS.Name, b.Name)
	if err := a.NS.withNetlink(func(h *netlink.Handle) error { return h.LinkAdd(veth) }); err != nil {
		return fmt.Errorf("netns: add %s (mtu %d): %w", what, mtu, err)
	}
	for _, e := range []End{a, b} {
		if err := e.NS.configure(e.Name, e.Addrs); err != nil {
			// Deleting one end deletes the pair.
			a.NS.DeleteLink(a.Name)
			return fmt.Errorf("netns: %s: %w", what, err)
		}
	}
	return nil
}

// configure adds addrs to link and brings it up, with one netlink handle.
func (n *NS) configure(link string, addrs []netip.Prefix) error {
	return n.withNetlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(link)
		if err != nil {
			return fmt.Errorf("%s: link %s: %w", n.Name, link, err)
		}
		for _, p := range addrs {
			if err := addAddr(h, l, p); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s: set %s up: %w", n.Name, link, err)
		}
		return nil
	})
}

func addAddr(h *netlink.Handle, l netlink.Link, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("add address to %s: invalid prefix", l.Attrs().Name)
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		// No duplicate address detection: the address is ours alone, and a
		// tentative address would make the first seconds of a test flaky.
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", p, l.Attrs().Name, err)
	}
	return nil
}

// ipNet keeps the host bits: 198.19.1.2/24 stays that address on that
// subnet, as `ip addr add` takes it.
func ipNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// linkUpTimeout bounds WaitUp. The kernel's link watcher runs at most
// once a second, so a second is the usual worst case.
const linkUpTimeout = 5 * time.Second

// WaitUp waits until every link is operationally up (IF_OPER_UP). A link
// that was just set up with its carrier on still drops everything it is
// given (its qdisc is noop) until the kernel's link watcher activates it,
// up to a second later; a test that sends at once loses its first packets,
// typically the neighbor advertisements IPv6 then waits a second to retry.
func (n *NS) WaitUp(links ...string) error {
	return n.withNetlink(func(h *netlink.Handle) error {
		deadline := time.Now().Add(linkUpTimeout)
		for _, link := range links {
			for {
				l, err := h.LinkByName(link)
				if err != nil {
					return fmt.Errorf("netns: %s: link %s: %w", n.Name, link, err)
				}
				if l.Attrs().OperState == netlink.OperUp {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("netns: %s: link %s still %s after %v", n.Name, link, l.Attrs().OperState, linkUpTimeout)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		return nil
	})
}

// SetUp brings link up.
func (n *NS) SetUp(link string) error {
	return n.withNetlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(link)
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			return fmt.Errorf("netns: %s: set %s up: %w", n.Name, link, err)
		}
		return nil
	})
}

// SetMTU sets link's MTU.
func (n *NS) SetMTU(link string, mtu int) error {
	return n.withNetlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(link)
		if err == nil {
			err = h.LinkSetMTU(l, mtu)
		}
		if err != nil {
			return fmt.Errorf("netns: %s: set %s mtu %d: %w", n.Name, link, mtu, err)
		}
		return nil
	})
}

// AddAddr adds address p (with its prefix length) to link.
func (n *NS) AddAddr(link string, p netip.Prefix) error {
	return n.withNetlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(link)
		if err != nil {
			return fmt.Errorf("netns: %s: link %s: %w", n.Name, link, err)
		}
		if err := addAddr(h, l, p); err != nil {
			return fmt.Errorf("netns: %s: %w", n.Name, err)
		}
		return nil
	})
}

// AddLoopbackAddr adds address p to lo, e.g. a /32 for a service address
// (the kernel here has no dummy links).
func (n *NS) AddLoopbackAddr(p netip.Prefix) error { return n.AddAddr("lo", p) }

// DeleteLink deletes link (with a veth, its peer too).
func (n *NS) DeleteLink(link string) error {
	return n.withNetlink(func(h *netlink.Handle) error {
		l, err := h.LinkByName(link)
		if err == nil {
			err = h.LinkDel(l)
		}
		if err != nil {
			return fmt.Errorf("netns: %s: delete link %s: %w", n.Name, link, err)
		}
		return nil
	})
}

// HasLink reports whether the namespace has a link named link.
func (n *NS) HasLink(link string) (bool, error) {
	var found bool
	err := n.withNetlink(func(h *netlink.Handle) error {
		_, err := h.LinkByName(link)
		var notFound netlink.LinkNotFoundError
		switch {
		case err == nil:
			found = true
		case errors.As(err, &notFound):
		default:
			return fmt.Errorf("netns: %s: link %s: %w", n.Name, link, err)
		}
		return nil
	})
	return found, err
}

// Route is a route in the main table: Dst through gateway Via, or directly
// out of link Dev, or both (Via on Dev). Dst 0.0.0.0/0 or ::/0 is a default
// route.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
	Dev string
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	return s
}

// AddRoute adds r to the main routing table.
func (n *NS) AddRoute(r Route) error {
	if !r.Dst.IsValid() || (!r.Via.IsValid() && r.Dev == "") {
		return fmt.Errorf("netns: %s: route %q: want a destination and a gateway or a device", n.Name, r)
	}
	if r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4() {
		return fmt.Errorf("netns: %s: route %s: gateway and destination are of different families", n.Name, r)
	}
	return n.withNetlink(func(h *netlink.Handle) error {
		nr := &netlink.Route{Dst: ipNet(r.Dst.Masked())}
		if r.Via.IsValid() {
			nr.Gw = r.Via.AsSlice()
		}
		if r.Dev != "" {
			l, err := h.LinkByName(r.Dev)
			if err != nil {
				return fmt.Errorf("netns: %s: route %s: %w", n.Name, r, err)
			}
			nr.LinkIndex = l.Attrs().Index
		}
		if err := h.RouteAdd(nr); err != nil {
			return fmt.Errorf("netns: %s: add route %s: %w", n.Name, r, err)
		}
		return nil
	})
}

// EnableForwarding turns on IPv4 and IPv6 forwarding in the namespace.
// /proc/sys/net shows the sysctls of the namespace of the thread that opens
// the file, hence Do.
func (n *NS) EnableForwarding() error {
	err := n.Do(func() error {
		for _, p := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netns: %s: enable forwarding: %w", n.Name, err)
	}
	return nil
}
