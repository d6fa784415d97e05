package datapath

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/rampartnet/rampart/ipsec/esp"
)

// Two whole devices connected in memory (wireguard-go's tuntest and
// bindtest fakes): the datapath's logic without root. The real kernel path
// is tested in e2e_tunnel_test.go.

func pairConfigs(alg esp.Algorithm, keyLen int) (a, b *Config) {
	key := func(fill byte) []byte { return bytes.Repeat([]byte{fill}, keyLen) }
	sa := func(spi uint32, k []byte) *esp.Config {
		c := &esp.Config{SPI: spi, Mode: esp.ModeTunnel, Algorithm: alg, Key: k}
		if alg == esp.AESCBCHMACSHA256 {
			c.AuthKey = bytes.Repeat([]byte{0x77}, 32)
		}
		return c
	}
	netA, netB := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}
	// bindtest routes by port: endpoint port 1 is the first bind, 2 the second.
	a = &Config{Name: "a", DeviceName: "fake", LocalAddr: netip.MustParseAddr("198.18.0.1"), Port: 4500, UnderlayMTU: 1500,
		Peers: []Peer{{Name: "b", Endpoint: netip.MustParseAddrPort("198.18.0.2:1"), Mode: esp.ModeTunnel,
			LocalSubnets: netA, RemoteSubnets: netB, Out: sa(0x1001, key(1)), In: sa(0x2001, key(2))}}}
	b = &Config{Name: "b", DeviceName: "fake", LocalAddr: netip.MustParseAddr("198.18.0.2"), Port: 4500, UnderlayMTU: 1500,
		Peers: []Peer{{Name: "a", Endpoint: netip.MustParseAddrPort("198.18.0.1:2"), Mode: esp.ModeTunnel,
			LocalSubnets: netB, RemoteSubnets: netA, Out: sa(0x2001, key(2)), In: sa(0x1001, key(1))}}}
	return a, b
}

type memPair struct {
	a, b       *Device
	tunA, tunB *tuntest.ChannelTUN
}

func newMemPair(t *testing.T, alg esp.Algorithm, keyLen int) *memPair {
	t.Helper()
	ca, cb := pairConfigs(alg, keyLen)
	binds := bindtest.NewChannelBinds()
	m := &memPair{tunA: tuntest.NewChannelTUN(), tunB: tuntest.NewChannelTUN()}
	var err error
	if m.a, err = newDevice(ca, Options{}, func(int) (tun.Device, error) { return m.tunA.TUN(), nil }, binds[0], false); err != nil {
		t.Fatal(err)
	}
	if m.b, err = newDevice(cb, Options{}, func(int) (tun.Device, error) { return m.tunB.TUN(), nil }, binds[1], false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go m.a.Run(ctx)
	go m.b.Run(ctx)
	t.Cleanup(func() {
		cancel()
		m.a.Close()
		m.b.Close()
	})
	return m
}

func expectPacket(t *testing.T, ch chan []byte, want []byte) {
	t.Helper()
	select {
	case got := <-ch:
		if !bytes.Equal(got, want) {
			t.Fatalf("got %x\nwant %x", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet came out of the tunnel")
	}
}

func TestDevicePairInMemory(t *testing.T) {
	for _, c := range []struct {
		alg    esp.Algorithm
		keyLen int
	}{{esp.AESGCM16, 36}, {esp.ChaCha20Poly1305, 36}, {esp.AESCBCHMACSHA256, 32}} {
		t.Run(string(c.alg), func(t *testing.T) {
			m := newMemPair(t, c.alg, c.keyLen)
			podA, podB := netip.MustParseAddr("198.19.1.2"), netip.MustParseAddr("198.19.2.2")
			for i := 0; i < 3; i++ {
				ping := tuntest.Ping(podB, podA)
				m.tunA.Outbound <- ping
				expectPacket(t, m.tunB.Inbound, ping)
				pong := tuntest.Ping(podA, podB)
				m.tunB.Outbound <- pong
				expectPacket(t, m.tunA.Inbound, pong)
			}
			// Outside the selectors: from an address A does not offer, and
			// to a subnet no peer has. Both dropped at A.
			m.tunA.Outbound <- tuntest.Ping(podB, netip.MustParseAddr("198.19.9.9"))
			m.tunA.Outbound <- tuntest.Ping(netip.MustParseAddr("203.0.113.1"), podA)
			deadline := time.Now().Add(5 * time.Second)
			for m.a.Status().Drops["no-policy"] < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("drops %v", m.a.Status().Drops)
				}
				time.Sleep(10 * time.Millisecond)
			}
			st := m.b.Status()
			if p := st.Peers[0]; p.RxPackets != 3 || p.TxPackets != 3 {
				t.Errorf("B counted rx %d tx %d, want 3 and 3", p.RxPackets, p.TxPackets)
			}
			select {
			case p := <-m.tunB.Inbound:
				t.Fatalf("a dropped packet came through: %x", p)
			default:
			}
		})
	}
}

// TestDeviceSelectorMismatch: a packet that decrypts under B's SA but
// whose inner addresses the SA does not cover is dropped and counted.
func TestDeviceSelectorMismatch(t *testing.T) {
	m := newMemPair(t, esp.AESGCM16, 36)
	// Seal a packet from an address outside A's subnets with A's own
	// outbound SA, as a peer that cheats would.
	e := m.a.sad.Current("b")
	inner := tuntest.Ping(netip.MustParseAddr("198.19.2.2"), netip.MustParseAddr("10.9.9.9"))
	pkt, err := e.Out.Seal(nil, inner)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.a.bind.Send([][]byte{pkt}, m.a.state.Load().peers["b"].ep); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.b.Status().Peers[0].Drops["selector-mismatch"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("drops %v", m.b.Status().Peers[0].Drops)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeviceNegotiatedSelectors: the SAs' selectors, as IKE negotiated
// them, bound the traffic, not the peer's configured subnets: with SAs
// narrowed to halves of the subnets, a packet from the other half is not
// sent, and one that arrives anyway is dropped.
func TestDeviceNegotiatedSelectors(t *testing.T) {
	m := newMemPair(t, esp.AESGCM16, 36)
	half := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	for _, x := range []struct {
		dev           *Device
		peer          string
		local, remote string
		oldIn, in     uint32
		out           uint32
		inKey, outKey byte
	}{
		{m.a, "b", "198.19.1.0/25", "198.19.2.0/25", 0x2001, 0x2002, 0x1002, 2, 1},
		{m.b, "a", "198.19.2.0/25", "198.19.1.0/25", 0x1001, 0x1002, 0x2002, 1, 2},
	} {
		mk := func(spi uint32, fill byte) esp.Config {
			return esp.Config{SPI: spi, Mode: esp.ModeTunnel, Algorithm: esp.AESGCM16, Key: bytes.Repeat([]byte{fill}, 36)}
		}
		cur := x.dev.sad.Current(x.peer)
		if err := x.dev.sad.Replace(x.oldIn, esp.Pair{Peer: x.peer, Remote: cur.Remote, LocalTS: half(x.local), RemoteTS: half(x.remote),
			In: mk(x.in, x.inKey), Out: mk(x.out, x.outKey)}); err != nil {
			t.Fatal(err)
		}
	}
	in, out := netip.MustParseAddr("198.19.1.2"), netip.MustParseAddr("198.19.1.200") // inside and outside A's half
	podB := netip.MustParseAddr("198.19.2.2")
	ping := tuntest.Ping(podB, in)
	m.tunA.Outbound <- ping
	expectPacket(t, m.tunB.Inbound, ping)
	// Configured, not negotiated: A does not send it...
	m.tunA.Outbound <- tuntest.Ping(podB, out)
	deadline := time.Now().Add(5 * time.Second)
	for m.a.Status().Peers[0].Drops["no-policy"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("A's drops %v %v", m.a.Status().Drops, m.a.Status().Peers[0].Drops)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ...and B drops it when a peer sends it anyway.
	pkt, err := m.a.sad.Current("b").Out.Seal(nil, tuntest.Ping(podB, out))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.a.bind.Send([][]byte{pkt}, m.a.state.Load().peers["b"].ep); err != nil {
		t.Fatal(err)
	}
	for m.b.Status().Peers[0].Drops["selector-mismatch"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("B's drops %v", m.b.Status().Peers[0].Drops)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// discard is a TUN device and a bind that swallow everything, for the
// hot-path benchmarks.
type discard struct{}

func (discard) File() *os.File                                  { return nil }
func (discard) Read([][]byte, []int, int) (int, error)          { select {} }
func (discard) Write(b [][]byte, _ int) (int, error)            { return len(b), nil }
func (discard) MTU() (int, error)                               { return 1500, nil }
func (discard) Name() (string, error)                           { return "discard", nil }
func (discard) Events() <-chan tun.Event                        { return nil }
func (discard) Close() error                                    { return nil }
func (discard) BatchSize() int                                  { return batchSize }
func (discard) Open(uint16) ([]conn.ReceiveFunc, uint16, error) { return nil, 4500, nil }
func (discard) SetMark(uint32) error                            { return nil }
func (discard) Send([][]byte, conn.Endpoint) error              { return nil }
func (discard) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	return &conn.StdNetEndpoint{AddrPort: ap}, err
}

func benchDevice(b *testing.B, cfg *Config) *Device {
	d, err := newDevice(cfg, Options{}, func(int) (tun.Device, error) { return discard{}, nil }, discard{}, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// BenchmarkSendBatch: SPD lookup, seal on all cores and hand-off to the
// socket of a full batch of 1400-byte packets; no allocation per packet.
func BenchmarkSendBatch(b *testing.B) {
	ca, _ := pairConfigs(esp.AESGCM16, 36)
	d := benchDevice(b, ca)
	sb := newSendBatch(d.tunMTU)
	pkt := ipv4Packet("198.19.1.2", "198.19.2.2", 1400, true)
	for i := range sb.in {
		copy(sb.in[i][tunReadOffset:], pkt)
		sb.sizes[i] = len(pkt)
	}
	b.SetBytes(int64(batchSize * len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		// Sealing is in place: the packets are read from TUN again.
		for i := range sb.in {
			copy(sb.in[i][tunReadOffset:], pkt)
		}
		d.send(sb, batchSize)
	}
}

// BenchmarkReceiveBatch: SAD lookup, open on all cores, replay check and
// selectors, hand-off to TUN, for a full batch of 1400-byte packets.
func BenchmarkReceiveBatch(b *testing.B) {
	ca, cb := pairConfigs(esp.AESGCM16, 36)
	cb.Peers[0].In.ReplayWindow = -1 // the same packets again and again
	sender := benchDevice(b, ca)
	d := benchDevice(b, cb)
	out := sender.sad.Current("b").Out
	rb := newRecvBatch(cb.LocalAddr)
	pkt := ipv4Packet("198.19.1.2", "198.19.2.2", 1400, true)
	sealed := make([][]byte, batchSize)
	for i := range sealed {
		s, err := out.Seal(nil, pkt)
		if err != nil {
			b.Fatal(err)
		}
		sealed[i] = s
		rb.eps[i] = &conn.StdNetEndpoint{AddrPort: netip.MustParseAddrPort("198.18.0.1:4500")}
	}
	b.SetBytes(int64(batchSize * len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for i, s := range sealed {
			rb.sizes[i] = copy(rb.bufs[i], s)
		}
		d.receive(rb, batchSize)
	}
	if n := d.Status().Peers[0].RxPackets; n == 0 {
		b.Fatal("nothing received")
	}
}

// TestDeviceIKEPort: IKE messages share UDP 4500 behind the non-ESP marker
// (RFC 3948 §2.2); the device hands them to the registered handler and
// counts them when there is none.
func TestDeviceIKEPort(t *testing.T) {
	m := newMemPair(t, esp.AESGCM16, 36)
	got := make(chan []byte, 1)
	msg := bytes.Repeat([]byte{0x2a}, 40) // an IKE header is 28 bytes; any non-zero first word
	if err := m.a.SendIKE(msg, netip.MustParseAddrPort("198.18.0.2:1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.b.Status().Drops["ike-no-handler"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("drops %v", m.b.Status().Drops)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.b.SetIKEHandler(func(b []byte, remote netip.AddrPort, local netip.Addr) { got <- b })
	if err := m.a.SendIKE(msg, netip.MustParseAddrPort("198.18.0.2:1")); err != nil {
		t.Fatal(err)
	}
	expectPacket(t, got, msg)
	// A NAT keepalive is swallowed without a drop count.
	if err := m.a.SendKeepalive("b"); err != nil {
		t.Fatal(err)
	}
}

// TestDeviceHardLifetime: once the outbound SA reaches its hard packet
// limit, traffic stops (fail closed) and the drops are counted.
func TestDeviceHardLifetime(t *testing.T) {
	ca, cb := pairConfigs(esp.AESGCM16, 36)
	ca.Peers[0].Out.Lifetime = esp.Lifetime{Hard: esp.Limits{Packets: 3}}
	binds := bindtest.NewChannelBinds()
	tunA, tunB := tuntest.NewChannelTUN(), tuntest.NewChannelTUN()
	a, err := newDevice(ca, Options{}, func(int) (tun.Device, error) { return tunA.TUN(), nil }, binds[0], false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newDevice(cb, Options{}, func(int) (tun.Device, error) { return tunB.TUN(), nil }, binds[1], false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); a.Close(); b.Close() }()
	go a.Run(ctx)
	go b.Run(ctx)
	podA, podB := netip.MustParseAddr("198.19.1.2"), netip.MustParseAddr("198.19.2.2")
	for i := 0; i < 3; i++ {
		p := tuntest.Ping(podB, podA)
		tunA.Outbound <- p
		expectPacket(t, tunB.Inbound, p)
	}
	tunA.Outbound <- tuntest.Ping(podB, podA)
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := a.Status().Peers[0].Drops
		if d["seal-failed"]+d["no-sa"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the 4th packet was not dropped: %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case p := <-tunB.Inbound:
		t.Fatalf("a packet went out past the hard lifetime: %x", p)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestMetrics(t *testing.T) {
	m := newMemPair(t, esp.AESGCM16, 36)
	p := tuntest.Ping(netip.MustParseAddr("198.19.2.2"), netip.MustParseAddr("198.19.1.2"))
	m.tunA.Outbound <- p
	expectPacket(t, m.tunB.Inbound, p)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{m.b})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := ""
			for _, l := range mt.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			found[mf.GetName()+"{"+labels+"}"] = mt.GetCounter().GetValue()
		}
	}
	if v := found["rampart_tunnel_packets_total{direction=in,peer=a,}"]; v != 1 {
		t.Errorf("rampart_tunnel_packets_total in = %v; all: %v", v, found)
	}
	if v := found["rampart_tunnel_sa_packets_total{direction=inbound,peer=a,spi=0x1001,}"]; v != 1 {
		t.Errorf("rampart_tunnel_sa_packets_total inbound = %v; all: %v", v, found)
	}
}
