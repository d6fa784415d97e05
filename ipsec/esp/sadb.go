package esp

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Pair is a child SA as IKE negotiates it: one inbound and one outbound SA
// with one peer (RFC 7296 §1.3, §2.9).
type Pair struct {
	Peer   string         // name of the peer or connection the pair belongs to
	Remote netip.AddrPort // the peer's UDP endpoint (port 4500)
	// Traffic selectors (RFC 4301 §4.4.1). Outbound, a packet from LocalTS
	// to RemoteTS uses this pair; inbound, in tunnel mode, the inner source
	// must be in RemoteTS and the destination in LocalTS (Entry.AllowsInbound).
	LocalTS, RemoteTS []netip.Prefix
	In, Out           Config
}

// Validate reports everything that is wrong with p, joined.
func (p Pair) Validate() error {
	var errs []error
	if p.Peer == "" {
		errs = append(errs, errors.New("esp: pair: peer: empty name"))
	}
	if !p.Remote.IsValid() || p.Remote.Port() == 0 {
		errs = append(errs, fmt.Errorf("esp: pair %q: remote: %q is not an address and port (e.g. 192.0.2.1:%d)", p.Peer, p.Remote, NATTPort))
	}
	for _, ts := range [][]netip.Prefix{p.LocalTS, p.RemoteTS} {
		for _, pfx := range ts {
			if !pfx.IsValid() {
				errs = append(errs, fmt.Errorf("esp: pair %q: traffic selector %s is not a valid prefix", p.Peer, pfx))
			}
		}
	}
	if err := p.In.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("esp: pair %q: in: %w", p.Peer, err))
	}
	if err := p.Out.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("esp: pair %q: out: %w", p.Peer, err))
	}
	if p.In.Mode != p.Out.Mode {
		errs = append(errs, fmt.Errorf("esp: pair %q: in is %s but out is %s; both directions use one mode", p.Peer, p.In.Mode, p.Out.Mode))
	}
	return errors.Join(errs...)
}

// EventKind is what happened to an SA.
type EventKind uint8

const (
	// EventSoftExpire: a soft lifetime limit was reached; IKE should rekey
	// the pair (RFC 7296 §2.8).
	EventSoftExpire EventKind = iota + 1
	// EventHardExpire: a hard limit was reached; the pair is deleted.
	EventHardExpire
	// EventRetired: an inbound SA replaced by Replace was removed at the end
	// of its grace period, the peer's DELETE not having come.
	EventRetired
)

// String returns "soft-expire", "hard-expire" or "retired".
func (k EventKind) String() string {
	switch k {
	case EventSoftExpire:
		return "soft-expire"
	case EventHardExpire:
		return "hard-expire"
	case EventRetired:
		return "retired"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event reports a lifetime event of one SA of a pair.
type Event struct {
	Kind          EventKind
	Peer          string
	InSPI, OutSPI uint32 // the pair's SPIs
	Inbound       bool   // the inbound SA reached the limit (else the outbound)
}

// SADB is the SA database that IKE installs child SAs into. The datapath
// implements it, usually by embedding a Table.
type SADB interface {
	// AllocateSPI returns a random inbound SPI that is not 0-255, not in use
	// and not handed out before; it stays reserved until installed.
	AllocateSPI() (uint32, error)
	// Add installs a new pair.
	Add(p Pair) error
	// Replace installs p make-before-break: p.Out takes over outbound at
	// once; the old pair's inbound SA keeps accepting until
	// Delete(oldInSPI) (the peer's DELETE) or the grace period expires.
	Replace(oldInSPI uint32, p Pair) error
	// AddRetiring installs only p's inbound SA, as a replaced one: it
	// accepts until Delete(p.In.SPI) or the grace period ends, and p.Out
	// is never used. It is for the redundant CHILD_SA of a simultaneous
	// rekey (RFC 7296 §2.8.1), which the peer may still send on until it
	// deletes it.
	AddRetiring(p Pair) error
	// Delete removes the pair (or the retiring inbound SA) whose inbound SPI
	// is inSPI and wipes its keys.
	Delete(inSPI uint32) error
	// Events delivers lifetime events.
	Events() <-chan Event
}

// Errors of the Table that callers branch on.
var (
	// ErrUnknownSPI: no SA with that inbound SPI (Delete, Replace).
	ErrUnknownSPI = errors.New("esp: no sa with that inbound spi")
	// ErrClosed: the Table was closed.
	ErrClosed = errors.New("esp: table closed")
)

// TableOptions configures a Table; the zero value gives the defaults.
type TableOptions struct {
	// Grace is how long a replaced inbound SA keeps accepting without the
	// peer's DELETE; 0 means DefaultGrace.
	Grace time.Duration
	// Now is the clock (for tests); nil means time.Now.
	Now func() time.Time
	// EventBuffer is the capacity of the Events channel; 0 means
	// DefaultEventBuffer.
	EventBuffer int
	// SPIReservation is how long an allocated SPI stays reserved without
	// being installed; 0 means DefaultSPIReservation.
	SPIReservation time.Duration
}

// Entry is a pair as installed: the Pair (its keys removed), its SAs and
// state. Entries are immutable once published; the Table replaces them.
// e.In and e.Out are the SAs; the configurations are e.Pair.In and
// e.Pair.Out.
type Entry struct {
	Pair
	In, Out *SA // Out is nil for a retiring entry
	Created time.Time
	// Retiring: In was replaced and accepts only until RetireAt, or until
	// Delete if that comes first.
	Retiring bool
	RetireAt time.Time

	inRec, outRec *saRecord
}

// AllowsInbound reports whether an inner packet from src to dst may
// arrive on this pair: src in RemoteTS and dst in LocalTS (RFC 4301 §5.2).
func (e *Entry) AllowsInbound(src, dst netip.Addr) bool {
	return matchAny(e.RemoteTS, src) && matchAny(e.LocalTS, dst)
}

// AllowsOutbound reports whether a packet from src to dst may leave on
// this pair: src in LocalTS and dst in RemoteTS.
func (e *Entry) AllowsOutbound(src, dst netip.Addr) bool {
	return matchAny(e.LocalTS, src) && matchAny(e.RemoteTS, dst)
}

func matchAny(ts []netip.Prefix, a netip.Addr) bool {
	_, ok := bestMatch(ts, a)
	return ok
}

// bestMatch returns the longest prefix of ts that contains a.
func bestMatch(ts []netip.Prefix, a netip.Addr) (bits int, ok bool) {
	a = a.Unmap()
	bits = -1
	for _, p := range ts {
		if p.Contains(a) && p.Bits() > bits {
			bits, ok = p.Bits(), true
		}
	}
	return bits, ok
}

// saRecord is the Table's bookkeeping for one SA, shared by its lifetime
// callback and Tick.
type saRecord struct {
	peer          string
	inSPI, outSPI uint32
	inbound       bool
	reported      atomic.Uint32 // highest LifetimeState sent as an event
	retiring      atomic.Bool
}

// snapshot is one immutable state of the Table; writers copy it.
type snapshot struct {
	current  map[string]*Entry // peer → its current pair
	retiring map[uint32]*Entry // old inbound SPI → retiring entry
	inbound  map[uint32]*Entry // every inbound SPI, current or retiring
	routes   []*Entry          // current entries sorted by peer, for Route
}

func (s *snapshot) clone() *snapshot {
	return &snapshot{
		current:  maps.Clone(s.current),
		retiring: maps.Clone(s.retiring),
		inbound:  maps.Clone(s.inbound),
		routes:   s.routes, // immutable: shared until publishRoutes replaces it
	}
}

func (s *snapshot) publishRoutes() {
	s.routes = slices.SortedFunc(maps.Values(s.current), func(a, b *Entry) int { return cmp.Compare(a.Peer, b.Peer) })
}

// Table is an in-memory SADB for a datapath to embed. Lookups (Inbound,
// Current, Outbound, Route) are lock-free: they read an immutable snapshot
// published through an atomic pointer; changes, which are rare, copy it.
// The Table starts no goroutines: the owner calls Tick periodically.
type Table struct {
	opts TableOptions
	snap atomic.Pointer[snapshot]

	mu       sync.Mutex // serializes writers
	closed   bool
	reserved map[uint32]time.Time // SPIs handed out, not installed yet

	evMu     sync.Mutex // guards sending on and closing events, and pending
	evClosed bool
	events   chan Event
	pending  []Event // events that found the channel full
}

var _ SADB = (*Table)(nil)

// NewTable returns an empty Table.
func NewTable(opts TableOptions) *Table {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = DefaultEventBuffer
	}
	if opts.SPIReservation <= 0 {
		opts.SPIReservation = DefaultSPIReservation
	}
	t := &Table{
		opts:     opts,
		reserved: map[uint32]time.Time{},
		events:   make(chan Event, opts.EventBuffer),
	}
	t.snap.Store(&snapshot{current: map[string]*Entry{}, retiring: map[uint32]*Entry{}, inbound: map[uint32]*Entry{}})
	return t
}

// Inbound returns the inbound SA with this SPI (current or retiring), or
// nil.
func (t *Table) Inbound(spi uint32) *SA {
	if e := t.snap.Load().inbound[spi]; e != nil {
		return e.In
	}
	return nil
}

// InboundEntry returns the entry that the inbound SPI belongs to, for its
// traffic selectors and peer, or nil.
func (t *Table) InboundEntry(spi uint32) *Entry {
	return t.snap.Load().inbound[spi]
}

// Current returns the current pair of a peer, or nil.
func (t *Table) Current(peer string) *Entry {
	return t.snap.Load().current[peer]
}

// Outbound returns the current pair of a peer and its outbound SA, or
// nils. An SA returned here may be zeroed by a concurrent Replace or
// Delete; Seal then fails with ErrSADeleted and the caller looks again.
func (t *Table) Outbound(peer string) (*Entry, *SA) {
	if e := t.snap.Load().current[peer]; e != nil {
		return e, e.Out
	}
	return nil, nil
}

// Route returns the current pair whose selectors match a packet from src
// to dst (src in LocalTS, dst in RemoteTS), preferring the longest
// RemoteTS prefix and then the first peer by name; nil if none.
func (t *Table) Route(src, dst netip.Addr) *Entry {
	var best *Entry
	bestBits := -1
	for _, e := range t.snap.Load().routes {
		bits, ok := bestMatch(e.RemoteTS, dst)
		if ok && bits > bestBits && matchAny(e.LocalTS, src) {
			best, bestBits = e, bits
		}
	}
	return best
}

// Entries returns copies of all entries, current ones by peer then
// retiring ones by SPI, for status displays.
func (t *Table) Entries() []Entry {
	s := t.snap.Load()
	out := make([]Entry, 0, len(s.current)+len(s.retiring))
	for _, e := range s.routes {
		out = append(out, *e)
	}
	for _, spi := range slices.Sorted(maps.Keys(s.retiring)) {
		out = append(out, *s.retiring[spi])
	}
	return out
}

// Events returns the channel of lifetime events. It is closed by Close.
// Events are sent without blocking; those that find the channel full are
// queued and sent, in order, by a later Tick.
func (t *Table) Events() <-chan Event { return t.events }

// AllocateSPI returns a random SPI from 256 up that no SA uses and that
// was not handed out in the last SPIReservation.
func (t *Table) AllocateSPI() (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	s := t.snap.Load()
	var b [4]byte
	for range maxSPIAttempts {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("esp: allocate spi: %w", err)
		}
		spi := binary.BigEndian.Uint32(b[:])
		if _, used := s.inbound[spi]; used || spi < minSPI {
			continue
		}
		if _, taken := t.reserved[spi]; taken {
			continue
		}
		t.reserved[spi] = t.opts.Now()
		return spi, nil
	}
	return 0, fmt.Errorf("esp: allocate spi: no free spi after %d random tries", maxSPIAttempts)
}

// Add installs a new pair for a peer that has none. p's keys are copied
// into the SAs and not kept in the Table.
func (t *Table) Add(p Pair) error {
	if err := p.Validate(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	s := t.snap.Load()
	if _, ok := s.current[p.Peer]; ok {
		return fmt.Errorf("esp: add: peer %q already has a pair; rekey with Replace", p.Peer)
	}
	if _, ok := s.inbound[p.In.SPI]; ok {
		return fmt.Errorf("esp: add: peer %q: inbound spi %#08x is in use", p.Peer, p.In.SPI)
	}
	e, err := t.newEntry(p)
	if err != nil {
		return err
	}
	n := s.clone()
	n.current[p.Peer] = e
	n.inbound[p.In.SPI] = e
	n.publishRoutes()
	t.snap.Store(n)
	delete(t.reserved, p.In.SPI)
	return nil
}

// Replace installs p as the peer's new pair, make-before-break (RFC 7296
// §2.8): p.Out is used for sending at once and the old outbound SA is
// deleted; the old inbound SA keeps accepting until Delete(oldInSPI) or
// the grace period ends (then EventRetired).
func (t *Table) Replace(oldInSPI uint32, p Pair) error {
	if err := p.Validate(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	s := t.snap.Load()
	old := s.current[p.Peer]
	if old == nil || old.In.SPI() != oldInSPI {
		if e := s.inbound[oldInSPI]; e != nil && e.Retiring {
			return fmt.Errorf("esp: replace: inbound spi %#08x was already replaced", oldInSPI)
		}
		return fmt.Errorf("esp: replace: peer %q has no current pair with inbound spi %#08x: %w", p.Peer, oldInSPI, ErrUnknownSPI)
	}
	if _, ok := s.inbound[p.In.SPI]; ok {
		return fmt.Errorf("esp: replace: peer %q: inbound spi %#08x is in use", p.Peer, p.In.SPI)
	}
	e, err := t.newEntry(p)
	if err != nil {
		return err
	}
	now := t.opts.Now()
	ret := *old
	ret.Out, ret.outRec = nil, nil
	ret.Retiring, ret.RetireAt = true, now.Add(t.opts.Grace)
	old.inRec.retiring.Store(true)

	n := s.clone()
	n.current[p.Peer] = e
	n.inbound[p.In.SPI] = e
	n.inbound[oldInSPI] = &ret
	n.retiring[oldInSPI] = &ret
	n.publishRoutes()
	t.snap.Store(n)
	delete(t.reserved, p.In.SPI)
	// Lookups made from now on find the new SA; Zero waits for any Seal
	// still running on the old one.
	old.Out.Zero()
	return nil
}

// AddRetiring installs p's inbound SA only, retiring from the start (see
// SADB).
func (t *Table) AddRetiring(p Pair) error {
	if err := p.Validate(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	s := t.snap.Load()
	if _, ok := s.inbound[p.In.SPI]; ok {
		return fmt.Errorf("esp: add retiring: peer %q: inbound spi %#08x is in use", p.Peer, p.In.SPI)
	}
	e, err := t.newEntry(p)
	if err != nil {
		return err
	}
	e.Out.Zero()
	e.Out, e.outRec = nil, nil
	e.Retiring, e.RetireAt = true, t.opts.Now().Add(t.opts.Grace)
	e.inRec.retiring.Store(true)
	n := s.clone()
	n.inbound[p.In.SPI] = e
	n.retiring[p.In.SPI] = e
	t.snap.Store(n)
	delete(t.reserved, p.In.SPI)
	return nil
}

// Delete removes the pair whose inbound SPI is inSPI, or the retiring
// inbound SA with that SPI, and zeroes the SAs.
func (t *Table) Delete(inSPI uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	s := t.snap.Load()
	e := s.inbound[inSPI]
	if e == nil {
		return fmt.Errorf("esp: delete: inbound spi %#08x: %w", inSPI, ErrUnknownSPI)
	}
	n := s.clone()
	n.remove(e)
	t.snap.Store(n)
	zeroEntry(e)
	return nil
}

// remove drops e from the snapshot being built.
func (s *snapshot) remove(e *Entry) {
	spi := e.In.SPI()
	delete(s.inbound, spi)
	if e.Retiring {
		delete(s.retiring, spi)
		return
	}
	delete(s.current, e.Peer)
	s.publishRoutes()
}

func zeroEntry(e *Entry) {
	e.In.Zero()
	if e.Out != nil {
		e.Out.Zero()
	}
}

// Tick does the Table's timed work at now: it sends queued events, polls
// time lifetimes (RFC 4301 §4.4.2.1) and sends soft and hard expiry
// events, deletes (and zeroes) hard-expired pairs and retiring SAs whose
// grace ended, and forgets stale SPI reservations. Call it every second
// or so; lifetimes and the grace period are only as precise as that.
func (t *Table) Tick(now time.Time) {
	t.flush()
	s := t.snap.Load()
	var doomed []*Entry
	for _, e := range s.current {
		in, out := e.In.Lifetime(now), e.Out.Lifetime(now)
		t.report(e.inRec, in)
		t.report(e.outRec, out)
		if in == LifetimeHard || out == LifetimeHard {
			doomed = append(doomed, e)
		}
	}
	for _, e := range s.retiring {
		if !now.Before(e.RetireAt) || e.In.Lifetime(now) == LifetimeHard {
			doomed = append(doomed, e)
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	for spi, at := range t.reserved {
		if now.Sub(at) >= t.opts.SPIReservation {
			delete(t.reserved, spi)
		}
	}
	if t.closed || len(doomed) == 0 {
		return
	}
	cur := t.snap.Load()
	n := cur.clone()
	var gone []*Entry
	for _, e := range doomed {
		// A writer may have removed or replaced it since we looked.
		if cur.inbound[e.In.SPI()] != e {
			continue
		}
		n.remove(e)
		gone = append(gone, e)
	}
	t.snap.Store(n)
	for _, e := range gone {
		zeroEntry(e)
		if e.Retiring {
			t.emit(Event{Kind: EventRetired, Peer: e.Peer, InSPI: e.inRec.inSPI, OutSPI: e.inRec.outSPI, Inbound: true})
		}
	}
}

// Close zeroes every SA, refuses further changes and closes Events.
func (t *Table) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	s := t.snap.Load()
	t.snap.Store(&snapshot{current: map[string]*Entry{}, retiring: map[uint32]*Entry{}, inbound: map[uint32]*Entry{}})
	for _, e := range s.inbound {
		zeroEntry(e)
	}
	t.mu.Unlock()

	t.evMu.Lock()
	t.evClosed = true
	close(t.events)
	t.evMu.Unlock()
}

// newEntry builds the SAs of p, with lifetime callbacks that report to
// the Table, and an Entry that keeps no key.
func (t *Table) newEntry(p Pair) (*Entry, error) {
	now := t.opts.Now()
	inRec := &saRecord{peer: p.Peer, inSPI: p.In.SPI, outSPI: p.Out.SPI, inbound: true}
	outRec := &saRecord{peer: p.Peer, inSPI: p.In.SPI, outSPI: p.Out.SPI}
	in, err := newSA(t.hook(p.In, inRec), now)
	if err != nil {
		return nil, fmt.Errorf("esp: pair %q: in: %w", p.Peer, err)
	}
	out, err := newSA(t.hook(p.Out, outRec), now)
	if err != nil {
		in.Zero()
		return nil, fmt.Errorf("esp: pair %q: out: %w", p.Peer, err)
	}
	p.In.Key, p.In.AuthKey, p.Out.Key, p.Out.AuthKey = nil, nil, nil, nil
	p.LocalTS, p.RemoteTS = slices.Clone(p.LocalTS), slices.Clone(p.RemoteTS)
	return &Entry{Pair: p, In: in, Out: out, Created: now, inRec: inRec, outRec: outRec}, nil
}

// hook returns c with an OnLifetime that reports to the Table and then
// calls c's own.
func (t *Table) hook(c Config, rec *saRecord) Config {
	user := c.OnLifetime
	c.OnLifetime = func(spi uint32, st LifetimeState) {
		t.report(rec, st)
		if user != nil {
			user(spi, st)
		}
	}
	return c
}

// report sends the event for st once per SA. A retiring SA needs no
// rekey: its soft expiry is noted but not sent, and its hard expiry shows
// as EventRetired when Tick removes it.
func (t *Table) report(rec *saRecord, st LifetimeState) {
	if rec == nil || st == LifetimeOK {
		return
	}
	for {
		prev := rec.reported.Load()
		if prev >= uint32(st) {
			return
		}
		if rec.reported.CompareAndSwap(prev, uint32(st)) {
			break
		}
	}
	if rec.retiring.Load() {
		return
	}
	kind := EventSoftExpire
	if st == LifetimeHard {
		kind = EventHardExpire
	}
	t.emit(Event{Kind: kind, Peer: rec.peer, InSPI: rec.inSPI, OutSPI: rec.outSPI, Inbound: rec.inbound})
}

// emit sends ev without blocking, from the packet path or Tick. An event
// that finds the channel full waits in pending, in order, for the next
// emit or Tick: events are never lost, and a slow reader never stalls a
// packet.
func (t *Table) emit(ev Event) {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	if t.evClosed {
		return
	}
	t.flushLocked()
	if len(t.pending) > 0 {
		t.pending = append(t.pending, ev)
		return
	}
	select {
	case t.events <- ev:
	default:
		t.pending = append(t.pending, ev)
	}
}

// flush sends pending events while the channel has room.
func (t *Table) flush() {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	if !t.evClosed {
		t.flushLocked()
	}
}

func (t *Table) flushLocked() {
	for len(t.pending) > 0 {
		select {
		case t.events <- t.pending[0]:
			t.pending = t.pending[1:]
		default:
			return
		}
	}
	t.pending = nil
}
