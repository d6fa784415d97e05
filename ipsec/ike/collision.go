package ike

import (
	"bytes"

	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// Simultaneous rekeying of a CHILD_SA (RFC 7296 §2.8.1): both ends reach
// the soft lifetime at about the same time and each sends a
// CREATE_CHILD_SA with REKEY_SA for it. Both exchanges complete, each end
// installs both new pairs, and the pair made by the exchange with the
// lowest of the four nonces is redundant: the end that initiated that
// exchange deletes it. Both ends decide alike, since both know all four
// nonces once both exchanges are done.
//
// The SADB has one current pair per peer, so the first exchange to finish
// replaces the old pair as usual, and the second one, which settles the
// collision, either takes over from it (the first was redundant) or goes
// in inbound-only (it is the redundant one: the peer may still send on it
// until its DELETE).

// childRekey is a finished exchange that rekeyed a CHILD_SA: the inbound
// SPI of the pair it made, and its nonces.
type childRekey struct {
	in     uint32
	ni, nr []byte
}

// collision tracks a CHILD_SA of ours that we are rekeying (by its old
// inbound SPI in ikeSA.rekeys): our exchange, once answered, and the
// peer's rekey of the same CHILD_SA, if one comes.
type collision struct {
	ours, theirs *childRekey
}

// oursRedundant reports whether the lowest of the four nonces is in our
// exchange, which makes our new pair the one to delete.
func (c *collision) oursRedundant() bool {
	lowest := func(a, b []byte) []byte {
		if bytes.Compare(a, b) < 0 {
			return a
		}
		return b
	}
	return bytes.Compare(lowest(c.ours.ni, c.ours.nr), lowest(c.theirs.ni, c.theirs.nr)) < 0
}

// settleCollision is called when the peer's rekey completes after ours:
// our pair is current. It returns where the peer's pair goes and, if ours
// is the redundant one, ours, for the caller to delete once the peer's
// pair is installed.
func (d *Daemon) settleCollision(sa *ikeSA, oldIn uint32, col *collision) (placement, *childRekey) {
	delete(sa.rekeys, oldIn)
	if col.oursRedundant() {
		d.log.Info("CHILD_SA rekey collision: ours is redundant, deleting it", "peer", sa.cfg.Name, "spi", col.ours.in)
		return placement{replace: col.ours.in}, col.ours
	}
	d.log.Info("CHILD_SA rekey collision: the peer's is redundant", "peer", sa.cfg.Name, "spi", col.theirs.in)
	return placement{retiring: true}, nil
}

// deleteRedundant deletes a CHILD_SA we created and lost a collision
// with: INFORMATIONAL DELETE of our inbound SPI, then out of the SADB.
func (d *Daemon) deleteRedundant(sa *ikeSA, in uint32) {
	d.enqueue(sa, func() {
		del := &message.Delete{Protocol: message.ProtocolESP, SPIs: []uint32{in}}
		d.request(sa, message.Informational, []message.Payload{del}, func(*message.Message) {
			d.forgetChild(sa, in)
		})
	})
}

// forgetChild removes a CHILD_SA from the SADB and from the IKE SA that
// holds it now: an IKE SA rekey may have moved it from sa since the DELETE
// was sent on sa.
func (d *Daemon) forgetChild(sa *ikeSA, in uint32) {
	if err := d.sadb.Delete(in); err != nil {
		d.log.Debug("delete CHILD_SA", "peer", sa.cfg.Name, "spi", in, "err", err)
	}
	if owner, i := d.childOwner(in); owner != nil {
		owner.children = append(owner.children[:i], owner.children[i+1:]...)
	}
}

// Simultaneous rekeying of the IKE SA (RFC 7296 §2.8.2) goes the same
// way: each end makes two new IKE SAs, the one of the exchange with the
// lowest nonce is deleted by its initiator, and the CHILD_SAs move to the
// survivor. Both ends delete the old IKE SA.

// ikeCollision tracks our rekey of an IKE SA: the new IKE SA of our
// exchange and of the peer's, once each completed.
type ikeCollision struct {
	ours, theirs *ikeSA
}

// settleIKECollision runs when both rekeys of old are done.
func (d *Daemon) settleIKECollision(old *ikeSA, col *ikeCollision) {
	old.ikeRekeys = nil
	col.theirs.collidedWith = nil
	c := collision{ours: &childRekey{ni: col.ours.ni, nr: col.ours.nr}, theirs: &childRekey{ni: col.theirs.ni, nr: col.theirs.nr}}
	survivor, redundant := col.ours, col.theirs
	if c.oursRedundant() {
		survivor, redundant = col.theirs, col.ours
	}
	// The CHILD_SAs are on whichever new IKE SA came first: move them.
	survivor.children = append(survivor.children, redundant.children...)
	redundant.children = nil
	if redundant == col.ours {
		d.log.Info("IKE SA rekey collision: ours is redundant, deleting it", "peer", old.cfg.Name)
		d.deleteIKE(redundant)
		return
	}
	d.log.Info("IKE SA rekey collision: the peer's is redundant", "peer", old.cfg.Name)
	// The peer deletes it; it must not rekey meanwhile.
	redundant.rekeying = true
}

// deleteIKE sends the DELETE of an IKE SA on itself and removes it when
// answered (or, unanswered, after the retransmissions).
func (d *Daemon) deleteIKE(sa *ikeSA) {
	sa.deleting = true
	d.enqueue(sa, func() {
		d.request(sa, message.Informational, []message.Payload{&message.Delete{Protocol: message.ProtocolIKE}}, func(*message.Message) {
			d.removeLocked(sa)
		})
	})
}
