package l7

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds the TCP handshake with a destination, which is a pod
// on this node or behind a tunnel: a destination that does not answer in
// that time is down, and the caller gets a 502.
const dialTimeout = 10 * time.Second

var defaultDial = DialTransparent

// ListenTransparent listens on TCP addr (IPv4) with IP_TRANSPARENT, in the
// calling thread's network namespace, so that the listener accepts the
// connections that TPROXY steers to it: their local address is the
// original destination, not addr. It needs CAP_NET_ADMIN. Give it a
// loopback address (Steering's proxy address): see Steering.
func ListenTransparent(ctx context.Context, addr netip.AddrPort) (net.Listener, error) {
	if !addr.Addr().Is4() {
		return nil, fmt.Errorf("l7: listen %s: IPv4 only", addr)
	}
	lc := net.ListenConfig{Control: transparent(false)}
	l, err := lc.Listen(ctx, "tcp4", addr.String())
	if err != nil {
		return nil, fmt.Errorf("l7: listen transparent on %s: %w", addr, err)
	}
	return l, nil
}

// DialTransparent connects to dst from address src, which need not be the
// node's: with IP_TRANSPARENT the socket may bind a foreign address, and
// the steering rules deliver the destination's replies to it (socket
// transparent). The source port is chosen at connect time
// (IP_BIND_ADDRESS_NO_PORT), so it needs to be unique per destination
// only, not per caller address. It needs CAP_NET_ADMIN, and opens the
// socket in the calling thread's network namespace.
func DialTransparent(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	if !src.Is4() || !dst.Addr().Is4() {
		return nil, fmt.Errorf("l7: dial %s from %s: IPv4 only", dst, src)
	}
	d := net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
		Timeout:   dialTimeout,
		Control:   transparent(true),
	}
	c, err := d.DialContext(ctx, "tcp4", dst.String())
	if err != nil {
		return nil, fmt.Errorf("l7: dial %s from %s: %w", dst, src, err)
	}
	return c, nil
}

// transparent sets IP_TRANSPARENT (and for dialing, IP_BIND_ADDRESS_NO_PORT)
// before the socket is bound: net.Dialer and net.ListenConfig call
// Control between socket(2) and bind(2).
func transparent(noPort bool) func(network, address string, rc syscall.RawConn) error {
	return func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1); serr != nil {
				serr = fmt.Errorf("setsockopt IP_TRANSPARENT (needs CAP_NET_ADMIN): %w", serr)
				return
			}
			if noPort {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); serr != nil {
					serr = fmt.Errorf("setsockopt IP_BIND_ADDRESS_NO_PORT: %w", serr)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
