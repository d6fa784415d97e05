package ike

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// Peers of a running daemon: RemovePeer and SetCertificates, between two
// daemons talking through memory (ike_test.go's net2).

// counter counts the messages one address sends, and can hold back a kind
// of exchange in flight.
type counter struct {
	mu    sync.Mutex
	from  map[netip.AddrPort]int
	block map[message.ExchangeType]bool // dropped when sent by blockFrom
	// blockFrom is whose messages block applies to.
	blockFrom netip.AddrPort
	// passed counts blockFrom's messages let through, by exchange.
	passed map[message.ExchangeType]int
}

func tapCounter(n *net2) *counter {
	c := &counter{from: map[netip.AddrPort]int{}, block: map[message.ExchangeType]bool{}, passed: map[message.ExchangeType]int{}}
	n.mu.Lock()
	n.tap = func(b []byte, from, to netip.AddrPort) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.from[from]++
		h, err := message.ParseHeader(b)
		if err != nil || from != c.blockFrom {
			return false
		}
		if c.block[h.Exchange] {
			return true
		}
		c.passed[h.Exchange]++
		return false
	}
	n.mu.Unlock()
	return c
}

func (c *counter) sent(from netip.AddrPort) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from[from]
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRemovePeer: the end that removes the peer sends the DELETE and keeps
// nothing of it (SAs, Keep's attempts), the other end drops its SAs on the
// DELETE, and what the removed peer sends afterwards is ignored: its new
// IKE_SA_INIT is not answered, nor the IKE_AUTH of a half-open SA made
// before the removal.
func TestRemovePeer(t *testing.T) {
	for _, c := range []struct {
		name     string
		remover  string // "a" initiated the IKE SA
		halfOpen bool   // B removes A while A's IKE_AUTH is held back
	}{
		{name: "initiator removes", remover: "a"},
		{name: "responder removes", remover: "b"},
		{name: "half-open at the responder", remover: "b", halfOpen: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
			b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
			// Keep on both ends: a removed peer must not be initiated again.
			na, nb, n := newPairWith(t, a, b, func(cfg *Config) { cfg.Keep = true }, esp.TableOptions{})
			cnt := tapCounter(n)
			rm, other := na, nb
			if c.remover == "b" {
				rm, other = nb, na
			}
			if c.halfOpen {
				cnt.mu.Lock()
				cnt.blockFrom, cnt.block[message.IKEAuth] = na.addr, true
				cnt.mu.Unlock()
				if err := na.d.Initiate("peer"); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, "B holds a half-open IKE SA", func() bool { return len(nb.d.Status()) == 1 })
			} else {
				establish(t, na, nb)
			}

			if err := rm.d.RemovePeer("peer"); err != nil {
				t.Fatal(err)
			}
			sentAfter := cnt.sent(rm.addr)
			if st, e := rm.d.Status(), rm.table.Entries(); len(st) != 0 || len(e) != 0 {
				t.Fatalf("the remover kept IKE SAs %+v or CHILD_SAs %d", st, len(e))
			}
			rm.d.mu.Lock()
			held, peers := len(rm.d.halfOpen), len(rm.d.peers)
			rm.d.mu.Unlock()
			if held != 0 || peers != 0 {
				t.Fatalf("the remover kept %d half-open SAs and %d peers", held, peers)
			}
			if !c.halfOpen {
				waitUntil(t, "the other end drops the SAs on the DELETE", func() bool {
					return len(other.d.Status()) == 0 && len(other.table.Entries()) == 0
				})
			}
			if err := rm.d.RemovePeer("peer"); err == nil {
				t.Error("removing a removed peer: no error")
			}
			if err := rm.d.Initiate("peer"); err == nil {
				t.Error("initiating with a removed peer: no error")
			}

			// The removed peer tries again: a new IKE SA, or the IKE_AUTH of
			// the half-open one, retransmitted until it gives up.
			rm.d.Tick(time.Now().Add(time.Minute)) // Keep's attempt, were the peer still there
			if c.halfOpen {
				cnt.mu.Lock()
				cnt.block[message.IKEAuth] = false
				cnt.mu.Unlock()
			} else if err := other.d.Initiate("peer"); err != nil {
				t.Fatal(err)
			}
			if err := wait(t, other); err == nil || !strings.Contains(err.Error(), "no answer") {
				t.Fatalf("the removed peer's attempt: %v, want no answer", err)
			}
			if c.halfOpen {
				cnt.mu.Lock()
				late := cnt.passed[message.IKEAuth]
				cnt.mu.Unlock()
				if late == 0 {
					t.Fatal("no IKE_AUTH reached B after the removal: the test proves nothing")
				}
			}
			if got := cnt.sent(rm.addr); got != sentAfter {
				t.Errorf("the remover sent %d messages after the removal", got-sentAfter)
			}
			if st, e := rm.d.Status(), rm.table.Entries(); len(st) != 0 || len(e) != 0 {
				t.Errorf("the removed peer got IKE SAs %+v or CHILD_SAs %d", st, len(e))
			}
		})
	}
}

// leafTap records, for every IKE_AUTH that one end sends, the leaf
// certificate in it, decrypted with the receiver's keys for that IKE SA
// (taken while the message is in flight: a refused SA's keys are wiped).
type leafTap struct {
	mu     sync.Mutex
	leaves [][]byte
}

func tapLeaves(t *testing.T, n *net2, sender, receiver *node) *leafTap {
	lt := &leafTap{}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tap = func(b []byte, from, to netip.AddrPort) bool {
		if from != sender.addr {
			return false
		}
		m, err := message.Parse(b)
		if err != nil || m.Exchange != message.IKEAuth {
			return false
		}
		receiver.d.mu.Lock()
		defer receiver.d.mu.Unlock()
		for _, sa := range receiver.d.sas {
			if sa.spiI != m.SPIi || sa.spiR != m.SPIr || sa.in == nil {
				continue
			}
			if err := m.Decrypt(sa.in); err != nil {
				t.Errorf("decrypt an IKE_AUTH in flight: %v", err)
				return false
			}
			if certs := certsOf(m); len(certs) > 0 {
				lt.mu.Lock()
				lt.leaves = append(lt.leaves, bytes.Clone(certs[0]))
				lt.mu.Unlock()
			}
		}
		return false
	}
	return lt
}

func (lt *leafTap) last() []byte {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if len(lt.leaves) == 0 {
		return nil
	}
	return lt.leaves[len(lt.leaves)-1]
}

// rekeyChild has A rekey its CHILD_SA over the current IKE SA and waits
// for the new pair: the IKE SA carries requests.
func rekeyChild(t *testing.T, na, nb *node) {
	t.Helper()
	e := na.table.Current("peer")
	na.d.Lifetime(esp.Event{Kind: esp.EventSoftExpire, Peer: "peer", InSPI: e.In.SPI(), OutSPI: e.Out.SPI()})
	waitUntil(t, "a CHILD_SA rekey over the IKE SA", func() bool {
		ea, eb := na.table.Entries(), nb.table.Entries()
		return len(ea) == 1 && len(eb) == 1 && ea[0].In.SPI() != e.In.SPI()
	})
	checkChildren(t, na, nb)
}

// TestSetCertificates: an end's certificate is replaced while an IKE SA is
// up. The IKE SA stays and works; the next IKE SA authenticates with the
// new certificate (the peer sees the new leaf), and fails when the peer
// does not trust the new certificate's CA, the old IKE SA standing.
func TestSetCertificates(t *testing.T) {
	pki, other := newPKI(t, "Rampart test CA"), newPKI(t, "Someone else's CA")
	for _, c := range []struct {
		name      string
		switcher  string // whose certificate changes; A initiates
		untrusted bool   // the new certificate is of a CA the peer does not trust
	}{
		{name: "initiator renews", switcher: "a"},
		{name: "responder renews", switcher: "b"},
		{name: "initiator moves to an untrusted CA", switcher: "a", untrusted: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			certA, keyA := pki.issue(t, "a.example", "ecdsa")
			certB, keyB := pki.issue(t, "b.example", "ecdsa")
			a := side{ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
			b := side{ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
			na, nb, n := newPairOpts(t, a, b, func(cfg *Config) {
				cfg.CAs = []*x509.Certificate{pki.ca}
				if strings.HasPrefix(cfg.LocalID.String(), "a.") {
					cfg.Certs, cfg.Key = []*x509.Certificate{certA}, keyA
				} else {
					cfg.Certs, cfg.Key = []*x509.Certificate{certB}, keyB
				}
			}, esp.TableOptions{}, func(_ string, o *Options) { o.FragmentSize = -1 }) // one IKE_AUTH message, no SKF
			sw, peer := na, nb
			if c.switcher == "b" {
				sw, peer = nb, na
			}
			leaves := tapLeaves(t, n, sw, peer)
			establish(t, na, nb)
			first := na.d.Status()[0].SPIi

			issuer := pki
			if c.untrusted {
				issuer = other
			}
			newCert, newKey := issuer.issue(t, c.switcher+".example", "ecdsa")
			if err := sw.d.SetCertificates("peer", []*x509.Certificate{newCert}, newKey, []*x509.Certificate{pki.ca}); err != nil {
				t.Fatal(err)
			}
			// The IKE SA already up is untouched, and carries requests.
			for _, nd := range []*node{na, nb} {
				if st := nd.d.Status(); len(st) != 1 || st[0].SPIi != first || st[0].State != "established" {
					t.Fatalf("the IKE SA changed with the certificate: %+v", st)
				}
			}
			rekeyChild(t, na, nb)

			if err := na.d.Initiate("peer"); err != nil {
				t.Fatal(err)
			}
			errA, errB := wait(t, na), wait(t, nb)
			if !bytes.Equal(leaves.last(), newCert.Raw) {
				t.Errorf("the peer saw another leaf than the new certificate")
			}
			if !c.untrusted {
				if errA != nil || errB != nil {
					t.Fatalf("the new IKE SA: initiator %v, responder %v", errA, errB)
				}
				checkChildren(t, na, nb)
				if st := na.d.Status(); len(st) != 1 || st[0].SPIi == first {
					t.Errorf("no new IKE SA: %+v", st)
				}
				return
			}
			if errA == nil || !strings.Contains(errA.Error(), "AUTHENTICATION_FAILED") || errB == nil || !strings.Contains(errB.Error(), "authentication failed") {
				t.Fatalf("with an untrusted certificate: initiator %v, responder %v", errA, errB)
			}
			for _, nd := range []*node{na, nb} {
				if st := nd.d.Status(); len(st) != 1 || st[0].SPIi != first || st[0].State != "established" {
					t.Fatalf("the old IKE SA did not stay: %+v", st)
				}
			}
			checkChildren(t, na, nb)
			rekeyChild(t, na, nb)
		})
	}
}

// TestSetCertificatesRefused: what SetCertificates refuses changes nothing.
func TestSetCertificatesRefused(t *testing.T) {
	pki := newPKI(t, "Rampart test CA")
	cert, key := pki.issue(t, "a.example", "ecdsa")
	cert2, key2 := pki.issue(t, "a.example", "ecdsa")
	cas := []*x509.Certificate{pki.ca}
	d := New(esp.NewTable(esp.TableOptions{}), func([]byte, netip.AddrPort) error { return nil }, Options{})
	remote := netip.MustParseAddrPort("198.18.0.2:4500")
	if err := d.AddPeer(Config{Name: "cert", Remote: remote, LocalID: ident("a.example"), RemoteID: ident("b.example"),
		Certs: []*x509.Certificate{cert}, Key: key, CAs: cas}); err != nil {
		t.Fatal(err)
	}
	if err := d.AddPeer(Config{Name: "psk", Remote: remote, LocalID: ident("a.example"), RemoteID: ident("c.example"), PSK: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, peer string
		certs      []*x509.Certificate
		key        crypto.Signer
		cas        []*x509.Certificate
		want       string
	}{
		{"unknown peer", "nobody", []*x509.Certificate{cert2}, key2, cas, `no peer "nobody"`},
		{"pre-shared key peer", "psk", []*x509.Certificate{cert2}, key2, cas, "pre-shared key"},
		{"no key", "cert", []*x509.Certificate{cert2}, nil, cas, "needs our certificate, its key"},
		{"no certificate", "cert", nil, key2, cas, "needs our certificate, its key"},
		{"no CA", "cert", []*x509.Certificate{cert2}, key2, nil, "needs our certificate, its key"},
		{"key of another certificate", "cert", []*x509.Certificate{cert2}, key, cas, "is not the one of the certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := d.SetCertificates(c.peer, c.certs, c.key, c.cas)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			if cfg := d.peers["cert"]; len(cfg.Certs) != 1 || cfg.Certs[0] != cert || cfg.Key != key {
				t.Error("a refused SetCertificates changed the credentials")
			}
			if cfg := d.peers["psk"]; cfg.Key != nil || cfg.Certs != nil {
				t.Error("a refused SetCertificates gave the PSK peer certificates")
			}
		})
	}
}
