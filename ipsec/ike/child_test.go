package ike

import (
	"testing"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

func TestMaxESPOverhead(t *testing.T) {
	for _, tc := range []struct {
		proposals string
		want      int // 0: an error
	}{
		{"aes256gcm16-x25519-esn", 37},
		{"chacha20poly1305", 37},
		{"aes128-sha256", 57},
		{"aes256gcm16,aes128-sha256-esn", 57},
		{"aes128gcm16-aes256gcm16", 37},
	} {
		ps, err := ikecrypto.ParseESPProposals(tc.proposals)
		if err != nil {
			t.Fatalf("%s: %v", tc.proposals, err)
		}
		got, err := MaxESPOverhead(ps)
		if got != tc.want || (err != nil) != (tc.want == 0) {
			t.Errorf("%s: %d, %v; want %d", tc.proposals, got, err, tc.want)
		}
	}
	if _, err := MaxESPOverhead(nil); err == nil {
		t.Error("no proposals, yet an overhead")
	}
}
