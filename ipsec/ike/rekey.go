package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// Lifetime tells the daemon that the SADB reported a CHILD_SA lifetime
// event (esp.Table's Events): at the soft limit we rekey it (RFC 7296
// §1.3.3, §2.8); at the hard limit the SADB has deleted it and we forget
// it.
func (d *Daemon) Lifetime(ev esp.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sa, i := d.childOwner(ev.InSPI)
	if sa == nil {
		return
	}
	switch ev.Kind {
	case esp.EventSoftExpire:
		if sa.children[i].rekeying || sa.children[i].replaced {
			return
		}
		sa.children[i].rekeying = true
		old := sa.children[i]
		d.enqueue(sa, func() { d.sendRekey(sa, old) })
	case esp.EventHardExpire, esp.EventRetired:
		sa.children = append(sa.children[:i], sa.children[i+1:]...)
		if ev.Kind == esp.EventHardExpire && len(sa.children) == 0 && sa.cfg.Keep {
			// Expired without a rekey (a missed soft limit, a failed
			// rekey): an IKE SA kept up for traffic gets a new CHILD_SA.
			d.log.Warn("CHILD_SA expired without a rekey; creating a new one", "peer", sa.cfg.Name)
			d.enqueue(sa, func() {
				d.sendRekey(sa, childPair{localTS: sa.cfg.LocalTS, remoteTS: sa.cfg.RemoteTS})
			})
		}
	}
}

// childOwner finds the IKE SA with the CHILD_SA whose inbound SPI is spi.
func (d *Daemon) childOwner(spi uint32) (*ikeSA, int) {
	for _, sa := range d.sas {
		for i, c := range sa.children {
			if c.in == spi {
				return sa, i
			}
		}
	}
	return nil, -1
}

// enqueue runs start now if no request of ours is in flight on sa, else
// after the ones before it.
func (d *Daemon) enqueue(sa *ikeSA, start func()) {
	if sa.state != stateEstablished {
		return
	}
	if sa.pending == nil && sa.request == nil {
		start()
		return
	}
	sa.queue = append(sa.queue, start)
}

func (d *Daemon) startQueued(sa *ikeSA) {
	if len(sa.queue) > 0 && sa.pending == nil {
		next := sa.queue[0]
		sa.queue = sa.queue[1:]
		next()
	}
}

// request sends a protected request of ours on an established IKE SA and
// arms onResponse for its answer.
func (d *Daemon) request(sa *ikeSA, exchange message.ExchangeType, inner []message.Payload, onResponse func(*message.Message)) error {
	flags := message.Flags(0)
	if sa.initiator {
		flags = message.FlagInitiator
	}
	m := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: exchange, Flags: flags, MessageID: sa.nextID}}
	b, err := d.seal(sa, m, inner)
	if err != nil {
		return err
	}
	sa.pending, sa.pendingExchange = onResponse, exchange
	d.sendRequest(sa, b)
	return nil
}

// sendRekey starts a CREATE_CHILD_SA that rekeys old (§1.3.3), unless
// the peer rekeyed it while this waited in the queue. With old.in 0 it
// creates a new CHILD_SA with old's selectors instead (§1.3.1).
func (d *Daemon) sendRekey(sa *ikeSA, old childPair) {
	if i := slices.IndexFunc(sa.children, func(c childPair) bool { return c.in == old.in }); old.in != 0 && (i < 0 || sa.children[i].replaced) {
		return
	}
	spi, err := d.sadb.AllocateSPI()
	if err != nil {
		d.log.Warn("rekey: allocate SPI", "peer", sa.cfg.Name, "err", err)
		return
	}
	ni, err := d.random(nonceLen)
	if err != nil {
		return
	}
	props := sa.cfg.ESPProposals
	var priv *ikecrypto.PrivateKey
	var inner []message.Payload
	if old.in != 0 {
		inner = append(inner, &message.Notify{Protocol: message.ProtocolESP, SPI: spiBytes(old.in), NotifyType: message.NotifyRekeySA})
	}
	inner = append(inner,
		&message.SA{Proposals: wireProposals(props, message.ProtocolESP, spiBytes(spi))},
		&message.Nonce{Data: ni},
	)
	// Perfect forward secrecy when our ESP proposals name a DH group.
	if len(props) > 0 && len(props[0].DH) > 0 && props[0].DH[0] != ikecrypto.DHNone {
		var pub []byte
		if priv, pub, err = ikecrypto.GenerateKey(props[0].DH[0], d.opts.Rand); err != nil {
			return
		}
		inner = append(inner, &message.KE{Group: message.DHGroup(props[0].DH[0]), Data: pub})
	}
	inner = append(inner, message.NewTS(false, old.localTS...), message.NewTS(true, old.remoteTS...))
	if old.in != 0 {
		if sa.rekeys == nil {
			sa.rekeys = map[uint32]*collision{}
		}
		sa.rekeys[old.in] = &collision{}
	}
	err = d.request(sa, message.CreateChildSA, inner, func(m *message.Message) {
		if err := d.rekeyResponse(sa, old, spi, ni, priv, m); err != nil {
			delete(sa.rekeys, old.in)
			d.log.Warn("CHILD_SA rekey failed; the old SA stays until it expires", "peer", sa.cfg.Name, "err", err)
			for i := range sa.children {
				if sa.children[i].in == old.in {
					sa.children[i].rekeying = false
				}
			}
		}
	})
	if err != nil {
		d.log.Warn("rekey", "peer", sa.cfg.Name, "err", err)
	}
}

// rekeyResponse installs the new CHILD_SA make-before-break, then deletes
// the old one with an INFORMATIONAL DELETE (§1.4.1, §2.8).
func (d *Daemon) rekeyResponse(sa *ikeSA, old childPair, spi uint32, ni []byte, priv *ikecrypto.PrivateKey, m *message.Message) error {
	if err := errorNotify(m); err != nil {
		return err
	}
	saPayload, _ := m.Get(message.PayloadSA).(*message.SA)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	tsi, _ := m.Get(message.PayloadTSi).(*message.TS)
	tsr, _ := m.Get(message.PayloadTSr).(*message.TS)
	if saPayload == nil || nonce == nil || tsi == nil || tsr == nil || len(saPayload.Proposals) != 1 || len(saPayload.Proposals[0].SPI) != 4 {
		return fmt.Errorf("CREATE_CHILD_SA response without SA, Nr, TSi or TSr")
	}
	offered := cryptoProposals(saPayload.Proposals)
	suite, err := ikecrypto.AcceptESPReply(sa.cfg.ESPProposals, offered[0], priv != nil)
	if err != nil {
		return err
	}
	var gir []byte
	if priv != nil {
		ke, _ := m.Get(message.PayloadKE).(*message.KE)
		if ke == nil || ikecrypto.DHGroup(ke.Group) != priv.Group() {
			return fmt.Errorf("CREATE_CHILD_SA response without our DH group's KE")
		}
		if gir, err = ikecrypto.SharedSecret(priv, ke.Data); err != nil {
			return err
		}
		defer clear(gir)
	}
	localTS := sa.cfg.narrowTS(prefixesOf(tsi), sa.cfg.LocalTS)
	remoteTS := sa.cfg.narrowTS(prefixesOf(tsr), sa.cfg.RemoteTS)
	if len(localTS) == 0 || len(remoteTS) == 0 {
		return fmt.Errorf("the responder's traffic selectors are outside ours")
	}
	peerSPI := binary.BigEndian.Uint32(saPayload.Proposals[0].SPI)
	ours := &childRekey{in: spi, ni: ni, nr: bytes.Clone(nonce.Data)}
	place, redundant := placement{replace: old.in}, false
	if old.in == 0 {
		// A new CHILD_SA, not a rekey: nothing to replace or delete.
		if err := d.installKeys(sa, suite, gir, ni, nonce.Data, spi, peerSPI, localTS, remoteTS, true, placement{}); err != nil {
			return err
		}
		d.log.Info("CHILD_SA created", "peer", sa.cfg.Name, "child", childString(suite, spi, peerSPI, localTS, remoteTS))
		return nil
	}
	if col := sa.rekeys[old.in]; col != nil {
		col.ours = ours
		if col.theirs != nil {
			// The peer rekeyed the same CHILD_SA and its pair is current
			// (§2.8.1): settle it now.
			delete(sa.rekeys, old.in)
			if redundant = col.oursRedundant(); redundant {
				d.log.Info("CHILD_SA rekey collision: ours is redundant, deleting it", "peer", sa.cfg.Name, "spi", spi)
				place = placement{retiring: true}
			} else {
				d.log.Info("CHILD_SA rekey collision: the peer's is redundant", "peer", sa.cfg.Name, "spi", col.theirs.in)
				place = placement{replace: col.theirs.in}
			}
		}
	}
	if err := d.installKeys(sa, suite, gir, ni, nonce.Data, spi, peerSPI, localTS, remoteTS, true, place); err != nil {
		return err
	}
	d.log.Info("CHILD_SA rekeyed", "peer", sa.cfg.Name, "child", childString(suite, spi, peerSPI, localTS, remoteTS))
	if redundant {
		d.deleteRedundant(sa, spi)
	}
	// Delete the old pair: the peer answers with the DELETE of its side.
	d.enqueue(sa, func() {
		del := &message.Delete{Protocol: message.ProtocolESP, SPIs: []uint32{old.in}}
		d.request(sa, message.Informational, []message.Payload{del}, func(*message.Message) {
			delete(sa.rekeys, old.in) // a rekey of it by the peer now finds nothing
			d.forgetChild(sa, old.in)
		})
	})
	return nil
}

// Tick runs the timers that are not retransmissions: IKE SA rekeying,
// dead peer detection, and the expiry of half-open IKE SAs.
// The datapath calls it every second.
func (d *Daemon) Tick(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keepUp(now)
	for _, sa := range d.sas {
		if sa.state == stateInitDone && now.Sub(sa.created) > d.opts.HalfOpenTimeout {
			// Half open for too long: the IKE_AUTH is not coming (a
			// flood, or an initiator that gave up). Quietly: floods are
			// loud enough.
			d.log.Debug("half-open IKE SA expired", "peer", sa.cfg.Name, "from", sa.initFrom)
			d.removeLocked(sa)
			delete(d.halfOpen, halfOpenKey{sa.spiI, sa.initFrom})
			continue
		}
		if r := sa.cfg.RekeyTime; r > 0 && sa.rekeyAfter == 0 {
			jitter, _ := d.random(1)
			sa.rekeyAfter = r - r/10*time.Duration(jitter[0])/255
		}
		if sa.rekeyAfter > 0 && sa.state == stateEstablished && !sa.rekeying && !sa.deleting && now.Sub(sa.established) >= sa.rekeyAfter {
			sa.rekeying = true
			d.enqueue(sa, func() { d.sendRekeyIKE(sa) })
			continue
		}
		iv := sa.cfg.DPDInterval
		if iv <= 0 || sa.state != stateEstablished || sa.pending != nil || sa.request != nil || now.Sub(sa.lastHeard) < iv {
			continue
		}
		// An empty INFORMATIONAL request: the liveness check (§1.4).
		if err := d.request(sa, message.Informational, nil, func(*message.Message) {}); err != nil {
			d.log.Warn("dead peer detection", "peer", sa.cfg.Name, "err", err)
		}
	}
}

// keepUp initiates an IKE SA with every Keep peer that has none, each at
// most once per its backoff.
func (d *Daemon) keepUp(now time.Time) {
	for _, cfg := range d.peers {
		if !cfg.Keep || now.Before(cfg.retryAt) {
			continue
		}
		has := false
		for _, sa := range d.sas {
			if sa.cfg == cfg && sa.state != stateFailed {
				if sa.state == stateEstablished {
					cfg.attempts = 0
				}
				has = true
				break
			}
		}
		if has {
			continue
		}
		wait := time.Second << min(cfg.attempts, 5)
		cfg.retryAt, cfg.attempts = now.Add(min(wait, 30*time.Second)), cfg.attempts+1
		if cfg.attempts > 1 {
			d.log.Info("IKE: no IKE SA with the peer; initiating again", "peer", cfg.Name, "attempt", cfg.attempts)
		}
		if err := d.initiateLocked(cfg); err != nil {
			d.log.Warn("IKE initiate", "peer", cfg.Name, "err", err)
		}
	}
}

// SAStatus describes one IKE SA for `rampart tunnel status`; no keys.
type SAStatus struct {
	Peer        string    `json:"peer"`
	Role        string    `json:"role"`  // initiator or responder
	State       string    `json:"state"` // connecting or established
	Suite       string    `json:"suite,omitempty"`
	SPIi        string    `json:"spiI"`
	SPIr        string    `json:"spiR"`
	Remote      string    `json:"remote"`
	Established time.Time `json:"established,omitzero"`
	ChildSAs    int       `json:"childSAs"`
}

// Status lists the IKE SAs.
func (d *Daemon) Status() []SAStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []SAStatus
	for _, sa := range d.sas {
		st := SAStatus{Peer: sa.cfg.Name, Role: "responder", State: "connecting", Remote: sa.remote.String(),
			SPIi: fmt.Sprintf("%016x", sa.spiI), SPIr: fmt.Sprintf("%016x", sa.spiR), ChildSAs: len(sa.children)}
		if sa.initiator {
			st.Role = "initiator"
		}
		if sa.state == stateEstablished {
			st.State, st.Established = "established", sa.established
		}
		if sa.keys != nil {
			st.Suite = sa.keys.Suite.String()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer+out[i].SPIi < out[j].Peer+out[j].SPIi })
	return out
}

// Close ends every IKE SA with an INFORMATIONAL DELETE (RFC 7296 §1.4.1),
// so that peers drop their SAs at once instead of waiting for dead peer
// detection, waits up to timeout for the answers, and removes the CHILD_SAs.
func (d *Daemon) Close(timeout time.Duration) {
	d.mu.Lock()
	var waiting []chan struct{}
	for _, sa := range d.sas {
		if sa.state != stateEstablished {
			continue
		}
		done := make(chan struct{})
		waiting = append(waiting, done)
		sa.queue = nil
		d.stopRetransmit(sa)
		sa.pending = nil
		if err := d.request(sa, message.Informational, []message.Payload{&message.Delete{Protocol: message.ProtocolIKE}},
			func(*message.Message) { close(done) }); err != nil {
			close(done)
		}
	}
	d.mu.Unlock()
	deadline := time.After(timeout)
	for _, w := range waiting {
		select {
		case <-w:
		case <-deadline:
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sa := range d.sas {
		d.removeLocked(sa)
	}
}

// rekeyIKE answers a CREATE_CHILD_SA request that rekeys the IKE SA (RFC
// 7296 §1.3.2, §2.18): a new IKE SA with new SPIs and keys derived from
// the old SK_d and a fresh DH exchange takes over the CHILD_SAs; the peer
// then deletes the old one on the old SA.
func (d *Daemon) rekeyIKE(old *ikeSA, m *message.Message, saPayload *message.SA, nonce *message.Nonce) error {
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	offered := cryptoProposals(saPayload.Proposals)
	suite, idx, err := ikecrypto.SelectIKE(old.cfg.IKEProposals, offered)
	if err != nil || ke == nil || len(saPayload.Proposals[idx].SPI) != 8 {
		return d.answer(old, m, message.NewNotify(message.NotifyNoProposalChosen, nil))
	}
	if ikecrypto.DHGroup(ke.Group) != suite.DH {
		return d.answer(old, m, message.NewInvalidKEPayload(message.DHGroup(suite.DH)))
	}
	priv, pub, err := ikecrypto.GenerateKey(suite.DH, d.opts.Rand)
	if err != nil {
		return err
	}
	gir, err := ikecrypto.SharedSecret(priv, ke.Data)
	if err != nil {
		return d.answer(old, m, message.NewNotify(message.NotifyInvalidSyntax, nil))
	}
	defer clear(gir)
	nr, err := d.random(nonceLen)
	if err != nil {
		return err
	}
	spi, err := d.newSPI()
	if err != nil {
		return err
	}
	// The initiator of the rekey is the "i" of the new IKE SA (§2.18).
	n := &ikeSA{cfg: old.cfg, spiI: binary.BigEndian.Uint64(saPayload.Proposals[idx].SPI), spiR: spi, remote: old.remote,
		state: stateEstablished, ni: bytes.Clone(nonce.Data), nr: nr, children: old.children,
		lastHeard: time.Now(), established: time.Now()}
	if n.keys, err = old.keys.Rekey(suite, gir, n.ni, n.nr, n.spiI, n.spiR); err != nil {
		return err
	}
	if n.out, n.in, err = n.keys.SKCiphers(false); err != nil {
		return err
	}
	chosen := saPayload.Proposals[idx]
	if err := d.answer(old, m,
		&message.SA{Proposals: []message.Proposal{{Number: chosen.Number, Protocol: message.ProtocolIKE, SPI: binary.BigEndian.AppendUint64(nil, spi), Transforms: wireTransforms(suite.IKEProposal())}}},
		&message.Nonce{Data: nr},
		&message.KE{Group: message.DHGroup(suite.DH), Data: pub},
	); err != nil {
		return err
	}
	old.children = nil // they belong to the new IKE SA now
	d.sas[spi] = n
	d.log.Info("IKE SA rekeyed by the peer", "peer", old.cfg.Name, "suite", suite.String())
	if col := old.ikeRekeys; col != nil {
		// We are rekeying it too (§2.8.2).
		col.theirs, n.collidedWith = n, old
		if col.ours != nil {
			d.settleIKECollision(old, col)
		}
	}
	return nil
}

// sendRekeyIKE starts a CREATE_CHILD_SA that rekeys the IKE SA (RFC 7296
// §1.3.2): on the answer, the new IKE SA takes over the CHILD_SAs and the
// old one is deleted.
func (d *Daemon) sendRekeyIKE(old *ikeSA) {
	spi, err := d.newSPI()
	if err != nil {
		return
	}
	ni, err := d.random(nonceLen)
	if err != nil {
		return
	}
	group := old.keys.Suite.DH
	priv, pub, err := ikecrypto.GenerateKey(group, d.opts.Rand)
	if err != nil {
		return
	}
	inner := []message.Payload{
		&message.SA{Proposals: wireProposals(old.cfg.IKEProposals, message.ProtocolIKE, binary.BigEndian.AppendUint64(nil, spi))},
		&message.Nonce{Data: ni},
		&message.KE{Group: message.DHGroup(group), Data: pub},
	}
	d.sas[spi] = &ikeSA{cfg: old.cfg, initiator: true, spiI: spi, state: stateInitSent, remote: old.remote} // reserve the SPI
	old.ikeRekeys = &ikeCollision{}
	err = d.request(old, message.CreateChildSA, inner, func(m *message.Message) {
		delete(d.sas, spi)
		if err := d.rekeyIKEResponse(old, spi, ni, priv, m); err != nil {
			d.log.Warn("IKE SA rekey failed; the old IKE SA stays", "peer", old.cfg.Name, "err", err)
			old.rekeying, old.ikeRekeys = false, nil
		}
	})
	if err != nil {
		delete(d.sas, spi)
		old.rekeying, old.ikeRekeys = false, nil
	}
}

func (d *Daemon) rekeyIKEResponse(old *ikeSA, spi uint64, ni []byte, priv *ikecrypto.PrivateKey, m *message.Message) error {
	if err := errorNotify(m); err != nil {
		return err
	}
	saPayload, _ := m.Get(message.PayloadSA).(*message.SA)
	nonce, _ := m.Get(message.PayloadNonce).(*message.Nonce)
	ke, _ := m.Get(message.PayloadKE).(*message.KE)
	if saPayload == nil || nonce == nil || ke == nil || len(saPayload.Proposals) != 1 || len(saPayload.Proposals[0].SPI) != 8 {
		return fmt.Errorf("IKE SA rekey response without SA, Nr or KE")
	}
	offered := cryptoProposals(saPayload.Proposals)
	suite, err := ikecrypto.AcceptIKEReply(old.cfg.IKEProposals, offered[0])
	if err != nil || suite.DH != priv.Group() || ikecrypto.DHGroup(ke.Group) != priv.Group() {
		return fmt.Errorf("the responder chose %v, which we did not offer", saPayload.Proposals[0])
	}
	gir, err := ikecrypto.SharedSecret(priv, ke.Data)
	if err != nil {
		return err
	}
	defer clear(gir)
	n := &ikeSA{cfg: old.cfg, initiator: true, spiI: spi, spiR: binary.BigEndian.Uint64(saPayload.Proposals[0].SPI),
		remote: old.remote, state: stateEstablished, ni: ni, nr: bytes.Clone(nonce.Data), children: old.children,
		lastHeard: time.Now(), established: time.Now()}
	if n.keys, err = old.keys.Rekey(suite, gir, n.ni, n.nr, n.spiI, n.spiR); err != nil {
		return err
	}
	if n.out, n.in, err = n.keys.SKCiphers(true); err != nil {
		return err
	}
	old.children = nil
	d.sas[spi] = n
	d.log.Info("IKE SA rekeyed", "peer", old.cfg.Name, "suite", suite.String())
	if col := old.ikeRekeys; col != nil {
		col.ours = n
		if col.theirs != nil {
			d.settleIKECollision(old, col)
		}
	}
	// Delete the old IKE SA on itself (§1.4.1). In a collision the peer
	// does too; if its DELETE came first, the old SA just goes.
	if old.deleting {
		d.removeLocked(old)
		return nil
	}
	d.deleteIKE(old)
	return nil
}
