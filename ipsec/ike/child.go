package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

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
	offered, err := cryptoProposals(saPayload.Proposals)
	if err != nil {
		return "", nil, notifyError{message.NotifyNoProposalChosen, err.Error()}
	}
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
	remoteTS := narrow(prefixesOf(tsi), sa.cfg.RemoteTS)
	localTS := narrow(prefixesOf(tsr), sa.cfg.LocalTS)
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
	offered, err := cryptoProposals(saPayload.Proposals)
	if err != nil {
		return "", err
	}
	suite, err := ikecrypto.AcceptESPReply(sa.cfg.ESPProposals, offered[0], false)
	if err != nil || chosen.Protocol != message.ProtocolESP || len(chosen.SPI) != 4 {
		return "", fmt.Errorf("the responder chose %v, which we did not offer", chosen)
	}
	if (m.Notify(message.NotifyUseTransportMode) != nil) != sa.cfg.Transport {
		return "", errors.New("the responder chose another mode")
	}
	// The responder may narrow; it may not widen (§2.9).
	localTS := narrow(prefixesOf(tsi), sa.cfg.LocalTS)
	remoteTS := narrow(prefixesOf(tsr), sa.cfg.RemoteTS)
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
	ck, err := sa.keys.ChildKeys(suite, nil, sa.ni, sa.nr)
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
	mk := func(spi uint32, key, auth []byte) esp.Config {
		return esp.Config{SPI: spi, Mode: mode, Algorithm: alg, Key: key, AuthKey: auth, ESN: suite.ESN}
	}
	in, out := mk(inSPI, ck.EncrR, ck.IntegR), mk(outSPI, ck.EncrI, ck.IntegI)
	if !initiator {
		in, out = mk(inSPI, ck.EncrI, ck.IntegI), mk(outSPI, ck.EncrR, ck.IntegR)
	}
	if len(in.AuthKey) == 0 {
		in.AuthKey, out.AuthKey = nil, nil
	}
	if err := d.sadb.Add(esp.Pair{Peer: sa.cfg.Name, Remote: sa.remote, LocalTS: localTS, RemoteTS: remoteTS, In: in, Out: out}); err != nil {
		return err
	}
	sa.children = append(sa.children, childPair{in: inSPI, out: outSPI})
	return nil
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
