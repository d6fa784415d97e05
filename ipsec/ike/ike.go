// Package ike is Rampart's IKEv2 (RFC 7296) daemon: it negotiates,
// authenticates and installs the ESP security associations of ipsec/esp
// through the SA database contract (esp.SADB). Messages are encoded by
// ipsec/ike/message and protected by ipsec/ike/ikecrypto.
//
// The exchanges, as initiator and as responder:
//
//	IKE_SA_INIT      HDR, SAi1, KEi, Ni, N(NAT_DETECTION_*), N(FRAGMENTATION_SUPPORTED)  -->
//	                 <--  HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*), N(FRAGMENTATION_SUPPORTED)
//	IKE_AUTH         HDR, SK {IDi, [CERT,] [CERTREQ,] AUTH, SAi2, TSi, TSr, N(INITIAL_CONTACT)}  -->
//	                 <--  HDR, SK {IDr, [CERT,] AUTH, SAr2, TSi, TSr}
//	CREATE_CHILD_SA  CHILD_SA rekey (N(REKEY_SA), optional KE for PFS), a new CHILD_SA, IKE SA rekey
//	INFORMATIONAL    DELETE, dead peer detection
//
// with pre-shared keys or certificates (RFC 7427 signatures), cookies
// when half-open IKE SAs pile up (§2.6), INVALID_KE_PAYLOAD retries,
// fragmentation of large encrypted messages (RFC 7383), retransmission
// with backoff and answers to duplicate requests from a cache (§2.1), and
// simultaneous rekeys settled by their nonces (§2.8.1, §2.8.2, in
// collision.go). A responder picks the peer configuration by the identity
// the initiator proves, so many identities may share one address.
//
// Everything runs on the ESP port (4500) behind the non-ESP marker (RFC
// 3948 §2.2, RFC 7296 §2.23) once an initiator has moved there: the
// datapath is ESP in UDP, so encapsulation is always on (we signal a NAT,
// as strongSwan's encap = yes does).
package ike

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// Config is one peer: who it is, how it authenticates, what it may
// negotiate.
type Config struct {
	Name string
	// Remote is the peer's address and port (4500).
	Remote netip.AddrPort
	// LocalID is our identity, RemoteID the one the peer must prove.
	LocalID, RemoteID ikecrypto.Identity
	// PSK is the pre-shared key. The daemon keeps its own copy.
	PSK []byte
	// Or certificates (RFC 7427 digital signatures): our chain (leaf
	// first) and key, and the CAs the peer's certificate must chain to.
	Certs []*x509.Certificate
	Key   crypto.Signer
	CAs   []*x509.Certificate

	caPool *x509.CertPool
	// IKEProposals and ESPProposals in our order of preference.
	IKEProposals, ESPProposals []ikecrypto.Proposal
	// LocalTS and RemoteTS are the CHILD_SA's traffic selectors. As
	// responder, RemoteTS is also what the peer's identity may ask for:
	// authentication is not authorization.
	LocalTS, RemoteTS []netip.Prefix
	// StrictTS: the CHILD_SAs' selectors must be exactly LocalTS and
	// RemoteTS, not narrowed: a peer that asks for, or answers with,
	// anything else gets no CHILD_SA (TS_UNACCEPTABLE). For node pairs,
	// whose selectors the cluster fixes: a node that claims a pod CIDR not
	// its own is refused outright.
	StrictTS bool
	// Transport asks for transport mode (USE_TRANSPORT_MODE).
	Transport bool
	// ChildRekeyTime is when a CHILD_SA is rekeyed (0: never by time; the
	// peer may still rekey). The soft lifetime is set 0-10% below it at
	// random, so two peers with the same setting rarely collide (§2.8.1);
	// the hard lifetime 10% above it.
	ChildRekeyTime time.Duration
	// RekeyTime is when the IKE SA is rekeyed (0: never by us).
	RekeyTime time.Duration
	// DPDInterval: when nothing authentic came from the peer for this
	// long, an empty INFORMATIONAL request checks it is alive (RFC 7296
	// §2.4); no answer after the retransmissions ends the IKE SA and its
	// CHILD_SAs, so traffic to the peer is dropped, not sent in clear.
	// 0: off.
	DPDInterval time.Duration
	// Keep keeps an IKE SA with the peer up: when there is none (never
	// made, failed, or ended by dead peer detection or a DELETE), Tick
	// initiates one, again and again with a growing pause (1 s doubling to
	// 30 s), as strongSwan's start_action = start with keyingtries =
	// %forever and dpd_action = restart do.
	Keep bool
	// ReplayWindow is the inbound anti-replay window of the CHILD_SAs, as
	// esp.Config.ReplayWindow (0: esp's default).
	ReplayWindow int

	// Keep's state: the next attempt, and how many failed in a row.
	retryAt  time.Time
	attempts int
}

// Sender sends an IKE message (without the non-ESP marker, which the
// sender adds) to remote on the ESP port.
type Sender func(msg []byte, remote netip.AddrPort) error

// Options are the daemon's knobs.
type Options struct {
	Logger *slog.Logger
	// Rand is the source of SPIs, nonces and DH keys; default crypto/rand.
	Rand io.Reader
	// Retransmit is the first retransmission timeout, doubled each time
	// (RFC 7296 §2.4); Tries the number of sends before giving up.
	Retransmit time.Duration
	Tries      int
	// OnEstablished, if set, is called (without locks held) when a
	// CHILD_SA is installed, or when negotiation with a peer fails (err).
	OnEstablished func(peer string, err error)
	// FragmentSize is the largest IP datagram an IKE message is sent in
	// when the peer supports IKE fragmentation (RFC 7383): larger
	// encrypted messages, such as an IKE_AUTH with certificates, go in
	// SKF fragments. Default 1280 (strongSwan's); negative: fragmentation
	// off (not offered, fragments refused).
	FragmentSize int
	// CookieThreshold is the number of half-open IKE SAs (IKE_SA_INIT
	// answered, IKE_AUTH not yet) at which the responder asks initiators
	// to prove their address with a COOKIE before it computes anything
	// (RFC 7296 §2.6). Default 32; negative: always.
	CookieThreshold int
	// HalfOpenTimeout removes a half-open IKE SA whose IKE_AUTH does not
	// come. Default 30 s.
	HalfOpenTimeout time.Duration
}

// Daemon runs the IKE SAs of a node.
type Daemon struct {
	sadb  esp.SADB
	send  Sender
	opts  Options
	log   *slog.Logger
	mu    sync.Mutex
	peers map[string]*Config
	sas   map[uint64]*ikeSA // by our SPI
	// halfOpen finds the responder SA of a retransmitted IKE_SA_INIT
	// request, which carries no responder SPI yet.
	halfOpen map[halfOpenKey]*ikeSA
	cookies  cookieJar
	idx      *peerIndex // built on demand from peers
}

type halfOpenKey struct {
	spiI   uint64
	remote netip.AddrPort
}

// New makes a daemon that installs CHILD_SAs in sadb and sends with send.
func New(sadb esp.SADB, send Sender, opts Options) *Daemon {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Retransmit == 0 {
		opts.Retransmit = time.Second
	}
	if opts.Tries == 0 {
		opts.Tries = 5
	}
	if opts.FragmentSize == 0 {
		opts.FragmentSize = 1280
	}
	if opts.CookieThreshold == 0 {
		opts.CookieThreshold = 32
	}
	if opts.HalfOpenTimeout == 0 {
		opts.HalfOpenTimeout = 30 * time.Second
	}
	return &Daemon{sadb: sadb, send: send, opts: opts, log: opts.Logger,
		peers: map[string]*Config{}, sas: map[uint64]*ikeSA{}, halfOpen: map[halfOpenKey]*ikeSA{}}
}

// AddPeer configures a peer. The daemon keeps its own copy of the key.
func (d *Daemon) AddPeer(c Config) error {
	if c.Name == "" || !c.Remote.IsValid() {
		return errors.New("ike: a peer needs a name and an address")
	}
	if (len(c.PSK) == 0) == (c.Key == nil) {
		return errors.New("ike: a peer needs either a pre-shared key or a certificate and key")
	}
	if c.Key != nil && (len(c.Certs) == 0 || len(c.CAs) == 0) {
		return errors.New("ike: certificate authentication needs our certificate and the CAs to trust")
	}
	if c.Key != nil {
		c.caPool = x509.NewCertPool()
		for _, ca := range c.CAs {
			c.caPool.AddCert(ca)
		}
	}
	if len(c.IKEProposals) == 0 {
		c.IKEProposals = ikecrypto.DefaultIKEProposals()
	}
	if len(c.ESPProposals) == 0 {
		c.ESPProposals = ikecrypto.DefaultESPProposals()
	}
	c.PSK = bytes.Clone(c.PSK)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.peers[c.Name] = &c
	d.idx = nil
	return nil
}

type state int

const (
	stateInitSent state = iota // initiator: IKE_SA_INIT request sent
	stateAuthSent              // initiator: IKE_AUTH request sent
	stateInitDone              // responder: IKE_SA_INIT answered
	stateEstablished
	stateFailed
)

// ikeSA is one IKE SA and its exchange state. Guarded by Daemon.mu.
type ikeSA struct {
	cfg        *Config
	initiator  bool
	spiI, spiR uint64
	state      state
	remote     netip.AddrPort

	peerHashes []ikecrypto.HashAlgorithm // SIGNATURE_HASH_ALGORITHMS the peer sent
	dh         *ikecrypto.PrivateKey
	dhPub      []byte // initiator: our KE data, sent again with a COOKIE
	cookie     []byte // initiator: the responder's COOKIE (RFC 7296 §2.6)
	cookies    int    // initiator: how many times the responder asked for one
	created    time.Time
	initFrom   netip.AddrPort // responder: where the IKE_SA_INIT came from (the halfOpen key)
	group      ikecrypto.DHGroup
	ni, nr     []byte
	msg1, msg2 []byte // the IKE_SA_INIT request and response, as sent: AUTH signs them
	keys       *ikecrypto.Keys
	out, in    *ikecrypto.SK

	// fragments: both ends sent IKEV2_FRAGMENTATION_SUPPORTED; requests
	// and responses then may come, and go, in SKF fragments (RFC 7383),
	// reassembled apart since a request of the peer and the response to
	// ours may be in flight together.
	fragments         bool
	reqFrag, respFrag message.Reassembler

	// Initiator: the request in flight and its retransmission timer.
	nextID  uint32
	request [][]byte // the datagrams: one, or the fragments
	tries   int
	timer   *time.Timer
	// Requests from the peer: the next message ID expected, and the last
	// response, sent again for a duplicate (RFC 7296 §2.1, window of one).
	peerNext     uint32
	lastResponse [][]byte

	childSPI uint32      // our inbound SPI of the first CHILD_SA, while IKE_AUTH runs
	children []childPair // the CHILD_SAs of this IKE SA
	// rekeys are the CHILD_SAs we are rekeying, by old inbound SPI, to
	// notice and settle a simultaneous rekey by the peer (§2.8.1).
	rekeys map[uint32]*collision

	// Requests we start once established (CREATE_CHILD_SA, INFORMATIONAL):
	// pending handles the response of the one in flight; queue holds the
	// ones waiting for it (window of one, RFC 7296 §2.3).
	lastHeard   time.Time // the last authentic message from the peer
	established time.Time
	rekeying    bool // an IKE SA rekey of ours is under way
	// rekeyAfter is when, after established, we rekey the IKE SA:
	// RekeyTime less 0-10% at random, so that two peers with the same
	// setting rarely collide (§2.8.2). Set on the first Tick.
	rekeyAfter time.Duration
	// ikeRekeys tracks our rekey of this IKE SA, to settle a simultaneous
	// one by the peer (§2.8.2).
	ikeRekeys *ikeCollision
	// collidedWith is, on a new IKE SA that the peer's rekey made while
	// our rekey of the same IKE SA was under way, that old IKE SA, until
	// the collision is settled.
	collidedWith *ikeSA
	// deleting: our DELETE of this IKE SA is out; if it goes unanswered
	// (the peer removed the SA first), the SA goes quietly.
	deleting        bool
	pending         func(*message.Message)
	pendingExchange message.ExchangeType
	queue           []func()
}

// childPair is a CHILD_SA as installed: our inbound SPI (the SADB's key),
// the peer's, and the selectors (a rekey asks for the same).
type childPair struct {
	in, out           uint32
	localTS, remoteTS []netip.Prefix
	rekeying          bool // we started a rekey of it
	replaced          bool // the peer rekeyed it: only its DELETE is to come
}

func (sa *ikeSA) ourSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

func (d *Daemon) random(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(d.opts.Rand, b)
	return b, err
}

func (d *Daemon) newSPI() (uint64, error) {
	for {
		b, err := d.random(8)
		if err != nil {
			return 0, err
		}
		spi := binary.BigEndian.Uint64(b)
		if _, taken := d.sas[spi]; spi != 0 && !taken {
			return spi, nil
		}
	}
}

// nonceLen: RFC 7296 §2.10 asks for at least half the PRF's key size and
// 16 octets; 32 covers every PRF we offer.
const nonceLen = 32

// Initiate starts the IKE SA with a configured peer.
func (d *Daemon) Initiate(peer string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, ok := d.peers[peer]
	if !ok {
		return fmt.Errorf("ike: no peer %q", peer)
	}
	return d.initiateLocked(cfg)
}

func (d *Daemon) initiateLocked(cfg *Config) error {
	peer := cfg.Name
	if cfg.Remote.Addr().IsUnspecified() {
		return fmt.Errorf("ike: peer %s has no address to initiate to (it answers any address)", peer)
	}
	spi, err := d.newSPI()
	if err != nil {
		return err
	}
	sa := &ikeSA{cfg: cfg, initiator: true, spiI: spi, remote: cfg.Remote, state: stateInitSent, created: time.Now()}
	if len(cfg.IKEProposals[0].DH) == 0 {
		return fmt.Errorf("ike: peer %s: the first IKE proposal has no DH group", peer)
	}
	sa.group = cfg.IKEProposals[0].DH[0]
	if sa.ni, err = d.random(nonceLen); err != nil {
		return err
	}
	d.sas[spi] = sa
	return d.sendInit(sa)
}

// sendInit sends (or, after INVALID_KE_PAYLOAD, sends again) the
// IKE_SA_INIT request with a new DH key of sa.group.
func (d *Daemon) sendInit(sa *ikeSA) error {
	var err error
	if sa.dh, sa.dhPub, err = ikecrypto.GenerateKey(sa.group, d.opts.Rand); err != nil {
		return err
	}
	return d.sendInitMessage(sa)
}

// sendInitMessage sends the IKE_SA_INIT request: with the responder's
// COOKIE first when it asked for one, the other payloads unchanged (RFC
// 7296 §2.6). The nonce stays the same across retries, so a cookie bound
// to it stays valid after an INVALID_KE_PAYLOAD.
func (d *Daemon) sendInitMessage(sa *ikeSA) error {
	m := &message.Message{Header: message.Header{SPIi: sa.spiI, Exchange: message.IKESAInit, Flags: message.FlagInitiator}}
	if sa.cookie != nil {
		m.Payloads = append(m.Payloads, message.NewNotify(message.NotifyCookie, sa.cookie))
	}
	m.Payloads = append(m.Payloads,
		&message.SA{Proposals: wireProposals(sa.cfg.IKEProposals, message.ProtocolIKE, nil)},
		&message.KE{Group: message.DHGroup(sa.group), Data: sa.dhPub},
		&message.Nonce{Data: sa.ni},
	)
	m.Payloads = append(m.Payloads, d.natDetection(sa)...)
	if d.opts.FragmentSize > 0 {
		m.Payloads = append(m.Payloads, message.NewNotify(message.NotifyIKEv2FragmentationSupported, nil))
	}
	if sa.cfg.Key != nil {
		m.Payloads = append(m.Payloads, signatureHashes())
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	sa.msg1 = b
	d.sendRequest(sa, [][]byte{b})
	return nil
}

// natDetection returns NAT_DETECTION_SOURCE_IP with a hash that matches no
// address, and NAT_DETECTION_DESTINATION_IP: the peer concludes we are
// behind a NAT and keeps ESP in UDP, as strongSwan does with encap = yes
// (RFC 7296 §2.23 allows the fake).
func (d *Daemon) natDetection(sa *ikeSA) []message.Payload {
	fake, _ := d.random(20)
	return []message.Payload{
		message.NewNotify(message.NotifyNATDetectionSourceIP, fake),
		message.NewNotify(message.NotifyNATDetectionDestinationIP, natHash(sa.spiI, sa.spiR, sa.remote)),
	}
}

// sendRequest sends a request (its datagrams) and arms its
// retransmission.
func (d *Daemon) sendRequest(sa *ikeSA, b [][]byte) {
	sa.request, sa.tries = b, 0
	sa.respFrag.Reset()
	d.transmit(sa)
}

func (d *Daemon) transmit(sa *ikeSA) {
	sa.tries++
	d.reply(sa.remote, sa.request)
	if sa.timer != nil {
		sa.timer.Stop()
	}
	wait := d.opts.Retransmit << (sa.tries - 1)
	sa.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		if sa.request == nil || sa.state == stateFailed {
			d.mu.Unlock()
			return
		}
		if sa.tries >= d.opts.Tries && sa.deleting {
			d.removeLocked(sa)
			d.mu.Unlock()
			return
		}
		if sa.tries >= d.opts.Tries {
			d.failLocked(sa, fmt.Errorf("no answer from %s after %d tries", sa.remote, sa.tries))
			d.mu.Unlock()
			d.notify(sa, fmt.Errorf("ike: peer %s: no answer after %d tries", sa.cfg.Name, sa.tries))
			return
		}
		d.transmit(sa)
		d.mu.Unlock()
	})
}

func (d *Daemon) stopRetransmit(sa *ikeSA) {
	sa.request = nil
	if sa.timer != nil {
		sa.timer.Stop()
	}
}

func (d *Daemon) failLocked(sa *ikeSA, err error) {
	d.removeLocked(sa)
	delete(d.halfOpen, halfOpenKey{sa.spiI, sa.initFrom})
	d.log.Warn("IKE SA failed", "peer", sa.cfg.Name, "err", err)
}

func (d *Daemon) notify(sa *ikeSA, err error) {
	if d.opts.OnEstablished != nil {
		d.opts.OnEstablished(sa.cfg.Name, err)
	}
}

// Handle processes an IKE message that arrived from remote (on the ESP
// port, the non-ESP marker removed). Malformed messages are dropped.
func (d *Daemon) Handle(b []byte, remote netip.AddrPort) {
	m, err := message.Parse(b)
	if err != nil {
		d.log.Debug("IKE: dropped a malformed message", "from", remote, "err", err)
		return
	}
	var done func()
	d.mu.Lock()
	switch {
	case m.IsResponse():
		// The original responder answers without the I flag: we are the
		// original initiator and our SPI is SPIi; and the other way round.
		ours := m.SPIi
		if m.IsInitiator() {
			ours = m.SPIr
		}
		sa := d.sas[ours]
		if sa == nil || sa.initiator == m.IsInitiator() || m.MessageID != sa.nextID || sa.request == nil {
			break // not ours, or a late retransmission
		}
		done = d.handleResponse(sa, m, b)
	case m.Exchange == message.IKESAInit && m.SPIr == 0:
		done = d.handleInitRequest(m, b, remote)
	default:
		// A request: our SPI is the responder's if the original initiator
		// sent it, the initiator's otherwise.
		ours := m.SPIr
		if !m.IsInitiator() {
			ours = m.SPIi
		}
		sa := d.sas[ours]
		if sa == nil || sa.initiator == m.IsInitiator() {
			break
		}
		done = d.handleRequest(sa, m, b, remote)
	}
	d.mu.Unlock()
	if done != nil {
		done()
	}
}

func (d *Daemon) handleResponse(sa *ikeSA, m *message.Message, raw []byte) func() {
	if m.Exchange != message.IKESAInit {
		full, err := d.open(sa, m, &sa.respFrag)
		if err != nil {
			// §2.21.2: a response that fails integrity is dropped; the
			// request is sent again.
			d.log.Debug("IKE: a response does not decrypt", "peer", sa.cfg.Name, "exchange", m.Exchange, "err", err)
			return nil
		}
		if full == nil {
			return nil // more fragments to come
		}
		m = full
	}
	var err error
	switch {
	case sa.state == stateInitSent && m.Exchange == message.IKESAInit:
		err = d.initResponse(sa, m, raw)
	case sa.state == stateAuthSent && m.Exchange == message.IKEAuth:
		err = d.authResponse(sa, m)
		if err == nil {
			return func() { d.notify(sa, nil) }
		}
		if errors.Is(err, errAuthFailed) {
			d.refuseResponder(sa)
		}
	case sa.state == stateEstablished && sa.pending != nil && m.Exchange == sa.pendingExchange:
		d.stopRetransmit(sa)
		sa.nextID++
		sa.lastHeard = time.Now()
		p := sa.pending
		sa.pending = nil
		p(m)
		d.startQueued(sa)
		return nil
	default:
		return nil
	}
	if err != nil {
		d.failLocked(sa, err)
		return func() { d.notify(sa, fmt.Errorf("ike: peer %s: %w", sa.cfg.Name, err)) }
	}
	return nil
}

// initResponse handles the IKE_SA_INIT response and sends IKE_AUTH.
func (d *Daemon) initResponse(sa *ikeSA, m *message.Message, raw []byte) error {
	if n := m.Notify(message.NotifyCookie); n != nil {
		// The responder is under load and wants to see that we receive
		// at our address before it does any work (RFC 7296 §2.6).
		if sa.cookies++; sa.cookies > maxCookieRetries || len(n.Data) == 0 || len(n.Data) > 64 {
			return fmt.Errorf("the responder keeps asking for a COOKIE (%d times)", sa.cookies)
		}
		sa.cookie = bytes.Clone(n.Data)
		return d.sendInitMessage(sa)
	}
	if n := m.Notify(message.NotifyInvalidKEPayload); n != nil {
		g, ok := n.Group()
		if !ok || !offersGroup(sa.cfg.IKEProposals, ikecrypto.DHGroup(g)) || ikecrypto.DHGroup(g) == sa.group {
			return fmt.Errorf("the responder wants DH group %v, which we do not offer", g)
		}
		// RFC 7296 §1.2: start again with the group the responder wants.
		sa.group = ikecrypto.DHGroup(g)
		return d.sendInit(sa)
	}
	if err := errorNotify(m); err != nil {
		return err
	}
	saPayload, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	if saPayload == nil || ke == nil || nonce == nil || len(saPayload.Proposals) != 1 || m.SPIr == 0 {
		return errors.New("IKE_SA_INIT response without SA, KE, Nr or responder SPI")
	}
	offered := cryptoProposals(saPayload.Proposals)
	suite, err := ikecrypto.AcceptIKEReply(sa.cfg.IKEProposals, offered[0])
	if err != nil || suite.DH != sa.group || ikecrypto.DHGroup(ke.Group) != sa.group {
		return fmt.Errorf("the responder chose %v, which we did not offer", saPayload.Proposals[0])
	}
	gir, err := ikecrypto.SharedSecret(sa.dh, ke.Data)
	if err != nil {
		return err
	}
	defer clear(gir)
	sa.spiR, sa.nr, sa.msg2 = m.SPIr, bytes.Clone(nonce.Data), raw
	sa.peerHashes = peerHashes(m)
	if sa.keys, err = ikecrypto.DeriveIKEKeys(suite, gir, sa.ni, sa.nr, sa.spiI, sa.spiR); err != nil {
		return err
	}
	if sa.out, sa.in, err = sa.keys.SKCiphers(true); err != nil {
		return err
	}
	sa.dh = nil
	sa.fragments = d.opts.FragmentSize > 0 && m.Notify(message.NotifyIKEv2FragmentationSupported) != nil
	return d.sendAuth(sa)
}

func (d *Daemon) sendAuth(sa *ikeSA) error {
	spi, err := d.sadb.AllocateSPI()
	if err != nil {
		return err
	}
	sa.childSPI = spi
	idi := idPayload(false, sa.cfg.LocalID)
	signed, err := sa.keys.InitiatorSignedOctets(sa.msg1, sa.nr, sa.cfg.LocalID.PayloadBody())
	if err != nil {
		return err
	}
	auth, err := d.authPayload(sa, signed)
	if err != nil {
		return err
	}
	inner := []message.Payload{idi}
	inner = append(inner, certPayloads(sa.cfg)...)
	if sa.cfg.Key != nil {
		inner = append(inner, certReq(sa.cfg.CAs))
	}
	inner = append(inner, idPayload(true, sa.cfg.RemoteID), auth, message.NewNotify(message.NotifyInitialContact, nil))
	if sa.cfg.Transport {
		inner = append(inner, message.NewNotify(message.NotifyUseTransportMode, nil))
	}
	inner = append(inner,
		&message.SA{Proposals: wireProposals(sa.cfg.ESPProposals, message.ProtocolESP, spiBytes(spi))},
		message.NewTS(false, sa.cfg.LocalTS...),
		message.NewTS(true, sa.cfg.RemoteTS...),
	)
	sa.nextID = 1
	m := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: message.IKEAuth,
		Flags: message.FlagInitiator, MessageID: 1}}
	b, err := d.seal(sa, m, inner)
	if err != nil {
		return err
	}
	sa.state = stateAuthSent
	d.sendRequest(sa, b)
	return nil
}

// authResponse checks the responder's AUTH and installs the CHILD_SA.
func (d *Daemon) authResponse(sa *ikeSA, m *message.Message) error {
	if err := errorNotify(m); err != nil {
		return err
	}
	idr, _ := m.Get(message.PayloadIDr).(*message.ID)
	auth, _ := m.Get(message.PayloadAUTH).(*message.Auth)
	if idr == nil || auth == nil {
		return errors.New("IKE_AUTH response without IDr or AUTH")
	}
	if err := d.verifyPeer(sa, idr, auth, certsOf(m), sa.msg2, sa.ni, false); err != nil {
		return err
	}
	child, err := d.childFromResponse(sa, m)
	if err != nil {
		return err
	}
	d.stopRetransmit(sa)
	sa.state = stateEstablished
	sa.nextID = 2 // IKE_SA_INIT and IKE_AUTH used 0 and 1
	sa.lastHeard, sa.established = time.Now(), time.Now()
	d.log.Info("IKE SA established", "peer", sa.cfg.Name, "role", "initiator", "suite", sa.keys.Suite.String(), "child", child)
	return nil
}

// verifyPeer checks the peer's identity and its PSK AUTH (RFC 7296 §2.15).
func (d *Daemon) verifyPeer(sa *ikeSA, id *message.ID, auth *message.Auth, certs [][]byte, msg, nonce []byte, peerIsInitiator bool) error {
	got := ikecrypto.Identity{Type: ikecrypto.IDType(id.IDType), Data: id.Data}
	if !got.Equal(sa.cfg.RemoteID) {
		return fmt.Errorf("%w: the peer is %v, expected %v", errAuthFailed, got, sa.cfg.RemoteID)
	}
	want := message.AuthPSK
	if sa.cfg.Key != nil {
		want = message.AuthDigitalSignature
	}
	if auth.Method != want {
		return fmt.Errorf("%w: the peer authenticates with %v, expected %v", errAuthFailed, auth.Method, want)
	}
	// RestOf{Init,Resp}IDPayload: the ID payload's body exactly as received.
	rest := id.Body()
	var signed []byte
	var err error
	if peerIsInitiator {
		signed, err = sa.keys.InitiatorSignedOctets(msg, nonce, rest)
	} else {
		signed, err = sa.keys.ResponderSignedOctets(msg, nonce, rest)
	}
	if err != nil {
		return err
	}
	if sa.cfg.Key != nil {
		return verifySignature(sa, certs, got, signed, auth)
	}
	if err := ikecrypto.VerifyPSKAuth(sa.keys.Suite.PRF, sa.cfg.PSK, signed, auth.Data); err != nil {
		return fmt.Errorf("%w: the peer's AUTH does not verify with our pre-shared key", errAuthFailed)
	}
	return nil
}

var errAuthFailed = errors.New("authentication failed")

// refuseResponder tells a responder whose AUTH we refused, which has
// established the IKE SA on its side, that we will not use it: an
// INFORMATIONAL with N(AUTHENTICATION_FAILED) (RFC 7296 §2.21.2), sent
// once, unanswered or not; the IKE SA goes at once.
func (d *Daemon) refuseResponder(sa *ikeSA) {
	m := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: message.Informational,
		Flags: message.FlagInitiator, MessageID: 2}}
	if b, err := d.seal(sa, m, []message.Payload{message.NewNotify(message.NotifyAuthenticationFailed, nil)}); err == nil {
		d.reply(sa.remote, b)
	}
}

// errorNotify turns an error notification in a response into an error.
func errorNotify(m *message.Message) error {
	for _, n := range m.Notifies() {
		if n.NotifyType.IsError() {
			return fmt.Errorf("the peer answered %v", n.NotifyType)
		}
	}
	return nil
}

func offersGroup(ps []ikecrypto.Proposal, g ikecrypto.DHGroup) bool {
	for _, p := range ps {
		for _, x := range p.DH {
			if x == g {
				return true
			}
		}
	}
	return false
}

// maxCookieRetries bounds how often an initiator sends IKE_SA_INIT again
// with a new COOKIE before it gives up on the responder.
const maxCookieRetries = 3

// seal encrypts a request or response of ours into its datagrams: one
// message, or SKF fragments when fragmentation was negotiated and the
// message does not fit FragmentSize (RFC 7383 §2.5).
func (d *Daemon) seal(sa *ikeSA, m *message.Message, inner []message.Payload) ([][]byte, error) {
	b, err := m.MarshalEncrypted(sa.out, inner)
	if err != nil {
		return nil, err
	}
	limit := d.maxMessage(sa.remote)
	if !sa.fragments || len(b) <= limit {
		return [][]byte{b}, nil
	}
	return message.Fragment(m, sa.out, inner, limit)
}

// maxMessage is the largest IKE message that fits FragmentSize in a
// datagram to remote: less the IP and UDP headers and the non-ESP marker.
func (d *Daemon) maxMessage(remote netip.AddrPort) int {
	ip := 20
	if !remote.Addr().Unmap().Is4() {
		ip = 40
	}
	return d.opts.FragmentSize - ip - 8 - 4
}

// open decrypts a protected message of the peer. A fragment goes to the
// reassembler r: open returns nil, nil until the last one is in.
func (d *Daemon) open(sa *ikeSA, m *message.Message, r *message.Reassembler) (*message.Message, error) {
	if fragmentNumber(m) > 0 {
		if !sa.fragments {
			return nil, errors.New("an SKF fragment, but fragmentation was not negotiated")
		}
		return r.Add(m, sa.in)
	}
	if err := m.Decrypt(sa.in); err != nil {
		return nil, err
	}
	return m, nil
}

// fragmentNumber is the Fragment Number of an SKF message, 0 for others.
func fragmentNumber(m *message.Message) int {
	if n := len(m.Payloads); n > 0 {
		if f, ok := m.Payloads[n-1].(*message.EncryptedFragment); ok {
			return int(f.Number)
		}
	}
	return 0
}

func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

func idPayload(responder bool, id ikecrypto.Identity) *message.ID {
	return &message.ID{Responder: responder, IDType: message.IDType(id.Type), Data: id.Data}
}
