//go:build !linux

package l7

import (
	"context"
	"net"
	"net/netip"
)

// defaultDial is nil where IP_TRANSPARENT does not exist: Config.Dial
// must then be given.
var defaultDial func(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error)
