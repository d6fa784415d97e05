package ikecrypto

import (
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// ErrUnsupportedGroup means a Diffie-Hellman group is not implemented. A
// responder answers INVALID_KE_PAYLOAD naming a group it supports (RFC 7296
// §1.2, §1.3).
var ErrUnsupportedGroup = errors.New("ikecrypto: unsupported diffie-hellman group")

// ErrInvalidPublicValue means a peer's KE payload does not hold a valid
// public value for its group: wrong length, a point not on the curve, or
// an X25519 value that gives the all-zero shared secret. RFC 7296 §2.7 (and
// RFC 5903 §7, RFC 8031 §2.1) has the exchange fail; a responder answers
// INVALID_SYNTAX.
var ErrInvalidPublicValue = errors.New("ikecrypto: invalid diffie-hellman public value")

// curve returns crypto/ecdh's curve for g.
func (g DHGroup) curve() (ecdh.Curve, error) {
	switch g {
	case DHECP256:
		return ecdh.P256(), nil
	case DHECP384:
		return ecdh.P384(), nil
	case DHECP521:
		return ecdh.P521(), nil
	case DHCurve25519:
		return ecdh.X25519(), nil
	}
	if name, ok := modpGroups[g]; ok {
		return nil, fmt.Errorf("%w: %d (%s): MODP groups are not implemented, Go has no constant-time modular exponentiation; use 31 (Curve25519) or 19 (ECP-256)", ErrUnsupportedGroup, uint16(g), name)
	}
	return nil, fmt.Errorf("%w: %d; use 31 (Curve25519), 19, 20 or 21 (ECP-256/384/521)", ErrUnsupportedGroup, uint16(g))
}

func (g DHGroup) check() error {
	_, err := g.curve()
	return err
}

// Supported reports whether g is implemented.
func (g DHGroup) Supported() bool { return g.check() == nil }

// PublicValueLen is the length of the Key Exchange Data of a KE payload for
// g: 2 × the field size for the ECP groups (RFC 5903 §7: x || y), 32 for
// Curve25519 (RFC 8031 §2). 0 if unsupported.
func (g DHGroup) PublicValueLen() int {
	switch g {
	case DHECP256:
		return 64
	case DHECP384:
		return 96
	case DHECP521:
		return 132
	case DHCurve25519:
		return x25519Len
	}
	return 0
}

// SharedSecretLen is the length of g^ir for g: the x coordinate for the ECP
// groups (RFC 5903 §7), 32 octets for Curve25519 (RFC 8031 §2).
func (g DHGroup) SharedSecretLen() int {
	if g == DHCurve25519 {
		return x25519Len
	}
	return g.PublicValueLen() / 2
}

// PrivateKey is an ephemeral Diffie-Hellman private key of one exchange.
// It never prints its value.
type PrivateKey struct {
	group DHGroup
	key   *ecdh.PrivateKey
}

// GenerateKey makes a fresh private key for group from rand (crypto/rand's
// Reader in production) and returns it with the public value to put in the
// KE payload, in the wire encoding of RFC 5903 §7 (ECP: x || y, no SEC1
// prefix) or RFC 8031 §2 (Curve25519: 32 octets).
func GenerateKey(group DHGroup, rand io.Reader) (*PrivateKey, []byte, error) {
	c, err := group.curve()
	if err != nil {
		return nil, nil, err
	}
	k, err := c.GenerateKey(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("ikecrypto: dh %s: generate key: %w", group, err)
	}
	p := &PrivateKey{group: group, key: k}
	return p, p.PublicValue(), nil
}

// NewPrivateKey makes a private key of group from its raw scalar (big-endian
// for the ECP groups, RFC 7748 encoding for Curve25519), as test vectors
// give them. Protocol code uses GenerateKey.
func NewPrivateKey(group DHGroup, raw []byte) (*PrivateKey, error) {
	c, err := group.curve()
	if err != nil {
		return nil, err
	}
	k, err := c.NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: dh %s: private key: %w", group, err)
	}
	return &PrivateKey{group: group, key: k}, nil
}

// Group is the key's Diffie-Hellman group.
func (k *PrivateKey) Group() DHGroup { return k.group }

// PublicValue is the key's public value in the KE payload's wire encoding.
func (k *PrivateKey) PublicValue() []byte {
	b := k.key.PublicKey().Bytes()
	if k.group == DHCurve25519 {
		return b
	}
	// RFC 5903 §7: "the 0x04 octet is not included"; crypto/ecdh's
	// uncompressed SEC1 encoding starts with it.
	return b[1:]
}

// String names the group only: a private key never prints.
func (k *PrivateKey) String() string { return "ikecrypto.PrivateKey(" + k.group.String() + ")" }

// SharedSecret computes g^ir from our private key and the peer's public
// value as received in its KE payload. For the ECP groups it is the x
// coordinate of the shared point (RFC 5903 §7); for Curve25519 the 32-octet
// X25519 output (RFC 8031 §2). The peer's value is checked: its length,
// that it is a point on the curve and not the point at infinity (crypto/ecdh
// does the on-curve check), and for X25519 that the result is not all zero
// (RFC 8031 §2.1: such a value "MUST" abort the exchange). Errors wrap
// ErrInvalidPublicValue.
func SharedSecret(priv *PrivateKey, peerPublic []byte) ([]byte, error) {
	if priv == nil || priv.key == nil {
		return nil, errors.New("ikecrypto: dh: no private key")
	}
	g := priv.group
	if len(peerPublic) != g.PublicValueLen() {
		return nil, fmt.Errorf("%w: %s takes %d octets, got %d", ErrInvalidPublicValue, g, g.PublicValueLen(), len(peerPublic))
	}
	enc := peerPublic
	if g != DHCurve25519 {
		enc = make([]byte, 1+len(peerPublic))
		enc[0] = sec1Uncompressed
		copy(enc[1:], peerPublic)
	}
	pub, err := priv.key.Curve().NewPublicKey(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidPublicValue, g, err)
	}
	secret, err := priv.key.ECDH(pub)
	if err != nil {
		// crypto/ecdh refuses X25519 low-order points with an error.
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidPublicValue, g, err)
	}
	if g == DHCurve25519 {
		var zero [x25519Len]byte
		if subtle.ConstantTimeCompare(secret, zero[:]) == 1 {
			return nil, fmt.Errorf("%w: %s: all-zero shared secret (RFC 8031 §2.1)", ErrInvalidPublicValue, g)
		}
	}
	return secret, nil
}
