package esp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the Table.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

func newTestTable(t *testing.T, opts TableOptions) (*Table, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	tb := NewTable(opts)
	t.Cleanup(tb.Close)
	return tb, clk
}

// testTablePair makes a pair for peer with the given SPIs. The same keys
// serve both directions, so that a test can seal with Out and open with In
// of one pair, or pair two Tables back to back.
func testTablePair(peer string, in, out uint32) Pair {
	c := testConfig(AESGCM16, ModeTunnel, false)
	p := Pair{
		Peer:     peer,
		Remote:   netip.MustParseAddrPort("203.0.113.9:4500"),
		LocalTS:  []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		RemoteTS: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")},
		In:       c,
		Out:      c,
	}
	p.In.SPI, p.Out.SPI = in, out
	return p
}

func TestAllocateSPI(t *testing.T) {
	tb, clk := newTestTable(t, TableOptions{SPIReservation: time.Minute})
	seen := map[uint32]bool{}
	for range 2000 {
		spi, err := tb.AllocateSPI()
		if err != nil {
			t.Fatal(err)
		}
		if spi < minSPI || seen[spi] {
			t.Fatalf("spi %#x reserved or repeated", spi)
		}
		seen[spi] = true
	}
	if len(tb.reserved) != 2000 {
		t.Fatalf("%d reservations", len(tb.reserved))
	}
	clk.Advance(time.Minute)
	tb.Tick(clk.Now())
	if len(tb.reserved) != 0 {
		t.Fatalf("%d reservations left after their timeout", len(tb.reserved))
	}
	// An installed SPI is used: Add takes it out of the reservations.
	spi, _ := tb.AllocateSPI()
	if err := tb.Add(testTablePair("a", spi, 0x2000)); err != nil {
		t.Fatal(err)
	}
	if _, ok := tb.reserved[spi]; ok {
		t.Fatal("installed spi still reserved")
	}
}

func TestTableAddLookupDelete(t *testing.T) {
	tb, _ := newTestTable(t, TableOptions{})
	p := testTablePair("alice", 0x1001, 0x2001)
	if err := tb.Add(p); err != nil {
		t.Fatal(err)
	}
	if err := tb.Add(testTablePair("alice", 0x1002, 0x2002)); err == nil || !strings.Contains(err.Error(), "Replace") {
		t.Fatalf("second pair for a peer: %v", err)
	}
	if err := tb.Add(testTablePair("bob", 0x1001, 0x2002)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("duplicate inbound spi: %v", err)
	}
	bad := testTablePair("", 0x1003, 0x2003)
	bad.In.Key = nil
	if err := tb.Add(bad); err == nil || !strings.Contains(err.Error(), "peer") || !strings.Contains(err.Error(), "key") {
		t.Fatalf("invalid pair: %v", err)
	}

	in := tb.Inbound(0x1001)
	e, out := tb.Outbound("alice")
	if in == nil || out == nil || e.Remote.Port() != 4500 || tb.Current("alice") != e || tb.InboundEntry(0x1001) != e {
		t.Fatal("lookups")
	}
	if e.Pair.In.Key != nil || e.Pair.Out.Key != nil || e.Pair.In.AuthKey != nil {
		t.Fatal("table keeps keys")
	}
	if tb.Inbound(0x9999) != nil {
		t.Fatal("unknown spi found")
	}
	if got := tb.Route(netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.2.0.1")); got != e {
		t.Fatal("route")
	}
	if tb.Route(netip.MustParseAddr("10.9.2.3"), netip.MustParseAddr("10.2.0.1")) != nil {
		t.Fatal("route with a source outside LocalTS")
	}
	if !e.AllowsInbound(netip.MustParseAddr("10.2.0.1"), netip.MustParseAddr("10.1.0.1")) ||
		e.AllowsInbound(netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")) {
		t.Fatal("AllowsInbound")
	}

	// Traffic flows through the installed SAs.
	pkt, err := out.Seal(nil, ipPacket(netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1"), 17, []byte("hi")))
	if err != nil {
		t.Fatal(err)
	}
	spi, _ := PeekSPI(pkt)
	if spi != 0x2001 {
		t.Fatalf("sealed with spi %#x", spi)
	}

	if err := tb.Delete(0x1001); err != nil {
		t.Fatal(err)
	}
	if tb.Inbound(0x1001) != nil || tb.Current("alice") != nil || len(tb.Entries()) != 0 {
		t.Fatal("still there after Delete")
	}
	if _, err := out.Seal(nil, testIPv4(t, 30)); !errors.Is(err, ErrSADeleted) {
		t.Fatalf("outbound sa after Delete: %v", err)
	}
	if err := tb.Delete(0x1001); !errors.Is(err, ErrUnknownSPI) {
		t.Fatalf("second Delete: %v", err)
	}
}

// TestTableReplace: make-before-break. After Replace the new outbound SA
// is used at once and the old one is gone; the old inbound SA still
// accepts until the grace period ends.
func TestTableReplace(t *testing.T) {
	tb, clk := newTestTable(t, TableOptions{Grace: 10 * time.Second})
	old := testTablePair("alice", 0x1001, 0x2001)
	if err := tb.Add(old); err != nil {
		t.Fatal(err)
	}
	_, oldOut := tb.Outbound("alice")
	oldIn := tb.Inbound(0x1001)
	// The peer's sender for the old pair, still sending for a while.
	peerOld, _ := NewSA(withSPI(old.In, 0x1001))
	inflight, _ := peerOld.Seal(nil, testIPv4(t, 40))

	if err := tb.Replace(0x1001, testTablePair("alice", 0x1002, 0x2002)); err != nil {
		t.Fatal(err)
	}
	e, out := tb.Outbound("alice")
	if out == oldOut || out.SPI() != 0x2002 || e.In.SPI() != 0x1002 {
		t.Fatal("new outbound SA not current")
	}
	if _, err := oldOut.Seal(nil, testIPv4(t, 30)); !errors.Is(err, ErrSADeleted) {
		t.Fatalf("old outbound SA: %v", err)
	}
	// Old inbound keeps working during the grace period.
	if tb.Inbound(0x1001) != oldIn {
		t.Fatal("old inbound SA gone at once")
	}
	if _, seq, err := oldIn.Open(nil, inflight, v4a, v4b); err != nil || oldIn.Accept(seq, 40) != nil {
		t.Fatalf("old inbound SA refused in-flight packet: %v", err)
	}
	entries := tb.Entries()
	if len(entries) != 2 || entries[0].Retiring || !entries[1].Retiring || entries[1].Out != nil {
		t.Fatalf("entries %+v", entries)
	}
	if err := tb.Replace(0x1001, testTablePair("alice", 0x1003, 0x2003)); err == nil {
		t.Fatal("replacing a retiring SA")
	}

	clk.Advance(9 * time.Second)
	tb.Tick(clk.Now())
	if tb.Inbound(0x1001) == nil {
		t.Fatal("removed before the grace period ended")
	}
	clk.Advance(time.Second)
	tb.Tick(clk.Now())
	if tb.Inbound(0x1001) != nil {
		t.Fatal("old inbound SA outlived the grace period")
	}
	if _, _, err := oldIn.Open(nil, inflight, v4a, v4b); !errors.Is(err, ErrSADeleted) {
		t.Fatalf("old inbound after grace: %v", err)
	}
	ev := <-tb.Events()
	if ev != (Event{Kind: EventRetired, Peer: "alice", InSPI: 0x1001, OutSPI: 0x2001, Inbound: true}) {
		t.Fatalf("event %+v", ev)
	}
	if tb.Inbound(0x1002) == nil {
		t.Fatal("new pair removed")
	}
}

func TestTableReplaceThenPeerDelete(t *testing.T) {
	tb, _ := newTestTable(t, TableOptions{})
	_ = tb.Add(testTablePair("alice", 0x1001, 0x2001))
	oldIn := tb.Inbound(0x1001)
	_ = tb.Replace(0x1001, testTablePair("alice", 0x1002, 0x2002))
	if err := tb.Delete(0x1001); err != nil {
		t.Fatal(err)
	}
	if tb.Inbound(0x1001) != nil || tb.Current("alice").In.SPI() != 0x1002 {
		t.Fatal("delete of the retiring SA")
	}
	if e := tb.Route(netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")); e == nil || e.In.SPI() != 0x1002 {
		t.Fatal("route lost when a retiring SA was deleted")
	}
	if err := oldIn.Accept(5, 1); !errors.Is(err, ErrSADeleted) {
		t.Fatalf("deleted SA: %v", err)
	}
	if err := tb.Replace(0x7777, testTablePair("alice", 0x1003, 0x2003)); !errors.Is(err, ErrUnknownSPI) {
		t.Fatalf("replace unknown: %v", err)
	}
}

// TestTableAddRetiring: the redundant pair of a simultaneous rekey is
// installed inbound-only: it opens what the peer still sends on it, never
// becomes current, and goes on Delete or after the grace period.
func TestTableAddRetiring(t *testing.T) {
	tb, clk := newTestTable(t, TableOptions{Grace: 10 * time.Second})
	if err := tb.Add(testTablePair("alice", 0x1001, 0x2001)); err != nil {
		t.Fatal(err)
	}
	red := testTablePair("alice", 0x1005, 0x2005)
	if err := tb.AddRetiring(red); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddRetiring(red); err == nil {
		t.Fatal("the same inbound SPI installed twice")
	}
	if e, out := tb.Outbound("alice"); e.In.SPI() != 0x1001 || out.SPI() != 0x2001 {
		t.Fatalf("the retiring pair became current: %+v", e)
	}
	peer, _ := NewSA(withSPI(red.In, 0x1005))
	pkt, _ := peer.Seal(nil, testIPv4(t, 40))
	in := tb.Inbound(0x1005)
	if in == nil {
		t.Fatal("no inbound SA")
	}
	if _, seq, err := in.Open(nil, pkt, v4a, v4b); err != nil || in.Accept(seq, 40) != nil {
		t.Fatalf("the retiring inbound SA refused the peer's packet: %v", err)
	}
	if e := tb.InboundEntry(0x1005); !e.Retiring || e.Out != nil {
		t.Fatalf("entry %+v", e)
	}
	clk.Advance(11 * time.Second)
	tb.Tick(clk.Now())
	if tb.Inbound(0x1005) != nil || tb.Current("alice") == nil {
		t.Fatal("after the grace period: the retiring SA stayed, or the current pair went")
	}
	if err := tb.AddRetiring(testTablePair("alice", 0x1006, 0x2006)); err != nil {
		t.Fatal(err)
	}
	if err := tb.Delete(0x1006); err != nil || tb.Inbound(0x1006) != nil {
		t.Fatalf("delete: %v", err)
	}
}

func withSPI(c Config, spi uint32) Config {
	c.SPI = spi
	return c
}

// TestTableLifetimeEvents: soft expiry by packets (from the packet path)
// and by time (from Tick) each send one event; hard expiry sends one and
// deletes the pair.
func TestTableLifetimeEvents(t *testing.T) {
	tb, clk := newTestTable(t, TableOptions{})
	p := testTablePair("alice", 0x1001, 0x2001)
	p.Out.Lifetime = Lifetime{Soft: Limits{Packets: 2}, Hard: Limits{Packets: 4}}
	p.In.Lifetime = Lifetime{Soft: Limits{Time: time.Hour}, Hard: Limits{Time: 2 * time.Hour}}
	var userCalls int
	p.Out.OnLifetime = func(uint32, LifetimeState) { userCalls++ }
	if err := tb.Add(p); err != nil {
		t.Fatal(err)
	}
	_, out := tb.Outbound("alice")
	for range 3 {
		if _, err := out.Seal(nil, testIPv4(t, 30)); err != nil {
			t.Fatal(err)
		}
	}
	want := Event{Kind: EventSoftExpire, Peer: "alice", InSPI: 0x1001, OutSPI: 0x2001}
	if ev := <-tb.Events(); ev != want {
		t.Fatalf("event %+v, want %+v", ev, want)
	}
	tb.Tick(clk.Advance(time.Hour))
	want = Event{Kind: EventSoftExpire, Peer: "alice", InSPI: 0x1001, OutSPI: 0x2001, Inbound: true}
	if ev := <-tb.Events(); ev != want {
		t.Fatalf("event %+v, want %+v", ev, want)
	}
	tb.Tick(clk.Advance(time.Minute))
	select {
	case ev := <-tb.Events():
		t.Fatalf("repeated event %+v", ev)
	default:
	}

	// Hard by packets: the 5th Seal fails, the event comes at once, the pair
	// goes at the next Tick.
	_, _ = out.Seal(nil, testIPv4(t, 30))
	if _, err := out.Seal(nil, testIPv4(t, 30)); !errors.Is(err, ErrLifetime) {
		t.Fatalf("5th seal: %v", err)
	}
	want = Event{Kind: EventHardExpire, Peer: "alice", InSPI: 0x1001, OutSPI: 0x2001}
	if ev := <-tb.Events(); ev != want {
		t.Fatalf("event %+v, want %+v", ev, want)
	}
	if userCalls != 2 {
		t.Fatalf("user callback called %d times", userCalls)
	}
	tb.Tick(clk.Advance(time.Second))
	if tb.Current("alice") != nil || tb.Inbound(0x1001) != nil {
		t.Fatal("hard-expired pair not deleted")
	}
}

// TestTableEventsNeverLost fills the channel; later events wait and come
// out in order once the reader catches up and Tick runs.
func TestTableEventsNeverLost(t *testing.T) {
	tb, clk := newTestTable(t, TableOptions{EventBuffer: 1})
	for i := range 3 {
		p := testTablePair(fmt.Sprintf("p%d", i), uint32(0x1000+i), uint32(0x2000+i))
		p.In.Lifetime.Soft.Time = time.Minute
		if err := tb.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	tb.Tick(clk.Advance(time.Minute))
	var got []string
	for len(got) < 3 {
		select {
		case ev := <-tb.Events():
			got = append(got, ev.Peer)
		default:
			tb.Tick(clk.Advance(time.Second))
		}
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "p0,p1,p2" {
		t.Fatalf("events %v", got)
	}
}

func TestTableClose(t *testing.T) {
	tb := NewTable(TableOptions{})
	_ = tb.Add(testTablePair("alice", 0x1001, 0x2001))
	in := tb.Inbound(0x1001)
	tb.Close()
	tb.Close()
	if _, ok := <-tb.Events(); ok {
		t.Fatal("events channel open after Close")
	}
	if err := in.Accept(1, 1); !errors.Is(err, ErrSADeleted) {
		t.Fatalf("SA after Close: %v", err)
	}
	if err := tb.Add(testTablePair("bob", 0x1002, 0x2002)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if _, err := tb.AllocateSPI(); !errors.Is(err, ErrClosed) {
		t.Fatalf("AllocateSPI after Close: %v", err)
	}
	tb.Tick(time.Now())
}

// TestTableConcurrent runs lookups and Seal on the hot path while the
// control plane replaces and deletes pairs: no races, and every Seal
// either works or fails with ErrSADeleted.
func TestTableConcurrent(t *testing.T) {
	tb, clk := newTestTable(t, TableOptions{Grace: time.Second})
	_ = tb.Add(testTablePair("alice", 0x1000, 0x2000))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			ip := testIPv4(t, 60)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, sa := tb.Outbound("alice"); sa != nil {
					if _, err := sa.Seal(buf, ip); err != nil && !errors.Is(err, ErrSADeleted) {
						t.Error(err)
						return
					}
				}
				_ = tb.Inbound(0x1000)
				_ = tb.Entries()
			}
		})
	}
	for i := 1; i < 200; i++ {
		if err := tb.Replace(uint32(0x1000+i-1), testTablePair("alice", uint32(0x1000+i), uint32(0x2000+i))); err != nil {
			t.Fatal(err)
		}
		tb.Tick(clk.Advance(100 * time.Millisecond))
	}
	close(stop)
	wg.Wait()
	if n := len(tb.Entries()); n > 12 {
		t.Fatalf("%d entries: retiring SAs not removed", n)
	}
}

func TestTableRoute(t *testing.T) {
	tb, _ := newTestTable(t, TableOptions{})
	wide := testTablePair("wide", 0x1001, 0x2001)
	wide.RemoteTS = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	narrow := testTablePair("narrow", 0x1002, 0x2002)
	narrow.RemoteTS = []netip.Prefix{netip.MustParsePrefix("10.2.3.0/24"), netip.MustParsePrefix("fd00::/64")}
	narrow.LocalTS = append(narrow.LocalTS, netip.MustParsePrefix("fd01::/64"))
	for _, p := range []Pair{wide, narrow} {
		if err := tb.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	src := netip.MustParseAddr("10.1.0.1")
	cases := []struct {
		src, dst string
		want     string
	}{
		{"10.1.0.1", "10.2.3.4", "narrow"},
		{"10.1.0.1", "10.2.4.4", "wide"},
		{"10.1.0.1", "192.0.2.1", ""},
		{"fd01::1", "fd00::9", "narrow"},
		{"fd02::1", "fd00::9", ""},
	}
	for _, c := range cases {
		e := tb.Route(netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst))
		if got := ""; e != nil {
			got = e.Peer
			if got != c.want {
				t.Errorf("%s -> %s: %q, want %q", c.src, c.dst, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%s -> %s: no route, want %q", c.src, c.dst, c.want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { tb.Route(src, netip.MustParseAddr("10.2.3.4")) }); a != 0 && !raceEnabled {
		t.Errorf("Route allocates %v", a)
	}
}
