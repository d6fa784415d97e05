package ike

import (
	"bytes"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// Two daemons talking through memory (the datapath's UDP 4500 is tested
// in internal/datapath): IKE_SA_INIT and IKE_AUTH with a pre-shared key,
// then the installed CHILD_SAs are checked by sealing with one side's
// outbound SA and opening with the other side's inbound SA.

type node struct {
	d      *Daemon
	table  *esp.Table
	addr   netip.AddrPort
	result chan error
}

type net2 struct {
	mu    sync.Mutex
	nodes map[netip.AddrPort]*node
	drop  func(b []byte) bool // drop a message in flight (retransmission tests)
	// tap sees every message, also those to addresses without a node,
	// and drops it if it returns true.
	tap func(b []byte, from, to netip.AddrPort) bool
}

func (n *net2) sender(from netip.AddrPort) Sender {
	return func(msg []byte, to netip.AddrPort) error {
		n.mu.Lock()
		dst, drop, tap := n.nodes[to], n.drop, n.tap
		n.mu.Unlock()
		if tap != nil && tap(msg, from, to) {
			return nil
		}
		if dst == nil || (drop != nil && drop(msg)) {
			return nil
		}
		b := bytes.Clone(msg)
		go dst.d.Handle(b, from)
		return nil
	}
}

func ident(s string) ikecrypto.Identity {
	id, err := ikecrypto.ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return id
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func mustProposals(t testing.TB, ike, espProps string) ([]ikecrypto.Proposal, []ikecrypto.Proposal) {
	t.Helper()
	var a, b []ikecrypto.Proposal
	var err error
	if ike != "" {
		if a, err = ikecrypto.ParseIKEProposals(ike); err != nil {
			t.Fatal(err)
		}
	}
	if espProps != "" {
		if b, err = ikecrypto.ParseESPProposals(espProps); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

type side struct {
	psk          string
	ike, esp     string
	localTS      []netip.Prefix
	remoteTS     []netip.Prefix
	remoteIDName string
}

func newPair(t *testing.T, a, b side) (*node, *node, *net2) {
	t.Helper()
	return newPairWith(t, a, b, nil, esp.TableOptions{})
}

// newPairWith is newPair with a change to both configs and table options.
func newPairWith(t testing.TB, a, b side, change func(*Config), topts esp.TableOptions) (*node, *node, *net2) {
	t.Helper()
	return newPairOpts(t, a, b, change, topts, nil)
}

// newPairOpts is newPairWith with a change to each daemon's options
// (called with "a" or "b").
func newPairOpts(t testing.TB, a, b side, change func(*Config), topts esp.TableOptions, opts func(which string, o *Options)) (*node, *node, *net2) {
	t.Helper()
	n := &net2{nodes: map[netip.AddrPort]*node{}}
	addrA, addrB := netip.MustParseAddrPort("198.18.0.1:4500"), netip.MustParseAddrPort("198.18.0.2:4500")
	mk := func(self, peer netip.AddrPort, s side, name, peerName string) *node {
		nd := &node{table: esp.NewTable(topts), addr: self, result: make(chan error, 4)}
		o := Options{Retransmit: 100 * time.Millisecond, Tries: 4,
			OnEstablished: func(peer string, err error) { nd.result <- err }}
		if opts != nil {
			opts(name[:1], &o)
		}
		nd.d = New(nd.table, n.sender(self), o)
		ikeP, espP := mustProposals(t, s.ike, s.esp)
		remoteID := s.remoteIDName
		if remoteID == "" {
			remoteID = peerName
		}
		cfg := Config{Name: "peer", Remote: peer, LocalID: ident(name), RemoteID: ident(remoteID),
			PSK: []byte(s.psk), IKEProposals: ikeP, ESPProposals: espP, LocalTS: s.localTS, RemoteTS: s.remoteTS}
		if change != nil {
			change(&cfg)
		}
		if err := nd.d.AddPeer(cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.table.Close)
		return nd
	}
	na := mk(addrA, addrB, a, "a.example", "b.example")
	nb := mk(addrB, addrA, b, "b.example", "a.example")
	n.nodes[addrA], n.nodes[addrB] = na, nb
	return na, nb, n
}

func wait(t *testing.T, nd *node) error {
	t.Helper()
	select {
	case err := <-nd.result:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no result in 10 s")
		return nil
	}
}

// checkChildren seals with each side's outbound SA and opens with the
// other side's inbound SA.
func checkChildren(t *testing.T, a, b *node) {
	t.Helper()
	ea, eb := a.table.Current("peer"), b.table.Current("peer")
	if ea == nil || eb == nil || ea.Out == nil || eb.In == nil {
		t.Fatalf("no CHILD_SA installed: %v %v", ea, eb)
	}
	if ea.Out.SPI() != eb.In.SPI() || eb.Out.SPI() != ea.In.SPI() {
		t.Fatalf("SPIs do not pair: A out %#x in %#x, B out %#x in %#x", ea.Out.SPI(), ea.In.SPI(), eb.Out.SPI(), eb.In.SPI())
	}
	pkt := make([]byte, 60)
	pkt[0] = 0x45
	pkt[3] = 60
	copy(pkt[12:], []byte{198, 19, 1, 2, 198, 19, 2, 2})
	for _, dir := range []struct{ out, in *esp.SA }{{ea.Out, eb.In}, {eb.Out, ea.In}} {
		sealed, err := dir.out.Seal(nil, pkt)
		if err != nil {
			t.Fatal(err)
		}
		got, seq, err := dir.in.Open(nil, sealed, netip.Addr{}, netip.Addr{})
		if err != nil || !bytes.Equal(got, pkt) {
			t.Fatalf("a packet sealed by one side does not open on the other: %v", err)
		}
		if err := dir.in.Accept(seq, len(got)); err != nil {
			t.Fatal(err)
		}
	}
}

// establish has a initiate and checks that both sides end with paired
// CHILD_SAs.
func establish(t *testing.T, na, nb *node) {
	t.Helper()
	if err := na.d.Initiate("peer"); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, na); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, nb); err != nil {
		t.Fatal(err)
	}
	checkChildren(t, na, nb)
}

func TestPSKTunnel(t *testing.T) {
	for _, c := range []struct{ ike, esp string }{
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16"},
		{"aes128-sha256-prfsha256-ecp256", "aes128-sha256"},
		{"chacha20poly1305-prfsha512-ecp384", "chacha20poly1305"},
	} {
		t.Run(c.ike, func(t *testing.T) {
			a := side{psk: "a shared secret", ike: c.ike, esp: c.esp, localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
			b := side{psk: "a shared secret", ike: c.ike, esp: c.esp, localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
			na, nb, _ := newPair(t, a, b)
			establish(t, na, nb)
		})
	}
}

// TestInvalidKE: the responder wants another group; the initiator starts
// again with it (RFC 7296 §1.2).
func TestInvalidKE(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519-ecp256", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-ecp256", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, _ := newPair(t, a, b)
	establish(t, na, nb)
}

// TestRetransmission: the first two messages of each exchange are lost.
func TestRetransmission(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, n := newPair(t, a, b)
	var mu sync.Mutex
	seen := 0
	n.drop = func([]byte) bool {
		mu.Lock()
		defer mu.Unlock()
		seen++
		return seen == 1 || seen == 4 // the first request and the first IKE_AUTH response
	}
	establish(t, na, nb)
}

func TestFailures(t *testing.T) {
	good := func(local, remote string) side {
		return side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx(local), remoteTS: pfx(remote)}
	}
	cases := []struct {
		name      string
		a, b      side
		initiator string // in the initiator's error
		responder string // in the responder's error, "" if it never gets as far
	}{
		{"wrong psk", good("198.19.1.0/24", "198.19.2.0/24"), func() side { s := good("198.19.2.0/24", "198.19.1.0/24"); s.psk = "other"; return s }(),
			"AUTHENTICATION_FAILED", "authentication failed"},
		{"wrong identity", good("198.19.1.0/24", "198.19.2.0/24"), func() side { s := good("198.19.2.0/24", "198.19.1.0/24"); s.remoteIDName = "c.example"; return s }(),
			"AUTHENTICATION_FAILED", "expected c.example"},
		{"no common IKE proposal", good("198.19.1.0/24", "198.19.2.0/24"), func() side {
			s := good("198.19.2.0/24", "198.19.1.0/24")
			s.ike = "aes128-sha256-prfsha256-ecp256"
			return s
		}(),
			"NO_PROPOSAL_CHOSEN", ""},
		{"no common ESP proposal", good("198.19.1.0/24", "198.19.2.0/24"), func() side { s := good("198.19.2.0/24", "198.19.1.0/24"); s.esp = "aes128-sha256"; return s }(),
			"NO_PROPOSAL_CHOSEN", "NO_PROPOSAL_CHOSEN"},
		{"selectors not allowed", good("198.19.1.0/24", "198.19.2.0/24"), good("198.19.2.0/24", "198.19.9.0/24"),
			"TS_UNACCEPTABLE", "TS_UNACCEPTABLE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			na, nb, _ := newPair(t, c.a, c.b)
			if err := na.d.Initiate("peer"); err != nil {
				t.Fatal(err)
			}
			if err := wait(t, na); err == nil || !strings.Contains(err.Error(), c.initiator) {
				t.Errorf("initiator: %v, want an error with %q", err, c.initiator)
			}
			if c.responder != "" {
				if err := wait(t, nb); err == nil || !strings.Contains(err.Error(), c.responder) {
					t.Errorf("responder: %v, want an error with %q", err, c.responder)
				}
			}
			if e := na.table.Current("peer"); e != nil {
				t.Errorf("initiator installed a CHILD_SA: %v", e)
			}
			if e := nb.table.Current("peer"); e != nil {
				t.Errorf("responder installed a CHILD_SA: %v", e)
			}
		})
	}
}

// TestChildRekey: the CHILD_SA reaches its soft lifetime on the initiator,
// which rekeys it (CREATE_CHILD_SA with REKEY_SA), installs the new pair
// make-before-break and deletes the old one; both sides end with one
// fresh, paired CHILD_SA.
func TestChildRekey(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16-x25519", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16-x25519", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	na, nb, _ := newPairWith(t, a, b, func(c *Config) { c.ChildRekeyTime = time.Hour }, esp.TableOptions{Now: clock})
	establish(t, na, nb)
	old := na.table.Current("peer").In.SPI()

	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	na.table.Tick(clock())
	select {
	case ev := <-na.table.Events():
		if ev.Kind != esp.EventSoftExpire {
			t.Fatalf("event %v, want a soft expiry", ev)
		}
		na.d.Lifetime(ev)
	case <-time.After(5 * time.Second):
		t.Fatal("no soft lifetime event")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ea, eb := na.table.Entries(), nb.table.Entries()
		if len(ea) == 1 && len(eb) == 1 && ea[0].In.SPI() != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rekey: A has %d pairs, B %d (old inbound %#x)", len(ea), len(eb), old)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkChildren(t, na, nb)
}

// TestDeadPeerDetection: the peer goes silent; the liveness checks go
// unanswered, and the IKE SA and its CHILD_SAs are removed, so traffic to
// the peer is dropped rather than sent on stale SAs.
func TestDeadPeerDetection(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, n := newPairWith(t, a, b, func(c *Config) { c.DPDInterval = 50 * time.Millisecond }, esp.TableOptions{})
	establish(t, na, nb)

	// While B answers, checks keep the SA up.
	for i := 0; i < 5; i++ {
		time.Sleep(60 * time.Millisecond)
		na.d.Tick(time.Now())
	}
	if na.table.Current("peer") == nil {
		t.Fatal("the SA went away while the peer answered")
	}
	n.mu.Lock()
	n.drop = func([]byte) bool { return true }
	n.mu.Unlock()
	time.Sleep(60 * time.Millisecond)
	na.d.Tick(time.Now())
	if err := wait(t, na); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("initiator: %v, want no answer", err)
	}
	if e := na.table.Current("peer"); e != nil {
		t.Errorf("the CHILD_SA of a dead peer is still installed: %v", e)
	}
}

// TestReinitiate: a peer that initiates again (restarted, INITIAL_CONTACT)
// gets a new IKE SA and CHILD_SA on both ends; the old ones are removed.
func TestReinitiate(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, _ := newPair(t, a, b)
	establish(t, na, nb)
	first := na.table.Current("peer").In.SPI()
	establish(t, na, nb)
	if na.table.Current("peer").In.SPI() == first {
		t.Error("the second IKE SA did not install a new CHILD_SA")
	}
	if n, m := len(na.d.Status()), len(nb.d.Status()); n != 1 || m != 1 {
		t.Errorf("IKE SAs after re-initiating: %d and %d, want 1 and 1", n, m)
	}
}

// TestIKERekey: the initiator rekeys the IKE SA (CREATE_CHILD_SA with an
// IKE proposal); both ends move the CHILD_SA to the new IKE SA and delete
// the old one, and the new IKE SA works (a liveness check is answered).
func TestIKERekey(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, _ := newPairWith(t, a, b, func(c *Config) { c.RekeyTime = time.Hour }, esp.TableOptions{})
	establish(t, na, nb)
	before := na.d.Status()[0].SPIi
	na.d.Tick(time.Now().Add(time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for {
		sa, sb := na.d.Status(), nb.d.Status()
		if len(sa) == 1 && len(sb) == 1 && sa[0].SPIi != before && sb[0].SPIi == sa[0].SPIi && sa[0].ChildSAs == 1 && sb[0].ChildSAs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the IKE SA rekey: A %+v, B %+v", sa, sb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkChildren(t, na, nb)
	// The new IKE SA carries requests: a CHILD_SA rekey over it.
	e := na.table.Current("peer")
	na.d.Lifetime(esp.Event{Kind: esp.EventSoftExpire, Peer: "peer", InSPI: e.In.SPI(), OutSPI: e.Out.SPI()})
	deadline = time.Now().Add(5 * time.Second)
	for {
		ea := na.table.Entries()
		if len(ea) == 1 && ea[0].In.SPI() != e.In.SPI() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CHILD_SA rekey over the new IKE SA: %d pairs", len(ea))
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkChildren(t, na, nb)
}

// TestResponderSelectsByIdentity: a responder with several peers that may
// answer one address (one at that address, one at any address) picks the
// one whose identity the initiator proves in IKE_AUTH, with that peer's
// key and selectors; a wrong key for the claimed identity still fails.
func TestResponderSelectsByIdentity(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, _ := newPair(t, a, b)
	road := Config{Name: "road", Remote: netip.MustParseAddrPort("0.0.0.0:0"), LocalID: ident("b.example"), RemoteID: ident("c.example"),
		PSK: []byte("road secret"), LocalTS: pfx("198.19.2.0/24"), RemoteTS: pfx("198.19.3.0/24")}
	if err := nb.d.AddPeer(road); err != nil {
		t.Fatal(err)
	}
	if err := nb.d.Initiate("road"); err == nil {
		t.Error("Initiate to a peer without an address succeeded")
	}
	for _, c := range []struct {
		name, psk string
		fail      bool
	}{{"right key", "road secret", false}, {"wrong key", "k", true}} {
		t.Run(c.name, func(t *testing.T) {
			name := "as-c-" + strings.ReplaceAll(c.name, " ", "-")
			if err := na.d.AddPeer(Config{Name: name, Remote: nb.addr, LocalID: ident("c.example"), RemoteID: ident("b.example"),
				PSK: []byte(c.psk), LocalTS: pfx("198.19.3.0/24"), RemoteTS: pfx("198.19.2.0/24")}); err != nil {
				t.Fatal(err)
			}
			if err := na.d.Initiate(name); err != nil {
				t.Fatal(err)
			}
			errA, errB := wait(t, na), wait(t, nb)
			if c.fail {
				if errA == nil || errB == nil || !strings.Contains(errB.Error(), "road") {
					t.Fatalf("claiming c.example with the wrong key: %v / %v", errA, errB)
				}
				return
			}
			if errA != nil || errB != nil {
				t.Fatalf("%v / %v", errA, errB)
			}
			e := nb.table.Current("road")
			if e == nil || e.RemoteTS[0] != pfx("198.19.3.0/24")[0] {
				t.Fatalf("the responder did not install the CHILD_SA under the peer it selected: %+v", e)
			}
			if nb.table.Current("peer") != nil {
				t.Error("the peer at the address got the CHILD_SA")
			}
		})
	}
}

// TestKeep: a peer with Keep is initiated by Tick when there is no IKE SA,
// again after a failure (with a growing pause), and again after the peer
// deleted the IKE SA.
func TestKeep(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, n := newPairOpts(t, a, b, func(c *Config) { c.Keep = true }, esp.TableOptions{}, func(which string, o *Options) {
		o.Tries = 1
	})
	// B is unreachable at first: the attempt fails after its one try.
	var mu sync.Mutex
	down := true
	n.drop = func([]byte) bool { mu.Lock(); defer mu.Unlock(); return down }
	now := time.Now()
	na.d.Tick(now)
	if err := wait(t, na); err == nil {
		t.Fatal("established with an unreachable peer")
	}
	na.d.Tick(now.Add(500 * time.Millisecond)) // within the pause: no new attempt
	if st := na.d.Status(); len(st) != 0 {
		t.Fatalf("initiated again within the pause: %+v", st)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	na.d.Tick(now.Add(2 * time.Second))
	if err := wait(t, na); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, nb); err != nil {
		t.Fatal(err)
	}
	checkChildren(t, na, nb)
	// B ends the IKE SA (DELETE); A's next Tick makes a new one.
	nb.d.Close(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for len(na.d.Status()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("A kept the IKE SA B deleted: %+v", na.d.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := nb.d.AddPeer(Config{Name: "peer", Remote: na.addr, LocalID: ident("b.example"), RemoteID: ident("a.example"),
		PSK: []byte("k"), LocalTS: b.localTS, RemoteTS: b.remoteTS}); err != nil {
		t.Fatal(err)
	}
	na.d.Tick(now.Add(time.Minute))
	if err := wait(t, na); err != nil {
		t.Fatal(err)
	}
	if st := na.d.Status(); len(st) != 1 || st[0].State != "established" {
		t.Fatalf("after B's DELETE: %+v", st)
	}
}

// TestStrictTS: with StrictTS a responder refuses a CHILD_SA whose
// selectors are not exactly the configured ones, even where narrowing
// would have left something (a node claiming a pod CIDR not its own),
// and accepts the exact ones.
func TestStrictTS(t *testing.T) {
	for _, c := range []struct {
		name          string
		local, remote []netip.Prefix // A's selectors (the initiator)
		wantErr       string
	}{
		{"exact", pfx("198.19.1.0/24", "198.18.0.1/32"), pfx("198.19.2.0/24", "198.18.0.2/32"), ""},
		{"claims another CIDR", pfx("198.19.3.0/24", "198.18.0.1/32"), pfx("198.19.2.0/24", "198.18.0.2/32"), "TS_UNACCEPTABLE"},
		{"asks for less", pfx("198.18.0.1/32"), pfx("198.19.2.0/24", "198.18.0.2/32"), "TS_UNACCEPTABLE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := side{psk: "k", localTS: c.local, remoteTS: c.remote}
			b := side{psk: "k", localTS: pfx("198.19.2.0/24", "198.18.0.2/32"), remoteTS: pfx("198.19.1.0/24", "198.18.0.1/32")}
			na, nb, _ := newPairWith(t, a, b, func(cfg *Config) { cfg.StrictTS = true }, esp.TableOptions{})
			if err := na.d.Initiate("peer"); err != nil {
				t.Fatal(err)
			}
			errA, errB := wait(t, na), wait(t, nb)
			if c.wantErr == "" {
				if errA != nil || errB != nil {
					t.Fatalf("%v / %v", errA, errB)
				}
				checkChildren(t, na, nb)
				return
			}
			if errA == nil || !strings.Contains(errA.Error(), c.wantErr) || errB == nil {
				t.Fatalf("initiator %v, responder %v; want %s", errA, errB, c.wantErr)
			}
			if nb.table.Current("peer") != nil {
				t.Error("the responder installed a CHILD_SA")
			}
		})
	}
}

// TestChildExpiredWithoutRekey: when the last CHILD_SA of a kept IKE SA
// hard-expires without having been rekeyed, a new one is created
// (CREATE_CHILD_SA without REKEY_SA), and the peer, which still holds its
// side, lets the new pair take over.
func TestChildExpiredWithoutRekey(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, _ := newPairWith(t, a, b, func(c *Config) { c.Keep = true }, esp.TableOptions{})
	establish(t, na, nb)
	e := na.table.Current("peer")
	// What the SADB does at the hard limit: the pair goes, then the event.
	if err := na.table.Delete(e.In.SPI()); err != nil {
		t.Fatal(err)
	}
	na.d.Lifetime(esp.Event{Kind: esp.EventHardExpire, Peer: "peer", InSPI: e.In.SPI(), OutSPI: e.Out.SPI()})
	deadline := time.Now().Add(5 * time.Second)
	for {
		ea, eb := na.table.Current("peer"), nb.table.Current("peer")
		if ea != nil && eb != nil && ea.In.SPI() != e.In.SPI() && eb.Out.SPI() == ea.In.SPI() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new CHILD_SA: A %v, B %v", ea, eb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkChildren(t, na, nb)
}
