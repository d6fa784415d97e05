package esp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors, one per reason a caller counts or branches on. The
// errors returned on the packet path wrap them with context and are built
// once, so a flood of bad packets costs no allocations.
var (
	// ErrShort: the packet is shorter than the smallest valid ESP packet.
	ErrShort = errors.New("esp: packet too short")
	// ErrMalformed: a field is inconsistent (wrong SPI, ciphertext not a
	// whole number of blocks, inner packet that does not parse).
	ErrMalformed = errors.New("esp: malformed packet")
	// ErrAuth: the ICV did not verify (RFC 4303 §3.4.4). The packet is
	// dropped and nothing of it is used.
	ErrAuth = errors.New("esp: integrity check failed")
	// ErrReplay: the sequence number was already received or is below the
	// anti-replay window (RFC 4303 §3.4.3).
	ErrReplay = errors.New("esp: replayed packet")
	// ErrDummy: a dummy packet (Next Header 59, RFC 4303 §2.6). It is
	// authentic: the caller drops it silently but still calls Accept with
	// its sequence number, so that the window moves and a replayed dummy is
	// caught like any other replay.
	ErrDummy = errors.New("esp: dummy packet")
	// ErrPadding: the padding is not the 1, 2, 3... series of RFC 4303
	// §2.4 or is longer than the plaintext.
	ErrPadding = errors.New("esp: bad padding")
	// ErrSADeleted: the SA was zeroed (deleted) and can no longer be used.
	ErrSADeleted = errors.New("esp: sa deleted")
	// ErrLifetime: the SA reached a hard lifetime limit (RFC 4301 §4.4.2.1).
	ErrLifetime = errors.New("esp: sa hard lifetime reached")
	// ErrSeqExhausted: the outbound sequence number would cycle; the SA must
	// be replaced (RFC 4303 §3.3.3).
	ErrSeqExhausted = errors.New("esp: sequence number exhausted")
)

// Pre-built wrapped errors for the packet path.
var (
	errShort             = fmt.Errorf("%w: shorter than header, iv, minimal ciphertext and icv", ErrShort)
	errWrongSPI          = fmt.Errorf("%w: spi does not belong to this sa", ErrMalformed)
	errBlockLen          = fmt.Errorf("%w: ciphertext is not a whole number of cipher blocks", ErrMalformed)
	errAuth              = fmt.Errorf("%w: icv mismatch", ErrAuth)
	errReplayEarly       = fmt.Errorf("%w: sequence number seen or below the window", ErrReplay)
	errReplay            = fmt.Errorf("%w: sequence number seen or below the window (accept)", ErrReplay)
	errPadLen            = fmt.Errorf("%w: pad length exceeds the plaintext", ErrPadding)
	errPadBytes          = fmt.Errorf("%w: padding octets are not 1, 2, 3...", ErrPadding)
	errDummy             = fmt.Errorf("%w: next header 59", ErrDummy)
	errTunnelNextHeader  = fmt.Errorf("%w: tunnel mode needs next header 4 or 41", ErrMalformed)
	errInnerMismatch     = fmt.Errorf("%w: inner ip version does not match next header", ErrMalformed)
	errInnerLength       = fmt.Errorf("%w: inner ip length fields do not match the packet", ErrMalformed)
	errInnerShort        = fmt.Errorf("%w: ip packet shorter than its header", ErrMalformed)
	errInnerVersion      = fmt.Errorf("%w: not an ipv4 or ipv6 packet", ErrMalformed)
	errTransportFragment = fmt.Errorf("%w: transport mode protects whole datagrams, not fragments (RFC 4303 §3.1.1)", ErrMalformed)
	errTooBig            = fmt.Errorf("%w: payload larger than an ip packet can be", ErrMalformed)
	errOuterAddrs        = errors.New("esp: transport mode needs valid outer source and destination addresses of one family")
	errDummyLen          = errors.New("esp: dummy payload length out of range")
)

// Limits bounds an SA's use; a zero field means no limit.
type Limits struct {
	Bytes   uint64        // octets of inner IP packets
	Packets uint64        // packets
	Time    time.Duration // since the SA was created
}

// Lifetime holds an SA's soft limits (time to rekey) and hard limits (the
// SA must not be used any more), RFC 4301 §4.4.2.1.
type Lifetime struct {
	Soft, Hard Limits
}

// LifetimeState is where an SA stands against its lifetime.
type LifetimeState uint8

const (
	LifetimeOK   LifetimeState = iota // within all limits
	LifetimeSoft                      // a soft limit was reached: rekey
	LifetimeHard                      // a hard limit was reached: unusable
)

// String returns "ok", "soft" or "hard".
func (s LifetimeState) String() string {
	switch s {
	case LifetimeOK:
		return "ok"
	case LifetimeSoft:
		return "soft"
	case LifetimeHard:
		return "hard"
	}
	return fmt.Sprintf("lifetime(%d)", uint8(s))
}

// Config describes one SA. ESP SAs are unidirectional: a Config is either
// an inbound or an outbound SA, though the same SA value can do both, which
// tests use.
type Config struct {
	SPI       uint32
	Mode      Mode
	Algorithm Algorithm
	// Key is the encryption key; for AES-GCM and ChaCha20-Poly1305 the
	// 4-octet salt follows it. NewSA copies it; the caller may zero its copy.
	Key []byte
	// AuthKey is the HMAC-SHA-256 key, for AESCBCHMACSHA256 only. Copied.
	AuthKey []byte
	// ESN turns on 64-bit extended sequence numbers (RFC 4303 §2.2.1,
	// Appendix A).
	ESN bool
	// ReplayWindow is the inbound anti-replay window in packets: 0 means
	// DefaultReplayWindow; otherwise a multiple of 64 up to MaxReplayWindow;
	// negative turns anti-replay off (RFC 4303 §3.4.3 allows it; Open and
	// Accept then accept any authentic packet, replays included; with ESN
	// the high-order bits are still inferred, as if the window were
	// DefaultReplayWindow).
	ReplayWindow int
	Lifetime     Lifetime
	// OnLifetime, if set, is called at most once per state when a byte or
	// packet limit is crossed, from the Seal or Accept that crossed it, with
	// no lock held. It must be quick. Time limits are not watched here: poll
	// SA.Lifetime (the Table does, in Tick).
	OnLifetime func(spi uint32, state LifetimeState)
}

// String describes c without its keys, so that a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("esp.Config{SPI: %#08x, Mode: %s, Algorithm: %s, Key: [%d octets redacted], AuthKey: [%d octets redacted], ESN: %t, ReplayWindow: %d, Lifetime: %+v}",
		c.SPI, c.Mode, c.Algorithm, len(c.Key), len(c.AuthKey), c.ESN, c.ReplayWindow, c.Lifetime)
}

// GoString keeps keys out of %#v as well.
func (c Config) GoString() string { return c.String() }

// Validate reports everything that is wrong with c, joined.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.SPI == 0:
		errs = append(errs, errors.New("esp: config: spi: 0 is reserved and never sent (RFC 4303 §2.1); allocate one from 256 up, e.g. with SADB.AllocateSPI"))
	case c.SPI < minSPI:
		errs = append(errs, fmt.Errorf("esp: config: spi: %d is in 1-255, reserved by IANA (RFC 4303 §2.1); use 256 or more", c.SPI))
	}
	if !c.Mode.valid() {
		errs = append(errs, fmt.Errorf("esp: config: mode: %s is not tunnel or transport", c.Mode))
	}
	errs = append(errs, c.Algorithm.checkKeys(c.Key, c.AuthKey)...)
	if w := c.ReplayWindow; w > 0 && (w%replayBlockBits != 0 || w > MaxReplayWindow) {
		errs = append(errs, fmt.Errorf("esp: config: replaywindow: %d is not a multiple of %d up to %d (0 for the default %d, negative to turn anti-replay off)", w, replayBlockBits, MaxReplayWindow, DefaultReplayWindow))
	}
	l := c.Lifetime
	if l.Soft.Time < 0 || l.Hard.Time < 0 {
		errs = append(errs, errors.New("esp: config: lifetime: negative time limit"))
	}
	for _, x := range []struct {
		name       string
		soft, hard uint64
	}{
		{"bytes", l.Soft.Bytes, l.Hard.Bytes},
		{"packets", l.Soft.Packets, l.Hard.Packets},
		{"time", uint64(max(l.Soft.Time, 0)), uint64(max(l.Hard.Time, 0))},
	} {
		if x.soft != 0 && x.hard != 0 && x.soft > x.hard {
			errs = append(errs, fmt.Errorf("esp: config: lifetime: soft %s limit %d is above the hard limit %d; the soft limit must come first", x.name, x.soft, x.hard))
		}
	}
	return errors.Join(errs...)
}

// Stats counts an SA's traffic and drops. Packets and Bytes count what
// Seal sealed (outbound) or Accept accepted (inbound); Bytes are octets of
// inner IP packets.
type Stats struct {
	Packets, Bytes uint64
	AuthFailures   uint64 // ErrAuth from Open
	Replays        uint64 // ErrReplay from Open or Accept
	Malformed      uint64 // ErrShort, ErrMalformed and ErrPadding from Open
	Dummy          uint64 // ErrDummy from Open
}

// SA is one ESP security association. Seal may be called by any number of
// goroutines at once; so may Open, while one goroutine at a time calls
// Accept. See the package documentation for the pipeline.
type SA struct {
	// Fixed after NewSA.
	spi      uint32
	mode     Mode
	alg      Algorithm
	esn      bool
	maxSeq   uint64
	hdrLen   int
	overhead int
	life     Lifetime
	onLife   func(uint32, LifetimeState)
	created  time.Time

	tr    *transform    // nil once zeroed
	state atomic.Uint32 // LifetimeState, only ever raised; read per packet

	_ [cacheLinePad]byte
	// inUse counts the Seal and Open calls using tr, so that Zero never
	// wipes keys under a running operation.
	inUse guard

	_       [cacheLinePad]byte
	seq     atomic.Uint64 // last outbound sequence number handed out
	packets atomic.Uint64
	bytes   atomic.Uint64

	_            [cacheLinePad]byte
	authFailures atomic.Uint64
	replays      atomic.Uint64
	malformed    atomic.Uint64
	dummy        atomic.Uint64

	_        [cacheLinePad]byte
	acceptMu sync.Mutex
	_        [cacheLinePad]byte
	win      window // its read-mostly head, then (padded) the top Accept moves
}

// NewSA validates c and builds the SA. Keys are copied.
func NewSA(c Config) (*SA, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return newSA(c, time.Now())
}

// newSA builds an SA created at the given time, without Validate (tests
// use it for the published vectors with SPI 0).
func newSA(c Config, created time.Time) (*SA, error) {
	tr, err := newTransform(c.Algorithm, c.SPI, c.ESN, c.Key, c.AuthKey)
	if err != nil {
		return nil, fmt.Errorf("esp: sa %#08x: %w", c.SPI, err)
	}
	sa := &SA{
		spi:      c.SPI,
		mode:     c.Mode,
		alg:      c.Algorithm,
		esn:      c.ESN,
		maxSeq:   math.MaxUint32,
		hdrLen:   espHeaderLen + tr.ivLen,
		overhead: tr.overhead(),
		life:     c.Lifetime,
		onLife:   c.OnLifetime,
		created:  created,
		tr:       tr,
	}
	if c.ESN {
		sa.maxSeq = math.MaxUint64
	}
	w := c.ReplayWindow
	if w == 0 {
		w = DefaultReplayWindow
	}
	sa.win.init(w)
	return sa, nil
}

// SPI returns the SA's SPI.
func (sa *SA) SPI() uint32 { return sa.spi }

// Mode returns the SA's mode.
func (sa *SA) Mode() Mode { return sa.mode }

// Algorithm returns the SA's algorithm.
func (sa *SA) Algorithm() Algorithm { return sa.alg }

// ESN reports whether the SA uses extended sequence numbers.
func (sa *SA) ESN() bool { return sa.esn }

// Created returns when the SA was created; time lifetimes count from it.
func (sa *SA) Created() time.Time { return sa.created }

// Overhead returns the most octets Seal adds to an IP packet: ESP header,
// IV, the longest padding, trailer and ICV; not the outer IP and UDP
// headers. (Transport mode also saves the IP header, which it drops.)
func (sa *SA) Overhead() int { return sa.overhead }

// HeaderLen returns the length of the ESP header and IV: the offset of the
// payload in the packet. A tunnel-mode datapath that reads the inner
// packet into its buffer at len(dst)+HeaderLen() lets Seal encrypt it in
// place, and one that passes packet[:HeaderLen()] as Open's dst gets the
// inner packet decrypted in place: no copy either way.
func (sa *SA) HeaderLen() int { return sa.hdrLen }

// String describes the SA without its keys.
func (sa *SA) String() string {
	return fmt.Sprintf("esp sa %#08x %s %s esn=%t", sa.spi, sa.alg, sa.mode, sa.esn)
}

// Zero wipes the SA's copies of its keys. It waits for running Seal and
// Open calls; afterwards they return ErrSADeleted. Zero is idempotent.
func (sa *SA) Zero() {
	sa.inUse.close(func() {
		sa.tr.zero()
		sa.tr = nil
	})
}

// Seal appends to dst the ESP packet (the UDP payload: SPI, sequence
// number, IV, ciphertext, ICV) that protects the IP packet ip, and returns
// the extended slice.
//
// Tunnel mode: ip is the whole inner IPv4 or IPv6 packet. Transport mode:
// ip's IP header is dropped and what follows it is protected (see
// Mode.outbound for IPv4 options and IPv6 extension headers); the receiver
// rebuilds the header from the outer addresses.
//
// Seal does not allocate when cap(dst)-len(dst) >= len(ip)+sa.Overhead().
// ip may lie in dst's spare capacity. When what Seal protects (tunnel: ip;
// transport: what follows its IP header) starts at len(dst)+sa.HeaderLen()
// of dst's array, it is encrypted in place without being copied. On error
// dst is returned as it was. Safe for concurrent use: each call takes the
// next sequence number atomically.
func (sa *SA) Seal(dst, ip []byte) ([]byte, error) {
	payload, nh, err := sa.mode.outbound(ip)
	if err != nil {
		return dst, err
	}
	return sa.seal(dst, payload, 0, nh, len(ip))
}

// SealDummy appends a dummy packet of n zero octets with Next Header 59
// (RFC 4303 §2.6), for traffic flow confidentiality and tests. The
// receiver's Open returns ErrDummy for it.
func (sa *SA) SealDummy(dst []byte, n int) ([]byte, error) {
	if n < 0 || n > maxIPPacket {
		return dst, errDummyLen
	}
	return sa.seal(dst, nil, n, protoNoNext, n)
}

func (sa *SA) seal(dst, payload []byte, fill int, nh byte, count int) ([]byte, error) {
	if len(payload) > maxIPPacket {
		return dst, errTooBig
	}
	g := sa.inUse.enter()
	if g == nil {
		return dst, ErrSADeleted
	}
	if LifetimeState(sa.state.Load()) == LifetimeHard {
		sa.inUse.exit(g)
		return dst, ErrLifetime
	}
	seq, err := sa.nextSeq()
	if err != nil {
		sa.inUse.exit(g)
		return dst, err
	}
	fire, err := sa.charge(count)
	out := dst
	if err == nil {
		out = sa.tr.seal(dst, payload, fill, nh, seq, nil)
	}
	sa.inUse.exit(g)
	sa.notify(fire)
	return out, err
}

// sealWithSeq seals payload with the given Next Header, sequence number
// and IV, outside sequence allocation and lifetimes: for the published
// known-answer tests only.
func (sa *SA) sealWithSeq(dst, payload []byte, nh byte, seq uint64, iv []byte) ([]byte, error) {
	g := sa.inUse.enter()
	if g == nil {
		return dst, ErrSADeleted
	}
	defer sa.inUse.exit(g)
	return sa.tr.seal(dst, payload, 0, nh, seq, iv), nil
}

// nextSeq hands out the next outbound sequence number. RFC 4303 §3.3.3:
// the counter must never cycle; a compare-and-swap (not an add) makes sure
// that no goroutine gets a number past the last one, however many race.
func (sa *SA) nextSeq() (uint64, error) {
	for {
		cur := sa.seq.Load()
		if cur >= sa.maxSeq {
			return 0, ErrSeqExhausted
		}
		if sa.seq.CompareAndSwap(cur, cur+1) {
			return cur + 1, nil
		}
	}
}

// charge counts one packet of n octets against the lifetime. A packet that
// would take the SA past a hard limit is refused, not counted, and latches
// the SA in LifetimeHard: at most Hard.Packets packets and Hard.Bytes
// octets are ever processed. The soft state is reached when a count
// reaches its soft limit. It returns the state to announce, if any.
func (sa *SA) charge(n int) (LifetimeState, error) {
	un := uint64(max(n, 0))
	p := sa.packets.Add(1)
	b := sa.bytes.Add(un)
	h, s := &sa.life.Hard, &sa.life.Soft
	if (h.Packets != 0 && p > h.Packets) || (h.Bytes != 0 && b > h.Bytes) {
		sa.packets.Add(^uint64(0))
		sa.bytes.Add(-un)
		return sa.raise(LifetimeHard), ErrLifetime
	}
	if (s.Packets != 0 && p >= s.Packets) || (s.Bytes != 0 && b >= s.Bytes) {
		return sa.raise(LifetimeSoft), nil
	}
	return LifetimeOK, nil
}

// raise moves the lifetime state up to st and returns st if this call did
// it (so that it is announced once), else LifetimeOK.
func (sa *SA) raise(st LifetimeState) LifetimeState {
	for {
		cur := sa.state.Load()
		if cur >= uint32(st) {
			return LifetimeOK
		}
		if sa.state.CompareAndSwap(cur, uint32(st)) {
			return st
		}
	}
}

func (sa *SA) notify(st LifetimeState) {
	if st != LifetimeOK && sa.onLife != nil {
		sa.onLife(sa.spi, st)
	}
}

// Open authenticates and decrypts the ESP packet packet (a UDP payload)
// and returns the inner IP packet and its full 64-bit sequence number.
// Pass the sequence number to Accept, in arrival order, before using the
// packet: Open only rejects what is certainly a replay at the time (below
// the window, or seen) and never changes the window, so that one SA's
// packets can be opened on all cores at once.
//
// The IP packet is written at dst[len(dst):] (dst grows if it lacks the
// capacity) and the returned slice is exactly the IP packet. dst may
// overlap packet: then packet is decrypted in place and the result moved
// to its place. In tunnel mode, dst = packet[:sa.HeaderLen()] decrypts in
// place with no copy at all. packet's contents are undefined after an
// overlapping call.
//
// Tunnel mode returns the inner packet (any traffic flow confidentiality
// padding after it removed). Transport mode builds an IP header from
// outerSrc and outerDst, the addresses of the UDP datagram as the receiver
// saw them (see putTransportHeader); tunnel mode ignores them.
//
// With ESN, the high-order bits are inferred from the window (RFC 4303
// Appendix A2) and confirmed by the ICV. Errors wrap ErrShort,
// ErrMalformed, ErrAuth, ErrReplay, ErrPadding, ErrDummy (then seq is
// valid and must be passed to Accept), ErrSADeleted or ErrLifetime.
func (sa *SA) Open(dst, packet []byte, outerSrc, outerDst netip.Addr) (ip []byte, seq uint64, err error) {
	if LifetimeState(sa.state.Load()) == LifetimeHard {
		return nil, 0, ErrLifetime
	}
	g := sa.inUse.enter()
	if g == nil {
		return nil, 0, ErrSADeleted
	}
	ip, seq, err = sa.open(sa.tr, dst, packet, outerSrc, outerDst)
	sa.inUse.exit(g)
	if err != nil {
		sa.countDrop(err)
	}
	return ip, seq, err
}

func (sa *SA) open(tr *transform, dst, packet []byte, outerSrc, outerDst netip.Addr) ([]byte, uint64, error) {
	if len(packet) < sa.hdrLen+tr.minCT+icvLen {
		return nil, 0, errShort
	}
	if binary.BigEndian.Uint32(packet[offSPI:]) != sa.spi {
		return nil, 0, errWrongSPI
	}
	lo := binary.BigEndian.Uint32(packet[offSeq:])
	seq := uint64(lo)
	if sa.esn {
		seq = sa.win.infer(lo)
	}
	// RFC 4303 §3.4.3: the duplicate check comes first, so a replay is
	// rejected before the cost of the ICV.
	if !sa.win.check(seq) {
		return nil, seq, errReplayEarly
	}
	ctLen := len(packet) - sa.hdrLen - icvLen
	if tr.block != nil && ctLen%aesBlockLen != 0 {
		return nil, seq, errBlockLen
	}
	ipHdr := 0
	if sa.mode == ModeTransport {
		var err error
		if ipHdr, err = transportHeaderLen(outerSrc, outerDst); err != nil {
			return nil, seq, err
		}
		if ipHdr+ctLen > maxIPPacket {
			return nil, seq, errTooBig
		}
	}
	_, out := sliceForAppend(dst, ipHdr+ctLen)
	plain, err := tr.open(out[ipHdr:], packet, seq)
	if err != nil {
		return nil, seq, err
	}
	payload, nh, err := trailer(plain)
	if err != nil {
		return nil, seq, err
	}
	if nh == protoNoNext {
		return nil, seq, errDummy
	}
	if sa.mode == ModeTunnel {
		ip, err := tunnelInner(payload, nh)
		return ip, seq, err
	}
	ip := out[:ipHdr+len(payload)]
	putTransportHeader(ip, ipHdr, nh, outerSrc, outerDst)
	return ip, seq, nil
}

// trailer splits a decrypted plaintext into payload and Next Header and
// checks the padding (RFC 4303 §2.4: the receiver should inspect it).
func trailer(plain []byte) (payload []byte, nh byte, err error) {
	n := len(plain)
	if n < trailerLen {
		return nil, 0, errPadLen
	}
	pad := int(plain[n-2])
	if pad+trailerLen > n {
		return nil, 0, errPadLen
	}
	end := n - trailerLen - pad
	for i := range pad {
		if plain[end+i] != byte(i+1) {
			return nil, 0, errPadBytes
		}
	}
	return plain[:end], plain[n-1], nil
}

func (sa *SA) countDrop(err error) {
	switch {
	case errors.Is(err, ErrAuth):
		sa.authFailures.Add(1)
	case errors.Is(err, ErrReplay):
		sa.replays.Add(1)
	case errors.Is(err, ErrDummy):
		sa.dummy.Add(1)
	case errors.Is(err, ErrShort), errors.Is(err, ErrMalformed), errors.Is(err, ErrPadding):
		sa.malformed.Add(1)
	}
}

// Accept checks seq, returned by a successful Open (or one that returned
// ErrDummy), against the anti-replay window and records it (RFC 4303
// §3.4.3: the window moves only for authentic packets), then counts the
// packet of n octets against the lifetimes. It returns ErrReplay for a
// duplicate or a number below the window, ErrLifetime once a hard limit is
// reached. Call it from one goroutine per SA, in arrival order (it is
// serialized anyway).
func (sa *SA) Accept(seq uint64, n int) error {
	if sa.inUse.closed() {
		return ErrSADeleted
	}
	sa.acceptMu.Lock()
	if LifetimeState(sa.state.Load()) == LifetimeHard {
		sa.acceptMu.Unlock()
		return ErrLifetime
	}
	if !sa.win.check(seq) {
		sa.acceptMu.Unlock()
		sa.replays.Add(1)
		return errReplay
	}
	fire, err := sa.charge(n)
	if err == nil {
		sa.win.update(seq) // cannot fail: checked above under the same lock
	}
	sa.acceptMu.Unlock()
	sa.notify(fire)
	return err
}

// Lifetime returns the SA's lifetime state at now, counting time from its
// creation, and latches it: once hard by time, Seal, Open and Accept
// return ErrLifetime as for byte and packet limits. It does not call
// OnLifetime; the poller reports time limits itself.
func (sa *SA) Lifetime(now time.Time) LifetimeState {
	age := now.Sub(sa.created)
	switch {
	case sa.life.Hard.Time > 0 && age >= sa.life.Hard.Time:
		sa.raise(LifetimeHard)
	case sa.life.Soft.Time > 0 && age >= sa.life.Soft.Time:
		sa.raise(LifetimeSoft)
	}
	return LifetimeState(sa.state.Load())
}

// Stats returns the SA's counters.
func (sa *SA) Stats() Stats {
	return Stats{
		Packets:      sa.packets.Load(),
		Bytes:        sa.bytes.Load(),
		AuthFailures: sa.authFailures.Load(),
		Replays:      sa.replays.Load(),
		Malformed:    sa.malformed.Load(),
		Dummy:        sa.dummy.Load(),
	}
}
