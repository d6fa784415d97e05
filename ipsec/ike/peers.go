package ike

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// Changing the peers of a running daemon: a node that joins or leaves a
// cluster, a certificate renewed. AddPeer adds a peer (or replaces its
// configuration for the IKE SAs made from then on); RemovePeer ends
// everything the daemon has with one; SetCertificates renews a peer's
// credentials without touching the IKE SAs already up.

// RemovePeer deletes every IKE SA with the peer and forgets the peer.
//
// An established IKE SA (or one whose IKE_AUTH is out, which the responder
// may have established already) is ended with an INFORMATIONAL DELETE (RFC
// 7296 §1.4.1), as Close does, so that the peer drops its SAs at once. The
// DELETE is sent once and the SA removed without waiting for the answer:
// while the SA stood, a request of the peer crossing the DELETE (a
// CHILD_SA rekey) would install SAs for a peer that is no longer
// configured. A DELETE that is lost leaves the peer to notice by dead peer
// detection, as after a crash. Half-open IKE SAs picked for the peer go
// too: their IKE_AUTH would otherwise authenticate with the removed
// configuration. The CHILD_SAs leave the SADB, retransmissions and Keep's
// attempts stop, and from then on the peer's messages are ignored like a
// stranger's.
func (d *Daemon) RemovePeer(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, ok := d.peers[name]
	if !ok {
		return fmt.Errorf("ike: remove peer: no peer %q", name)
	}
	for _, sa := range d.sas {
		if sa.cfg != cfg {
			continue
		}
		switch {
		case sa.state == stateEstablished:
			d.sendDeleteOnce(sa, sa.nextID)
		case sa.state == stateAuthSent:
			// The responder may have answered IKE_AUTH (ID 1) already and
			// expects ID 2; if it has not, it drops this (outside its
			// window) and its half-open SA expires.
			d.sendDeleteOnce(sa, 2)
		}
		d.removeLocked(sa)
		delete(d.halfOpen, halfOpenKey{sa.spiI, sa.initFrom})
	}
	delete(d.peers, name)
	d.idx = nil
	d.log.Info("IKE peer removed", "peer", name)
	return nil
}

// sendDeleteOnce sends the DELETE of sa's IKE SA as request id, without
// retransmission and without waiting for the answer (RemovePeer).
func (d *Daemon) sendDeleteOnce(sa *ikeSA, id uint32) {
	flags := message.Flags(0)
	if sa.initiator {
		flags = message.FlagInitiator
	}
	m := &message.Message{Header: message.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: message.Informational,
		Flags: flags, MessageID: id}}
	b, err := d.seal(sa, m, []message.Payload{&message.Delete{Protocol: message.ProtocolIKE}})
	if err != nil {
		d.log.Warn("IKE: the DELETE of a removed peer's IKE SA", "peer", sa.cfg.Name, "err", err)
		return
	}
	d.reply(sa.remote, b)
}

// SetCertificates replaces the credentials of a peer that authenticates
// with certificates: our chain (leaf first) and key, and the CAs the
// peer's certificate must chain to. IKE SAs already up stay (their
// authentication is done); every IKE_AUTH from now on, of a new IKE SA or
// of one made again after dead peer detection, uses the new ones. A renewed
// certificate of the same CA is the usual case; a key that does not match
// the leaf, or a PSK peer, is refused and changes nothing.
func (d *Daemon) SetCertificates(name string, certs []*x509.Certificate, key crypto.Signer, cas []*x509.Certificate) error {
	if err := checkCertificates(certs, key, cas); err != nil {
		return fmt.Errorf("ike: peer %s: %w", name, err)
	}
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, ok := d.peers[name]
	if !ok {
		return fmt.Errorf("ike: set certificates: no peer %q", name)
	}
	if cfg.Key == nil {
		return fmt.Errorf("ike: peer %s: authenticates with a pre-shared key, not certificates; remove it and add it again to change how it authenticates", name)
	}
	// In place: the IKE SAs under way share cfg, and an exchange that
	// starts after this (under the same lock) reads the new credentials.
	cfg.Certs, cfg.Key, cfg.CAs, cfg.caPool = slices.Clone(certs), key, slices.Clone(cas), pool
	d.log.Info("IKE peer credentials replaced", "peer", name, "subject", certs[0].Subject.String())
	return nil
}

// checkCertificates is AddPeer's check of certificate credentials, and
// that the key is the leaf's: a mismatch would only show as the peer's
// AUTHENTICATION_FAILED.
func checkCertificates(certs []*x509.Certificate, key crypto.Signer, cas []*x509.Certificate) error {
	if key == nil || len(certs) == 0 || len(cas) == 0 {
		return errors.New("certificate authentication needs our certificate, its key and the CAs to trust")
	}
	if slices.Contains(certs, nil) || slices.Contains(cas, nil) {
		return errors.New("a nil certificate")
	}
	if !ikecrypto.PublicKeysEqual(key.Public(), certs[0].PublicKey) {
		return fmt.Errorf("the key is not the one of the certificate %q (the leaf comes first)", certs[0].Subject)
	}
	return nil
}
