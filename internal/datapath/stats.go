package datapath

import "sync/atomic"

// dropReason says why the datapath dropped a packet. Every drop is counted
// under one reason, per peer where the peer is known and per device
// otherwise; nothing is dropped silently but dummy packets (RFC 4303 §2.6)
// and NAT keepalives, which are counted too.
type dropReason int

const (
	dropNoPolicy     dropReason = iota // outbound: no peer's selectors cover the packet
	dropNoSA                           // outbound: the peer has no usable SA (not keyed yet, expired)
	dropTooBig                         // outbound: larger than the path MTU; ICMP sent back
	dropSealFailed                     // outbound: sequence numbers exhausted, hard lifetime reached
	dropSendFailed                     // outbound: the UDP send failed
	dropMalformed                      // inbound or outbound: not a valid IP/ESP packet
	dropUnknownSPI                     // inbound: no SA with that SPI
	dropAuth                           // inbound: the ICV did not verify
	dropReplay                         // inbound: seen before or older than the window
	dropSelector                       // inbound: inner addresses outside the SA's selectors
	dropOpenFailed                     // inbound: padding, lifetime or other decapsulation errors
	dropDummy                          // inbound: dummy packet, next header 59 (not an attack)
	dropIKENoHandler                   // inbound: IKE packet with no IKE daemon registered
	dropWriteFailed                    // inbound: the TUN write failed
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"no-policy", "no-sa", "too-big", "seal-failed", "send-failed", "malformed",
	"unknown-spi", "auth-failed", "replay", "selector-mismatch", "open-failed",
	"dummy", "ike-no-handler", "tun-write-failed",
}

func (r dropReason) String() string { return dropNames[r] }

type drops [numDropReasons]atomic.Uint64

func (d *drops) add(r dropReason, n uint64) { d[r].Add(n) }

// snapshot returns the non-zero counters by name.
func (d *drops) snapshot() map[string]uint64 {
	m := map[string]uint64{}
	for i := range d {
		if v := d[i].Load(); v != 0 {
			m[dropReason(i).String()] = v
		}
	}
	return m
}

// traffic counts what passed through, per peer and direction.
type traffic struct {
	txPackets, txBytes atomic.Uint64
	rxPackets, rxBytes atomic.Uint64
}
