package ikecrypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// Size is the output length of the PRF in octets, which RFC 7296 §2.14
// also makes the length of SK_d, SK_pi and SK_pr (for HMAC, "the preferred
// key length" is the output length, RFC 4868 §2.1.1). 0 if unsupported.
func (p PRFID) Size() int {
	switch p {
	case PRFHMACSHA256:
		return sha256.Size
	case PRFHMACSHA384:
		return sha512.Size384
	case PRFHMACSHA512:
		return sha512.Size
	}
	return 0
}

func (p PRFID) hash() func() hash.Hash {
	switch p {
	case PRFHMACSHA256:
		return sha256.New
	case PRFHMACSHA384:
		return sha512.New384
	case PRFHMACSHA512:
		return sha512.New
	}
	return nil
}

func (p PRFID) check() error {
	if p.hash() == nil {
		return fmt.Errorf("ikecrypto: prf %s is not supported (want PRF_HMAC_SHA2_256, _384 or _512)", p)
	}
	return nil
}

// PRF computes prf(key, data[0] | data[1] | ...) with the HMAC-SHA-2 PRF p
// (RFC 4868 §2.1). The key may have any length (RFC 7296 §2.13: HMAC
// takes variable-length keys).
func PRF(p PRFID, key []byte, data ...[]byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return p.sum(nil, key, data...), nil
}

// sum appends prf(key, data...) to dst. p must be supported.
func (p PRFID) sum(dst, key []byte, data ...[]byte) []byte {
	m := hmac.New(p.hash(), key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(dst)
}

// PRFPlus computes the first n octets of prf+(key, seed) (RFC 7296 §2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	...
//
// The one-octet counter limits the output to 255 blocks of the PRF; asking
// for more is an error. This is not RFC 5869 HKDF-Expand, whose blocks put
// an info string where IKE puts the seed and whose key is a PRK.
func PRFPlus(p PRFID, key, seed []byte, n int) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if n < 0 || n > maxPRFPlusBlocks*p.Size() {
		return nil, fmt.Errorf("ikecrypto: prf+: %d octets asked, %s gives at most %d (RFC 7296 §2.13)", n, p, maxPRFPlusBlocks*p.Size())
	}
	out := make([]byte, 0, n+p.Size())
	m := hmac.New(p.hash(), key)
	var prev []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(prev)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		out = m.Sum(out)
		prev = out[len(out)-p.Size():]
	}
	clear(out[n:cap(out)])
	return out[:n:n], nil
}

// SKEYSEED computes SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC
// 7296 §2.14). ni and nr are the nonces' data without payload headers, gir
// the Diffie-Hellman shared secret.
func SKEYSEED(p PRFID, ni, nr, gir []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	// The nonces are public; only g^ir is secret, and it is the data.
	return p.sum(nil, append(append([]byte(nil), ni...), nr...), gir), nil
}

// Keys is the keying material of one IKE SA (RFC 7296 §2.14). SKei and
// SKai protect what the original initiator sends, SKer and SKar what the
// original responder sends; SKpi and SKpr key the initiator's and
// responder's MACedIDFor (§2.15); SKd derives CHILD_SA keys and the next
// IKE SA's. With an AEAD, SKai and SKar are empty and SKei and SKer end
// with the 4-octet salt.
//
// Keys never prints its keys: String and GoString give the suite only.
// Zero wipes them once the SA is gone.
type Keys struct {
	Suite                                   Suite
	SKd, SKai, SKar, SKei, SKer, SKpi, SKpr []byte
}

// DeriveIKEKeys derives the keys of a new IKE SA from the IKE_SA_INIT
// exchange (RFC 7296 §2.14): SKEYSEED = prf(Ni | Nr, g^ir), then
//
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	        = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//
// with the lengths s calls for. spiI and spiR are the IKE SPIs as they
// appear in the IKE header (big-endian on the wire).
func DeriveIKEKeys(s Suite, gir, ni, nr []byte, spiI, spiR uint64) (*Keys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := checkDHInputs(gir, ni, nr); err != nil {
		return nil, err
	}
	skeyseed, err := SKEYSEED(s.PRF, ni, nr, gir)
	if err != nil {
		return nil, err
	}
	defer clear(skeyseed)
	return deriveFromSKEYSEED(s, skeyseed, ni, nr, spiI, spiR)
}

// Rekey derives the keys of the IKE SA that replaces k's in a
// CREATE_CHILD_SA exchange (RFC 7296 §2.18):
//
//	SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
//
// with the old SA's PRF ("because the rekeying exchange belongs to the old
// IKE SA, it is the old IKE SA's PRF that is used"), then prf+ with the
// new suite's PRF over Ni | Nr | SPIi | SPIr, the new SA's SPIs, as in
// DeriveIKEKeys. ni and nr are the nonces of the rekeying exchange; the
// initiator of that exchange is the "i" even if it was the responder of
// the old SA.
func (k *Keys) Rekey(s Suite, gir, ni, nr []byte, spiI, spiR uint64) (*Keys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := checkDHInputs(gir, ni, nr); err != nil {
		return nil, err
	}
	if len(k.SKd) == 0 {
		return nil, errors.New("ikecrypto: rekey: the old IKE SA's SK_d is gone (keys zeroed?)")
	}
	skeyseed := k.Suite.PRF.sum(nil, k.SKd, gir, ni, nr)
	defer clear(skeyseed)
	return deriveFromSKEYSEED(s, skeyseed, ni, nr, spiI, spiR)
}

func checkDHInputs(gir, ni, nr []byte) error {
	if len(gir) == 0 {
		return errors.New("ikecrypto: derive: empty diffie-hellman shared secret")
	}
	// RFC 7296 §2.10: nonces are 16 to 256 octets.
	if len(ni) < 16 || len(ni) > 256 || len(nr) < 16 || len(nr) > 256 {
		return fmt.Errorf("ikecrypto: derive: nonces must be 16 to 256 octets (RFC 7296 §2.10), got %d and %d", len(ni), len(nr))
	}
	return nil
}

func deriveFromSKEYSEED(s Suite, skeyseed, ni, nr []byte, spiI, spiR uint64) (*Keys, error) {
	seed := make([]byte, 0, len(ni)+len(nr)+2*ikeSPILen)
	seed = append(append(seed, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spiI)
	seed = binary.BigEndian.AppendUint64(seed, spiR)
	prfLen, integLen, encrLen := s.PRF.Size(), s.IntegKeyLen(), s.EncrKeyLen()
	n := 3*prfLen + 2*integLen + 2*encrLen
	km, err := PRFPlus(s.PRF, skeyseed, seed, n)
	if err != nil {
		return nil, err
	}
	k := &Keys{Suite: s}
	// Each key gets its own array, so that zeroing one or handing it to a
	// cipher cannot reach into another.
	take := func(l int) []byte {
		b := append([]byte(nil), km[:l]...)
		km = km[l:]
		return b
	}
	all := km
	k.SKd = take(prfLen)
	k.SKai = take(integLen)
	k.SKar = take(integLen)
	k.SKei = take(encrLen)
	k.SKer = take(encrLen)
	k.SKpi = take(prfLen)
	k.SKpr = take(prfLen)
	clear(all)
	return k, nil
}

// Zero wipes every key. The Keys cannot derive or protect anything after.
func (k *Keys) Zero() {
	if k == nil {
		return
	}
	for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		clear(b)
	}
	k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr = nil, nil, nil, nil, nil, nil, nil
}

// String names the suite only; keys never print.
func (k Keys) String() string { return "ikecrypto.Keys(" + k.Suite.String() + ")" }

// GoString keeps %#v from printing the keys.
func (k Keys) GoString() string { return k.String() }

// ChildKeys is the keying material of a CHILD_SA pair (RFC 7296 §2.17):
// EncrI and IntegI protect ESP from the initiator of the exchange that
// created the CHILD_SA to its responder (the initiator's outbound SA), EncrR
// and IntegR the other direction.
//
// In ipsec/esp's terms: for AES-GCM-16 and ChaCha20-Poly1305, EncrI/EncrR
// is Config.Key (the cipher key followed by the 4-octet salt) and
// IntegI/IntegR is empty; for AES-CBC with HMAC-SHA-256-128, EncrI/EncrR is
// Config.Key and IntegI/IntegR Config.AuthKey.
type ChildKeys struct {
	Suite                        Suite
	EncrI, IntegI, EncrR, IntegR []byte
}

// ChildKeys derives the keys of a CHILD_SA from the IKE SA's SK_d (RFC 7296
// §2.17):
//
//	KEYMAT = prf+(SK_d, Ni | Nr)              (no PFS: gir empty)
//	KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr) (PFS)
//
// taken in the order encryption key then integrity key for the
// initiator-to-responder SA, then the same for responder-to-initiator. ni
// and nr are the nonces of the exchange that creates the CHILD_SA: of
// IKE_SA_INIT for the first one (created by IKE_AUTH), of the
// CREATE_CHILD_SA exchange otherwise. s is the CHILD_SA's suite
// (ValidateESP); a non-empty gir requires s.DH to be a group.
func (k *Keys) ChildKeys(s Suite, gir, ni, nr []byte) (*ChildKeys, error) {
	if err := s.ValidateESP(); err != nil {
		return nil, err
	}
	if (len(gir) > 0) != (s.DH != DHNone) {
		return nil, fmt.Errorf("ikecrypto: child keys: suite %s with a %d-octet diffie-hellman secret: PFS needs both or neither", s, len(gir))
	}
	if len(k.SKd) == 0 {
		return nil, errors.New("ikecrypto: child keys: the IKE SA's SK_d is gone (keys zeroed?)")
	}
	seed := make([]byte, 0, len(gir)+len(ni)+len(nr))
	seed = append(append(append(seed, gir...), ni...), nr...)
	defer clear(seed)
	encrLen, integLen := s.EncrKeyLen(), s.IntegKeyLen()
	km, err := PRFPlus(k.Suite.PRF, k.SKd, seed, 2*(encrLen+integLen))
	if err != nil {
		return nil, err
	}
	defer clear(km)
	c := &ChildKeys{Suite: s}
	rest := km
	take := func(l int) []byte {
		b := append([]byte(nil), rest[:l]...)
		rest = rest[l:]
		return b
	}
	c.EncrI = take(encrLen)
	c.IntegI = take(integLen)
	c.EncrR = take(encrLen)
	c.IntegR = take(integLen)
	return c, nil
}

// Zero wipes the keys.
func (c *ChildKeys) Zero() {
	if c == nil {
		return
	}
	for _, b := range [][]byte{c.EncrI, c.IntegI, c.EncrR, c.IntegR} {
		clear(b)
	}
	c.EncrI, c.IntegI, c.EncrR, c.IntegR = nil, nil, nil, nil
}

// String names the suite only; keys never print.
func (c ChildKeys) String() string { return "ikecrypto.ChildKeys(" + c.Suite.String() + ")" }

// GoString keeps %#v from printing the keys.
func (c ChildKeys) GoString() string { return c.String() }
