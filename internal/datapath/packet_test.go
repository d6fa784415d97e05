package datapath

import (
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/rampartnet/rampart/ipsec/esp"
)

func ipv4Packet(src, dst string, n int, df bool) []byte {
	b := make([]byte, n)
	b[0] = 0x45
	b[2], b[3] = byte(n>>8), byte(n)
	if df {
		b[6] = 0x40
	}
	b[8], b[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return b
}

func ipv6Packet(src, dst string, n int) []byte {
	b := make([]byte, n)
	b[0] = 0x60
	b[4], b[5] = byte((n-40)>>8), byte(n-40)
	b[6], b[7] = 17, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return b
}

// TestTooBig checks the ICMP errors with golang.org/x/net/icmp, an
// independent parser, including their checksums.
func TestTooBig(t *testing.T) {
	buf := make([]byte, 1500)
	pkt := ipv4Packet("198.19.1.2", "198.19.2.2", 1400, true)
	msg := tooBig(buf, pkt, 1300)
	if msg == nil {
		t.Fatal("no ICMP for an IPv4 packet with DF")
	}
	if len(msg) > icmpv4QuoteLimit {
		t.Errorf("ICMPv4 message of %d bytes, more than %d", len(msg), icmpv4QuoteLimit)
	}
	src, dst, _ := esp.InnerAddrs(msg)
	if src.String() != "198.19.2.2" || dst.String() != "198.19.1.2" {
		t.Errorf("ICMP from %s to %s", src, dst)
	}
	if checksum(msg[:20], 0) != 0xffff {
		t.Error("bad IPv4 header checksum")
	}
	if checksum(msg[20:], 0) != 0xffff {
		t.Error("bad ICMP checksum")
	}
	m, err := icmp.ParseMessage(1, msg[20:])
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != ipv4.ICMPTypeDestinationUnreachable || m.Code != 4 {
		t.Errorf("type %v code %d", m.Type, m.Code)
	}
	if mtu := int(msg[20+6])<<8 | int(msg[20+7]); mtu != 1300 {
		t.Errorf("next-hop MTU %d", mtu)
	}

	if tooBig(buf, ipv4Packet("198.19.1.2", "198.19.2.2", 1400, false), 1300) != nil {
		t.Error("ICMP for a packet without DF (it may be fragmented)")
	}

	pkt6 := ipv6Packet("fd00:1::2", "fd00:2::2", 1400)
	msg6 := tooBig(make([]byte, 1500), pkt6, 1280)
	if msg6 == nil || len(msg6) > ipv6MinMTU {
		t.Fatalf("ICMPv6 message %d bytes", len(msg6))
	}
	m6, err := icmp.ParseMessage(58, msg6[40:])
	if err != nil {
		t.Fatal(err)
	}
	ptb, ok := m6.Body.(*icmp.PacketTooBig)
	if m6.Type != ipv6.ICMPTypePacketTooBig || !ok || ptb.MTU != 1280 {
		t.Fatalf("ICMPv6 %v %+v", m6.Type, m6.Body)
	}
	// Verify the checksum over the pseudo-header, as the receiver does.
	var pseudo uint32
	pseudo = sum(msg6[8:40], pseudo)
	pseudo += uint32(len(msg6)-40) + protoICMPv6
	if checksum(msg6[40:], pseudo) != 0xffff {
		t.Error("bad ICMPv6 checksum")
	}

	// Never an ICMP error about an ICMP error.
	icmpErr := append([]byte(nil), msg...)
	icmpErr[6] = 0x40
	if tooBig(buf, icmpErr, 1200) != nil {
		t.Error("ICMP error about an ICMP error")
	}
}

func TestSPD(t *testing.T) {
	mk := func(name string, subnets ...string) *peerState {
		p := &peerState{cfg: Peer{Name: name}}
		for _, s := range subnets {
			p.cfg.RemoteSubnets = append(p.cfg.RemoteSubnets, netip.MustParsePrefix(s))
		}
		return p
	}
	s := newSPD([]*peerState{mk("wide", "198.19.0.0/16", "fd00::/16"), mk("narrow", "198.19.2.0/24"), mk("host", "198.19.2.7/32")})
	for dst, want := range map[string]string{
		"198.19.1.1": "wide", "198.19.2.1": "narrow", "198.19.2.7": "host", "198.18.0.1": "", "fd00:1::1": "wide", "2001:db8::1": "",
	} {
		got := ""
		if p := s.lookup(netip.MustParseAddr(dst)); p != nil {
			got = p.cfg.Name
		}
		if got != want {
			t.Errorf("%s: peer %q, want %q", dst, got, want)
		}
	}
}
