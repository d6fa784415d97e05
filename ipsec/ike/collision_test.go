package ike

import (
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// TestChildRekeyCollision: both ends rekey the same CHILD_SA at once
// (RFC 7296 §2.8.1): their CREATE_CHILD_SA requests cross. Both exchanges
// complete; the pair of the exchange with the lowest nonce is deleted by
// its initiator, the old pair by both, and the ends are left with one
// matching pair. Repeated, so that either end's pair is the redundant one
// and the responses arrive in either order.
func TestChildRekeyCollision(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	redundant := map[string]int{}
	for round := range 12 {
		logs := map[string]*lockedLog{"a": {}, "b": {}}
		na, nb, n := newPairOpts(t, a, b, nil, esp.TableOptions{}, func(which string, o *Options) {
			o.Logger = slog.New(slog.NewTextHandler(logs[which], nil))
		})
		establish(t, na, nb)
		// Requests and responses cross: each end answers the other's
		// request before it hears the answer to its own.
		n.tap = crossing(n, message.CreateChildSA)
		ea, eb := na.table.Current("peer"), nb.table.Current("peer")
		na.d.Lifetime(esp.Event{Kind: esp.EventSoftExpire, Peer: "peer", InSPI: ea.In.SPI(), OutSPI: ea.Out.SPI()})
		nb.d.Lifetime(esp.Event{Kind: esp.EventSoftExpire, Peer: "peer", InSPI: eb.In.SPI(), OutSPI: eb.Out.SPI()})
		deadline := time.Now().Add(5 * time.Second)
		for {
			xa, xb := na.table.Entries(), nb.table.Entries()
			sa, sb := na.d.Status(), nb.d.Status()
			if len(xa) == 1 && len(xb) == 1 && xa[0].In.SPI() != ea.In.SPI() && xb[0].In.SPI() != eb.In.SPI() &&
				len(sa) == 1 && len(sb) == 1 && sa[0].ChildSAs == 1 && sb[0].ChildSAs == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: after the collision: A %d pairs %+v, B %d pairs %+v", round, len(xa), sa, len(xb), sb)
			}
			time.Sleep(5 * time.Millisecond)
		}
		checkChildren(t, na, nb)
		na.d.mu.Lock()
		if len(na.d.sas) == 1 {
			for _, sa := range na.d.sas {
				if len(sa.rekeys) != 0 {
					t.Errorf("round %d: collision records left: %d", round, len(sa.rekeys))
				}
			}
		}
		na.d.mu.Unlock()
		// Exactly one end found its own pair redundant, and both saw the
		// collision.
		const mine, theirs = "ours is redundant", "the peer's is redundant"
		ca, cb := logs["a"].count(mine), logs["b"].count(mine)
		if ca+cb != 1 || logs["a"].count(theirs)+logs["b"].count(theirs) != 1 {
			t.Fatalf("round %d: A and B logged %q %d and %d times, %q %d and %d times\nA:\n%s\nB:\n%s", round,
				mine, ca, cb, theirs, logs["a"].count(theirs), logs["b"].count(theirs), logs["a"], logs["b"])
		}
		if ca == 1 {
			redundant["a"]++
		} else {
			redundant["b"]++
		}
	}
	// The nonces are random: over 12 rounds each end loses at least once
	// but with probability 2^-11.
	if redundant["a"] == 0 || redundant["b"] == 0 {
		t.Logf("redundant pairs deleted by: %v (one end never lost: possible, but rare)", redundant)
	}
}

// crossing returns a tap that holds the first two requests of an exchange
// type until both are sent, then delivers them together, and the same
// with the first two responses: the two ends' exchanges cross.
func crossing(n *net2, exchange message.ExchangeType) func([]byte, netip.AddrPort, netip.AddrPort) bool {
	var mu sync.Mutex
	held := map[bool][]func(){}
	return func(msg []byte, from, to netip.AddrPort) bool {
		m, err := message.Parse(msg)
		if err != nil || m.Exchange != exchange {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		kind := m.IsResponse()
		if len(held[kind]) >= 2 {
			return false
		}
		dst := n.nodes[to]
		b := append([]byte(nil), msg...)
		held[kind] = append(held[kind], func() { dst.d.Handle(b, from) })
		if len(held[kind]) == 2 {
			for _, f := range held[kind] {
				go f()
			}
		}
		return true
	}
}

// lockedLog is a log sink safe for concurrent use.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedLog) count(s string) int { return strings.Count(l.String(), s) }

// TestIKERekeyCollision: both ends rekey the IKE SA at once (RFC 7296
// §2.8.2), requests and responses crossing. Each end is left with one IKE
// SA, the same one, carrying the CHILD_SA, and it works: a CHILD_SA rekey
// runs over it.
func TestIKERekeyCollision(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	redundant := map[string]int{}
	for round := range 12 {
		logs := map[string]*lockedLog{"a": {}, "b": {}}
		na, nb, n := newPairOpts(t, a, b, func(c *Config) { c.RekeyTime = time.Hour }, esp.TableOptions{}, func(which string, o *Options) {
			o.Logger = slog.New(slog.NewTextHandler(logs[which], nil))
		})
		establish(t, na, nb)
		n.tap = crossing(n, message.CreateChildSA)
		before := na.d.Status()[0].SPIi
		later := time.Now().Add(time.Hour)
		na.d.Tick(later)
		nb.d.Tick(later)
		deadline := time.Now().Add(5 * time.Second)
		for {
			sa, sb := na.d.Status(), nb.d.Status()
			if len(sa) == 1 && len(sb) == 1 && sa[0].SPIi != before && sa[0].SPIi == sb[0].SPIi && sa[0].SPIr == sb[0].SPIr &&
				sa[0].ChildSAs == 1 && sb[0].ChildSAs == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: after the collision: A %+v, B %+v\nA:\n%s\nB:\n%s", round, sa, sb, logs["a"], logs["b"])
			}
			time.Sleep(5 * time.Millisecond)
		}
		checkChildren(t, na, nb)
		const mine = "IKE SA rekey collision: ours is redundant"
		ca, cb := logs["a"].count(mine), logs["b"].count(mine)
		if ca+cb != 1 {
			t.Fatalf("round %d: %q logged %d and %d times\nA:\n%s\nB:\n%s", round, mine, ca, cb, logs["a"], logs["b"])
		}
		redundant[map[bool]string{true: "a", false: "b"}[ca == 1]]++
		// The surviving IKE SA carries a CHILD_SA rekey.
		e := na.table.Current("peer")
		na.d.Lifetime(esp.Event{Kind: esp.EventSoftExpire, Peer: "peer", InSPI: e.In.SPI(), OutSPI: e.Out.SPI()})
		for {
			if ea := na.table.Entries(); len(ea) == 1 && ea[0].In.SPI() != e.In.SPI() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no CHILD_SA rekey over the surviving IKE SA\nA:\n%s\nB:\n%s", round, logs["a"], logs["b"])
			}
			time.Sleep(5 * time.Millisecond)
		}
		checkChildren(t, na, nb)
	}
	t.Logf("redundant IKE SA deleted by: %v", redundant)
}
