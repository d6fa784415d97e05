package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"
)

// FuzzSKOpen feeds arbitrary bodies to Open for every SK algorithm (it must
// never panic, and fail only with ErrSKAuth or ErrSKMalformed), and seals
// the same octets as a plaintext to check the round trip.
func FuzzSKOpen(f *testing.F) {
	f.Add([]byte("prefix"), []byte{})
	f.Add(make([]byte, 32), make([]byte, 64))
	f.Add([]byte{0x2e}, bytes.Repeat([]byte{0xff}, 100))
	var sks []*SK
	for _, s := range skSuites {
		sks = append(sks, newTestSK(f, s))
	}
	f.Fuzz(func(t *testing.T, prefix, data []byte) {
		for _, k := range sks {
			if _, err := k.Open(prefix, bytes.Clone(data)); err != nil && !errors.Is(err, ErrSKAuth) && !errors.Is(err, ErrSKMalformed) {
				t.Fatalf("%s: unexpected error %v", k, err)
			}
			body := make([]byte, k.BodyLen(len(data)))
			if err := k.Seal(body, prefix, data); err != nil {
				t.Fatal(err)
			}
			got, err := k.Open(prefix, body)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: round trip: %v", k, err)
			}
		}
	})
}

// FuzzParseProposals checks that the proposal parsers never panic and that
// what they accept prints back to something that parses the same.
func FuzzParseProposals(f *testing.F) {
	for _, s := range append(append([]string{}, defaultIKE...), "aes128-aes256gcm16-sha256-sha512-prfsha384-ecp521-x25519", "default", "aes256-sha256,", "modp2048") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func(string) ([]Proposal, error){ParseIKEProposals, ParseESPProposals} {
			ps, err := parse(s)
			if err != nil {
				continue
			}
			for _, p := range ps {
				again, err := parse(p.String())
				if err != nil || len(again) != 1 || !reflect.DeepEqual(again[0], p) {
					t.Fatalf("%q: proposal %s reparses as %v %v", s, p, again, err)
				}
			}
		}
	})
}

// FuzzVerifySignatureAuth feeds arbitrary AUTH data to the RFC 7427
// verifier: it must never panic and never accept.
func FuzzVerifySignatureAuth(f *testing.F) {
	k := keys(f)
	for _, s := range schemeOrder {
		signer := map[string]crypto.Signer{"rsa": k.rsa, "ecdsa": k.p256, "ed25519": k.ed25519}[schemes[s].key]
		data, err := SignatureAuth(s, signer, rand.Reader, []byte("octets"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x30})
	pubs := []crypto.PublicKey{k.rsa.Public(), k.p256.Public(), k.ed25519.Public()}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pub := range pubs {
			if s, err := VerifySignatureAuth(pub, data, []byte("other octets")); err == nil {
				t.Fatalf("accepted a %s signature over other octets", s)
			}
		}
	})
}

// FuzzParseIdentity checks that ParseIdentity never panics and that what
// it accepts prints back to an equal identity.
func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{"vpn.example.org", "@a", "192.0.2.1", "2001:db8::1", "a@b", "@#00", "C=CH, O=A\\,B, CN=x", "CN=,", "E=a@b, DC=org"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			return
		}
		again, err := ParseIdentity(id.String())
		if err != nil || !again.Equal(id) {
			t.Fatalf("%q: %v prints as %q, which parses as %v %v", s, id, id.String(), again, err)
		}
	})
}
