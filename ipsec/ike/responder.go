package ike

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// peerIndex finds the configured peers that may answer an IKE SA, without
// a walk over every peer per handshake (a gateway may have thousands of
// identities): by address, those at any address by family, and by the
// identity they must prove. Each list is sorted by name. It is rebuilt
// after AddPeer changed the peers.
type peerIndex struct {
	byAddr map[netip.Addr][]*Config
	any4   []*Config // at 0.0.0.0
	any6   []*Config // at ::
	byID   map[string][]*Config
}

func (d *Daemon) index() *peerIndex {
	if d.idx != nil {
		return d.idx
	}
	x := &peerIndex{byAddr: map[netip.Addr][]*Config{}, byID: map[string][]*Config{}}
	names := make([]string, 0, len(d.peers))
	for n := range d.peers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := d.peers[n]
		switch a := c.Remote.Addr().Unmap(); {
		case a.IsUnspecified() && a.Is4():
			x.any4 = append(x.any4, c)
		case a.IsUnspecified():
			x.any6 = append(x.any6, c)
		default:
			x.byAddr[a] = append(x.byAddr[a], c)
		}
		k := idKey(c.RemoteID)
		x.byID[k] = append(x.byID[k], c)
	}
	d.idx = x
	return x
}

// maxTried bounds the configurations whose IKE proposals an IKE_SA_INIT
// is matched against, of those at its address and of those at any
// address: an unauthenticated request must not cost a walk over thousands
// of identities. A gateway with more identities than that gives them the
// same proposals; IKE_AUTH then finds the identity's own by index.
const maxTried = 64

func idKey(id ikecrypto.Identity) string { return string(rune(id.Type)) + string(id.Data) }

// candidates are the configured peers that may answer an IKE_SA_INIT from
// remote: those at its address, then those whose address is unspecified
// (0.0.0.0 or ::, any address: road warriors, or many identities behind
// one NAT), each by name. Which one it is gets settled in IKE_AUTH by the
// identity the initiator proves (selectByID).
func (d *Daemon) candidates(remote netip.AddrPort) (exact, any []*Config) {
	x := d.index()
	a := remote.Addr().Unmap()
	any = x.any6
	if a.Is4() {
		any = x.any4
	}
	return x.byAddr[a], any
}

// mayAnswer reports whether c may answer an IKE SA from remote.
func mayAnswer(c *Config, remote netip.AddrPort) bool {
	a, r := c.Remote.Addr().Unmap(), remote.Addr().Unmap()
	return a == r || (a.IsUnspecified() && a.Is4() == r.Is4())
}

// selectByID picks, among the peers that may answer remote, the one whose
// RemoteID the initiator claims and whose IKE proposals include the suite
// already negotiated, those at remote's address first; nil if there is
// none (RFC 7296 §2.15: the responder looks up the initiator's credentials
// by IDi).
func (d *Daemon) selectByID(sa *ikeSA, id ikecrypto.Identity) *Config {
	if id.Equal(sa.cfg.RemoteID) {
		return sa.cfg
	}
	var fallback *Config
	for _, c := range d.index().byID[idKey(id)] {
		if !mayAnswer(c, sa.remote) {
			continue
		}
		if _, err := ikecrypto.AcceptIKEReply(c.IKEProposals, sa.keys.Suite.IKEProposal()); err != nil {
			continue
		}
		if !c.Remote.Addr().IsUnspecified() {
			return c
		}
		if fallback == nil {
			fallback = c
		}
	}
	return fallback
}

// handleInitRequest answers an IKE_SA_INIT request (RFC 7296 §1.2).
func (d *Daemon) handleInitRequest(m *message.Message, raw []byte, remote netip.AddrPort) func() {
	if sa := d.halfOpen[halfOpenKey{m.SPIi, remote}]; sa != nil {
		// A retransmission: the same answer again (§2.1).
		if bytes.Equal(sa.msg1, raw) && sa.lastResponse != nil {
			d.reply(sa.remote, sa.lastResponse)
		}
		return nil
	}
	exact, any := d.candidates(remote)
	if len(exact)+len(any) == 0 {
		d.log.Info("IKE_SA_INIT from an unknown peer", "from", remote)
		return nil
	}
	refuse := func(n *message.Notify) {
		// Unprotected error responses carry our SPI as zero (§2.21.1).
		r := &message.Message{Header: message.Header{SPIi: m.SPIi, Exchange: message.IKESAInit, Flags: message.FlagResponse}, Payloads: []message.Payload{n}}
		if b, err := r.Marshal(); err == nil {
			d.reply(remote, [][]byte{b})
		}
	}
	saPayload, _ := m.Get(message.PayloadSA).(*message.SA)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	if saPayload == nil || ke == nil || nonce == nil {
		refuse(message.NewNotify(message.NotifyInvalidSyntax, nil))
		return nil
	}
	// Under load, no state and no DH before the initiator shows that it
	// receives at its address: it must send our COOKIE back (§2.6).
	if d.cookieRequired() {
		n := m.Notify(message.NotifyCookie)
		if n == nil || !d.cookies.valid(n.Data, nonce.Data, remote.Addr(), m.SPIi, time.Now()) {
			c, err := d.cookies.make(nonce.Data, remote.Addr(), m.SPIi, time.Now(), d.opts.Rand)
			if err == nil {
				refuse(message.NewNotify(message.NotifyCookie, c))
			}
			return nil
		}
	}
	offered := cryptoProposals(saPayload.Proposals)
	// The first peer that may answer and shares a proposal: its
	// proposals, its DH group. IKE_AUTH may switch to another one at the
	// same address, by identity.
	var cfg *Config
	var suite ikecrypto.Suite
	var idx int
	err := errors.New("no candidate")
	for _, list := range [][]*Config{exact, any} {
		for _, c := range list[:min(len(list), maxTried)] {
			if suite, idx, err = ikecrypto.SelectIKE(c.IKEProposals, offered); err == nil {
				cfg = c
				break
			}
		}
		if cfg != nil {
			break
		}
	}
	if cfg == nil {
		first := exact
		if len(first) == 0 {
			first = any
		}
		d.log.Warn("IKE_SA_INIT: no common proposal", "peer", first[0].Name, "offered", fmt.Sprint(saPayload.Proposals))
		refuse(message.NewNotify(message.NotifyNoProposalChosen, nil))
		return nil
	}
	if ikecrypto.DHGroup(ke.Group) != suite.DH {
		// RFC 7296 §1.2: tell the initiator which group we want.
		refuse(message.NewInvalidKEPayload(message.DHGroup(suite.DH)))
		return nil
	}
	spi, err := d.newSPI()
	if err != nil {
		return nil
	}
	sa := &ikeSA{cfg: cfg, spiI: m.SPIi, spiR: spi, remote: remote, state: stateInitDone, group: suite.DH,
		ni: bytes.Clone(nonce.Data), msg1: raw, created: time.Now(), initFrom: remote}
	sa.fragments = d.opts.FragmentSize > 0 && m.Notify(message.NotifyIKEv2FragmentationSupported) != nil
	priv, pub, err := ikecrypto.GenerateKey(suite.DH, d.opts.Rand)
	if err != nil {
		return nil
	}
	gir, err := ikecrypto.SharedSecret(priv, ke.Data)
	if err != nil {
		refuse(message.NewNotify(message.NotifyInvalidSyntax, nil))
		return nil
	}
	defer clear(gir)
	if sa.nr, err = d.random(nonceLen); err != nil {
		return nil
	}
	chosen := saPayload.Proposals[idx]
	r := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: message.IKESAInit, Flags: message.FlagResponse}}
	r.Payloads = []message.Payload{
		&message.SA{Proposals: []message.Proposal{{Number: chosen.Number, Protocol: message.ProtocolIKE, Transforms: wireTransforms(suite.IKEProposal())}}},
		&message.KE{Group: message.DHGroup(suite.DH), Data: pub},
		&message.Nonce{Data: sa.nr},
	}
	r.Payloads = append(r.Payloads, d.natDetection(sa)...)
	if sa.fragments {
		r.Payloads = append(r.Payloads, message.NewNotify(message.NotifyIKEv2FragmentationSupported, nil))
	}
	if cfg.Key != nil {
		r.Payloads = append(r.Payloads, certReq(cfg.CAs), signatureHashes())
	}
	sa.peerHashes = peerHashes(m)
	b, err := r.Marshal()
	if err != nil {
		return nil
	}
	if sa.keys, err = ikecrypto.DeriveIKEKeys(suite, gir, sa.ni, sa.nr, sa.spiI, sa.spiR); err != nil {
		return nil
	}
	if sa.out, sa.in, err = sa.keys.SKCiphers(false); err != nil {
		return nil
	}
	sa.msg2, sa.peerNext, sa.lastResponse = b, 1, [][]byte{b}
	d.sas[spi] = sa
	d.halfOpen[halfOpenKey{sa.spiI, remote}] = sa
	d.reply(remote, sa.lastResponse)
	return nil
}

// reply sends a message's datagrams.
func (d *Daemon) reply(remote netip.AddrPort, datagrams [][]byte) {
	for _, b := range datagrams {
		if err := d.send(b, remote); err != nil {
			d.log.Warn("IKE send", "to", remote, "err", err)
			return
		}
	}
}

// handleRequest handles a request from the peer on an IKE SA.
func (d *Daemon) handleRequest(sa *ikeSA, m *message.Message, raw []byte, remote netip.AddrPort) func() {
	switch {
	case m.MessageID+1 == sa.peerNext && sa.lastResponse != nil:
		// A retransmission (§2.1). Of a fragmented request, only
		// fragment 1 triggers the answer, not every fragment (RFC 7383
		// §2.6.1).
		if fragmentNumber(m) <= 1 {
			d.reply(sa.remote, sa.lastResponse)
		}
		return nil
	case m.MessageID != sa.peerNext:
		return nil // outside the window of one
	}
	m, err := d.open(sa, m, &sa.reqFrag)
	if err != nil {
		d.log.Debug("IKE: a request does not decrypt", "peer", sa.cfg.Name, "err", err)
		return nil // §2.21.2: a message that fails integrity is dropped silently
	}
	if m == nil {
		return nil // more fragments to come
	}
	// An authentic request from a new address or port: the initiator moved
	// to 4500 after IKE_SA_INIT (RFC 7296 §2.23), or its NAT mapping
	// changed. Answer, and send ESP, there.
	sa.remote = remote
	sa.lastHeard = time.Now()
	switch {
	case m.Exchange == message.IKEAuth && !sa.initiator && sa.state == stateInitDone:
	case m.Exchange == message.Informational && sa.state == stateEstablished:
		return d.informational(sa, m)
	case m.Exchange == message.CreateChildSA && sa.state == stateEstablished:
		if err := d.rekeyChild(sa, m); err != nil {
			d.log.Warn("CREATE_CHILD_SA", "peer", sa.cfg.Name, "err", err)
		}
		return nil
	default:
		return nil
	}
	childDesc, err := d.authRequest(sa, m)
	if err != nil {
		d.failLocked(sa, err)
		return func() { d.notify(sa, fmt.Errorf("ike: peer %s: %w", sa.cfg.Name, err)) }
	}
	delete(d.halfOpen, halfOpenKey{sa.spiI, sa.initFrom})
	sa.state, sa.established = stateEstablished, time.Now()
	d.log.Info("IKE SA established", "peer", sa.cfg.Name, "role", "responder", "suite", sa.keys.Suite.String(), "child", childDesc)
	return func() { d.notify(sa, nil) }
}

// authRequest verifies the initiator, installs the CHILD_SA and answers.
// On failure it answers with the error notification and returns the error.
func (d *Daemon) authRequest(sa *ikeSA, m *message.Message) (string, error) {
	answer := func(inner ...message.Payload) error { return d.answer(sa, m, inner...) }
	idi, _ := m.Get(message.PayloadIDi).(*message.ID)
	auth, _ := m.Get(message.PayloadAUTH).(*message.Auth)
	if idi == nil || auth == nil {
		answer(message.NewNotify(message.NotifyInvalidSyntax, nil))
		return "", errors.New("IKE_AUTH request without IDi or AUTH")
	}
	if cfg := d.selectByID(sa, ikecrypto.Identity{Type: ikecrypto.IDType(idi.IDType), Data: idi.Data}); cfg != nil {
		sa.cfg = cfg
	}
	if err := d.verifyPeer(sa, idi, auth, certsOf(m), sa.msg1, sa.nr, true); err != nil {
		answer(message.NewNotify(message.NotifyAuthenticationFailed, nil))
		return "", err
	}
	signed, err := sa.keys.ResponderSignedOctets(sa.msg2, sa.ni, sa.cfg.LocalID.PayloadBody())
	if err != nil {
		return "", err
	}
	ours, err := d.authPayload(sa, signed)
	if err != nil {
		return "", err
	}
	me := append([]message.Payload{idPayload(true, sa.cfg.LocalID)}, certPayloads(sa.cfg)...)
	child, reply, err := d.childForRequest(sa, m)
	if err != nil {
		var n notifyError
		if errors.As(err, &n) {
			// The IKE SA stands; only the CHILD_SA failed (§1.2). We answer
			// with our AUTH and the error.
			answer(append(me, ours, message.NewNotify(n.t, nil))...)
		}
		return "", err
	}
	inner := append(append(me, ours), reply...)
	if err := answer(inner...); err != nil {
		return "", err
	}
	return child, nil
}

// answer sends the protected response to request m and keeps it for
// duplicates.
func (d *Daemon) answer(sa *ikeSA, m *message.Message, inner ...message.Payload) error {
	flags := message.FlagResponse
	if sa.initiator {
		flags |= message.FlagInitiator
	}
	r := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: m.Exchange,
		Flags: flags, MessageID: m.MessageID}}
	b, err := d.seal(sa, r, inner)
	if err != nil {
		return err
	}
	sa.peerNext, sa.lastResponse = m.MessageID+1, b
	d.reply(sa.remote, b)
	return nil
}

// informational answers an INFORMATIONAL request (RFC 7296 §1.4): an empty
// one is a liveness check (dead peer detection); a DELETE of CHILD_SAs
// removes them and is answered with the DELETE of ours (§1.4.1); a DELETE
// of the IKE SA removes it and all its CHILD_SAs.
func (d *Daemon) informational(sa *ikeSA, m *message.Message) func() {
	var reply []message.Payload
	ikeGone := false
	if n := m.Notify(message.NotifyAuthenticationFailed); n != nil {
		// The initiator refused our AUTH after we had established the IKE
		// SA (RFC 7296 §2.21.2): nothing of it may be used.
		d.answer(sa, m)
		d.log.Warn("IKE SA refused by the peer: it answered AUTHENTICATION_FAILED to our authentication", "peer", sa.cfg.Name)
		d.removeLocked(sa)
		return func() { d.notify(sa, fmt.Errorf("ike: peer %s: the peer answered AUTHENTICATION_FAILED", sa.cfg.Name)) }
	}
	for _, p := range m.Payloads {
		del, ok := p.(*message.Delete)
		if !ok {
			continue
		}
		switch del.Protocol {
		case message.ProtocolIKE:
			ikeGone = true
		case message.ProtocolESP:
			var ours []uint32
			for _, spi := range del.SPIs {
				// The peer names the SPIs it receives on: our outbound.
				for i, c := range sa.children {
					if c.out == spi {
						if err := d.sadb.Delete(c.in); err != nil {
							d.log.Warn("delete CHILD_SA", "peer", sa.cfg.Name, "err", err)
						}
						ours = append(ours, c.in)
						sa.children = append(sa.children[:i], sa.children[i+1:]...)
						break
					}
				}
			}
			if len(ours) > 0 {
				reply = append(reply, &message.Delete{Protocol: message.ProtocolESP, SPIs: ours})
				d.log.Info("CHILD_SA deleted by the peer", "peer", sa.cfg.Name, "spis", fmt.Sprint(ours))
			}
		}
	}
	if ikeGone {
		d.answer(sa, m)
		if sa.ikeRekeys != nil && sa.pending != nil && sa.pendingExchange == message.CreateChildSA {
			// Our rekey of it crossed the peer's, which is done (§2.8.2):
			// the answer to ours is still to come and settles which new
			// IKE SA stays. The old one goes then.
			sa.deleting = true
			return nil
		}
		if old := sa.collidedWith; old != nil && old.ikeRekeys != nil {
			// The peer settled a collision before we did, and this new
			// IKE SA of its exchange lost: the CHILD_SAs go back to the
			// old IKE SA, whose rekey of ours is still to be answered
			// (§2.8.2).
			old.children = append(old.children, sa.children...)
			sa.children = nil
			old.ikeRekeys.theirs = nil
		}
		d.log.Info("IKE SA deleted by the peer", "peer", sa.cfg.Name)
		d.removeLocked(sa)
		return nil
	}
	d.answer(sa, m, reply...)
	return nil
}

// removeLocked deletes an IKE SA and its CHILD_SAs.
func (d *Daemon) removeLocked(sa *ikeSA) {
	for _, c := range sa.children {
		if err := d.sadb.Delete(c.in); err != nil {
			d.log.Warn("delete CHILD_SA", "peer", sa.cfg.Name, "err", err)
		}
	}
	sa.children = nil
	d.stopRetransmit(sa)
	sa.state = stateFailed
	delete(d.sas, sa.ourSPI())
	sa.keys.Zero()
	for _, sk := range []*ikecrypto.SK{sa.in, sa.out} {
		if sk != nil {
			sk.Zero()
		}
	}
}

// notifyError is a failure the peer is told about with a notification.
type notifyError struct {
	t   message.NotifyType
	why string
}

func (e notifyError) Error() string { return e.t.String() + ": " + e.why }
