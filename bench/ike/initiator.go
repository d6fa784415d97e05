package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
)

// runInitiator runs the initiator: one ike.Daemon on UDP 4500 of -addr
// with n peers, all at the responder's address, one identity each; it
// starts their IKE SAs with at most -window handshakes in flight and
// prints one line:
//
//	initiator n=... window=... established=... failed=... seconds=... handshakes/s=... p50-ms=... p99-ms=... cpu-seconds=...
//
// seconds runs from the first IKE_SA_INIT sent to the last result (an
// established CHILD_SA or a failure); handshakes/s is established over
// seconds. The exit status is 1 if any handshake failed or the run timed
// out.
func runInitiator(args []string) error {
	fs := flag.NewFlagSet("initiator", flag.ContinueOnError)
	var c common
	c.flags(fs)
	addr := fs.String("addr", "", "our address, UDP 4500 (required)")
	responder := fs.String("responder", "", "the responder's address, UDP 4500 (required)")
	window := fs.Int("window", 32, "handshakes in flight at most")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	err := c.check()
	local, perr := netip.ParseAddr(*addr)
	if perr != nil {
		err = errors.Join(err, fmt.Errorf("-addr %q: %w", *addr, perr))
	}
	remote, perr := netip.ParseAddr(*responder)
	if perr != nil {
		err = errors.Join(err, fmt.Errorf("-responder %q: %w", *responder, perr))
	}
	if *window < 1 {
		err = errors.Join(err, fmt.Errorf("-window %d: want at least 1", *window))
	}
	if err != nil {
		return err
	}

	ep, err := listen(local)
	if err != nil {
		return err
	}
	defer ep.conn.Close()

	// One result per identity: the first OnEstablished call for it.
	var (
		mu        sync.Mutex
		started   = make([]time.Time, c.n+1)
		latencies = make([]time.Duration, 0, c.n)
		seen      = make([]bool, c.n+1)
		ok, bad   int
		errs      []string
		last      time.Time
	)
	slots := make(chan struct{}, *window)
	done := make(chan struct{})
	result := func(i int, err error) {
		mu.Lock()
		if i < 1 || i > c.n || seen[i] {
			mu.Unlock()
			return
		}
		seen[i] = true
		last = time.Now()
		if err == nil {
			ok++
			latencies = append(latencies, last.Sub(started[i]))
		} else {
			bad++
			if len(errs) < 5 {
				errs = append(errs, err.Error())
			}
		}
		finished := ok+bad == c.n
		mu.Unlock()
		<-slots
		if finished {
			close(done)
		}
	}
	d := ike.New(&countingSADB{next: 256}, ep.send, ike.Options{Logger: c.logger,
		OnEstablished: func(peer string, err error) { result(clientIndex(peer), err) }})
	for i := 1; i <= c.n; i++ {
		name := clientName(i)
		if err := d.AddPeer(ike.Config{Name: name, Remote: netip.AddrPortFrom(remote, esp.NATTPort),
			LocalID: fqdn(name), RemoteID: c.responderID, PSK: c.psk,
			IKEProposals: c.ikeP, ESPProposals: c.espP,
			LocalTS: []netip.Prefix{c.clientTS(i)}, RemoteTS: []netip.Prefix{c.respTS}}); err != nil {
			return err
		}
	}
	clear(c.psk)
	go ep.serve(d)

	cpu0 := cpuSeconds()
	start := time.Now()
	go func() {
		for i := 1; i <= c.n; i++ {
			slots <- struct{}{}
			mu.Lock()
			started[i] = time.Now()
			mu.Unlock()
			if err := d.Initiate(clientName(i)); err != nil {
				result(i, err)
			}
		}
	}()
	timedOut := false
	select {
	case <-done:
	case <-time.After(*timeout):
		timedOut = true
	}
	cpu := cpuSeconds() - cpu0

	mu.Lock()
	defer mu.Unlock()
	end := last
	if timedOut {
		end = time.Now()
	}
	secs := end.Sub(start).Seconds()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[int(p*float64(len(latencies)-1))].Seconds() * 1000
	}
	fmt.Printf("initiator n=%d window=%d established=%d failed=%d seconds=%.3f handshakes/s=%.1f p50-ms=%.1f p99-ms=%.1f cpu-seconds=%.2f\n",
		c.n, *window, ok, c.n-ok, secs, float64(ok)/secs, pct(0.50), pct(0.99), cpu)
	for _, e := range errs {
		fmt.Fprintln(os.Stderr, "initiator: failed:", e)
	}
	switch {
	case timedOut:
		return fmt.Errorf("timed out after %v: %d of %d handshakes done", *timeout, ok+bad, c.n)
	case bad > 0:
		return fmt.Errorf("%d of %d handshakes failed", bad, c.n)
	}
	return nil
}

// clientIndex is the i of clientName(i), 0 if name is not one.
func clientIndex(name string) int {
	s, ok := strings.CutPrefix(name, "client-")
	if !ok {
		return 0
	}
	s, ok = strings.CutSuffix(s, ".bench.example")
	if !ok {
		return 0
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return i
}

// countingSADB is the initiator's SA database: it hands out SPIs and
// counts installed pairs, but builds no ESP SA and keeps no key. The
// initiator is the same for both responders and must stay the cheaper
// end: esp.Table copies its maps and sorts its entries on every Add
// (lookups are lock-free; changes are expected to be rare), which at
// thousands of SAs would cost the initiator more per handshake than the
// exchange itself. The embedded interface is nil: a method the benchmark
// never reaches (those of rekeying) panics rather than pretending.
type countingSADB struct {
	esp.SADB
	mu    sync.Mutex
	next  uint32
	added int
}

var _ esp.SADB = (*countingSADB)(nil)

func (s *countingSADB) AllocateSPI() (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	return s.next, nil
}

func (s *countingSADB) Add(p esp.Pair) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.added++
	return nil
}

func (s *countingSADB) Delete(uint32) error      { return nil }
func (s *countingSADB) Events() <-chan esp.Event { return nil }
