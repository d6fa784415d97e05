package esp

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestModeString(t *testing.T) {
	for _, c := range []struct {
		m    Mode
		want string
	}{{ModeTunnel, "tunnel"}, {ModeTransport, "transport"}, {0, "mode(0)"}} {
		if c.m.String() != c.want {
			t.Errorf("%d: %q", c.m, c.m.String())
		}
	}
	for _, s := range []string{"tunnel", "Transport"} {
		if _, err := ParseMode(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseMode("beet"); err == nil {
		t.Error("beet accepted")
	}
}

// TestIPv4Checksum: a commonly used worked example of the IPv4 header
// checksum (RFC 791 §3.1, computed as in RFC 1071), checksum 0xb861.
func TestIPv4Checksum(t *testing.T) {
	h := unhex(t, "4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7")
	if got := ipv4Checksum(h); got != 0xb861 {
		t.Fatalf("checksum %#04x, want 0xb861", got)
	}
	binary.BigEndian.PutUint16(h[ipv4OffChecksum:], 0xb861)
	if got := ipv4Checksum(h); got != 0 {
		t.Fatalf("verify: %#04x", got)
	}
}

func TestPutTransportHeader(t *testing.T) {
	pkt := make([]byte, 20+8)
	putTransportHeader(pkt, ipv4HeaderLen, 17, v4a, v4b)
	want := unhex(t, "45000 01c 0000 4000 4011 0000 c0000201 c6336407")
	binary.BigEndian.PutUint16(want[ipv4OffChecksum:], ipv4Checksum(want))
	if string(pkt[:20]) != string(want) {
		t.Fatalf("ipv4 header %x, want %x", pkt[:20], want)
	}
	pkt6 := make([]byte, 40+3)
	putTransportHeader(pkt6, ipv6HeaderLen, 58, v6a, v6b)
	if pkt6[0] != 0x60 || binary.BigEndian.Uint16(pkt6[4:]) != 3 || pkt6[6] != 58 || pkt6[7] != transportTTL {
		t.Fatalf("ipv6 header %x", pkt6[:40])
	}
	if s, d, ok := InnerAddrs(pkt6); !ok || s != v6a || d != v6b {
		t.Fatalf("addrs %s %s", s, d)
	}
}

func TestInnerAddrs(t *testing.T) {
	if s, d, ok := InnerAddrs(ipPacket(v4a, v4b, 1, nil)); !ok || s != v4a || d != v4b {
		t.Fatal("v4")
	}
	for _, bad := range [][]byte{nil, {0x45}, make([]byte, 39), {0x60, 0, 0}, {0x10}} {
		if _, _, ok := InnerAddrs(bad); ok {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestTransportHeaderLen(t *testing.T) {
	cases := []struct {
		src, dst netip.Addr
		want     int
		err      bool
	}{
		{v4a, v4b, 20, false},
		{v6a, v6b, 40, false},
		{netip.MustParseAddr("::ffff:192.0.2.1"), v4b, 20, false},
		{v4a, v6b, 0, true},
		{netip.Addr{}, v4b, 0, true},
	}
	for _, c := range cases {
		n, err := transportHeaderLen(c.src, c.dst)
		if n != c.want || (err != nil) != c.err {
			t.Errorf("%s %s: %d %v", c.src, c.dst, n, err)
		}
	}
}
