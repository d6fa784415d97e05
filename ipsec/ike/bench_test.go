package ike

import (
	"testing"

	"github.com/rampartnet/rampart/ipsec/esp"
)

// BenchmarkHandshake: one IKE_SA_INIT + IKE_AUTH (PSK, AES-256-GCM,
// x25519) and CHILD_SA install per op, initiator and responder in one
// process through memory: the CPU cost of a handshake on both ends.
func BenchmarkHandshake(b *testing.B) {
	for _, ikeP := range []string{"aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-ecp256"} {
		b.Run(ikeP, func(b *testing.B) {
			a := side{psk: "k", ike: ikeP, esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
			bs := side{psk: "k", ike: ikeP, esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
			na, nb, _ := newPairWith(b, a, bs, nil, esp.TableOptions{})
			b.ReportAllocs()
			for b.Loop() {
				if err := na.d.Initiate("peer"); err != nil {
					b.Fatal(err)
				}
				if err := <-na.result; err != nil {
					b.Fatal(err)
				}
				if err := <-nb.result; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}
