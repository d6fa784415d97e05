package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var algorithms = []Algorithm{AESGCM16, ChaCha20Poly1305, AESCBCHMACSHA256}

// testConfig returns a valid Config with deterministic keys.
func testConfig(alg Algorithm, mode Mode, esn bool) Config {
	c := Config{SPI: 0x1000_0001, Mode: mode, Algorithm: alg, ESN: esn}
	switch alg {
	case AESGCM16:
		c.Key = seqBytes(32+saltLen, 1)
	case ChaCha20Poly1305:
		c.Key = seqBytes(32+saltLen, 2)
	case AESCBCHMACSHA256:
		c.Key = seqBytes(32, 3)
		c.AuthKey = seqBytes(32, 4)
	}
	return c
}

func seqBytes(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// testPair returns a sender and a receiver SA with the same config.
func testPair(t testing.TB, c Config) (out, in *SA) {
	t.Helper()
	out, err := NewSA(c)
	if err != nil {
		t.Fatal(err)
	}
	in, err = NewSA(c)
	if err != nil {
		t.Fatal(err)
	}
	return out, in
}

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("198.51.100.7")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8:ffff::2")
)

// ipPacket builds an IPv4 or IPv6 packet (by the family of src) with the
// given protocol and payload, with a valid IPv4 header checksum.
func ipPacket(src, dst netip.Addr, proto byte, payload []byte) []byte {
	if src.Is4() {
		p := make([]byte, ipv4HeaderLen+len(payload))
		p[0] = 0x45
		p[1] = 0x10 // a TOS that transport mode will not carry
		binary.BigEndian.PutUint16(p[ipv4OffTotalLen:], uint16(len(p)))
		binary.BigEndian.PutUint16(p[4:], 0x1234)
		p[ipv4OffTTL] = 17
		p[ipv4OffProto] = proto
		s, d := src.As4(), dst.As4()
		copy(p[ipv4OffSrc:], s[:])
		copy(p[ipv4OffDst:], d[:])
		binary.BigEndian.PutUint16(p[ipv4OffChecksum:], ipv4Checksum(p[:ipv4HeaderLen]))
		copy(p[ipv4HeaderLen:], payload)
		return p
	}
	p := make([]byte, ipv6HeaderLen+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[ipv6OffPayloadLen:], uint16(len(payload)))
	p[ipv6OffNextHeader] = proto
	p[ipv6OffHopLimit] = 9
	s, d := src.As16(), dst.As16()
	copy(p[ipv6OffSrc:], s[:])
	copy(p[ipv6OffDst:], d[:])
	copy(p[ipv6HeaderLen:], payload)
	return p
}

// testIPv4 is an IPv4 UDP packet of n octets in all.
func testIPv4(t testing.TB, n int) []byte {
	t.Helper()
	return ipPacket(v4a, v4b, 17, seqBytes(n-ipv4HeaderLen, 9))
}

// TestRoundTrip seals and opens for every algorithm, mode, inner and
// outer family, ESN setting and a spread of sizes (every padding length).
func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 13, 14, 15, 16, 17, 100, 1400, 8900}
	outers := [][2]netip.Addr{{v4a, v4b}, {v6a, v6b}}
	for _, alg := range algorithms {
		for _, mode := range []Mode{ModeTunnel, ModeTransport} {
			for _, esn := range []bool{false, true} {
				for _, inner := range outers {
					for _, outer := range outers {
						name := fmt.Sprintf("%s/%s/esn=%t/inner=%s/outer=%s", alg, mode, esn, family(inner[0]), family(outer[0]))
						t.Run(name, func(t *testing.T) {
							if mode == ModeTransport && inner[0].Is4() != outer[0].Is4() {
								t.Skip("transport mode: the inner header is the outer one")
							}
							roundTrip(t, testConfig(alg, mode, esn), inner, outer, sizes)
						})
					}
				}
			}
		}
	}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "v4"
	}
	return "v6"
}

func roundTrip(t *testing.T, c Config, inner, outer [2]netip.Addr, sizes []int) {
	out, in := testPair(t, c)
	for i, n := range sizes {
		ip := ipPacket(inner[0], inner[1], 17, seqBytes(n, byte(i)))
		if c.Mode == ModeTransport {
			// Transport mode: the packet's addresses are the outer ones.
			ip = ipPacket(outer[0], outer[1], 17, seqBytes(n, byte(i)))
		}
		pkt, err := out.Seal(nil, ip)
		if err != nil {
			t.Fatalf("seal %d: %v", n, err)
		}
		if over := len(pkt) - len(ip); over > out.Overhead() {
			t.Fatalf("seal %d: added %d octets, Overhead says at most %d", n, over, out.Overhead())
		}
		if spi, ok := PeekSPI(pkt); !ok || spi != c.SPI || ClassifyUDP(pkt) != UDPESP {
			t.Fatalf("sealed packet does not classify as ESP with our SPI")
		}
		got, seq, err := in.Open(nil, pkt, outer[0], outer[1])
		if err != nil {
			t.Fatalf("open %d: %v", n, err)
		}
		if seq != uint64(i+1) {
			t.Fatalf("seq = %d, want %d", seq, i+1)
		}
		checkOpened(t, c.Mode, ip, got, outer)
		if err := in.Accept(seq, len(got)); err != nil {
			t.Fatalf("accept: %v", err)
		}
		if _, _, err := in.Open(nil, pkt, outer[0], outer[1]); !errors.Is(err, ErrReplay) {
			t.Fatalf("second open: %v, want ErrReplay", err)
		}
	}
	if s := out.Stats(); s.Packets != uint64(len(sizes)) {
		t.Errorf("sender stats %+v", s)
	}
	if s := in.Stats(); s.Packets != uint64(len(sizes)) || s.Replays != uint64(len(sizes)) {
		t.Errorf("receiver stats %+v", s)
	}
}

// checkOpened compares what Open returned with what was sealed.
func checkOpened(t *testing.T, mode Mode, sent, got []byte, outer [2]netip.Addr) {
	t.Helper()
	if mode == ModeTunnel {
		if !bytes.Equal(got, sent) {
			t.Fatalf("tunnel: inner packet differs\n got %x\nwant %x", got, sent)
		}
		return
	}
	src, dst, ok := InnerAddrs(got)
	if !ok || src != outer[0] || dst != outer[1] {
		t.Fatalf("transport: rebuilt header has %s -> %s", src, dst)
	}
	hl := ipv4HeaderLen
	if outer[0].Is6() {
		hl = ipv6HeaderLen
		if got[ipv6OffNextHeader] != sent[ipv6OffNextHeader] || int(binary.BigEndian.Uint16(got[ipv6OffPayloadLen:])) != len(got)-hl {
			t.Fatalf("transport: bad ipv6 header %x", got[:hl])
		}
	} else {
		if got[ipv4OffProto] != sent[ipv4OffProto] || int(binary.BigEndian.Uint16(got[ipv4OffTotalLen:])) != len(got) {
			t.Fatalf("transport: bad ipv4 header %x", got[:hl])
		}
		if ipv4Checksum(got[:hl]) != 0 {
			t.Fatalf("transport: ipv4 header checksum does not verify: %x", got[:hl])
		}
	}
	if !bytes.Equal(got[hl:], sent[hl:]) {
		t.Fatalf("transport: payload differs")
	}
}

// TestOpenInPlace decrypts into the packet's own buffer: zero-copy at
// HeaderLen, and the moved cases (dst at the start, transport headers).
func TestOpenInPlace(t *testing.T) {
	for _, alg := range algorithms {
		for _, mode := range []Mode{ModeTunnel, ModeTransport} {
			for _, off := range []int{0, 4, 16, 24, 40, 64} {
				t.Run(fmt.Sprintf("%s/%s/dst=packet[:%d]", alg, mode, off), func(t *testing.T) {
					out, in := testPair(t, testConfig(alg, mode, false))
					ip := ipPacket(v4a, v4b, 6, seqBytes(333, 1))
					const head = 64 // receive headroom, as a datapath leaves it
					buf := make([]byte, head, head+2000)
					pkt, err := out.Seal(buf, ip)
					if err != nil {
						t.Fatal(err)
					}
					dst := pkt[head-64+off : head-64+off] // anywhere from 64 before the packet
					if off == 64 {
						dst = pkt[head : head+in.HeaderLen()] // the zero-copy spot
					}
					got, _, err := in.Open(dst, pkt[head:], v4a, v4b)
					if err != nil {
						t.Fatal(err)
					}
					checkOpened(t, mode, ip, got, [2]netip.Addr{v4a, v4b})
				})
			}
		}
	}
}

// TestSealInPlace seals a packet that sits in dst's spare capacity at the
// payload offset, the zero-copy layout, and at other offsets.
func TestSealInPlace(t *testing.T) {
	for _, alg := range algorithms {
		for _, shift := range []int{-24, -8, 0, 8, 40} {
			t.Run(fmt.Sprintf("%s/shift=%d", alg, shift), func(t *testing.T) {
				out, in := testPair(t, testConfig(alg, ModeTunnel, false))
				ip := ipPacket(v6a, v6b, 58, seqBytes(500, 3))
				const head = 48
				buf := make([]byte, 4096)
				at := head + out.HeaderLen() + shift
				copy(buf[at:], ip)
				pkt, err := out.Seal(buf[:head], buf[at:at+len(ip)])
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := in.Open(nil, pkt[head:], netip.Addr{}, netip.Addr{})
				if err != nil || !bytes.Equal(got, ip) {
					t.Fatalf("open: %v", err)
				}
			})
		}
	}
}

// TestCorruption flips every octet of a packet in turn: the ICV must catch
// each one (a changed SPI is caught before, as not ours).
func TestCorruption(t *testing.T) {
	for _, alg := range algorithms {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/esn=%t", alg, esn), func(t *testing.T) {
				out, in := testPair(t, testConfig(alg, ModeTunnel, esn))
				pkt, err := out.Seal(nil, testIPv4(t, 77))
				if err != nil {
					t.Fatal(err)
				}
				for i := range pkt {
					bad := bytes.Clone(pkt)
					bad[i] ^= 0x80
					_, _, err := in.Open(nil, bad, v4a, v4b)
					want := ErrAuth
					if i < offSeq {
						want = ErrMalformed
					}
					if !errors.Is(err, want) {
						t.Fatalf("octet %d flipped: %v, want %v", i, err, want)
					}
				}
				if s := in.Stats(); s.AuthFailures != uint64(len(pkt)-offSeq) || s.Malformed != offSeq {
					t.Fatalf("stats %+v", s)
				}
			})
		}
	}
}

func TestTruncated(t *testing.T) {
	for _, alg := range algorithms {
		out, in := testPair(t, testConfig(alg, ModeTunnel, false))
		pkt, _ := out.Seal(nil, testIPv4(t, 60))
		for n := range len(pkt) {
			_, _, err := in.Open(nil, pkt[:n], v4a, v4b)
			if err == nil || !(errors.Is(err, ErrShort) || errors.Is(err, ErrAuth) || errors.Is(err, ErrMalformed)) {
				t.Fatalf("%s: %d of %d octets: %v", alg, n, len(pkt), err)
			}
		}
		for n := range in.HeaderLen() + icvLen {
			if _, _, err := in.Open(nil, pkt[:n], v4a, v4b); !errors.Is(err, ErrShort) {
				t.Fatalf("%s: %d octets: %v, want ErrShort", alg, n, err)
			}
		}
	}
}

func TestWrongSPI(t *testing.T) {
	out, _ := testPair(t, testConfig(AESGCM16, ModeTunnel, false))
	c := testConfig(AESGCM16, ModeTunnel, false)
	c.SPI++
	other, _ := NewSA(c)
	pkt, _ := out.Seal(nil, testIPv4(t, 40))
	if _, _, err := other.Open(nil, pkt, v4a, v4b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "spi") {
		t.Fatalf("got %v", err)
	}
}

// TestBadPadding protects hand-made plaintexts whose trailers are wrong:
// authentic packets that Open must still refuse.
func TestBadPadding(t *testing.T) {
	inner := testIPv4(t, 21)
	cases := []struct {
		name    string
		trailer []byte // after the inner packet
		want    error
	}{
		{"pad octets not 1,2,3", []byte{1, 3, 2, protoIPv4}, ErrPadding},
		{"pad octets zero", []byte{0, 0, 2, protoIPv4}, ErrPadding},
		{"pad length past start", []byte{1, 2, 200, protoIPv4}, ErrPadding},
		{"good padding, next header 6 in tunnel mode", []byte{1, 2, 2, 6}, ErrMalformed},
		{"inner v4 announced as v6", []byte{1, 2, 2, protoIPv6}, ErrMalformed},
		{"good", []byte{1, 2, 2, protoIPv4}, nil},
	}
	for _, alg := range algorithms {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s", alg, c.name), func(t *testing.T) {
				_, in := testPair(t, testConfig(alg, ModeTunnel, false))
				plain := append(bytes.Clone(inner), c.trailer...)
				if align := in.tr.align; len(plain)%align != 0 {
					// Grow the payload (TFC-style, the receiver ignores it).
					extra := align - len(plain)%align
					plain = append(append(bytes.Clone(inner), make([]byte, extra)...), c.trailer...)
				}
				pkt := make([]byte, in.HeaderLen()+len(plain)+icvLen)
				copy(pkt[in.HeaderLen():], plain)
				in.tr.protect(pkt, len(plain), 1, nil)
				got, _, err := in.Open(nil, pkt, v4a, v4b)
				if c.want == nil {
					if err != nil || !bytes.Equal(got, inner) {
						t.Fatalf("got %v", err)
					}
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
			})
		}
	}
}

func TestReplayAndWindowEdges(t *testing.T) {
	c := testConfig(ChaCha20Poly1305, ModeTunnel, false)
	c.ReplayWindow = 64
	out, in := testPair(t, c)
	pkts := make([][]byte, 200)
	for i := range pkts {
		pkts[i], _ = out.Seal(nil, testIPv4(t, 30))
	}
	open := func(seq int) error {
		_, s, err := in.Open(nil, pkts[seq-1], v4a, v4b)
		if err != nil {
			return err
		}
		return in.Accept(s, 30)
	}
	steps := []struct {
		seq  int
		want error
	}{
		{100, nil},       // jump ahead
		{100, ErrReplay}, // duplicate
		{37, nil},        // 100-63: the left edge of a 64-packet window
		{36, ErrReplay},  // just below it
		{37, ErrReplay},
		{99, nil},
		{164, nil},       // window now 101..164
		{100, ErrReplay}, // fell out (and was seen)
		{101, nil},
		{200, nil},
		{137, nil},
		{136, ErrReplay},
	}
	for i, s := range steps {
		if err := open(s.seq); !errors.Is(err, s.want) && !(s.want == nil && err == nil) {
			t.Fatalf("step %d seq %d: %v, want %v", i+1, s.seq, err, s.want)
		}
	}
	// Open's check is read-only: two Opens of one packet both pass, the
	// second Accept fails.
	_, _ = out.Seal(nil, testIPv4(t, 30)) // 201
	p, _ := out.Seal(nil, testIPv4(t, 30))
	_, s1, err1 := in.Open(nil, p, v4a, v4b)
	_, s2, err2 := in.Open(nil, p, v4a, v4b)
	if err1 != nil || err2 != nil || s1 != 202 || s2 != 202 {
		t.Fatalf("parallel opens: %v %v", err1, err2)
	}
	if err := in.Accept(s1, 1); err != nil {
		t.Fatal(err)
	}
	if err := in.Accept(s2, 1); !errors.Is(err, ErrReplay) {
		t.Fatalf("second accept: %v", err)
	}
}

func TestReplayDisabled(t *testing.T) {
	c := testConfig(AESGCM16, ModeTunnel, false)
	c.ReplayWindow = -1
	out, in := testPair(t, c)
	p, _ := out.Seal(nil, testIPv4(t, 30))
	for range 3 {
		_, seq, err := in.Open(nil, p, v4a, v4b)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Accept(seq, 30); err != nil {
			t.Fatal(err)
		}
	}
}

// TestESNAcrossSubspaces sends across the 2^32 boundary with loss and
// reordering: the receiver infers the high-order bits (RFC 4303 A2).
func TestESNAcrossSubspaces(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			out, in := testPair(t, testConfig(alg, ModeTunnel, true))
			out.seq.Store(1<<32 - 10)
			if err := in.Accept(1<<32-20, 0); err != nil {
				t.Fatal(err)
			}
			var pkts [][]byte
			for range 30 {
				p, err := out.Seal(nil, testIPv4(t, 40))
				if err != nil {
					t.Fatal(err)
				}
				pkts = append(pkts, p)
			}
			// Deliver with reordering around the boundary: 8,9,12,10,11,... .
			order := []int{0, 1, 8, 9, 12, 10, 11, 2, 29, 20, 3}
			for _, i := range order {
				want := uint64(1<<32-9) + uint64(i)
				_, seq, err := in.Open(nil, pkts[i], v4a, v4b)
				if err != nil || seq != want {
					t.Fatalf("packet %d: seq %#x err %v, want %#x", i, seq, err, want)
				}
				if err := in.Accept(seq, 40); err != nil {
					t.Fatalf("accept %#x: %v", seq, err)
				}
			}
			if got := binary.BigEndian.Uint32(pkts[9][offSeq:]); got != 0 {
				t.Fatalf("wire seq of 2^32 is %d, want 0", got)
			}
		})
	}
}

func TestSeqExhausted(t *testing.T) {
	for _, esn := range []bool{false, true} {
		out, in := testPair(t, testConfig(AESGCM16, ModeTunnel, esn))
		last := uint64(math.MaxUint32)
		if esn {
			last = math.MaxUint64
		}
		out.seq.Store(last - 1)
		p, err := out.Seal(nil, testIPv4(t, 30))
		if err != nil {
			t.Fatalf("esn=%t: last number: %v", esn, err)
		}
		if _, err := out.Seal(nil, testIPv4(t, 30)); !errors.Is(err, ErrSeqExhausted) {
			t.Fatalf("esn=%t: past the last number: %v", esn, err)
		}
		if _, err := out.SealDummy(nil, 0); !errors.Is(err, ErrSeqExhausted) {
			t.Fatalf("esn=%t: still exhausted: %v", esn, err)
		}
		in.win.top.Store(last - 1)
		if _, seq, err := in.Open(nil, p, v4a, v4b); err != nil || seq != last {
			t.Fatalf("esn=%t: open last: %#x %v", esn, seq, err)
		}
	}
}

func TestDummy(t *testing.T) {
	for _, alg := range algorithms {
		out, in := testPair(t, testConfig(alg, ModeTransport, false))
		for _, n := range []int{0, 1, 100} {
			p, err := out.SealDummy(nil, n)
			if err != nil {
				t.Fatal(err)
			}
			ip, seq, err := in.Open(nil, p, v4a, v4b)
			if !errors.Is(err, ErrDummy) || ip != nil || seq == 0 {
				t.Fatalf("%s: open dummy: %v %d", alg, err, seq)
			}
			if err := in.Accept(seq, 0); err != nil {
				t.Fatalf("accept dummy: %v", err)
			}
			if _, _, err := in.Open(nil, p, v4a, v4b); !errors.Is(err, ErrReplay) {
				t.Fatalf("replayed dummy: %v", err)
			}
		}
		if in.Stats().Dummy != 3 {
			t.Fatalf("stats %+v", in.Stats())
		}
		if _, err := out.SealDummy(nil, -1); err == nil {
			t.Fatal("negative dummy length accepted")
		}
	}
}

func TestLifetimeLimits(t *testing.T) {
	type event struct {
		spi   uint32
		state LifetimeState
	}
	var mu sync.Mutex
	var events []event
	c := testConfig(AESGCM16, ModeTunnel, false)
	c.Lifetime = Lifetime{Soft: Limits{Packets: 3}, Hard: Limits{Packets: 5}}
	c.OnLifetime = func(spi uint32, st LifetimeState) {
		mu.Lock()
		events = append(events, event{spi, st})
		mu.Unlock()
	}
	out, in := testPair(t, c)
	ip := testIPv4(t, 50)
	var pkts [][]byte
	for i := 1; i <= 7; i++ {
		p, err := out.Seal(nil, ip)
		if i <= 5 {
			if err != nil {
				t.Fatalf("seal %d: %v", i, err)
			}
			pkts = append(pkts, p)
		} else if !errors.Is(err, ErrLifetime) {
			t.Fatalf("seal %d: %v, want ErrLifetime", i, err)
		}
	}
	want := []event{{c.SPI, LifetimeSoft}, {c.SPI, LifetimeHard}}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	if s := out.Stats(); s.Packets != 5 || s.Bytes != 5*50 {
		t.Fatalf("stats %+v", s)
	}
	if st := out.Lifetime(time.Now()); st != LifetimeHard {
		t.Fatalf("state %s", st)
	}

	// Inbound: Accept counts and refuses the same way.
	events = nil
	for i, p := range pkts {
		_, seq, err := in.Open(nil, p, v4a, v4b)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Accept(seq, len(ip)); err != nil {
			t.Fatalf("accept %d: %v", i+1, err)
		}
	}
	if err := in.Accept(99, 1); !errors.Is(err, ErrLifetime) {
		t.Fatalf("accept 6: %v", err)
	}
	if _, _, err := in.Open(nil, pkts[0], v4a, v4b); !errors.Is(err, ErrLifetime) {
		t.Fatalf("open after hard: %v", err)
	}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("inbound events %v, want %v", events, want)
	}
}

func TestLifetimeBytesAndTime(t *testing.T) {
	var got []LifetimeState
	c := testConfig(ChaCha20Poly1305, ModeTunnel, false)
	c.Lifetime = Lifetime{
		Soft: Limits{Bytes: 100, Time: time.Minute},
		Hard: Limits{Bytes: 150, Time: time.Hour},
	}
	c.OnLifetime = func(_ uint32, st LifetimeState) { got = append(got, st) }
	sa, err := NewSA(c)
	if err != nil {
		t.Fatal(err)
	}
	t0 := sa.Created()
	if st := sa.Lifetime(t0.Add(59 * time.Second)); st != LifetimeOK {
		t.Fatalf("at 59s: %s", st)
	}
	if st := sa.Lifetime(t0.Add(time.Minute)); st != LifetimeSoft {
		t.Fatalf("at 1m: %s", st)
	}
	// 3 x 40 octets: 120 > soft (already soft by time: no event), then
	// 4th would make 160 > 150 hard: refused.
	for i := range 3 {
		if _, err := sa.Seal(nil, testIPv4(t, 40)); err != nil {
			t.Fatalf("seal %d: %v", i, err)
		}
	}
	if _, err := sa.Seal(nil, testIPv4(t, 40)); !errors.Is(err, ErrLifetime) {
		t.Fatalf("over hard bytes: %v", err)
	}
	// Latched: even a packet that would fit is refused.
	if _, err := sa.Seal(nil, testIPv4(t, 20)); !errors.Is(err, ErrLifetime) {
		t.Fatalf("after hard: %v", err)
	}
	if fmt.Sprint(got) != "[hard]" || sa.Stats().Bytes != 120 {
		t.Fatalf("events %v stats %+v", got, sa.Stats())
	}

	hard, _ := NewSA(c)
	if st := hard.Lifetime(hard.Created().Add(time.Hour)); st != LifetimeHard {
		t.Fatalf("at 1h: %s", st)
	}
	if _, err := hard.Seal(nil, testIPv4(t, 40)); !errors.Is(err, ErrLifetime) {
		t.Fatalf("seal after hard time: %v", err)
	}
}

func TestZero(t *testing.T) {
	for _, alg := range algorithms {
		out, in := testPair(t, testConfig(alg, ModeTunnel, false))
		p, _ := out.Seal(nil, testIPv4(t, 30))
		tr := out.tr
		out.Zero()
		out.Zero() // idempotent
		for i, b := range append(bytes.Clone(tr.key), tr.authKey...) {
			if b != 0 {
				t.Fatalf("%s: key octet %d not wiped", alg, i)
			}
		}
		if tr.salt != [saltLen]byte{} || tr.aead != nil || tr.block != nil || tr.macs != nil {
			t.Fatalf("%s: transform not cleared", alg)
		}
		if _, err := out.Seal(nil, testIPv4(t, 30)); !errors.Is(err, ErrSADeleted) {
			t.Fatalf("seal after zero: %v", err)
		}
		in.Zero()
		if _, _, err := in.Open(nil, p, v4a, v4b); !errors.Is(err, ErrSADeleted) {
			t.Fatalf("open after zero: %v", err)
		}
		if err := in.Accept(1, 1); !errors.Is(err, ErrSADeleted) {
			t.Fatalf("accept after zero: %v", err)
		}
	}
}

// TestKeyCopied checks that NewSA copies keys: the caller may zero its own.
func TestKeyCopied(t *testing.T) {
	c := testConfig(AESGCM16, ModeTunnel, false)
	out, err := NewSA(c)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Clone(c.Key)
	clear(c.Key)
	c.Key = key
	in, _ := NewSA(c)
	p, _ := out.Seal(nil, testIPv4(t, 30))
	if _, _, err := in.Open(nil, p, v4a, v4b); err != nil {
		t.Fatal(err)
	}
}

func TestConfigStringHidesKeys(t *testing.T) {
	c := testConfig(AESCBCHMACSHA256, ModeTunnel, false)
	c.Key = bytes.Repeat([]byte{0xab}, 32)
	c.AuthKey = bytes.Repeat([]byte{0xcd}, 32)
	p := Pair{Peer: "x", In: c, Out: c}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", p), fmt.Sprintf("%+v", p)} {
		if strings.Contains(s, "ab ab") || strings.Contains(s, "171") || strings.Contains(s, "abab") || strings.Contains(s, "cdcd") || strings.Contains(s, "205") {
			t.Fatalf("key material printed: %s", s)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := testConfig(AESGCM16, ModeTunnel, false)
	cases := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"aes-gcm 128", func(c *Config) { c.Key = make([]byte, 20) }, ""},
		{"aes-gcm 192", func(c *Config) { c.Key = make([]byte, 28) }, ""},
		{"spi 0", func(c *Config) { c.SPI = 0 }, "spi: 0 is reserved"},
		{"spi 255", func(c *Config) { c.SPI = 255 }, "1-255"},
		{"spi 256", func(c *Config) { c.SPI = 256 }, ""},
		{"no mode", func(c *Config) { c.Mode = 0 }, "mode"},
		{"unknown algorithm", func(c *Config) { c.Algorithm = "des" }, "unknown"},
		{"gcm key without salt", func(c *Config) { c.Key = make([]byte, 32) }, "key:"},
		{"gcm with auth key", func(c *Config) { c.AuthKey = make([]byte, 32) }, "authkey"},
		{"chacha short", func(c *Config) { c.Algorithm = ChaCha20Poly1305 }, ""},
		{"chacha 32", func(c *Config) { c.Algorithm = ChaCha20Poly1305; c.Key = make([]byte, 32) }, "36 octets"},
		{"cbc no auth", func(c *Config) { c.Algorithm = AESCBCHMACSHA256; c.Key = make([]byte, 16) }, "authkey"},
		{"cbc ok", func(c *Config) {
			c.Algorithm = AESCBCHMACSHA256
			c.Key = make([]byte, 24)
			c.AuthKey = make([]byte, 32)
		}, ""},
		{"window 100", func(c *Config) { c.ReplayWindow = 100 }, "replaywindow"},
		{"window 65536", func(c *Config) { c.ReplayWindow = 65536 }, ""},
		{"window 65600", func(c *Config) { c.ReplayWindow = 65600 }, "replaywindow"},
		{"window off", func(c *Config) { c.ReplayWindow = -1 }, ""},
		{"soft above hard", func(c *Config) { c.Lifetime = Lifetime{Soft: Limits{Packets: 10}, Hard: Limits{Packets: 5}} }, "soft packets"},
		{"negative time", func(c *Config) { c.Lifetime.Soft.Time = -time.Second }, "negative"},
	}
	for _, tc := range cases {
		c := ok
		tc.modify(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// errors.Join collects every problem.
	bad := Config{}
	if err := bad.Validate(); err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Fatalf("zero config: %v", err)
	}
	if _, err := NewSA(bad); err == nil {
		t.Fatal("NewSA accepted an invalid config")
	}
}

// TestConcurrentSealUnique seals from many goroutines: every sequence
// number is used exactly once, and a receiver that opens in parallel and
// accepts in one goroutine takes every packet.
func TestConcurrentSealUnique(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			c := testConfig(alg, ModeTunnel, true)
			c.ReplayWindow = 4096 // the channels reorder across the whole run
			out, in := testPair(t, c)
			const workers, each = 8, 200
			ip := testIPv4(t, 100)
			pkts := make(chan []byte, workers*each)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range each {
						p, err := out.Seal(nil, ip)
						if err != nil {
							t.Error(err)
							return
						}
						pkts <- p
					}
				})
			}
			wg.Wait()
			close(pkts)

			seqs := make(chan uint64, workers*each)
			var openers sync.WaitGroup
			for range 4 {
				openers.Go(func() {
					for p := range pkts {
						_, seq, err := in.Open(nil, p, v4a, v4b)
						if err != nil {
							t.Error(err)
							continue
						}
						seqs <- seq
					}
				})
			}
			done := make(chan map[uint64]bool)
			go func() {
				seen := map[uint64]bool{}
				for seq := range seqs {
					if err := in.Accept(seq, 100); err != nil {
						t.Errorf("accept %d: %v", seq, err)
					}
					seen[seq] = true
				}
				done <- seen
			}()
			openers.Wait()
			close(seqs)
			seen := <-done
			for i := uint64(1); i <= workers*each; i++ {
				if !seen[i] {
					t.Fatalf("sequence number %d missing", i)
				}
			}
		})
	}
}

// TestZeroWhileSealing races Zero against Seal and Open: no data race, and
// every call either works or reports ErrSADeleted.
func TestZeroWhileSealing(t *testing.T) {
	out, in := testPair(t, testConfig(AESCBCHMACSHA256, ModeTunnel, false))
	p, _ := out.Seal(nil, testIPv4(t, 64))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for {
				if _, err := out.Seal(buf, testIPv4(t, 64)); err != nil {
					if !errors.Is(err, ErrSADeleted) {
						t.Error(err)
					}
					return
				}
			}
		})
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for {
				if _, _, err := in.Open(buf, p, v4a, v4b); err != nil {
					if !errors.Is(err, ErrSADeleted) {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	out.Zero()
	in.Zero()
	wg.Wait()
}

func TestTransportSealInput(t *testing.T) {
	sa, _ := NewSA(testConfig(AESGCM16, ModeTransport, false))
	frag := ipPacket(v4a, v4b, 17, make([]byte, 16))
	binary.BigEndian.PutUint16(frag[ipv4OffFlagsFrag:], ipv4FlagMF)
	v6frag := ipPacket(v6a, v6b, protoIPv6Frag, make([]byte, 16))
	short := testIPv4(t, 40)[:30] // total length 40, 30 octets
	for name, ip := range map[string][]byte{"v4 fragment": frag, "v6 fragment header": v6frag, "truncated": short, "empty": nil, "version 5": {0x50, 0, 0, 0}} {
		if _, err := sa.Seal(nil, ip); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// IPv4 options are dropped, trailing octets after Total Length too.
	opts := ipPacket(v4a, v4b, 6, append([]byte{1, 1, 1, 0}, seqBytes(20, 5)...)) // 4 octets of NOP/EOL options
	opts[0] = 0x46
	binary.BigEndian.PutUint16(opts[ipv4OffChecksum:], 0)
	binary.BigEndian.PutUint16(opts[ipv4OffChecksum:], ipv4Checksum(opts[:24]))
	_, in := testPair(t, testConfig(AESGCM16, ModeTransport, false))
	p, err := sa.Seal(nil, append(bytes.Clone(opts), 0xee, 0xee))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := in.Open(nil, p, v4a, v4b)
	if err != nil || !bytes.Equal(got[ipv4HeaderLen:], opts[24:]) || got[ipv4OffProto] != 6 {
		t.Fatalf("options: %v %x", err, got)
	}
	if _, _, err := in.Open(nil, p, v4a, v6b); err == nil {
		t.Fatal("mixed outer families accepted")
	}
	// A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
	if got, _, err := in.Open(nil, p, netip.AddrFrom16(v4a.As16()), netip.AddrFrom16(v4b.As16())); err == nil && got[0]>>4 != 4 {
		t.Fatalf("mapped outer addresses gave %x", got[:1])
	}
}

// TestTunnelTFCPadding: extra octets after the inner packet (traffic flow
// confidentiality padding, RFC 4303 §2.7) are removed by its length.
func TestTunnelTFCPadding(t *testing.T) {
	out, in := testPair(t, testConfig(AESGCM16, ModeTunnel, false))
	ip := testIPv4(t, 60)
	padded := append(bytes.Clone(ip), make([]byte, 37)...)
	p, err := out.sealWithSeq(nil, padded, protoIPv4, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := in.Open(nil, p, v4a, v4b)
	if err != nil || !bytes.Equal(got, ip) {
		t.Fatalf("%v %x", err, got)
	}
}

// TestAlgorithmOverhead: what an algorithm promises before any key is
// (the path MTU leaves room for it) is what its SAs add at most, and a
// sealed packet of every padding length stays within it.
func TestAlgorithmOverhead(t *testing.T) {
	want := map[Algorithm]int{AESGCM16: 37, ChaCha20Poly1305: 37, AESCBCHMACSHA256: 57}
	for _, alg := range algorithms {
		n, err := alg.Overhead()
		if err != nil || n != want[alg] {
			t.Errorf("%s: Overhead() = %d, %v; want %d", alg, n, err, want[alg])
		}
		out, _ := testPair(t, testConfig(alg, ModeTunnel, true))
		if out.Overhead() != n {
			t.Errorf("%s: an SA adds up to %d, the algorithm says %d", alg, out.Overhead(), n)
		}
		for size := 20; size < 40; size++ {
			p := testIPv4(t, size)
			sealed, err := out.Seal(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed)-len(p) > n {
				t.Errorf("%s: %d octets sealed into %d: more than %d added", alg, len(p), len(sealed), n)
			}
		}
	}
	if _, err := Algorithm("des").Overhead(); err == nil {
		t.Error("an unknown algorithm has an overhead")
	}
}
