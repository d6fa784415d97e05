package ike

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

// TestFragmentation: with a small FragmentSize, IKE_AUTH and
// CREATE_CHILD_SA go in SKF fragments both ways (RFC 7383), a lost
// fragment is recovered by the retransmission of the whole message, and
// the SAs work. Without support on one end, nothing is fragmented.
func TestFragmentation(t *testing.T) {
	for _, c := range []struct {
		name             string
		sizeA, sizeB     int
		wantFragmentsMin int
	}{
		{"both fragment", 300, 300, 4},
		{"only one supports it", 300, -1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16-x25519", localTS: pfx("198.19.1.0/24", "198.19.11.0/24", "2001:db8:1::/48"), remoteTS: pfx("198.19.2.0/24", "198.19.12.0/24", "2001:db8:2::/48")}
			b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16-x25519", localTS: pfx("198.19.2.0/24", "198.19.12.0/24", "2001:db8:2::/48"), remoteTS: pfx("198.19.1.0/24", "198.19.11.0/24", "2001:db8:1::/48")}
			na, nb, n := newPairOpts(t, a, b, nil, esp.TableOptions{}, func(which string, o *Options) {
				o.FragmentSize = c.sizeA
				if which == "b" {
					o.FragmentSize = c.sizeB
				}
			})
			var mu sync.Mutex
			fragments, lost := 0, false
			n.tap = func(msg []byte, from, to netip.AddrPort) bool {
				if len(msg)+20+8+4 > 300 && c.sizeB > 0 {
					t.Errorf("a datagram of %d octets, more than FragmentSize", len(msg)+32)
				}
				m, err := message.Parse(msg)
				if err != nil {
					t.Errorf("unparsable message: %v", err)
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				if num := fragmentNumber(m); num > 0 {
					fragments++
					// Lose fragment 2 of the first IKE_AUTH request once.
					if m.Exchange == message.IKEAuth && !m.IsResponse() && num == 2 && !lost {
						lost = true
						return true
					}
				}
				return false
			}
			establish(t, na, nb)
			// A CHILD_SA rekey (with PFS: a KE payload) over fragments.
			e := na.table.Current("peer")
			na.d.Lifetime(esp.Event{Kind: esp.EventSoftExpire, Peer: "peer", InSPI: e.In.SPI(), OutSPI: e.Out.SPI()})
			deadline := time.Now().Add(5 * time.Second)
			for {
				if ea := na.table.Entries(); len(ea) == 1 && ea[0].In.SPI() != e.In.SPI() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no CHILD_SA rekey")
				}
				time.Sleep(10 * time.Millisecond)
			}
			checkChildren(t, na, nb)
			mu.Lock()
			defer mu.Unlock()
			if fragments < c.wantFragmentsMin || (c.wantFragmentsMin == 0 && fragments > 0) {
				t.Errorf("%d fragments sent, want at least %d (0 without support)", fragments, c.wantFragmentsMin)
			}
			if c.wantFragmentsMin > 0 && !lost {
				t.Error("the IKE_AUTH request was not fragmented")
			}
		})
	}
}
