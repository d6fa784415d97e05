package ikecrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestSKChaCha20Poly1305RFC7634 is the IKEv2 example of RFC 7634 Appendix
// B: an INFORMATIONAL request with one SET_WINDOW_SIZE notification in an
// SK payload, ChaCha20-Poly1305 with a fixed IV.
func TestSKChaCha20Poly1305RFC7634(t *testing.T) {
	key := unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3")
	k, err := NewSKCipher(Suite{Encr: EncrChaCha20Poly1305}, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	// IKE header: SPIs, next payload SK, version 2.0, INFORMATIONAL,
	// flags initiator, message ID 9, length 69; SK header: next payload
	// Notify, length 41.
	prefix := unhex(t, "c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e202500 00000009 00000045 29000029")
	// Notify: protocol 0, SPI size 0, SET_WINDOW_SIZE (16385), 10.
	plaintext := unhex(t, "0000000c 00004001 0000000a")
	want := unhex(t, `1011121314151617 6103947 01f8d017f 7c129248 89
		6b71bfe25236efd7cdc670669063 15b2`)
	k.iv.Store(0x1011121314151617 - 1) // Seal uses the next IV
	body := make([]byte, k.BodyLen(len(plaintext)))
	if err := k.Seal(body, prefix, plaintext); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("sealed\n got %x\nwant %x", body, want)
	}
	got, err := k.Open(prefix, bytes.Clone(want))
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Errorf("open: %x %v", got, err)
	}
}

// TestSKCBCReference checks AES-CBC + HMAC-SHA-256-128 against RFC 7296
// §3.14 written out with crypto/aes and crypto/hmac: the ICV is the first
// 16 octets of HMAC(SK_a, prefix | IV | ciphertext), and the ciphertext
// decrypts to the plaintext, zero padding and the pad length.
func TestSKCBCReference(t *testing.T) {
	s := Suite{Encr: EncrAESCBC, KeyLen: 128, Integ: IntegHMACSHA256128}
	ek, ak := rep(0x42, 16), rep(0x24, 32)
	k, err := NewSKCipher(s, ek, ak)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("IKE header and SK header....")
	pt := []byte("twenty octets of pt.")
	body := make([]byte, k.BodyLen(len(pt)))
	if len(body) != 16+32+16 {
		t.Fatalf("BodyLen %d", len(body))
	}
	if err := k.Seal(body, prefix, pt); err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, ak)
	m.Write(prefix)
	m.Write(body[:48])
	if !bytes.Equal(m.Sum(nil)[:16], body[48:]) {
		t.Error("ICV is not HMAC-SHA-256 over prefix | IV | ciphertext truncated to 16")
	}
	b, _ := aes.NewCipher(ek)
	dec := make([]byte, 32)
	cipher.NewCBCDecrypter(b, body[:16]).CryptBlocks(dec, body[16:48])
	wantPT := append(append(bytes.Clone(pt), make([]byte, 11)...), 11)
	if !bytes.Equal(dec, wantPT) {
		t.Errorf("decrypted %x, want %x", dec, wantPT)
	}
}

var skSuites = []Suite{
	{Encr: EncrAESGCM16, KeyLen: 128},
	{Encr: EncrAESGCM16, KeyLen: 192},
	{Encr: EncrAESGCM16, KeyLen: 256},
	{Encr: EncrChaCha20Poly1305},
	{Encr: EncrAESCBC, KeyLen: 128, Integ: IntegHMACSHA256128},
	{Encr: EncrAESCBC, KeyLen: 192, Integ: IntegHMACSHA384192},
	{Encr: EncrAESCBC, KeyLen: 256, Integ: IntegHMACSHA512256},
}

func newTestSK(t testing.TB, s Suite) *SK {
	t.Helper()
	k, err := NewSKCipher(s, rep(0x11, s.EncrKeyLen()), rep(0x22, s.IntegKeyLen()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSKRoundTrip(t *testing.T) {
	prefix := bytes.Repeat([]byte("H"), 32)
	for _, s := range skSuites {
		t.Run(s.String(), func(t *testing.T) {
			a, b := newTestSK(t, s), newTestSK(t, s)
			for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 100, 1000} {
				pt := bytes.Repeat([]byte{byte(n)}, n)
				body := make([]byte, a.BodyLen(n))
				if len(body) > n+a.Overhead() {
					t.Errorf("n=%d: BodyLen %d exceeds n+Overhead %d", n, len(body), n+a.Overhead())
				}
				if err := a.Seal(body, prefix, pt); err != nil {
					t.Fatal(err)
				}
				got, err := b.Open(prefix, bytes.Clone(body))
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("n=%d: open %x %v", n, got, err)
				}
				// In place: the plaintext already where the ciphertext goes.
				iv := 8
				if !s.AEAD() {
					iv = 16
				}
				body2 := make([]byte, a.BodyLen(n))
				copy(body2[iv:], pt)
				if err := a.Seal(body2, prefix, body2[iv:iv+n]); err != nil {
					t.Fatal(err)
				}
				if got, err := b.Open(prefix, body2); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("n=%d: in place: %x %v", n, got, err)
				}
				if bytes.Equal(body[:iv], body2[:iv]) {
					t.Errorf("n=%d: IV repeated", n)
				}
				// Tampering anywhere fails with ErrSKAuth.
				for _, i := range []int{0, iv, len(body) - 1} {
					bad := bytes.Clone(body)
					bad[i] ^= 0x04
					if _, err := b.Open(prefix, bad); !errors.Is(err, ErrSKAuth) {
						t.Errorf("n=%d octet %d flipped: %v", n, i, err)
					}
				}
				badPrefix := bytes.Clone(prefix)
				badPrefix[3] ^= 1
				if _, err := b.Open(badPrefix, bytes.Clone(body)); !errors.Is(err, ErrSKAuth) {
					t.Errorf("n=%d prefix flipped: %v", n, err)
				}
			}
			if err := a.Seal(make([]byte, 3), prefix, []byte("x")); err == nil {
				t.Error("Seal into a wrong-sized body: no error")
			}
			for _, l := range []int{0, 1, 8, 24, a.BodyLen(0) - 1} {
				if _, err := b.Open(prefix, make([]byte, l)); !errors.Is(err, ErrSKMalformed) && !errors.Is(err, ErrSKAuth) {
					t.Errorf("%d-octet body: %v", l, err)
				}
			}
		})
	}
}

// TestSKPadding seals bodies whose Pad Length is not what we write, the
// way other implementations may pad (RFC 7296 §3.14 lets the sender pad
// up to 255 octets), and ones whose Pad Length overruns the plaintext.
func TestSKPadding(t *testing.T) {
	prefix := []byte("hdr")
	for _, s := range []Suite{skSuites[0], skSuites[4]} {
		a, b := newTestSK(t, s), newTestSK(t, s)
		for _, c := range []struct {
			inner []byte // what is encrypted, Pad Length included
			want  []byte
			err   error
		}{
			{append([]byte("payload"), 1, 2, 3, 3), []byte("payload"), nil},
			{append(make([]byte, 15), 15), []byte{}, nil},
			{append([]byte("pay"), 9), nil, ErrSKMalformed},
		} {
			// Seal inner as if it were a plaintext, then strip the Pad
			// Length octet Seal added: an AEAD body is then exactly
			// inner encrypted; for CBC, inner must fill whole blocks.
			if !s.AEAD() && len(c.inner)%16 != 0 {
				continue
			}
			body := sealRaw(t, a, prefix, c.inner)
			got, err := b.Open(prefix, body)
			if !errors.Is(err, c.err) || (c.err == nil && !bytes.Equal(got, c.want)) {
				t.Errorf("%s %x: %q %v, want %q %v", s, c.inner, got, err, c.want, c.err)
			}
		}
	}
}

// sealRaw encrypts inner exactly (it must end with its own Pad Length),
// bypassing Seal's padding.
func sealRaw(t *testing.T, k *SK, prefix, inner []byte) []byte {
	t.Helper()
	if k.aead != nil {
		var nonce [aeadNonceLen]byte
		copy(nonce[:], k.salt[:])
		nonce[11] = 7
		return k.aead.Seal(append([]byte(nil), nonce[saltLen:]...), nonce[:], inner, prefix)
	}
	iv := rep(9, 16)
	ct := make([]byte, len(inner))
	cipher.NewCBCEncrypter(k.block, iv).CryptBlocks(ct, inner)
	body := append(iv, ct...)
	return append(body, k.icv(prefix, body)[:k.icvLen]...)
}

func TestSKKeys(t *testing.T) {
	if _, err := NewSKCipher(Suite{Encr: EncrAESGCM16, KeyLen: 256}, make([]byte, 32), nil); err == nil {
		t.Error("AES-256-GCM key without salt accepted")
	}
	if _, err := NewSKCipher(Suite{Encr: EncrAESCBC, KeyLen: 128, Integ: IntegHMACSHA256128}, make([]byte, 16), make([]byte, 16)); err == nil {
		t.Error("short HMAC key accepted")
	}
	if _, err := NewSKCipher(Suite{Encr: EncrAESGCM16, KeyLen: 128, Integ: IntegHMACSHA256128}, make([]byte, 20), make([]byte, 32)); err == nil {
		t.Error("AEAD with integrity accepted")
	}
	k := newTestSK(t, skSuites[2])
	if s := fmt.Sprintf("%v %+v %#v", k, k, k); strings.Contains(s, "1111") || !strings.Contains(s, "aes256gcm16") {
		t.Errorf("SK prints %s", s)
	}
	k.Zero()
	if err := k.Seal(make([]byte, k.BodyLen(1)), nil, []byte{1}); err == nil {
		t.Error("Seal after Zero: no error")
	}
	if _, err := k.Open(nil, make([]byte, 40)); err == nil {
		t.Error("Open after Zero: no error")
	}
}

// TestSKConcurrentIVs seals from many goroutines at once (under -race)
// and checks that no AEAD IV repeats.
func TestSKConcurrentIVs(t *testing.T) {
	k := newTestSK(t, skSuites[3])
	const workers, each = 8, 200
	ivs := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				body := make([]byte, k.BodyLen(4))
				if err := k.Seal(body, []byte("p"), []byte("data")); err != nil {
					t.Error(err)
					return
				}
				ivs <- string(body[:aeadIVLen])
			}
		}()
	}
	wg.Wait()
	close(ivs)
	seen := map[string]bool{}
	for iv := range ivs {
		if seen[iv] {
			t.Fatalf("IV %x used twice", iv)
		}
		seen[iv] = true
	}
}

func TestKeysSKCiphers(t *testing.T) {
	s := Suite{Encr: EncrAESCBC, KeyLen: 256, Integ: IntegHMACSHA256128, PRF: PRFHMACSHA256, DH: DHECP256}
	n := rep(3, 32)
	k, err := DeriveIKEKeys(s, n, n, n, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	iOut, iIn, err := k.SKCiphers(true)
	if err != nil {
		t.Fatal(err)
	}
	rOut, rIn, err := k.SKCiphers(false)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	for _, pair := range [][2]*SK{{iOut, rIn}, {rOut, iIn}} {
		body := make([]byte, pair[0].BodyLen(5))
		if err := pair[0].Seal(body, prefix, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if got, err := pair[1].Open(prefix, body); err != nil || string(got) != "hello" {
			t.Errorf("%q %v", got, err)
		}
	}
	// The two directions have different keys.
	body := make([]byte, iOut.BodyLen(5))
	_ = iOut.Seal(body, prefix, []byte("hello"))
	if _, err := iIn.Open(prefix, body); !errors.Is(err, ErrSKAuth) {
		t.Errorf("opened our own message with the peer's key: %v", err)
	}
}

// skCipher restates package message's SKCipher interface, so that SK's
// method set is checked against it without importing message.
type skCipher interface {
	BodyLen(n int) int
	Seal(body, prefix, plaintext []byte) error
	Open(prefix, body []byte) ([]byte, error)
}

var _ skCipher = (*SK)(nil)
