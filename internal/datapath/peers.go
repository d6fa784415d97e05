package datapath

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// Peers of a running device. SetPeers reconciles the device with a new
// list, by name:
//
//  1. Validate the whole list (checkPeer, the checks New makes) and sort
//     each peer into unchanged (its digest, credentials included, is the
//     running one's), new or changed; a running peer not in the list is
//     removed. Any error: return it, nothing changed.
//  2. Add the kernel routes of the new list (the one step the kernel may
//     refuse: undone on failure, nothing changed).
//  3. Remove the removed and changed peers: IKE SAs deleted (DELETE to the
//     peer), their SAs out of the SA database. Their traffic finds no SA
//     and is dropped, never sent in clear.
//  4. Publish the new routing (SPD and peer map) in one atomic store. The
//     unchanged peers' states are carried over, so their counters, SAs and
//     IKE SAs go on as if nothing happened.
//  5. Key the new and changed peers (manual SAs, or IKE: initiated at once
//     if the device runs).
//  6. Remove the routes no peer wants any more.

// SetPeers makes the running device's peers exactly peers. Peers whose
// configuration is unchanged are not touched (not a packet lost); new
// ones are keyed; removed ones lose their IKE SA (with a DELETE to the
// peer), SAs, routes and counters; changed ones are removed and added
// again (a new IKE SA). The list is validated as New validates it before
// anything changes: an invalid list returns an error naming the peer and
// field, and the peers stay as they were. The secrets in peers (pre-shared
// keys, manual SA keys) are cleared before SetPeers returns, whatever the
// outcome, as New clears them: pass a list made for the call.
//
// The TUN device's MTU was fixed by New, from the overhead of the peers of
// then. A peer added later whose path (Peer.MTU) or ESP transforms leave
// less room gets a smaller inner MTU of its own: the datapath answers its
// larger packets with ICMP "fragmentation needed" / "packet too big", so
// path MTU discovery finds it.
//
// SetPeers may be called concurrently with Run and with itself (the calls
// are serialized); after Close it returns an error. If the kernel refuses
// a route, nothing changes; if keying a new peer fails after validation
// (the SA database refuses an SPI taken in the meantime), that peer is
// left out, the rest applied, and the error names it.
func (d *Device) SetPeers(peers []Peer) error {
	defer clearSecrets(peers)
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	if d.closed() {
		return errors.New("datapath: set peers: the device is closed")
	}
	cur := d.state.Load()
	plan, err := d.planPeers(peers, cur)
	if err != nil {
		return fmt.Errorf("datapath: set peers: nothing changed: %w", err)
	}
	if len(plan.added) == 0 && len(plan.removed) == 0 && slices.Equal(plan.next, cur.order) {
		return nil
	}
	var want map[routeKey]netlink.Route
	if d.net != nil {
		want = d.net.wantRoutes(d.cfg, plan.next)
		if err := d.addRoutes(want); err != nil {
			return fmt.Errorf("datapath: set peers: nothing changed: %w", err)
		}
	}
	for _, p := range plan.removed {
		d.removePeer(p)
	}
	next := plan.next
	d.state.Store(newRouting(next))
	var errs []error
	failed := map[*peerState]bool{}
	for _, p := range plan.added {
		if err := d.installPeer(p); err != nil {
			errs = append(errs, err)
			failed[p] = true
			d.removePeer(p)
		}
	}
	if len(failed) > 0 {
		next = slices.DeleteFunc(slices.Clone(next), func(p *peerState) bool { return failed[p] })
		d.state.Store(newRouting(next))
		if d.net != nil {
			want = d.net.wantRoutes(d.cfg, next)
		}
	}
	if d.net != nil {
		if err := d.net.prune(want); err != nil {
			d.log.Warn("set peers: routes of removed peers left behind", "err", err)
		}
	}
	d.log.Info("peers set", "peers", len(next), "added", names(plan.added, failed), "removed", names(plan.removed, nil))
	if len(errs) > 0 {
		return fmt.Errorf("datapath: set peers: left out: %w", errors.Join(errs...))
	}
	return nil
}

// SetCertificates renews the certificate credentials of an IKE-keyed
// peer (ike.Daemon.SetCertificates): IKE SAs already up stay, every later
// IKE_AUTH uses the new ones. A later SetPeers that gives the peer these
// same credentials leaves it untouched.
func (d *Device) SetCertificates(peer string, certs []*x509.Certificate, key crypto.Signer, cas []*x509.Certificate) error {
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	if d.closed() {
		return errors.New("datapath: set certificates: the device is closed")
	}
	p := d.state.Load().peers[peer]
	if p == nil {
		return fmt.Errorf("datapath: set certificates: no peer %q", peer)
	}
	if p.cfg.IKE == nil {
		return fmt.Errorf("datapath: set certificates: peer %q is keyed by hand (In and Out), not by IKE", peer)
	}
	if err := d.ikeD.SetCertificates(peer, certs, key, cas); err != nil {
		return fmt.Errorf("datapath: set certificates: %w", err)
	}
	renewed := p.cfg
	k := *p.cfg.IKE
	k.Certs, k.Key, k.CAs = certs, key, cas
	renewed.IKE = &k
	digest, err := d.peerDigest(&renewed)
	if err != nil {
		// The daemon took them: they are sound. Should the digest not be
		// computable, the next SetPeers sees the peer as changed.
		d.log.Warn("set certificates: digest", "peer", peer, "err", err)
		return nil
	}
	p.digest = digest
	return nil
}

// peerPlan is a list of peers against the running ones.
type peerPlan struct {
	next    []*peerState // the list in order: the running states of unchanged peers, new states for the others
	added   []*peerState // new and changed peers, to key
	removed []*peerState // the running states of peers gone or changed
}

// planPeers validates list and sorts it against cur. Every problem is
// returned, joined, each naming the peer and field.
func (d *Device) planPeers(list []Peer, cur *routing) (*peerPlan, error) {
	plan := &peerPlan{}
	var errs []error
	first := map[string]int{}
	kept := map[string]bool{}
	where := map[*peerState]string{}
	for i := range list {
		pc := &list[i]
		at := fmt.Sprintf("Peers[%d]", i)
		if pc.Name != "" {
			at = fmt.Sprintf("peer %q (Peers[%d])", pc.Name, i)
		}
		if j, dup := first[pc.Name]; dup && pc.Name != "" {
			errs = append(errs, fmt.Errorf("%s: Name: declared twice (first at Peers[%d])", at, j))
			continue
		}
		first[pc.Name] = i
		if err := d.checkPeer(pc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		digest, err := d.peerDigest(pc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		if old := cur.peers[pc.Name]; old != nil && hmac.Equal(old.digest[:], digest[:]) {
			plan.next = append(plan.next, old)
			kept[pc.Name] = true
			continue
		}
		p, err := d.newPeerState(pc, digest)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		}
		where[p] = at
		plan.next = append(plan.next, p)
		plan.added = append(plan.added, p)
	}
	// Manual inbound SPIs: one per SA on the endpoint. Those of peers
	// going away are free by the time the new ones are installed.
	spis := map[uint32]string{}
	for _, p := range plan.added {
		if p.cfg.In == nil {
			continue
		}
		spi := p.cfg.In.SPI
		if other, dup := spis[spi]; dup {
			errs = append(errs, fmt.Errorf("%s: In.SPI: %#x is also peer %q's inbound SPI: inbound SPIs must be unique on an endpoint", where[p], spi, other))
		}
		spis[spi] = p.cfg.Name
		if e := d.sad.InboundEntry(spi); e != nil && kept[e.Pair.Peer] {
			errs = append(errs, fmt.Errorf("%s: In.SPI: %#x is in use by peer %q", where[p], spi, e.Pair.Peer))
		}
	}
	for _, old := range cur.order {
		if !kept[old.cfg.Name] {
			plan.removed = append(plan.removed, old)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return plan, nil
}

// checkPeer reports what is wrong with a peer, each problem as
// "Field: what", joined. New and SetPeers make the same checks.
func (d *Device) checkPeer(pc *Peer) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if pc.Name == "" {
		bad("Name", "a name is required")
	}
	switch ep := pc.Endpoint; {
	case !ep.IsValid() || ep.Port() == 0:
		bad("Endpoint", "%q is not an address and port (e.g. 198.18.0.2:%d)", ep, DefaultPort)
	case d.cfg.LocalAddr.IsValid() && ep.Addr().Unmap().Is4() != d.cfg.LocalAddr.Is4():
		bad("Endpoint", "%s and the local address %s are of different IP families", ep.Addr(), d.cfg.LocalAddr)
	}
	if pc.Mode != esp.ModeTunnel && pc.Mode != esp.ModeTransport {
		bad("Mode", "%v is not tunnel or transport", pc.Mode)
	}
	for _, f := range []struct {
		name string
		ps   []netip.Prefix
	}{{"LocalSubnets", pc.LocalSubnets}, {"RemoteSubnets", pc.RemoteSubnets}} {
		if len(f.ps) == 0 {
			bad(f.name, "no prefix: the traffic selectors are required (in transport mode, the two hosts' addresses)")
		}
		for j, pfx := range f.ps {
			switch {
			case !pfx.IsValid():
				bad(fmt.Sprintf("%s[%d]", f.name, j), "not a valid prefix")
			case pfx.Masked() != pfx:
				// The SPD matches masked prefixes: this one would match nothing.
				bad(fmt.Sprintf("%s[%d]", f.name, j), "%s has host bits set: write %s", pfx, pfx.Masked())
			}
		}
	}
	if pc.MTU != 0 && (pc.MTU < 1280 || pc.MTU > d.cfg.UnderlayMTU) {
		bad("MTU", "%d is out of range (1280 to the underlay MTU %d)", pc.MTU, d.cfg.UnderlayMTU)
	}
	manual := pc.In != nil || pc.Out != nil
	switch {
	case manual && pc.IKE != nil:
		bad("IKE", "give either manual SAs (In and Out) or IKE, not both")
	case pc.In == nil && pc.Out != nil:
		bad("In", "manual keys need the inbound SA too")
	case pc.In != nil && pc.Out == nil:
		bad("Out", "manual keys need the outbound SA too")
	case manual:
		for _, sa := range []struct {
			name string
			c    *esp.Config
		}{{"In", pc.In}, {"Out", pc.Out}} {
			if err := sa.c.Validate(); err != nil {
				bad(sa.name, "%v", err)
			}
			if sa.c.Mode != pc.Mode {
				bad(sa.name+".Mode", "%s, but the peer is in %s mode", sa.c.Mode, pc.Mode)
			}
		}
	case pc.IKE != nil:
		errs = append(errs, checkIKE(pc.IKE)...)
	default:
		bad("IKE", "a peer is keyed by IKE (IKE) or by hand (In and Out)")
	}
	return errors.Join(errs...)
}

// checkIKE is checkPeer for the IKE settings: what ike.Daemon.AddPeer
// and the first IKE_SA_INIT would refuse, found before anything changes.
func checkIKE(k *IKEPeer) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("IKE.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for _, id := range []struct {
		name string
		id   ikecrypto.Identity
	}{{"LocalID", k.LocalID}, {"RemoteID", k.RemoteID}} {
		if id.id.Type == 0 || len(id.id.Data) == 0 {
			bad(id.name, "an identity is required")
		}
	}
	switch {
	case len(k.PSK) == 0 && k.Key == nil:
		bad("PSK", "a pre-shared key, or certificates (Certs, Key, CAs), is required")
	case len(k.PSK) > 0 && k.Key != nil:
		bad("PSK", "give a pre-shared key or certificates, not both")
	case k.Key != nil:
		if len(k.Certs) == 0 || slices.Contains(k.Certs, nil) {
			bad("Certs", "certificate authentication needs our certificate (leaf first)")
		} else if pub, ok := k.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(k.Certs[0].PublicKey) {
			bad("Key", "not the key of Certs[0] (%s)", k.Certs[0].Subject)
		}
		if len(k.CAs) == 0 || slices.Contains(k.CAs, nil) {
			bad("CAs", "certificate authentication needs the CAs to trust")
		}
	case len(k.Certs)+len(k.CAs) > 0:
		bad("Key", "certificates without their key")
	}
	if len(k.IKEProposals) > 0 && len(k.IKEProposals[0].DH) == 0 {
		bad("IKEProposals", "the first proposal has no DH group, which IKE_SA_INIT needs")
	}
	if _, err := ikeESPOverhead(k); err != nil {
		bad("ESPProposals", "%v", err)
	}
	if w := k.ReplayWindow; w > 0 && (w%64 != 0 || w > esp.MaxReplayWindow) {
		bad("ReplayWindow", "%d is not a multiple of 64 up to %d (0: the default)", w, esp.MaxReplayWindow)
	}
	for _, t := range []struct {
		name string
		v    int64
	}{{"RekeyTime", int64(k.RekeyTime)}, {"ChildRekeyTime", int64(k.ChildRekeyTime)}, {"DPDInterval", int64(k.DPDInterval)}} {
		if t.v < 0 {
			bad(t.name, "negative")
		}
	}
	return errs
}

// newPeerState makes the state of a new or changed peer, not yet keyed.
func (d *Device) newPeerState(pc *Peer, digest [sha256.Size]byte) (*peerState, error) {
	ep, err := d.bind.ParseEndpoint(pc.Endpoint.String())
	if err != nil {
		return nil, fmt.Errorf("Endpoint: %w", err)
	}
	var espMost int
	if pc.Out != nil {
		espMost, err = pc.Out.Algorithm.Overhead()
	} else {
		espMost, err = ikeESPOverhead(pc.IKE)
	}
	if err != nil {
		return nil, err
	}
	pathMTU := d.cfg.UnderlayMTU
	if pc.MTU != 0 {
		pathMTU = pc.MTU
	}
	outer := ipv4UDPHeader
	if pc.Endpoint.Addr().Is6() {
		outer = ipv6UDPHeader
	}
	return &peerState{cfg: clonePeer(pc), ep: ep, innerMTU: pathMTU - outer - espMost, overhead: outer + espMost, digest: digest}, nil
}

// ikeESPOverhead is the largest overhead of the ESP transforms the
// proposals allow, so that whatever IKE negotiates fits the path.
func ikeESPOverhead(k *IKEPeer) (int, error) {
	proposals := k.ESPProposals
	if len(proposals) == 0 {
		proposals = ikecrypto.DefaultESPProposals()
	}
	return ike.MaxESPOverhead(proposals)
}

// clonePeer copies what the device keeps of a peer, so that the caller's
// later changes to its slices or IKEPeer do not reach the hot path. The
// secrets stay the caller's memory: they are cleared once installed.
func clonePeer(pc *Peer) Peer {
	c := *pc
	c.LocalSubnets, c.RemoteSubnets = slices.Clone(pc.LocalSubnets), slices.Clone(pc.RemoteSubnets)
	if pc.IKE != nil {
		k := *pc.IKE
		c.IKE = &k
	}
	return c
}

// installPeer keys a peer: its manual SAs into the SA database, or its
// IKE settings into the daemon (initiated at once if the device runs and
// the peer is ours to initiate; otherwise Run does it).
func (d *Device) installPeer(p *peerState) error {
	pc := &p.cfg
	if pc.IKE == nil {
		if err := d.sad.Add(esp.Pair{Peer: pc.Name, Remote: pc.Endpoint,
			LocalTS: pc.LocalSubnets, RemoteTS: pc.RemoteSubnets, In: *pc.In, Out: *pc.Out}); err != nil {
			return fmt.Errorf("peer %s: %w", pc.Name, err)
		}
		return nil
	}
	if err := d.ensureIKE(); err != nil {
		return fmt.Errorf("peer %s: %w", pc.Name, err)
	}
	k := pc.IKE
	if err := d.ikeD.AddPeer(ike.Config{Name: pc.Name, Remote: pc.Endpoint, LocalID: k.LocalID, RemoteID: k.RemoteID,
		PSK: k.PSK, Certs: k.Certs, Key: k.Key, CAs: k.CAs, IKEProposals: k.IKEProposals, ESPProposals: k.ESPProposals,
		LocalTS: pc.LocalSubnets, RemoteTS: pc.RemoteSubnets, Transport: pc.Mode == esp.ModeTransport,
		RekeyTime: k.RekeyTime, ChildRekeyTime: k.ChildRekeyTime, DPDInterval: k.DPDInterval, Keep: k.Initiate, StrictTS: k.StrictTS,
		ReplayWindow: k.ReplayWindow}); err != nil {
		return fmt.Errorf("peer %s: %w", pc.Name, err)
	}
	d.mu.Lock()
	running := d.running
	d.mu.Unlock()
	if running && k.Initiate {
		if err := d.ikeD.Initiate(pc.Name); err != nil {
			// Keep tries again from the next tick.
			d.log.Warn("IKE initiate", "peer", pc.Name, "err", err)
		}
	}
	return nil
}

// removePeer ends a peer's keying: the IKE daemon deletes its IKE SAs
// with a DELETE to the peer, and whatever SA of the peer is left in the
// SA database (manual ones, a retiring inbound SA) goes.
func (d *Device) removePeer(p *peerState) {
	name := p.cfg.Name
	if p.cfg.IKE != nil {
		// "no peer" only for a peer whose AddPeer failed: nothing to do.
		_ = d.ikeD.RemovePeer(name)
	}
	for _, e := range d.sad.Entries() {
		if e.Pair.Peer != name {
			continue
		}
		if err := d.sad.Delete(e.In.SPI()); err != nil && !errors.Is(err, esp.ErrUnknownSPI) {
			d.log.Warn("remove peer: delete SA", "peer", name, "spi", fmt.Sprintf("%#x", e.In.SPI()), "err", err)
		}
	}
}

// ensureIKE readies the device for its first IKE-keyed peer: the daemon
// gets the IKE messages that arrive on the ESP port and, on a real
// network, on UDP 500, whose socket is made in the device's network
// namespace whatever thread asks.
func (d *Device) ensureIKE() error {
	if d.ikeReady {
		return nil
	}
	if d.withNetwork {
		c, err := listenUDPIn(d.netns, ikePort)
		if err != nil {
			return fmt.Errorf("IKE: listen on UDP %d: %w", ikePort, err)
		}
		if d.net != nil && d.net.mark != 0 {
			if err := setMark(c, d.net.mark); err != nil {
				c.Close()
				return fmt.Errorf("mark the IKE socket: %w", err)
			}
		}
		d.mu.Lock()
		if d.closed() {
			d.mu.Unlock()
			c.Close()
			return errors.New("the device is closed")
		}
		d.ike500.Store(c)
		if d.running {
			d.goIKE500(c)
		}
		d.mu.Unlock()
	}
	d.SetIKEHandler(func(msg []byte, remote netip.AddrPort, _ netip.Addr) { d.ikeD.Handle(msg, remote) })
	d.ikeReady = true
	return nil
}

// addRoutes installs want's routes; before the first route that only
// unmarked packets take, the sockets mark theirs, so that ESP and IKE to a
// peer never loop into TUN.
func (d *Device) addRoutes(want map[routeKey]netlink.Route) error {
	if needsMark(want) && d.net.mark == 0 {
		if err := d.bind.SetMark(fwmark); err != nil {
			return fmt.Errorf("mark the UDP socket: %w", err)
		}
		if err := setMark(d.ike500.Load(), fwmark); err != nil {
			return fmt.Errorf("mark the IKE socket: %w", err)
		}
	}
	return d.net.add(want)
}

// clearSecrets zeroes the pre-shared keys and manual SA keys of peers.
func clearSecrets(peers []Peer) {
	for i := range peers {
		if k := peers[i].IKE; k != nil {
			clear(k.PSK)
		}
		zeroConfig(peers[i].In)
		zeroConfig(peers[i].Out)
	}
}

func names(ps []*peerState, except map[*peerState]bool) []string {
	var out []string
	for _, p := range ps {
		if !except[p] {
			out = append(out, p.cfg.Name)
		}
	}
	return out
}

// peerDigest identifies everything about a peer that SetPeers must not
// run with a stale copy of: addresses, selectors, keying, and the
// credentials (certificates by their DER, the key by its public key, the
// pre-shared and manual keys themselves). It is an HMAC under a key of
// the device's, so the digests kept do not let anyone test guesses of a
// key; digests are compared with hmac.Equal, in constant time.
func (d *Device) peerDigest(pc *Peer) (out [sha256.Size]byte, err error) {
	w := digestWriter{hmac.New(sha256.New, d.digestKey)}
	w.str(pc.Name)
	w.str(pc.Endpoint.String())
	w.num(uint64(pc.Mode))
	w.prefixes(pc.LocalSubnets)
	w.prefixes(pc.RemoteSubnets)
	w.num(uint64(pc.MTU))
	for _, c := range []*esp.Config{pc.In, pc.Out} {
		if c == nil {
			w.num(0)
			continue
		}
		w.num(1)
		w.num(uint64(c.SPI))
		w.num(uint64(c.Mode))
		w.str(string(c.Algorithm))
		w.bytes(c.Key)
		w.bytes(c.AuthKey)
		w.bool(c.ESN)
		w.num(uint64(c.ReplayWindow))
		for _, l := range []esp.Limits{c.Lifetime.Soft, c.Lifetime.Hard} {
			w.num(l.Bytes)
			w.num(l.Packets)
			w.num(uint64(l.Time))
		}
	}
	k := pc.IKE
	if k == nil {
		w.num(0)
		w.h.Sum(out[:0])
		return out, nil
	}
	w.num(1)
	for _, id := range []ikecrypto.Identity{k.LocalID, k.RemoteID} {
		w.num(uint64(id.Type))
		w.bytes(id.Data)
	}
	w.bytes(k.PSK)
	for _, ps := range [][]ikecrypto.Proposal{k.IKEProposals, k.ESPProposals} {
		w.num(uint64(len(ps)))
		for _, p := range ps {
			ts := p.Transforms()
			w.num(uint64(len(ts)))
			for _, t := range ts {
				w.num(uint64(t.Type))
				w.num(uint64(t.ID))
				w.num(uint64(t.KeyLen))
			}
		}
	}
	for _, certs := range [][]*x509.Certificate{k.Certs, k.CAs} {
		w.num(uint64(len(certs)))
		for _, c := range certs {
			if c != nil {
				w.bytes(c.Raw)
			}
		}
	}
	if k.Key == nil {
		w.num(0)
	} else {
		pub, err := x509.MarshalPKIXPublicKey(k.Key.Public())
		if err != nil {
			return out, fmt.Errorf("IKE.Key: %w", err)
		}
		w.num(1)
		w.bytes(pub)
	}
	w.bool(k.Initiate)
	w.bool(k.StrictTS)
	w.num(uint64(k.RekeyTime))
	w.num(uint64(k.ChildRekeyTime))
	w.num(uint64(k.DPDInterval))
	w.num(uint64(k.ReplayWindow))
	w.h.Sum(out[:0])
	return out, nil
}

// digestWriter feeds a hash with values, each length-prefixed or of fixed
// size, so that no two different peers write the same bytes.
type digestWriter struct{ h hash.Hash }

func (w digestWriter) num(v uint64) { w.h.Write(binary.BigEndian.AppendUint64(nil, v)) }
func (w digestWriter) bytes(b []byte) {
	w.num(uint64(len(b)))
	w.h.Write(b)
}
func (w digestWriter) str(s string) { w.bytes([]byte(s)) }
func (w digestWriter) bool(b bool) {
	if b {
		w.num(1)
	} else {
		w.num(0)
	}
}
func (w digestWriter) prefixes(ps []netip.Prefix) {
	w.num(uint64(len(ps)))
	for _, p := range ps {
		w.str(p.String())
	}
}
