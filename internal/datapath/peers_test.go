package datapath

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// SetPeers on devices in memory: any number of them on one underlay of
// channels (memNet; bindtest links only two, and hides the sender's
// address, which IKE needs).

// memNet is an underlay in memory: a bind per address, datagrams routed by
// destination address and port, received with the sender's address.
type memNet struct {
	mu    sync.Mutex
	binds map[netip.AddrPort]*memBind
}

type memDatagram struct {
	b    []byte
	from netip.AddrPort
}

type memBind struct {
	net       *memNet
	addr      netip.AddrPort
	rx        chan memDatagram
	done      chan struct{}
	closeOnce sync.Once
}

func newMemNet() *memNet { return &memNet{binds: map[netip.AddrPort]*memBind{}} }

func (n *memNet) bind(addr netip.AddrPort) *memBind {
	b := &memBind{net: n, addr: addr, rx: make(chan memDatagram, 4096), done: make(chan struct{})}
	n.mu.Lock()
	n.binds[addr] = b
	n.mu.Unlock()
	return b
}

func (b *memBind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	recv := func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		select {
		case <-b.done:
			return 0, net.ErrClosed
		case d := <-b.rx:
			sizes[0] = copy(bufs[0], d.b)
			eps[0] = &conn.StdNetEndpoint{AddrPort: d.from}
			return 1, nil
		}
	}
	return []conn.ReceiveFunc{recv}, b.addr.Port(), nil
}

func (b *memBind) Close() error {
	b.closeOnce.Do(func() { close(b.done) })
	return nil
}

func (b *memBind) BatchSize() int       { return 1 }
func (b *memBind) SetMark(uint32) error { return nil }

// Send delivers to the bind at the destination, or drops as UDP would.
func (b *memBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	select {
	case <-b.done:
		return net.ErrClosed
	default:
	}
	b.net.mu.Lock()
	dst := b.net.binds[ep.(*conn.StdNetEndpoint).AddrPort]
	b.net.mu.Unlock()
	if dst == nil {
		return nil
	}
	for _, p := range bufs {
		select {
		case dst.rx <- memDatagram{bytes.Clone(p), b.addr}:
		default:
		}
	}
	return nil
}

func (b *memBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	return &conn.StdNetEndpoint{AddrPort: ap}, err
}

// site is one device of the tests: its underlay address and the subnet
// behind it, whose .2 is the host that pings.
type site struct {
	name   string
	n      byte
	subnet netip.Prefix
}

func newSite(name string, n byte) site {
	return site{name: name, n: n, subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, n, 0}), 24)}
}

func (s site) addr() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, s.n}) }
func (s site) host() netip.Addr { return netip.AddrFrom4([4]byte{198, 19, s.n, 2}) }
func (s site) id() ikecrypto.Identity {
	return ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(s.name + ".example")}
}

// ikePeer is local's peer remote, keyed by IKE with a pre-shared key of
// the pair; a fresh value each call (SetPeers clears the key).
func ikePeer(local, remote site, initiate bool) Peer {
	pair := []string{local.name, remote.name}
	slices.Sort(pair)
	return Peer{Name: remote.name, Endpoint: netip.AddrPortFrom(remote.addr(), DefaultPort), Mode: esp.ModeTunnel,
		LocalSubnets: []netip.Prefix{local.subnet}, RemoteSubnets: []netip.Prefix{remote.subnet},
		IKE: &IKEPeer{LocalID: local.id(), RemoteID: remote.id(), PSK: []byte("psk " + strings.Join(pair, "-")),
			Initiate: initiate, DPDInterval: time.Minute}}
}

// manualPeer is local's peer remote with manual SAs; version changes the
// SPIs and keys (both ends must use the same).
func manualPeer(local, remote site, version byte) Peer {
	sa := func(from, to site) *esp.Config {
		spi := 0x1000 + uint32(version)<<8 + uint32(from.n)<<4 + uint32(to.n)
		return &esp.Config{SPI: spi, Mode: esp.ModeTunnel, Algorithm: esp.AESGCM16,
			Key: bytes.Repeat([]byte{from.n<<4 | to.n, version}, 18)}
	}
	return Peer{Name: remote.name, Endpoint: netip.AddrPortFrom(remote.addr(), DefaultPort), Mode: esp.ModeTunnel,
		LocalSubnets: []netip.Prefix{local.subnet}, RemoteSubnets: []netip.Prefix{remote.subnet},
		Out: sa(local, remote), In: sa(remote, local)}
}

type memDev struct {
	d    *Device
	site site
	tun  *tuntest.ChannelTUN
}

func (n *memNet) device(t *testing.T, s site, peers ...Peer) *memDev {
	t.Helper()
	cfg := &Config{Name: s.name, DeviceName: "fake", LocalAddr: s.addr(), Port: DefaultPort, UnderlayMTU: DefaultUnderlayMTU,
		IKE: IKEOptions{Retransmit: 200 * time.Millisecond, Tries: 5}, Peers: peers}
	m := &memDev{site: s, tun: tuntest.NewChannelTUN()}
	var err error
	m.d, err = newDevice(cfg, Options{}, func(int) (tun.Device, error) { return m.tun.TUN(), nil },
		n.bind(netip.AddrPortFrom(s.addr(), DefaultPort)), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.d.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		m.d.Close()
		<-done
	})
	return m
}

func (m *memDev) peer(name string) (PeerStatus, bool) {
	for _, p := range m.d.Status().Peers {
		if p.Name == name {
			return p, true
		}
	}
	return PeerStatus{}, false
}

// waitKeyed waits until m has an outbound SA for the peer (and, keyed by
// IKE, an established IKE SA).
func (m *memDev) waitKeyed(t *testing.T, peer string) PeerStatus {
	t.Helper()
	var p PeerStatus
	waitCond(t, fmt.Sprintf("%s has SAs with %s", m.site.name, peer), func() bool {
		var ok bool
		p, ok = m.peer(peer)
		out := slices.ContainsFunc(p.SAs, func(s SAStatus) bool { return s.Direction == "outbound" })
		ikeUp := len(p.IKE) == 1 && p.IKE[0].State == "established"
		return ok && out && (ikeUp || len(p.IKE) == 0 && m.d.state.Load().peers[peer].cfg.IKE == nil)
	})
	return p
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends a packet from one site's host to the other's through the
// two devices, both ways.
func ping(t *testing.T, a, b *memDev) {
	t.Helper()
	for _, dir := range [][2]*memDev{{a, b}, {b, a}} {
		p := tuntest.Ping(dir[1].site.host(), dir[0].site.host())
		dir[0].tun.Outbound <- p
		expectPacket(t, dir[1].tun.Inbound, p)
	}
}

func saSPIs(p PeerStatus) []string {
	var out []string
	for _, s := range p.SAs {
		out = append(out, s.Direction+" "+s.SPI)
	}
	slices.Sort(out)
	return out
}

// TestSetPeers: X runs with peers A and B; SetPeers(A, C) leaves A alone
// (its SAs, IKE SA and counters, and a stream of packets through the
// change loses nothing), removes B (SAs gone at both ends when IKE keys
// it, counters gone from Status and metrics, traffic to its subnet
// dropped) and brings C up; then changing A makes new SAs.
func TestSetPeers(t *testing.T) {
	for _, keying := range []string{"ike", "manual"} {
		t.Run(keying, func(t *testing.T) {
			X, A, B, C := newSite("x", 10), newSite("a", 1), newSite("b", 2), newSite("c", 3)
			peer := func(local, remote site, initiate bool) Peer {
				if keying == "ike" {
					return ikePeer(local, remote, initiate)
				}
				return manualPeer(local, remote, 0)
			}
			n := newMemNet()
			x := n.device(t, X, peer(X, A, true), peer(X, B, true))
			a := n.device(t, A, peer(A, X, false))
			b := n.device(t, B, peer(B, X, false))
			c := n.device(t, C, peer(C, X, false))
			x.waitKeyed(t, "a")
			x.waitKeyed(t, "b")
			ping(t, x, a)
			ping(t, x, b)
			beforeA := x.waitKeyed(t, "a")
			stateA := x.d.state.Load().peers["a"]

			// A stream from X to A while the peers change.
			const stream = 300
			got := make(chan int)
			go func() {
				n := 0
				for n < stream {
					select {
					case <-a.tun.Inbound:
						n++
					case <-time.After(5 * time.Second):
						got <- n
						return
					}
				}
				got <- n
			}()
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := 0; i < stream; i++ {
					x.tun.Outbound <- tuntest.Ping(A.host(), X.host())
					if i%20 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			list := []Peer{peer(X, A, true), peer(X, C, true)}
			if err := x.d.SetPeers(list); err != nil {
				t.Fatal(err)
			}
			<-sent
			if n := <-got; n != stream {
				t.Errorf("A received %d of the %d packets sent through the change", n, stream)
			}
			for _, p := range list {
				if k := p.IKE; k != nil && !bytes.Equal(k.PSK, make([]byte, len(k.PSK))) {
					t.Errorf("peer %s: the pre-shared key given to SetPeers was not cleared", p.Name)
				}
				if p.In != nil && !bytes.Equal(p.In.Key, make([]byte, len(p.In.Key))) {
					t.Errorf("peer %s: the manual key given to SetPeers was not cleared", p.Name)
				}
			}

			// A: untouched.
			afterA, _ := x.peer("a")
			if !slices.Equal(saSPIs(afterA), saSPIs(beforeA)) {
				t.Errorf("A's SAs changed: %v, were %v", saSPIs(afterA), saSPIs(beforeA))
			}
			if len(beforeA.IKE) > 0 && (len(afterA.IKE) != 1 || afterA.IKE[0].SPIi != beforeA.IKE[0].SPIi) {
				t.Errorf("A's IKE SA changed: %+v, was %+v", afterA.IKE, beforeA.IKE)
			}
			if afterA.TxPackets < beforeA.TxPackets+stream || afterA.RxPackets != beforeA.RxPackets {
				t.Errorf("A's counters: tx %d rx %d, were tx %d rx %d (+%d sent)", afterA.TxPackets, afterA.RxPackets, beforeA.TxPackets, beforeA.RxPackets, stream)
			}
			if x.d.state.Load().peers["a"] != stateA {
				t.Error("A's peer state was replaced")
			}
			ping(t, x, a)

			// B: gone.
			if names := peerNames(x.d.Status()); !slices.Equal(names, []string{"a", "c"}) {
				t.Errorf("X's peers after SetPeers(a, c): %v", names)
			}
			for _, e := range x.d.sad.Entries() {
				if e.Pair.Peer == "b" {
					t.Errorf("B's SA %#x is still in X's SA database", e.In.SPI())
				}
			}
			if m := metricsOf(t, x.d); strings.Contains(m, `peer="b"`) {
				t.Errorf("B is still in the metrics:\n%s", m)
			}
			if keying == "ike" {
				waitCond(t, "B drops its SAs on X's DELETE", func() bool {
					p, _ := b.peer("x")
					return len(p.SAs) == 0 && len(p.IKE) == 0
				})
			}
			noPolicy := x.d.Status().Drops["no-policy"]
			x.tun.Outbound <- tuntest.Ping(B.host(), X.host())
			waitCond(t, "X drops a packet to B's subnet", func() bool { return x.d.Status().Drops["no-policy"] == noPolicy+1 })
			if keying == "manual" {
				// B still has its SAs: what it sends, X no longer opens.
				unknown := x.d.Status().Drops["unknown-spi"]
				b.tun.Outbound <- tuntest.Ping(X.host(), B.host())
				waitCond(t, "X drops B's ESP", func() bool { return x.d.Status().Drops["unknown-spi"] == unknown+1 })
			}
			select {
			case p := <-b.tun.Inbound:
				t.Fatalf("B received a packet from X after its removal: %x", p)
			case p := <-x.tun.Inbound:
				t.Fatalf("X delivered a packet after B's removal: %x", p)
			case <-time.After(100 * time.Millisecond):
			}

			// C: up.
			x.waitKeyed(t, "c")
			ping(t, x, c)

			// A changed: removed and added again, with new SAs.
			changed := peer(X, A, true)
			if keying == "ike" {
				changed.IKE.ChildRekeyTime = time.Hour
			} else {
				changed = manualPeer(X, A, 1)
				if err := a.d.SetPeers([]Peer{manualPeer(A, X, 1)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.d.SetPeers([]Peer{changed, peer(X, C, true)}); err != nil {
				t.Fatal(err)
			}
			renewed := x.waitKeyed(t, "a")
			if slices.Equal(saSPIs(renewed), saSPIs(beforeA)) {
				t.Errorf("a changed peer kept its SAs %v", saSPIs(renewed))
			}
			if len(beforeA.IKE) > 0 && renewed.IKE[0].SPIi == beforeA.IKE[0].SPIi {
				t.Error("a changed peer kept its IKE SA")
			}
			if renewed.TxPackets != 0 {
				t.Errorf("a changed peer kept its counters: tx %d", renewed.TxPackets)
			}
			ping(t, x, a)
			ping(t, x, c)
		})
	}
}

func peerNames(st Status) []string {
	var out []string
	for _, p := range st.Peers {
		out = append(out, p.Name)
	}
	return out
}

func metricsOf(t *testing.T, d *Device) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			fmt.Fprintf(&b, "%s", mf.GetName())
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&b, " %s=%q", l.GetName(), l.GetValue())
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// TestSetPeersInvalid: a list with an invalid peer is refused with the
// peer and the field named, and changes nothing: not the routing, not the
// SAs, not the peer that the list leaves out.
func TestSetPeersInvalid(t *testing.T) {
	X, A, B, C := newSite("x", 10), newSite("a", 1), newSite("b", 2), newSite("c", 3)
	n := newMemNet()
	x := n.device(t, X, manualPeer(X, A, 0), ikePeer(X, B, false))
	certs, key, cas := testCert(t, "c.example")
	_, otherKey, _ := testCert(t, "c.example")
	for _, c := range []struct {
		name   string
		change func(p *Peer) // of a valid new peer C
		want   string
	}{
		{"no name", func(p *Peer) { p.Name = "" }, "Peers[1]: Name: a name is required"},
		{"declared twice", func(p *Peer) { p.Name = "a" }, `peer "a" (Peers[1]): Name: declared twice (first at Peers[0])`},
		{"no endpoint", func(p *Peer) { p.Endpoint = netip.AddrPort{} }, `peer "c" (Peers[1]): Endpoint:`},
		{"endpoint of the other family", func(p *Peer) { p.Endpoint = netip.MustParseAddrPort("[fd00::3]:4500") }, "Endpoint: fd00::3 and the local address"},
		{"bad mode", func(p *Peer) { p.Mode = 9 }, "Mode:"},
		{"no remote subnets", func(p *Peer) { p.RemoteSubnets = nil }, "RemoteSubnets: no prefix"},
		{"host bits", func(p *Peer) { p.RemoteSubnets = []netip.Prefix{netip.MustParsePrefix("198.19.3.1/24")} }, "RemoteSubnets[0]: 198.19.3.1/24 has host bits set"},
		{"path MTU", func(p *Peer) { p.MTU = 600 }, "MTU: 600 is out of range"},
		{"unkeyed", func(p *Peer) { p.IKE = nil }, "IKE: a peer is keyed by IKE (IKE) or by hand"},
		{"both keyings", func(p *Peer) { q := manualPeer(X, C, 0); p.In, p.Out = q.In, q.Out }, "IKE: give either manual SAs"},
		{"inbound SA only", func(p *Peer) { q := manualPeer(X, C, 0); p.IKE, p.In = nil, q.In }, "Out: manual keys need the outbound SA too"},
		{"short key", func(p *Peer) { *p = manualPeer(X, C, 0); p.In.Key = p.In.Key[:10] }, "In: esp: config"},
		{"SA in another mode", func(p *Peer) { *p = manualPeer(X, C, 0); p.Out.Mode = esp.ModeTransport }, "Out.Mode: transport, but the peer is in tunnel mode"},
		{"SPI of a peer that stays", func(p *Peer) { *p = manualPeer(X, C, 0); p.In.SPI = 0x1000 + 1<<4 + 10 }, `peer "c" (Peers[1]): In.SPI: 0x101a is in use by peer "a"`},
		{"no identity", func(p *Peer) { p.IKE.RemoteID = ikecrypto.Identity{} }, "IKE.RemoteID: an identity is required"},
		{"no pre-shared key", func(p *Peer) { p.IKE.PSK = nil }, "IKE.PSK: a pre-shared key, or certificates"},
		{"key and certificates", func(p *Peer) { p.IKE.Certs, p.IKE.Key, p.IKE.CAs = certs, key, cas }, "IKE.PSK: give a pre-shared key or certificates, not both"},
		{"key of another certificate", func(p *Peer) { p.IKE.PSK, p.IKE.Certs, p.IKE.Key, p.IKE.CAs = nil, certs, otherKey, cas }, "IKE.Key: not the key of Certs[0]"},
		{"no CA", func(p *Peer) { p.IKE.PSK, p.IKE.Certs, p.IKE.Key = nil, certs, key }, "IKE.CAs: certificate authentication needs the CAs"},
		{"replay window", func(p *Peer) { p.IKE.ReplayWindow = 100 }, "IKE.ReplayWindow: 100 is not a multiple of 64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, st := x.d.state.Load(), x.d.Status()
			entries := saSPIsOf(x.d)
			newC := ikePeer(X, C, true)
			c.change(&newC)
			list := []Peer{manualPeer(X, A, 0), newC} // B left out
			err := x.d.SetPeers(list)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing changed") {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if x.d.state.Load() != before {
				t.Error("the routing was replaced")
			}
			if got := saSPIsOf(x.d); !slices.Equal(got, entries) {
				t.Errorf("SAs %v, were %v", got, entries)
			}
			if got := peerNames(x.d.Status()); !slices.Equal(got, peerNames(st)) {
				t.Errorf("peers %v, were %v", got, peerNames(st))
			}
			if k := list[1].IKE; k != nil && !bytes.Equal(k.PSK, make([]byte, len(k.PSK))) {
				t.Error("a refused list's pre-shared key was not cleared")
			}
			if key := list[0].In.Key; !bytes.Equal(key, make([]byte, len(key))) {
				t.Error("a refused list's manual key was not cleared")
			}
		})
	}
	// Still as it was: A's SAs work with a device that has X.
	a := n.device(t, A, manualPeer(A, X, 0))
	ping(t, x, a)
}

func saSPIsOf(d *Device) []string {
	var out []string
	for _, e := range d.sad.Entries() {
		out = append(out, fmt.Sprintf("%s %#x", e.Pair.Peer, e.In.SPI()))
	}
	slices.Sort(out)
	return out
}

// TestSetPeersClosed: after Close, SetPeers and SetCertificates refuse.
func TestSetPeersClosed(t *testing.T) {
	X, A := newSite("x", 10), newSite("a", 1)
	x := newMemNet().device(t, X, ikePeer(X, A, false))
	x.d.Close()
	if err := x.d.SetPeers([]Peer{ikePeer(X, A, false)}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("SetPeers after Close: %v", err)
	}
	certs, key, cas := testCert(t, "x.example")
	if err := x.d.SetCertificates("a", certs, key, cas); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("SetCertificates after Close: %v", err)
	}
}

// TestSetPeersConcurrent: SetPeers from several goroutines while the
// device runs and Status is read (run with -race); the last list wins.
func TestSetPeersConcurrent(t *testing.T) {
	X, A, B, C := newSite("x", 10), newSite("a", 1), newSite("b", 2), newSite("c", 3)
	n := newMemNet()
	x := n.device(t, X, manualPeer(X, A, 0))
	a := n.device(t, A, manualPeer(A, X, 0))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				list := []Peer{manualPeer(X, A, 0), manualPeer(X, B, 0)}
				if (i+j)%2 == 0 {
					list[1] = manualPeer(X, C, 0)
				}
				if err := x.d.SetPeers(list); err != nil {
					t.Error(err)
					return
				}
				x.d.Status()
			}
		}()
	}
	wg.Wait()
	if err := x.d.SetPeers([]Peer{manualPeer(X, A, 0), manualPeer(X, C, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := saSPIsOf(x.d); len(got) != 2 || !strings.HasPrefix(got[0], "a ") || !strings.HasPrefix(got[1], "c ") {
		t.Errorf("SAs after the last SetPeers: %v", got)
	}
	ping(t, x, a)
}

// testCert is a self-signed certificate for name (its own CA) and its key.
func testCert(t *testing.T, name string) ([]*x509.Certificate, crypto.Signer, []*x509.Certificate) {
	t.Helper()
	ca, caKey := newTestCA(t)
	return issueCert(t, ca, caKey, name)
}

func newTestCA(t *testing.T) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Rampart test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func issueCert(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, name string) ([]*x509.Certificate, crypto.Signer, []*x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{c}, key, []*x509.Certificate{ca}
}

// TestDeviceSetCertificates: a certificate peer's credentials are renewed
// under a running IKE SA, which stays; a SetPeers that then gives the
// renewed credentials leaves the peer alone, one with the old credentials
// is a change (a new IKE SA). A peer keyed by hand, or none, is refused.
func TestDeviceSetCertificates(t *testing.T) {
	X, A, B := newSite("x", 10), newSite("a", 1), newSite("b", 2)
	ca, caKey := newTestCA(t)
	certX, keyX, cas := issueCert(t, ca, caKey, "x.example")
	certX2, keyX2, _ := issueCert(t, ca, caKey, "x.example")
	certA, keyA, _ := issueCert(t, ca, caKey, "a.example")
	withCert := func(p Peer, certs []*x509.Certificate, key crypto.Signer) Peer {
		p.IKE.PSK, p.IKE.Certs, p.IKE.Key, p.IKE.CAs = nil, certs, key, cas
		return p
	}
	n := newMemNet()
	x := n.device(t, X, withCert(ikePeer(X, A, true), certX, keyX), manualPeer(X, B, 0))
	a := n.device(t, A, withCert(ikePeer(A, X, false), certA, keyA))
	first := x.waitKeyed(t, "a")
	ping(t, x, a)

	for _, c := range []struct {
		peer string
		key  crypto.Signer
		want string
	}{
		{"b", keyX2, `peer "b" is keyed by hand`},
		{"nobody", keyX2, `no peer "nobody"`},
		{"a", keyX, "is not the one of the certificate"},
	} {
		if err := x.d.SetCertificates(c.peer, certX2, c.key, cas); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SetCertificates(%s): %v, want %q", c.peer, err, c.want)
		}
	}
	if err := x.d.SetCertificates("a", certX2, keyX2, cas); err != nil {
		t.Fatal(err)
	}
	state := x.d.state.Load().peers["a"]
	if p, _ := x.peer("a"); len(p.IKE) != 1 || p.IKE[0].SPIi != first.IKE[0].SPIi {
		t.Fatalf("the IKE SA changed with the certificate: %+v", p.IKE)
	}
	// The renewed credentials are the running ones: nothing to do.
	if err := x.d.SetPeers([]Peer{withCert(ikePeer(X, A, true), certX2, keyX2), manualPeer(X, B, 0)}); err != nil {
		t.Fatal(err)
	}
	if x.d.state.Load().peers["a"] != state {
		t.Error("SetPeers with the renewed certificate replaced the peer")
	}
	// The old ones are not: a new IKE SA, authenticated with them.
	if err := x.d.SetPeers([]Peer{withCert(ikePeer(X, A, true), certX, keyX), manualPeer(X, B, 0)}); err != nil {
		t.Fatal(err)
	}
	p := x.waitKeyed(t, "a")
	if p.IKE[0].SPIi == first.IKE[0].SPIi {
		t.Error("SetPeers with other credentials kept the IKE SA")
	}
	ping(t, x, a)
}

// TestPeerDigest: whatever matters about a peer changes its digest,
// credentials included; a fresh copy of the same peer does not.
func TestPeerDigest(t *testing.T) {
	X, A := newSite("x", 10), newSite("a", 1)
	d := &Device{digestKey: []byte("a key of the test")}
	ca, caKey := newTestCA(t)
	certs, key, cas := issueCert(t, ca, caKey, "x.example")
	certs2, key2, _ := issueCert(t, ca, caKey, "x.example")
	ca2, _ := newTestCA(t)
	props, err := ikecrypto.ParseESPProposals("aes128gcm16")
	if err != nil {
		t.Fatal(err)
	}
	digest := func(p Peer) [32]byte {
		t.Helper()
		dg, err := d.peerDigest(&p)
		if err != nil {
			t.Fatal(err)
		}
		return dg
	}
	certPeer := func() Peer {
		p := ikePeer(X, A, true)
		p.IKE.PSK, p.IKE.Certs, p.IKE.Key, p.IKE.CAs = nil, certs, key, cas
		return p
	}
	for _, c := range []struct {
		name   string
		base   func() Peer
		change func(p *Peer)
	}{
		{"psk", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.IKE.PSK[0] ^= 1 }},
		{"endpoint port", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.Endpoint = netip.AddrPortFrom(p.Endpoint.Addr(), 4501) }},
		{"remote subnets", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.RemoteSubnets = append(p.RemoteSubnets, netip.MustParsePrefix("198.18.0.1/32")) }},
		{"path MTU", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.MTU = 1400 }},
		{"remote identity", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.IKE.RemoteID.Data = []byte("b.example") }},
		{"ESP proposals", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.IKE.ESPProposals = props }},
		{"initiate", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.IKE.Initiate = false }},
		{"strict selectors", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.IKE.StrictTS = true }},
		{"DPD", func() Peer { return ikePeer(X, A, true) }, func(p *Peer) { p.IKE.DPDInterval = time.Second }},
		{"certificate", certPeer, func(p *Peer) { p.IKE.Certs = certs2 }},
		{"key", certPeer, func(p *Peer) { p.IKE.Key = key2 }},
		{"CAs", certPeer, func(p *Peer) { p.IKE.CAs = []*x509.Certificate{ca2} }},
		{"manual key", func() Peer { return manualPeer(X, A, 0) }, func(p *Peer) { p.Out.Key[0] ^= 1 }},
		{"manual SPI", func() Peer { return manualPeer(X, A, 0) }, func(p *Peer) { p.In.SPI++ }},
		{"manual lifetime", func() Peer { return manualPeer(X, A, 0) }, func(p *Peer) { p.Out.Lifetime.Hard.Packets = 1 << 30 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := digest(c.base())
			if digest(c.base()) != base {
				t.Fatal("two copies of one peer differ")
			}
			p := c.base()
			c.change(&p)
			if digest(p) == base {
				t.Error("the change does not change the digest")
			}
		})
	}
}
