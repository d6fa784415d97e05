package ikecrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// Errors of SK.Open. Both mean the message is dropped without an answer
// (RFC 7296 §2.21.1: a message whose integrity check fails is discarded).
var (
	// ErrSKAuth means the ICV did not verify: a forged, corrupted or
	// wrongly keyed message.
	ErrSKAuth = errors.New("ikecrypto: sk: integrity check failed")
	// ErrSKMalformed means the body is too short, not a whole number of
	// cipher blocks, or (after the ICV verified) its padding is impossible.
	ErrSKMalformed = errors.New("ikecrypto: sk: malformed encrypted payload")
)

// SK protects the body of SK and SKF payloads (RFC 7296 §3.14, RFC 7383
// §2.5) sent in one direction of an IKE SA: the same key seals on one side
// and opens on the other. It implements the SKCipher interface of package
// message.
//
// The body is IV || ciphertext (of plaintext || padding || Pad Length) ||
// ICV:
//
//   - AES-GCM-16 (RFC 5282 §3) and ChaCha20-Poly1305 (RFC 7634 §3): an
//     8-octet IV, no padding (the cipher's block size is one octet), the
//     Pad Length octet, and the 16-octet tag. The nonce is the 4-octet salt
//     from the end of SK_e followed by the IV; the AAD is the prefix, the
//     message from the IKE header through the SK (or SKF) payload header
//     (RFC 5282 §5.1, RFC 7383 §2.5). The IV is a counter that starts at a
//     random value for each SK: unique for the key, as RFC 5282 §3 and
//     RFC 7634 §3 require, even if the caller made two SKs from one key.
//   - AES-CBC (RFC 3602, RFC 7296 §3.14) with HMAC-SHA-2 (RFC 4868): a
//     random 16-octet IV from crypto/rand, zero padding to the block size,
//     and the truncated HMAC of prefix || IV || ciphertext. Open checks the
//     ICV in constant time before it decrypts anything.
//
// An SK is safe for concurrent use. Zero wipes its keys.
type SK struct {
	suite Suite

	// AEADs.
	aead cipher.AEAD
	salt [saltLen]byte
	iv   atomic.Uint64 // the last IV used

	// AES-CBC with HMAC.
	block  cipher.Block
	mac    func() hash.Hash
	icvLen int
	rand   io.Reader

	// Our copies of the keys, wiped by Zero.
	encKey, integKey []byte
}

// NewSKCipher makes the SK cipher for one direction of an IKE SA with the
// suite's ENCR and INTEG transforms: encKey is SK_ei or SK_er (for the
// AEADs: the key followed by the 4-octet salt, as prf+ gives it), integKey
// SK_ai or SK_ar (empty with an AEAD). The keys are copied.
func NewSKCipher(s Suite, encKey, integKey []byte) (*SK, error) {
	if err := errors.Join(checkEncr(s.Encr, s.KeyLen), checkInteg(s.Encr, s.Integ)); err != nil {
		return nil, err
	}
	if len(encKey) != s.EncrKeyLen() {
		return nil, fmt.Errorf("ikecrypto: sk: %s takes a %d-octet encryption key, got %d", encrToken(s.Encr, s.KeyLen), s.EncrKeyLen(), len(encKey))
	}
	if len(integKey) != s.IntegKeyLen() {
		return nil, fmt.Errorf("ikecrypto: sk: %s takes a %d-octet integrity key, got %d", s.Integ, s.IntegKeyLen(), len(integKey))
	}
	k := &SK{suite: s, encKey: append([]byte(nil), encKey...), integKey: append([]byte(nil), integKey...)}
	var err error
	switch s.Encr {
	case EncrAESGCM16, EncrChaCha20Poly1305:
		n := len(k.encKey) - saltLen
		copy(k.salt[:], k.encKey[n:])
		if s.Encr == EncrAESGCM16 {
			var b cipher.Block
			if b, err = aes.NewCipher(k.encKey[:n]); err == nil {
				k.aead, err = cipher.NewGCM(b)
			}
		} else {
			k.aead, err = chacha20poly1305.New(k.encKey[:n])
		}
		var start [8]byte
		if err == nil {
			_, err = io.ReadFull(rand.Reader, start[:])
		}
		k.iv.Store(binary.BigEndian.Uint64(start[:]))
	case EncrAESCBC:
		k.block, err = aes.NewCipher(k.encKey)
		k.icvLen = s.Integ.ICVLen()
		k.rand = rand.Reader
		switch s.Integ {
		case IntegHMACSHA256128:
			k.mac = sha256.New
		case IntegHMACSHA384192:
			k.mac = sha512.New384
		case IntegHMACSHA512256:
			k.mac = sha512.New
		}
	}
	if err != nil {
		k.Zero()
		return nil, fmt.Errorf("ikecrypto: sk: %s: %w", encrToken(s.Encr, s.KeyLen), err)
	}
	return k, nil
}

// InitiatorSK returns the cipher for messages the IKE SA's initiator sends
// (SK_ei, SK_ai): the initiator seals with it, the responder opens.
func (k *Keys) InitiatorSK() (*SK, error) { return NewSKCipher(k.Suite, k.SKei, k.SKai) }

// ResponderSK returns the cipher for messages the IKE SA's responder sends
// (SK_er, SK_ar).
func (k *Keys) ResponderSK() (*SK, error) { return NewSKCipher(k.Suite, k.SKer, k.SKar) }

// SKCiphers returns the cipher to seal our messages with and the one to
// open the peer's, for the side that was the IKE SA's initiator or not.
// After an IKE SA rekey, the initiator is whoever initiated the rekeying
// exchange (RFC 7296 §2.18), not the original initiator.
func (k *Keys) SKCiphers(initiator bool) (out, in *SK, err error) {
	i, err := k.InitiatorSK()
	if err != nil {
		return nil, nil, err
	}
	r, err := k.ResponderSK()
	if err != nil {
		i.Zero()
		return nil, nil, err
	}
	if initiator {
		return i, r, nil
	}
	return r, i, nil
}

// Suite is the suite the SK was made for.
func (k *SK) Suite() Suite { return k.suite }

// String names the algorithm only; keys never print.
func (k *SK) String() string {
	return "ikecrypto.SK(" + Suite{Encr: k.suite.Encr, KeyLen: k.suite.KeyLen, Integ: k.suite.Integ}.String() + ")"
}

// GoString keeps %#v from printing the keys.
func (k *SK) GoString() string { return k.String() }

// Overhead is what the body adds at most to a plaintext: IV, the longest
// padding, the Pad Length octet and the ICV. Fragmentation (RFC 7383 §2.5.1)
// uses it to size fragments.
func (k *SK) Overhead() int {
	if k.suite.AEAD() {
		return aeadIVLen + padLenLen + aeadICVLen
	}
	return aesBlockLen + aesBlockLen + k.icvLen
}

// BodyLen is the length of the SK payload body for a plaintext of n
// octets: IV || ciphertext (with padding and the Pad Length octet) || ICV.
func (k *SK) BodyLen(n int) int {
	if k.suite.AEAD() {
		return aeadIVLen + n + padLenLen + aeadICVLen
	}
	ct := (n + padLenLen + aesBlockLen - 1) / aesBlockLen * aesBlockLen
	return aesBlockLen + ct + k.icvLen
}

// Seal writes the protected body for plaintext into body, which must be
// exactly BodyLen(len(plaintext)) long. prefix is the message from the IKE
// header through the SK payload's generic header (for SKF, through the
// Total Fragments field), every length in it final: the AEAD's additional
// data, or the first part of what the HMAC covers. plaintext may be the
// part of body where the ciphertext goes (body[ivLen:]), or anywhere
// outside body.
func (k *SK) Seal(body, prefix, plaintext []byte) error {
	n := len(plaintext)
	if len(body) != k.BodyLen(n) {
		return fmt.Errorf("ikecrypto: sk: seal: body is %d octets, want %d for a %d-octet plaintext", len(body), k.BodyLen(n), n)
	}
	if k.aead == nil && k.block == nil {
		return errors.New("ikecrypto: sk: seal: keys zeroed")
	}
	if k.aead != nil {
		ct := body[aeadIVLen:]
		copy(ct, plaintext) // memmove: plaintext may already be there
		ct[n] = 0           // Pad Length: no padding (block size 1)
		var nonce [aeadNonceLen]byte
		copy(nonce[:], k.salt[:])
		binary.BigEndian.PutUint64(nonce[saltLen:], k.iv.Add(1))
		copy(body[:aeadIVLen], nonce[saltLen:])
		k.aead.Seal(ct[:0], nonce[:], ct[:n+padLenLen], prefix)
		return nil
	}
	ctLen := len(body) - aesBlockLen - k.icvLen
	ct := body[aesBlockLen : aesBlockLen+ctLen]
	copy(ct, plaintext)
	pad := ctLen - n - padLenLen
	clear(ct[n : n+pad])
	ct[ctLen-1] = byte(pad)
	iv := body[:aesBlockLen]
	if _, err := io.ReadFull(k.rand, iv); err != nil {
		return fmt.Errorf("ikecrypto: sk: seal: iv: %w", err)
	}
	cipher.NewCBCEncrypter(k.block, iv).CryptBlocks(ct, ct)
	icv := k.icv(prefix, body[:aesBlockLen+ctLen])
	copy(body[aesBlockLen+ctLen:], icv[:k.icvLen])
	return nil
}

// Open checks and decrypts an SK payload body and returns the plaintext
// without padding, decrypted in place in body's storage. prefix is as for
// Seal, taken from the received message. Errors wrap ErrSKAuth or
// ErrSKMalformed. body is overwritten even when Open fails (crypto/cipher's
// AEAD.Open may clear it): a caller that keeps the message as received,
// to recognize a retransmission (RFC 7296 §2.1), keeps a copy.
func (k *SK) Open(prefix, body []byte) ([]byte, error) {
	if k.aead == nil && k.block == nil {
		return nil, errors.New("ikecrypto: sk: open: keys zeroed")
	}
	var pt []byte
	if k.aead != nil {
		if len(body) < aeadIVLen+padLenLen+aeadICVLen {
			return nil, fmt.Errorf("%w: %d octets is shorter than IV, Pad Length and ICV", ErrSKMalformed, len(body))
		}
		var nonce [aeadNonceLen]byte
		copy(nonce[:], k.salt[:])
		copy(nonce[saltLen:], body[:aeadIVLen])
		ct := body[aeadIVLen:]
		var err error
		if pt, err = k.aead.Open(ct[:0], nonce[:], ct, prefix); err != nil {
			return nil, ErrSKAuth
		}
	} else {
		ctLen := len(body) - aesBlockLen - k.icvLen
		if ctLen < aesBlockLen || ctLen%aesBlockLen != 0 {
			return nil, fmt.Errorf("%w: %d octets is not IV, whole cipher blocks and a %d-octet ICV", ErrSKMalformed, len(body), k.icvLen)
		}
		// RFC 7296 §3.14, and §2.21.1's order: the ICV is checked first,
		// in constant time, and nothing is decrypted if it fails.
		icv := k.icv(prefix, body[:aesBlockLen+ctLen])
		if !hmac.Equal(icv[:k.icvLen], body[aesBlockLen+ctLen:]) {
			return nil, ErrSKAuth
		}
		pt = body[aesBlockLen : aesBlockLen+ctLen]
		cipher.NewCBCDecrypter(k.block, body[:aesBlockLen]).CryptBlocks(pt, pt)
	}
	pad := int(pt[len(pt)-1])
	if pad+padLenLen > len(pt) {
		return nil, fmt.Errorf("%w: pad length %d in %d octets of plaintext", ErrSKMalformed, pad, len(pt))
	}
	return pt[:len(pt)-padLenLen-pad], nil
}

// icv is the full HMAC of prefix || data; the caller truncates (RFC 4868
// §2.3: the first half of the output).
func (k *SK) icv(prefix, data []byte) []byte {
	m := hmac.New(k.mac, k.integKey)
	m.Write(prefix)
	m.Write(data)
	return m.Sum(nil)
}

// Zero wipes the keys and drops the cipher states (Go's crypto packages
// keep expanded keys in unexported state that cannot be wiped; dropping the
// last reference lets the collector reclaim it). The SK is unusable after.
// It must not race with Seal or Open.
func (k *SK) Zero() {
	clear(k.encKey)
	clear(k.integKey)
	clear(k.salt[:])
	k.aead, k.block, k.encKey, k.integKey = nil, nil, nil, nil
}
