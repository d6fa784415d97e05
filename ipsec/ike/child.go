package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// childForRequest (responder) chooses the ESP proposal, narrows the
// traffic selectors to what the peer may ask for, installs the SA pair and
// returns the payloads of the answer.
func (d *Daemon) childForRequest(sa *ikeSA, m *message.Message) (string, []message.Payload, error) {
	saPayload, _ := m.Get(message.PayloadSA).(*message.SA)
	tsi, _ := m.Get(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Get(message.PayloadTSr).(*message.TS)
	if saPayload == nil || tsi == nil || tsr == nil {
		return "", nil, notifyError{message.NotifyInvalidSyntax, "no SA, TSi or TSr"}
	}
	offered := cryptoProposals(saPayload.Proposals)
	suite, idx, err := ikecrypto.SelectESP(sa.cfg.ESPProposals, offered, false)
	if err != nil {
		return "", nil, notifyError{message.NotifyNoProposalChosen, "no common ESP proposal"}
	}
	chosen := saPayload.Proposals[idx]
	if chosen.Protocol != message.ProtocolESP || len(chosen.SPI) != 4 {
		return "", nil, notifyError{message.NotifyNoProposalChosen, "not an ESP proposal with a 4-octet SPI"}
	}
	transport := m.Notify(message.NotifyUseTransportMode) != nil
	if transport != sa.cfg.Transport {
		return "", nil, notifyError{message.NotifyNoProposalChosen, "the peer asks for another mode"}
	}
	// Authorization: the initiator's selectors narrowed to what its
	// identity may use (our RemoteTS), ours to our LocalTS (§2.9).
	remoteTS := sa.cfg.narrowTS(prefixesOf(tsi), sa.cfg.RemoteTS)
	localTS := sa.cfg.narrowTS(prefixesOf(tsr), sa.cfg.LocalTS)
	if len(remoteTS) == 0 || len(localTS) == 0 {
		return "", nil, notifyError{message.NotifyTSUnacceptable, fmt.Sprintf("%v <=> %v is outside what %v may use", prefixesOf(tsi), prefixesOf(tsr), sa.cfg.RemoteID)}
	}
	spi, err := d.sadb.AllocateSPI()
	if err != nil {
		return "", nil, notifyError{message.NotifyTemporaryFailure, err.Error()}
	}
	peerSPI := binary.BigEndian.Uint32(chosen.SPI)
	if err := d.install(sa, suite, spi, peerSPI, localTS, remoteTS, false); err != nil {
		return "", nil, notifyError{message.NotifyTemporaryFailure, err.Error()}
	}
	reply := []message.Payload{}
	if transport {
		reply = append(reply, message.NewNotify(message.NotifyUseTransportMode, nil))
	}
	reply = append(reply,
		&message.SA{Proposals: []message.Proposal{{Number: chosen.Number, Protocol: message.ProtocolESP, SPI: spiBytes(spi), Transforms: wireTransforms(suite.ESPProposal())}}},
		message.NewTS(false, remoteTS...),
		message.NewTS(true, localTS...),
	)
	return childString(suite, spi, peerSPI, localTS, remoteTS), reply, nil
}

// childFromResponse (initiator) checks the responder's choice and installs
// the SA pair.
func (d *Daemon) childFromResponse(sa *ikeSA, m *message.Message) (string, error) {
	saPayload, _ := m.Get(message.PayloadSA).(*message.SA)
	tsi, _ := m.Get(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Get(message.PayloadTSr).(*message.TS)
	if saPayload == nil || tsi == nil || tsr == nil || len(saPayload.Proposals) != 1 {
		return "", errors.New("IKE_AUTH response without a CHILD_SA")
	}
	chosen := saPayload.Proposals[0]
	offered := cryptoProposals(saPayload.Proposals)
	suite, err := ikecrypto.AcceptESPReply(sa.cfg.ESPProposals, offered[0], false)
	if err != nil || chosen.Protocol != message.ProtocolESP || len(chosen.SPI) != 4 {
		return "", fmt.Errorf("the responder chose %v, which we did not offer", chosen)
	}
	if (m.Notify(message.NotifyUseTransportMode) != nil) != sa.cfg.Transport {
		return "", errors.New("the responder chose another mode")
	}
	// The responder may narrow; it may not widen (§2.9).
	localTS := sa.cfg.narrowTS(prefixesOf(tsi), sa.cfg.LocalTS)
	remoteTS := sa.cfg.narrowTS(prefixesOf(tsr), sa.cfg.RemoteTS)
	if len(localTS) == 0 || len(remoteTS) == 0 {
		return "", errors.New("the responder's traffic selectors are outside ours")
	}
	peerSPI := binary.BigEndian.Uint32(chosen.SPI)
	if err := d.install(sa, suite, sa.childSPI, peerSPI, localTS, remoteTS, true); err != nil {
		return "", err
	}
	return childString(suite, sa.childSPI, peerSPI, localTS, remoteTS), nil
}

// install derives the CHILD_SA keys (RFC 7296 §2.17) and adds the pair to
// the SA database. initiator says whether we initiated the exchange that
// created it: KEYMAT's first keys protect the initiator's outbound SA.
func (d *Daemon) install(sa *ikeSA, suite ikecrypto.Suite, inSPI, outSPI uint32, localTS, remoteTS []netip.Prefix, initiator bool) error {
	// A new IKE SA with a peer supersedes older ones (the peer restarted,
	// or re-initiated: INITIAL_CONTACT, RFC 7296 §2.4); their CHILD_SAs go.
	for _, other := range d.sas {
		if other != sa && other.cfg == sa.cfg && other.state == stateEstablished {
			d.log.Info("IKE SA superseded by a new one", "peer", sa.cfg.Name)
			d.removeLocked(other)
		}
	}
	return d.installKeys(sa, suite, nil, sa.ni, sa.nr, inSPI, outSPI, localTS, remoteTS, initiator, placement{})
}

// placement says how installKeys puts a new pair into the SADB.
type placement struct {
	// replace, when not 0, is the inbound SPI of the current pair the new
	// one takes over from: the SADB swaps outbound traffic to the new
	// pair at once and keeps the old inbound SA until the DELETE
	// (make-before-break).
	replace uint32
	// retiring installs the inbound SA only: the redundant pair of a
	// rekey collision (§2.8.1), deleted soon by the end that created it.
	retiring bool
}

// installKeys derives a CHILD_SA's keys from the exchange's nonces (and
// DH secret, with PFS) and installs it where place says.
func (d *Daemon) installKeys(sa *ikeSA, suite ikecrypto.Suite, gir, ni, nr []byte, inSPI, outSPI uint32, localTS, remoteTS []netip.Prefix, initiator bool, place placement) error {
	ck, err := sa.keys.ChildKeys(suite, gir, ni, nr)
	if err != nil {
		return err
	}
	defer ck.Zero()
	alg, err := espAlgorithm(suite)
	if err != nil {
		return err
	}
	mode := esp.ModeTunnel
	if sa.cfg.Transport {
		mode = esp.ModeTransport
	}
	var life esp.Lifetime
	if r := sa.cfg.ChildRekeyTime; r > 0 {
		jitter, _ := d.random(1)
		life.Soft.Time = r - r/10*time.Duration(jitter[0])/255
		// At least minHardMargin after the rekey: the SADB checks time
		// lifetimes once a second, and a short lifetime must not reach
		// its hard limit before the soft one was seen and acted on.
		life.Hard.Time = r + max(r/10, minHardMargin)
	}
	mk := func(spi uint32, key, auth []byte) esp.Config {
		return esp.Config{SPI: spi, Mode: mode, Algorithm: alg, Key: key, AuthKey: auth, ESN: suite.ESN, Lifetime: life,
			ReplayWindow: sa.cfg.ReplayWindow}
	}
	in, out := mk(inSPI, ck.EncrR, ck.IntegR), mk(outSPI, ck.EncrI, ck.IntegI)
	if !initiator {
		in, out = mk(inSPI, ck.EncrI, ck.IntegI), mk(outSPI, ck.EncrR, ck.IntegR)
	}
	if len(in.AuthKey) == 0 {
		in.AuthKey, out.AuthKey = nil, nil
	}
	pair := esp.Pair{Peer: sa.cfg.Name, Remote: sa.remote, LocalTS: localTS, RemoteTS: remoteTS, In: in, Out: out}
	switch {
	case place.retiring:
		err = d.sadb.AddRetiring(pair)
	case place.replace != 0:
		err = d.sadb.Replace(place.replace, pair)
		if errors.Is(err, esp.ErrUnknownSPI) {
			// The pair it was to take over from is gone already: the
			// peer's DELETE of a collision's redundant pair can overtake
			// the answer that settles the collision here (§2.8.1). It is
			// the only pair now.
			err = d.sadb.Add(pair)
		}
	default:
		err = d.sadb.Add(pair)
	}
	if err != nil {
		return err
	}
	sa.children = append(sa.children, childPair{in: inSPI, out: outSPI, localTS: localTS, remoteTS: remoteTS})
	return nil
}

// minHardMargin is the least time between a CHILD_SA's rekey and its
// hard lifetime.
const minHardMargin = 10 * time.Second

// MaxESPOverhead is the most that any ESP transform the proposals allow
// adds to a packet (esp.Algorithm.Overhead): the CHILD_SA that IKE
// negotiates from them adds no more.
func MaxESPOverhead(proposals []ikecrypto.Proposal) (int, error) {
	most := 0
	for _, p := range proposals {
		integ := p.Integ
		if len(integ) == 0 {
			integ = []ikecrypto.IntegID{0} // AEAD: no integrity transform
		}
		for _, e := range p.Encr {
			for _, i := range integ {
				alg, err := espAlgorithm(ikecrypto.Suite{Encr: e.ID, Integ: i})
				if err != nil {
					continue // never negotiated: the datapath has no such transform
				}
				n, err := alg.Overhead()
				if err != nil {
					return 0, err
				}
				most = max(most, n)
			}
		}
	}
	if most == 0 {
		return 0, fmt.Errorf("no ESP proposal the datapath can run")
	}
	return most, nil
}

// espAlgorithm maps a negotiated ESP suite to ipsec/esp's transform.
func espAlgorithm(s ikecrypto.Suite) (esp.Algorithm, error) {
	switch {
	case s.Encr == ikecrypto.EncrAESGCM16:
		return esp.AESGCM16, nil
	case s.Encr == ikecrypto.EncrChaCha20Poly1305:
		return esp.ChaCha20Poly1305, nil
	case s.Encr == ikecrypto.EncrAESCBC && s.Integ == ikecrypto.IntegHMACSHA256128:
		return esp.AESCBCHMACSHA256, nil
	}
	return "", fmt.Errorf("ESP suite %v has no datapath transform", s)
}

func childString(s ikecrypto.Suite, in, out uint32, local, remote []netip.Prefix) string {
	return fmt.Sprintf("%v in %#08x out %#08x %v <=> %v", s, in, out, local, remote)
}

// prefixesOf converts the selectors that are exact prefixes of all
// protocols and ports; others are ignored (we offer only those).
func prefixesOf(ts *message.TS) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ts.Selectors {
		if p, ok := s.Prefix(); ok && s.IPProtocol == 0 && s.AllPorts() {
			out = append(out, p)
		}
	}
	return out
}

// narrowTS is what the peer's selectors asked come to under ours
// (allowed): their intersection, or with StrictTS the configured ones if
// the peer asked for exactly those and nothing otherwise.
func (c *Config) narrowTS(asked, allowed []netip.Prefix) []netip.Prefix {
	if !c.StrictTS {
		return narrow(asked, allowed)
	}
	if len(asked) != len(allowed) {
		return nil
	}
	for _, a := range asked {
		if !slices.Contains(allowed, a.Masked()) {
			return nil
		}
	}
	return allowed
}

// narrow intersects two lists of prefixes: the intersection of two
// prefixes is the longer one when one holds the other.
func narrow(asked, allowed []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range asked {
		for _, b := range allowed {
			switch {
			case b.Bits() <= a.Bits() && b.Contains(a.Addr()):
				out = append(out, a)
			case a.Bits() < b.Bits() && a.Contains(b.Addr()):
				out = append(out, b)
			}
		}
	}
	return out
}

// rekeyChild answers a CREATE_CHILD_SA request that rekeys a CHILD_SA
// (RFC 7296 §1.3.3: REKEY_SA names the SA by the SPI the peer receives on,
// our outbound) or makes a new one (§1.3.1), optionally with a KE for
// perfect forward secrecy.
func (d *Daemon) rekeyChild(sa *ikeSA, m *message.Message) error {
	rekey := m.Notify(message.NotifyRekeySA)
	saPayload, _ := m.Get(message.PayloadSA).(*message.SA)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	tsi, _ := m.Get(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Get(message.PayloadTSr).(*message.TS)
	if saPayload != nil && nonce != nil && len(saPayload.Proposals) > 0 && saPayload.Proposals[0].Protocol == message.ProtocolIKE {
		return d.rekeyIKE(sa, m, saPayload, nonce)
	}
	if saPayload == nil || nonce == nil || tsi == nil || tsr == nil || (rekey != nil && len(rekey.SPI) != 4) {
		return d.answer(sa, m, message.NewNotify(message.NotifyInvalidSyntax, nil))
	}
	// Without REKEY_SA the request makes a new CHILD_SA (§1.3.1), as a
	// peer does to restore one that expired.
	var replace uint32
	var col *collision
	if rekey != nil {
		oldOut := binary.BigEndian.Uint32(rekey.SPI)
		found := false
		for i, c := range sa.children {
			if c.out == oldOut {
				replace, found = c.in, true
				col = sa.rekeys[c.in] // we are rekeying it too
				if col == nil {
					sa.children[i].replaced = true
				}
			}
		}
		if !found {
			return d.answer(sa, m, &message.Notify{Protocol: message.ProtocolESP, SPI: rekey.SPI, NotifyType: message.NotifyChildSANotFound})
		}
	} else if i := slices.IndexFunc(sa.children, func(c childPair) bool { return !c.replaced }); i >= 0 {
		// A new CHILD_SA while we hold one: the peer lost its own (it
		// expired there first). The SADB keeps one pair per peer, so the
		// new one takes over, and ours goes after the grace period.
		replace = sa.children[i].in
		sa.children[i].replaced = true
	}
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	offered := cryptoProposals(saPayload.Proposals)
	suite, idx, err := ikecrypto.SelectESP(sa.cfg.ESPProposals, offered, ke != nil)
	if err != nil {
		return d.answer(sa, m, message.NewNotify(message.NotifyNoProposalChosen, nil))
	}
	chosen := saPayload.Proposals[idx]
	if len(chosen.SPI) != 4 {
		return d.answer(sa, m, message.NewNotify(message.NotifyNoProposalChosen, nil))
	}
	var gir, pub []byte
	if ke != nil {
		if ikecrypto.DHGroup(ke.Group) != suite.DH {
			return d.answer(sa, m, message.NewInvalidKEPayload(message.DHGroup(suite.DH)))
		}
		priv, p, err := ikecrypto.GenerateKey(suite.DH, d.opts.Rand)
		if err != nil {
			return err
		}
		if gir, err = ikecrypto.SharedSecret(priv, ke.Data); err != nil {
			return d.answer(sa, m, message.NewNotify(message.NotifyInvalidSyntax, nil))
		}
		defer clear(gir)
		pub = p
	}
	remoteTS := sa.cfg.narrowTS(prefixesOf(tsi), sa.cfg.RemoteTS)
	localTS := sa.cfg.narrowTS(prefixesOf(tsr), sa.cfg.LocalTS)
	if len(remoteTS) == 0 || len(localTS) == 0 {
		return d.answer(sa, m, message.NewNotify(message.NotifyTSUnacceptable, nil))
	}
	nr, err := d.random(nonceLen)
	if err != nil {
		return err
	}
	spi, err := d.sadb.AllocateSPI()
	if err != nil {
		return d.answer(sa, m, message.NewNotify(message.NotifyTemporaryFailure, nil))
	}
	peerSPI := binary.BigEndian.Uint32(chosen.SPI)
	place, ours := placement{replace: replace}, (*childRekey)(nil)
	if col != nil {
		// A simultaneous rekey (§2.8.1): ours and this one both replace
		// the same CHILD_SA. If ours is done, both pairs are known now.
		col.theirs = &childRekey{in: spi, ni: bytes.Clone(nonce.Data), nr: nr}
		if col.ours != nil {
			place, ours = d.settleCollision(sa, replace, col)
		}
	}
	if err := d.installKeys(sa, suite, gir, nonce.Data, nr, spi, peerSPI, localTS, remoteTS, false, place); err != nil {
		return d.answer(sa, m, message.NewNotify(message.NotifyTemporaryFailure, nil))
	}
	if ours != nil {
		d.deleteRedundant(sa, ours.in)
	}
	reply := []message.Payload{
		&message.SA{Proposals: []message.Proposal{{Number: chosen.Number, Protocol: message.ProtocolESP, SPI: spiBytes(spi), Transforms: wireTransforms(suite.ESPProposal())}}},
		&message.Nonce{Data: nr},
	}
	if ke != nil {
		reply = append(reply, &message.KE{Group: message.DHGroup(suite.DH), Data: pub})
	}
	reply = append(reply, message.NewTS(false, remoteTS...), message.NewTS(true, localTS...))
	what := "CHILD_SA created by the peer"
	if replace != 0 {
		what = "CHILD_SA rekeyed by the peer"
	}
	d.log.Info(what, "peer", sa.cfg.Name, "child", childString(suite, spi, peerSPI, localTS, remoteTS))
	return d.answer(sa, m, reply...)
}
