package message

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"testing"
)

// fakeCipher is a test SKCipher: an 8-octet IV, a keystream derived from
// the key and the IV XORed over plaintext, zero padding to 8-octet blocks
// and the pad length octet, and a CRC-32 of prefix, IV and ciphertext as a
// 4-octet "ICV". Its Seal checks the layout promises of SKCipher: the body
// has the length BodyLen gave, and the prefix's lengths are final (the
// header's Length counts prefix and body, and the SK or SKF payload's
// length reaches the end of the body).
type fakeCipher struct {
	key byte
	iv  uint64 // next IV
}

const (
	fakeIVLen  = 8
	fakeBlock  = 8
	fakeICVLen = 4
)

var (
	errFakeICV = errors.New("fake: icv mismatch")
	errFakeLen = errors.New("fake: bad body length")
	errFakePad = errors.New("fake: bad padding")
)

func (c *fakeCipher) BodyLen(n int) int {
	return fakeIVLen + (n+1+fakeBlock-1)/fakeBlock*fakeBlock + fakeICVLen
}

func (c *fakeCipher) stream(iv []byte, b []byte) {
	for i := range b {
		b[i] ^= c.key ^ iv[i%fakeIVLen] ^ byte(i*7)
	}
}

func (c *fakeCipher) Seal(body, prefix, plaintext []byte) error {
	if len(body) != c.BodyLen(len(plaintext)) {
		return fmt.Errorf("fake: body of %d octets for %d of plaintext", len(body), len(plaintext))
	}
	if err := checkPrefix(prefix, len(body)); err != nil {
		return err
	}
	c.iv++
	iv := body[:fakeIVLen]
	binary.BigEndian.PutUint64(iv, c.iv)
	ct := body[fakeIVLen : len(body)-fakeICVLen]
	n := copy(ct, plaintext)
	clear(ct[n:])
	ct[len(ct)-1] = byte(len(ct) - n - 1)
	c.stream(iv, ct)
	sum := crc32.NewIEEE()
	sum.Write(prefix)
	sum.Write(body[:len(body)-fakeICVLen])
	binary.BigEndian.PutUint32(body[len(body)-fakeICVLen:], sum.Sum32())
	return nil
}

func (c *fakeCipher) Open(prefix, body []byte) ([]byte, error) {
	if len(body) < fakeIVLen+fakeBlock+fakeICVLen || (len(body)-fakeIVLen-fakeICVLen)%fakeBlock != 0 {
		return nil, errFakeLen
	}
	sum := crc32.NewIEEE()
	sum.Write(prefix)
	sum.Write(body[:len(body)-fakeICVLen])
	if binary.BigEndian.Uint32(body[len(body)-fakeICVLen:]) != sum.Sum32() {
		return nil, errFakeICV
	}
	iv := body[:fakeIVLen]
	ct := body[fakeIVLen : len(body)-fakeICVLen]
	c.stream(iv, ct)
	pad := int(ct[len(ct)-1])
	if pad >= len(ct) {
		return nil, errFakePad
	}
	return ct[:len(ct)-1-pad], nil
}

// checkPrefix checks that prefix is a message up to an SK or SKF body of n
// octets with every length final.
func checkPrefix(prefix []byte, n int) error {
	if len(prefix) < HeaderLen+genHeaderLen {
		return fmt.Errorf("fake: prefix of %d octets", len(prefix))
	}
	if l := int(binary.BigEndian.Uint32(prefix[offLength:])); l != len(prefix)+n {
		return fmt.Errorf("fake: header length %d, prefix and body are %d", l, len(prefix)+n)
	}
	// Walk the chain to the encrypted payload.
	next, off := PayloadType(prefix[offNextPayload]), HeaderLen
	for next != PayloadSK && next != PayloadSKF {
		if off+genHeaderLen > len(prefix) || next == PayloadNone {
			return fmt.Errorf("fake: no SK/SKF payload in the prefix")
		}
		next, off = PayloadType(prefix[off]), off+int(binary.BigEndian.Uint16(prefix[off+offGenLength:]))
	}
	want := genHeaderLen
	if next == PayloadSKF {
		want += fragHeaderLen
	}
	if len(prefix)-off != want {
		return fmt.Errorf("fake: prefix ends %d octets after the %s header, want %d", len(prefix)-off, next, want)
	}
	if l := int(binary.BigEndian.Uint16(prefix[off+offGenLength:])); l != want+n {
		return fmt.Errorf("fake: %s length %d, want %d", next, l, want+n)
	}
	return nil
}

// gcmCipher implements SK with AES-GCM and a 16-octet ICV (RFC 5282):
// the key is SK_e without its last 4 octets, the salt; the nonce is salt
// || 8-octet IV; the associated data is the prefix. ivs, when set, are the
// IVs Seal uses in turn, so that a test can reproduce a captured message octet for octet. It does not pad, as
// strongSwan does not for AEADs with a block size of one octet.
type gcmCipher struct {
	aead cipher.AEAD
	salt []byte
	ivs  [][]byte
	// lastIV is the IV of the last body Open accepted.
	lastIV []byte
}

func newGCM(t testing.TB, skE []byte) *gcmCipher {
	t.Helper()
	blk, err := aes.NewCipher(skE[:len(skE)-4])
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		t.Fatal(err)
	}
	return &gcmCipher{aead: aead, salt: bytes.Clone(skE[len(skE)-4:])}
}

func (c *gcmCipher) BodyLen(n int) int { return 8 + n + 1 + 16 }

func (c *gcmCipher) Seal(body, prefix, plaintext []byte) error {
	iv := make([]byte, 8)
	if len(c.ivs) > 0 {
		iv, c.ivs = c.ivs[0], c.ivs[1:]
	}
	copy(body, iv)
	pt := append(bytes.Clone(plaintext), 0) // no padding, Pad Length 0
	c.aead.Seal(body[8:8], append(bytes.Clone(c.salt), iv...), pt, prefix)
	return nil
}

func (c *gcmCipher) Open(prefix, body []byte) ([]byte, error) {
	if len(body) < 8+1+16 {
		return nil, errors.New("gcm: short body")
	}
	pt, err := c.aead.Open(body[8:8], append(bytes.Clone(c.salt), body[:8]...), body[8:], prefix)
	if err != nil {
		return nil, err
	}
	pad := int(pt[len(pt)-1])
	if pad >= len(pt) {
		return nil, errors.New("gcm: bad padding")
	}
	c.lastIV = bytes.Clone(body[:8])
	return pt[:len(pt)-1-pad], nil
}

// cbcCipher implements SK with AES-CBC and HMAC-SHA-256-128 (RFC 7296
// §3.14, RFC 3602, RFC 4868): a 16-octet IV, the ciphertext and the first
// 16 octets of HMAC(SK_a, prefix | IV | ciphertext). It pads minimally,
// as strongSwan does, and like gcmCipher it can replay IVs, and the
// padding octets too (strongSwan's are random).
type cbcCipher struct {
	blk     cipher.Block
	skA     []byte
	ivs     [][]byte
	pads    [][]byte
	lastIV  []byte
	lastPad []byte
}

func newCBC(t testing.TB, skE, skA []byte) *cbcCipher {
	t.Helper()
	blk, err := aes.NewCipher(skE)
	if err != nil {
		t.Fatal(err)
	}
	return &cbcCipher{blk: blk, skA: bytes.Clone(skA)}
}

func (c *cbcCipher) padFor(n int) int { return (16 - (n+1)%16) % 16 }

func (c *cbcCipher) BodyLen(n int) int { return 16 + n + c.padFor(n) + 1 + 16 }

func (c *cbcCipher) icv(prefix, b []byte) []byte {
	m := hmac.New(sha256.New, c.skA)
	m.Write(prefix)
	m.Write(b)
	return m.Sum(nil)[:16]
}

func (c *cbcCipher) Seal(body, prefix, plaintext []byte) error {
	iv := make([]byte, 16)
	if len(c.ivs) > 0 {
		iv, c.ivs = c.ivs[0], c.ivs[1:]
	}
	pad := c.padFor(len(plaintext))
	copy(body, iv)
	ct := body[16 : len(body)-16]
	n := copy(ct, plaintext)
	clear(ct[n:])
	if len(c.pads) > 0 {
		copy(ct[n:], c.pads[0])
		c.pads = c.pads[1:]
	}
	ct[len(ct)-1] = byte(pad)
	cipher.NewCBCEncrypter(c.blk, iv).CryptBlocks(ct, ct)
	copy(body[len(body)-16:], c.icv(prefix, body[:len(body)-16]))
	return nil
}

func (c *cbcCipher) Open(prefix, body []byte) ([]byte, error) {
	if len(body) < 16+16+16 || (len(body)-32)%16 != 0 {
		return nil, errors.New("cbc: bad body length")
	}
	if !hmac.Equal(c.icv(prefix, body[:len(body)-16]), body[len(body)-16:]) {
		return nil, errors.New("cbc: icv mismatch")
	}
	iv, ct := body[:16], body[16:len(body)-16]
	cipher.NewCBCDecrypter(c.blk, iv).CryptBlocks(ct, ct)
	pad := int(ct[len(ct)-1])
	if pad >= len(ct) {
		return nil, errors.New("cbc: bad padding")
	}
	c.lastIV, c.lastPad = bytes.Clone(iv), bytes.Clone(ct[len(ct)-1-pad:len(ct)-1])
	return ct[:len(ct)-1-pad], nil
}

// datagram is one UDP datagram of a capture, with the non-ESP marker of
// port 4500 removed.
type datagram struct {
	src, dst netip.AddrPort
	ike      []byte
}

// readPcap reads the IKE messages of a classic little-endian pcap file of
// Ethernet frames with IPv4 and UDP.
func readPcap(t testing.TB, path string) []datagram {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint32(b) != 0xa1b2c3d4 || le.Uint32(b[20:]) != 1 {
		t.Fatalf("%s: not a little-endian Ethernet pcap", path)
	}
	var out []datagram
	for off := 24; off < len(b); {
		if len(b)-off < 16 {
			t.Fatalf("%s: truncated record header", path)
		}
		n := int(le.Uint32(b[off+8:]))
		frame := b[off+16 : off+16+n]
		off += 16 + n
		if binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
			continue
		}
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 17 {
			continue
		}
		udp := ip[ihl:int(binary.BigEndian.Uint16(ip[2:]))]
		d := datagram{
			src: netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(udp)),
			dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(udp[2:])),
		}
		payload := udp[8:]
		if d.dst.Port() == 4500 || d.src.Port() == 4500 {
			// RFC 3948 §2.2: IKE on port 4500 starts with four zero octets.
			if len(payload) < 4 || !bytes.Equal(payload[:4], make([]byte, 4)) {
				t.Fatalf("%s: datagram on port 4500 without non-ESP marker", path)
			}
			payload = payload[4:]
		}
		d.ike = bytes.Clone(payload)
		out = append(out, d)
	}
	return out
}
