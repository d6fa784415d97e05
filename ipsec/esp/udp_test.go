package esp

import (
	"bytes"
	"testing"
)

func TestClassifyUDP(t *testing.T) {
	ike := append(make([]byte, NonESPMarkerLen), make([]byte, ikeHeaderLen)...)
	ike[NonESPMarkerLen] = 0xaa // an initiator SPI
	cases := []struct {
		name string
		in   []byte
		want UDPKind
		spi  uint32
	}{
		{"keepalive", KeepalivePacket, UDPKeepalive, 0},
		{"empty", nil, UDPInvalid, 0},
		{"one zero octet", []byte{0}, UDPInvalid, 0},
		{"short esp", []byte{0, 0, 1, 0, 0, 0, 0}, UDPInvalid, 0},
		{"esp header only", []byte{0, 0, 1, 0, 0, 0, 0, 1}, UDPESP, 0x100},
		{"esp", append([]byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 9}, make([]byte, 40)...), UDPESP, 0xdeadbeef},
		{"ike", ike, UDPIKE, 0},
		{"marker and short ike", make([]byte, NonESPMarkerLen+ikeHeaderLen-1), UDPInvalid, 0},
		{"two 0xff", []byte{0xff, 0xff}, UDPInvalid, 0},
	}
	for _, c := range cases {
		if got := ClassifyUDP(c.in); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		spi, ok := PeekSPI(c.in)
		if ok != (c.want == UDPESP) || spi != c.spi && ok {
			t.Errorf("%s: PeekSPI = %#x %t", c.name, spi, ok)
		}
	}
	if got := AppendNonESPMarker([]byte{1}); !bytes.Equal(got, []byte{1, 0, 0, 0, 0}) {
		t.Fatalf("marker %x", got)
	}
	for k, s := range map[UDPKind]string{UDPInvalid: "invalid", UDPESP: "esp", UDPIKE: "ike", UDPKeepalive: "keepalive", 9: "udpkind(9)"} {
		if k.String() != s {
			t.Errorf("%d: %s", k, k)
		}
	}
}

// FuzzClassifyUDP checks that classification never panics and agrees
// with PeekSPI and with the RFC 3948 §2 rules.
func FuzzClassifyUDP(f *testing.F) {
	f.Add([]byte{0xff})
	f.Add(make([]byte, NonESPMarkerLen+ikeHeaderLen))
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		k := ClassifyUDP(p)
		spi, ok := PeekSPI(p)
		if (k == UDPESP) != ok {
			t.Fatalf("%x: kind %s but PeekSPI %t", p, k, ok)
		}
		if k == UDPESP && spi == 0 {
			t.Fatalf("%x: esp with spi 0", p)
		}
		if k == UDPIKE && !bytes.Equal(p[:NonESPMarkerLen], make([]byte, NonESPMarkerLen)) {
			t.Fatalf("%x: ike without the marker", p)
		}
		if k == UDPKeepalive && !bytes.Equal(p, KeepalivePacket) {
			t.Fatalf("%x: keepalive", p)
		}
	})
}
