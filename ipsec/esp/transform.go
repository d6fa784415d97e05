package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

// Algorithm names an ESP transform: a combined-mode (AEAD) cipher, or a
// cipher plus an integrity algorithm.
type Algorithm string

const (
	// AESGCM16 is AES-GCM with a 16-octet ICV (RFC 4106). Key is the AES key
	// (16, 24 or 32 octets) followed by the 4-octet salt, as `ip xfrm` takes
	// rfc4106(gcm(aes)) and as IKEv2 derives it (RFC 4106 §8.1).
	AESGCM16 Algorithm = "aes-gcm-16"
	// ChaCha20Poly1305 is ChaCha20-Poly1305 for ESP (RFC 7634). Key is the
	// 32-octet key followed by the 4-octet salt (RFC 7634 §2, §4).
	ChaCha20Poly1305 Algorithm = "chacha20-poly1305"
	// AESCBCHMACSHA256 is AES-CBC (RFC 3602) with HMAC-SHA-256-128
	// (RFC 4868). Key is the AES key (16, 24 or 32 octets); AuthKey is the
	// 32-octet HMAC key.
	AESCBCHMACSHA256 Algorithm = "aes-cbc-hmac-sha256"
)

// algorithmNames maps every accepted spelling to its Algorithm.
var algorithmNames = map[string]Algorithm{
	// Our own names.
	string(AESGCM16):         AESGCM16,
	string(ChaCha20Poly1305): ChaCha20Poly1305,
	string(AESCBCHMACSHA256): AESCBCHMACSHA256,
	// Linux xfrm (`ip xfrm state ... aead|enc NAME`). "cbc(aes)" names the
	// cipher only; the integrity half must be hmac(sha256) with a 128-bit
	// truncation, the only one this package implements.
	"rfc4106(gcm(aes))":             AESGCM16,
	"rfc7539esp(chacha20,poly1305)": ChaCha20Poly1305,
	"cbc(aes)":                      AESCBCHMACSHA256,
	// strongSwan esp_proposals tokens (the key size is a property of Key).
	"aes128gcm16":      AESGCM16,
	"aes192gcm16":      AESGCM16,
	"aes256gcm16":      AESGCM16,
	"chacha20poly1305": ChaCha20Poly1305,
	"aes128-sha256":    AESCBCHMACSHA256,
	"aes192-sha256":    AESCBCHMACSHA256,
	"aes256-sha256":    AESCBCHMACSHA256,
}

// ParseAlgorithm returns the Algorithm for s, ignoring case and surrounding
// space. It accepts this package's names ("aes-gcm-16", "chacha20-poly1305",
// "aes-cbc-hmac-sha256"), the Linux xfrm names ("rfc4106(gcm(aes))",
// "rfc7539esp(chacha20,poly1305)", and "cbc(aes)", meaning AES-CBC with
// HMAC-SHA-256-128) and strongSwan's ESP proposal tokens ("aes128gcm16",
// "aes192gcm16", "aes256gcm16", "chacha20poly1305", "aes128-sha256",
// "aes192-sha256", "aes256-sha256"). Key sizes are not part of the
// Algorithm: they follow from the length of Config.Key.
func ParseAlgorithm(s string) (Algorithm, error) {
	if a, ok := algorithmNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		return a, nil
	}
	return "", fmt.Errorf("esp: unknown algorithm %q (want %s, %s or %s)", s, AESGCM16, ChaCha20Poly1305, AESCBCHMACSHA256)
}

// String returns the algorithm's canonical name.
func (a Algorithm) String() string { return string(a) }

// checkKeys reports what is wrong with key and authKey for a, or nil.
func (a Algorithm) checkKeys(key, authKey []byte) []error {
	var errs []error
	switch a {
	case AESGCM16:
		switch len(key) {
		case 16 + saltLen, 24 + saltLen, 32 + saltLen:
		default:
			errs = append(errs, fmt.Errorf("esp: config: key: %s takes a 16, 24 or 32-octet AES key followed by a %d-octet salt (20, 28 or 36 octets), got %d", a, saltLen, len(key)))
		}
	case ChaCha20Poly1305:
		if len(key) != chachaKeyLen+saltLen {
			errs = append(errs, fmt.Errorf("esp: config: key: %s takes a 32-octet key followed by a %d-octet salt (36 octets), got %d", a, saltLen, len(key)))
		}
	case AESCBCHMACSHA256:
		switch len(key) {
		case 16, 24, 32:
		default:
			errs = append(errs, fmt.Errorf("esp: config: key: %s takes a 16, 24 or 32-octet AES key, got %d", a, len(key)))
		}
		if len(authKey) != hmacSHA256KeyLen {
			errs = append(errs, fmt.Errorf("esp: config: authkey: HMAC-SHA-256-128 takes a %d-octet key (RFC 4868 §2.1.1), got %d", hmacSHA256KeyLen, len(authKey)))
		}
		return errs
	default:
		return append(errs, fmt.Errorf("esp: config: algorithm: unknown %q (want %s, %s or %s)", string(a), AESGCM16, ChaCha20Poly1305, AESCBCHMACSHA256))
	}
	if len(authKey) != 0 {
		errs = append(errs, fmt.Errorf("esp: config: authkey: %s is a combined-mode algorithm and takes no separate integrity key", a))
	}
	return errs
}

// transform holds one SA's keys and does the cryptography of RFC 4303 §3.3
// (outbound) and §3.4 (inbound). All fields are fixed after newTransform
// except by zero, which the SA only calls once no Seal or Open can be
// using the transform.
type transform struct {
	spi   uint32
	esn   bool
	ivLen int
	align int // padding alignment: 4 (RFC 4303 §2.4) or the cipher block size
	minCT int // shortest valid ciphertext

	// AES-GCM and ChaCha20-Poly1305.
	aead cipher.AEAD
	salt [saltLen]byte

	// AES-CBC with HMAC-SHA-256-128.
	block cipher.Block // the AES-CBC key
	ivGen cipher.Block // AES under a random per-SA key: IV = E(ivKey, seq)
	macs  *sync.Pool   // of hash.Hash: HMAC-SHA-256 keyed with authKey
	// crypto/cipher's CBC modes, pooled: NewCBCEncrypter allocates, so
	// each packet takes one from the pool and sets its IV (as crypto/tls
	// does with the same SetIV method).
	cbcEnc, cbcDec *sync.Pool // of cbcMode

	// Our copies of the keying material, wiped by zero.
	key     []byte
	authKey []byte
}

func newTransform(alg Algorithm, spi uint32, esn bool, key, authKey []byte) (*transform, error) {
	if errs := alg.checkKeys(key, authKey); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t := &transform{spi: spi, esn: esn, key: append([]byte(nil), key...)}
	switch alg {
	case AESGCM16, ChaCha20Poly1305:
		n := len(t.key) - saltLen
		copy(t.salt[:], t.key[n:])
		var err error
		if alg == AESGCM16 {
			var b cipher.Block
			if b, err = aes.NewCipher(t.key[:n]); err == nil {
				t.aead, err = cipher.NewGCM(b)
			}
		} else {
			t.aead, err = chacha20poly1305.New(t.key[:n])
		}
		if err != nil {
			t.zero()
			return nil, fmt.Errorf("esp: %s: %w", alg, err)
		}
		t.ivLen, t.align = aeadIVLen, minAlign
		// RFC 4303 §2.4: at least Pad Length and Next Header, aligned.
		t.minCT = minAlign
	case AESCBCHMACSHA256:
		t.authKey = append([]byte(nil), authKey...)
		b, err := aes.NewCipher(t.key)
		if err != nil {
			t.zero()
			return nil, fmt.Errorf("esp: %s: %w", alg, err)
		}
		t.block = b
		// RFC 3602 §3 requires an unpredictable IV. We encrypt the 64-bit
		// sequence number under a random key of its own: unique because the
		// sequence number is, unpredictable without the key (the "encrypt a
		// nonce" method of NIST SP 800-38A Appendix C), and free of a system
		// call per packet.
		var ivKey [16]byte
		if _, err := rand.Read(ivKey[:]); err != nil {
			t.zero()
			return nil, fmt.Errorf("esp: %s: iv key: %w", alg, err)
		}
		t.ivGen, _ = aes.NewCipher(ivKey[:]) // 16 octets: cannot fail
		clear(ivKey[:])
		var zeroIV [aesBlockLen]byte
		t.cbcEnc = &sync.Pool{New: func() any { return cipher.NewCBCEncrypter(b, zeroIV[:]).(cbcMode) }}
		t.cbcDec = &sync.Pool{New: func() any { return cipher.NewCBCDecrypter(b, zeroIV[:]).(cbcMode) }}
		mk := t.authKey
		t.macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, mk) }}
		t.ivLen, t.align, t.minCT = cbcIVLen, aesBlockLen, aesBlockLen
	}
	return t, nil
}

// Overhead is the most an SA of algorithm a adds to a packet (ESP header,
// IV, the longest padding, trailer, ICV), known before any key is: what a
// path MTU must leave room for whatever IKE negotiates.
func (a Algorithm) Overhead() (int, error) {
	switch a {
	case AESGCM16, ChaCha20Poly1305:
		return espHeaderLen + aeadIVLen + (minAlign - 1) + trailerLen + icvLen, nil
	case AESCBCHMACSHA256:
		return espHeaderLen + cbcIVLen + (aesBlockLen - 1) + trailerLen + icvLen, nil
	}
	return 0, fmt.Errorf("esp: unknown algorithm %q", a)
}

// overhead is the most ESP can add to a payload: header, IV, the longest
// padding the alignment needs, trailer and ICV.
func (t *transform) overhead() int {
	return espHeaderLen + t.ivLen + (t.align - 1) + trailerLen + icvLen
}

// zero wipes our copies of the keys and drops the cipher states. crypto/aes,
// crypto/hmac and x/crypto keep expanded keys in unexported state that
// cannot be wiped; dropping the last reference lets the collector reclaim it.
func (t *transform) zero() {
	clear(t.key)
	clear(t.authKey)
	clear(t.salt[:])
	t.aead, t.block, t.ivGen, t.macs, t.cbcEnc, t.cbcDec = nil, nil, nil, nil, nil, nil
}

// scratch is per-call room for the nonce, the ESN AAD and the HMAC output.
// Slices of a stack array would escape through the cipher.AEAD and
// hash.Hash interface calls and cost an allocation per packet, so scratch
// comes from a pool. It holds no secrets: nonces, AADs and ICVs are all
// sent in the clear.
type scratch [64]byte

const (
	scrNonce = 0  // 12 octets: salt || IV
	scrAAD   = 16 // 12 octets: SPI || Seq high || Seq low (ESN)
	scrSeqHi = 28 // 4 octets: Seq high appended for the HMAC (ESN)
	scrSum   = 32 // 32 octets: HMAC-SHA-256 output
)

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// aeadParams fills s with the nonce and returns it with the AAD for the
// packet whose ESP header is hdr and IV is iv. RFC 4106 §5 and RFC 7634
// §2.1: the AAD is SPI || Seq (8 octets), or with ESN SPI || Seq high ||
// Seq low (12 octets).
func (t *transform) aeadParams(s *scratch, hdr, iv []byte, seq uint64) (nonce, aad []byte) {
	nonce = s[scrNonce : scrNonce+aeadNonceLen]
	copy(nonce, t.salt[:])
	copy(nonce[saltLen:], iv)
	if !t.esn {
		return nonce, hdr[:espHeaderLen]
	}
	aad = s[scrAAD : scrAAD+12]
	binary.BigEndian.PutUint32(aad[0:], t.spi)
	binary.BigEndian.PutUint64(aad[4:], seq)
	return nonce, aad
}

// icv computes HMAC-SHA-256-128 over data (SPI through Next Header) and,
// with ESN, the high-order 32 bits of the sequence number appended after
// it but never sent (RFC 4303 §2.2.1, §3.3.2.1). The result lives in s.
func (t *transform) icv(s *scratch, data []byte, seq uint64) []byte {
	h := t.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	if t.esn {
		hi := s[scrSeqHi : scrSeqHi+4]
		binary.BigEndian.PutUint32(hi, uint32(seq>>32))
		h.Write(hi)
	}
	sum := h.Sum(s[scrSum:scrSum])
	t.macs.Put(h)
	// RFC 4868 §2.3: the ICV is the first 128 bits of the HMAC output.
	return sum[:icvLen]
}

// seal lays out one ESP packet (RFC 4303 §3.3) after dst's length and
// returns dst extended by it. The payload is payload, or fill zero octets
// when payload is nil. payload may overlap dst's spare capacity: it is
// moved into place before anything else is written. iv is nil except in
// known-answer tests, which need the published IV.
func (t *transform) seal(dst, payload []byte, fill int, nh byte, seq uint64, iv []byte) []byte {
	n := fill
	if payload != nil {
		n = len(payload)
	}
	// RFC 4303 §2.4: pad so that the plaintext, Pad Length and Next Header
	// included, is a multiple of the cipher's block size and of 4.
	plain := n + trailerLen
	pad := (t.align - plain%t.align) % t.align
	plain += pad
	hdrLen := espHeaderLen + t.ivLen
	ret, out := sliceForAppend(dst, hdrLen+plain+icvLen)
	body := out[hdrLen : hdrLen+plain]
	if payload != nil {
		moveTo(body, payload) // a memmove, skipped when already in place
	} else {
		clear(body[:n])
	}
	// RFC 4303 §2.4: the default padding is the monotonic series 1, 2, 3...
	for i := range pad {
		body[n+i] = byte(i + 1)
	}
	body[plain-2] = byte(pad)
	body[plain-1] = nh

	t.protect(out, plain, seq, iv)
	return ret
}

// protect fills in the ESP header and IV of out, whose body (after the
// header and IV) holds plain octets of plaintext with its trailer, then
// encrypts the body and appends the ICV. out is exactly as long as the
// packet.
func (t *transform) protect(out []byte, plain int, seq uint64, iv []byte) {
	hdrLen := espHeaderLen + t.ivLen
	body := out[hdrLen : hdrLen+plain]
	binary.BigEndian.PutUint32(out[offSPI:], t.spi)
	// RFC 4303 §2.2.1: only the low-order 32 bits are sent, even with ESN.
	binary.BigEndian.PutUint32(out[offSeq:], uint32(seq))
	ivb := out[espHeaderLen:hdrLen]

	s := scratchPool.Get().(*scratch)
	if t.aead != nil {
		// RFC 4106 §3.1, RFC 7634 §2: the IV must not repeat under a key;
		// the 64-bit sequence number is such a counter.
		if iv != nil {
			copy(ivb, iv)
		} else {
			binary.BigEndian.PutUint64(ivb, seq)
		}
		nonce, aad := t.aeadParams(s, out, ivb, seq)
		t.aead.Seal(body[:0], nonce, body, aad)
	} else {
		if iv != nil {
			copy(ivb, iv)
		} else {
			clear(ivb)
			binary.BigEndian.PutUint64(ivb[aesBlockLen-8:], seq)
			t.ivGen.Encrypt(ivb, ivb)
		}
		enc := t.cbcEnc.Get().(cbcMode)
		enc.SetIV(ivb)
		enc.CryptBlocks(body, body)
		t.cbcEnc.Put(enc)
		// RFC 4303 §3.3.2: encrypt, then compute the ICV over the packet.
		copy(out[hdrLen+plain:], t.icv(s, out[:hdrLen+plain], seq))
	}
	scratchPool.Put(s)
}

// open authenticates and decrypts packet, whose full sequence number is
// seq, into pt (len(pt) is the ciphertext length without the ICV) and
// returns the plaintext, trailer included. pt may overlap packet in any
// way: then the packet is decrypted in place and the plaintext moved.
func (t *transform) open(pt, packet []byte, seq uint64) ([]byte, error) {
	hdrLen := espHeaderLen + t.ivLen
	iv := packet[espHeaderLen:hdrLen]
	inPlace := anyOverlap(pt, packet)
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	if t.aead != nil {
		ct := packet[hdrLen:]
		nonce, aad := t.aeadParams(s, packet, iv, seq)
		if !inPlace {
			p, err := t.aead.Open(pt[:0], nonce, ct, aad)
			if err != nil {
				return nil, errAuth
			}
			return p, nil
		}
		p, err := t.aead.Open(ct[:0], nonce, ct, aad)
		if err != nil {
			return nil, errAuth
		}
		return moveTo(pt, p), nil
	}
	// RFC 4303 §3.4.4.1: verify the ICV before decrypting, in constant time.
	end := len(packet) - icvLen
	if !hmac.Equal(t.icv(s, packet[:end], seq), packet[end:]) {
		return nil, errAuth
	}
	ct := packet[hdrLen:end]
	dec := t.cbcDec.Get().(cbcMode)
	defer t.cbcDec.Put(dec)
	dec.SetIV(iv)
	if !inPlace {
		dec.CryptBlocks(pt[:len(ct)], ct)
		return pt[:len(ct)], nil
	}
	// CryptBlocks allows dst and src to overlap exactly.
	dec.CryptBlocks(ct, ct)
	return moveTo(pt, ct), nil
}

// cbcMode is what crypto/cipher's CBC encrypter and decrypter implement.
type cbcMode interface {
	cipher.BlockMode
	SetIV([]byte)
}

// moveTo copies p to the start of dst unless it is already there.
func moveTo(dst, p []byte) []byte {
	if len(p) > 0 && unsafe.SliceData(dst) != unsafe.SliceData(p) {
		copy(dst, p)
	}
	return dst[:len(p)]
}

// sliceForAppend extends in by n bytes, reusing its capacity when it can,
// and returns the whole slice and the n new bytes (as crypto/cipher does).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return head, tail
}

// anyOverlap reports whether x and y share memory.
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}
