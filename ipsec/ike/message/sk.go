package message

import (
	"bytes"
	"fmt"
	"slices"
)

// The layout of a protected message (RFC 7296 §3.14; RFC 5282 §3 for
// AEADs):
//
//	IKE header | [unencrypted payloads] | SK generic header | IV | ciphertext | ICV
//	|<---------------------- prefix ---------------------->|<------- body ------->|
//
// The plaintext is the chain of inner payloads (the first announced by the
// SK header's Next Payload field), followed by padding and the Pad Length
// octet, which the cipher adds and removes. The integrity check of a
// non-AEAD covers prefix, IV and ciphertext; an AEAD takes the prefix as
// associated data (RFC 5282 §5). Every length in the prefix, the header's
// Length included, is final before the cipher runs, so the package computes
// the layout from SKCipher.BodyLen first and then lets the cipher fill the
// body. An SKF payload (RFC 7383 §2.5) has the same layout with Fragment
// Number and Total Fragments at the end of the prefix.

// SKCipher protects the body of an SK or SKF payload (RFC 7296 §3.14, RFC
// 5282 for AEADs, RFC 7383 §2.5).
type SKCipher interface {
	// BodyLen is the length of the payload body (IV || ciphertext incl.
	// padding and pad-length octet || ICV) for a plaintext of n octets.
	BodyLen(n int) int
	// Seal writes the body for plaintext into body (len(body) ==
	// BodyLen(len(plaintext))). prefix is the whole message up to and
	// including the SK/SKF payload's generic header (and, for SKF, the
	// fragment number and total fields), with all lengths final: the AAD of
	// an AEAD, the start of what an integrity algorithm covers.
	Seal(body, prefix, plaintext []byte) error
	// Open checks and decrypts a body and returns the plaintext without
	// padding (it may reuse body's storage).
	Open(prefix, body []byte) ([]byte, error)
}

// Encrypted is an Encrypted and Authenticated payload, SK (RFC 7296 §3.14),
// as parsed: Decrypt turns it into the payloads it carries.
type Encrypted struct {
	// Next is the type of the first inner payload (the SK header's Next
	// Payload field).
	Next PayloadType
	// Body is IV | ciphertext | ICV.
	Body []byte

	// prefix is the parsed message up to the end of the SK header.
	prefix []byte
}

func (*Encrypted) Type() PayloadType { return PayloadSK }

func (p *Encrypted) AppendBody(b []byte) ([]byte, error) { return append(b, p.Body...), nil }

// MarshalEncrypted encodes the message with the inner payloads protected in
// an SK payload, which follows m.Payloads (usually none: RFC 7296 §3.14
// puts every payload of a protected message inside SK). The SK payload's
// Next Payload is the type of the first inner payload (0 for an empty
// INFORMATIONAL message, the liveness check of §1.4).
func (m *Message) MarshalEncrypted(c SKCipher, inner []Payload) ([]byte, error) {
	return m.AppendEncrypted(nil, c, inner)
}

// AppendEncrypted appends the message with the inner payloads in an SK
// payload to b; see MarshalEncrypted.
func (m *Message) AppendEncrypted(b []byte, c SKCipher, inner []Payload) ([]byte, error) {
	plain, err := appendChain(nil, inner, PayloadNone, true)
	if err != nil {
		return b, err
	}
	defer clear(plain) // the plaintext holds AUTH data and other secrets
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	if b, err = appendChain(b, m.Payloads, PayloadSK, false); err != nil {
		return b[:start], err
	}
	n := c.BodyLen(len(plain))
	pl := genHeaderLen + n
	total := len(b) - start + pl
	switch {
	case n < len(plain):
		return b[:start], fmt.Errorf("ike: cipher body length %d for %d octets of plaintext", n, len(plain))
	case pl > maxPayloadLen || total > maxMessageLen:
		return b[:start], fmt.Errorf("ike: encrypted message of %d octets is longer than %d", total, maxMessageLen)
	}
	b = append(b, byte(firstType(inner, PayloadNone)), 0)
	b = be.AppendUint16(b, uint16(pl))
	bodyAt := len(b)
	b = slices.Grow(b, n)[:bodyAt+n]
	putHeader(b[start:], &m.Header, firstType(m.Payloads, PayloadSK), total)
	if err := c.Seal(b[bodyAt:], b[start:bodyAt], plain); err != nil {
		return b[:start], fmt.Errorf("ike: seal: %w", err)
	}
	return b, nil
}

// Decrypt opens the message's SK payload with c and replaces it with the
// payloads it carries, after the unencrypted ones (which the integrity check
// covers too). A failed check wraps ErrDecrypt: RFC 7296 §2.21.2 asks to
// drop such a message without answer. Payloads that do not parse give a
// *ParseError with Encrypted set; the message was authentic, so an
// INVALID_SYNTAX answer is in order (§2.21.2). Fragmented messages (SKF) go
// to a Reassembler instead.
func (m *Message) Decrypt(c SKCipher) error {
	n := len(m.Payloads)
	if n == 0 {
		return ErrNotEncrypted
	}
	e, ok := m.Payloads[n-1].(*Encrypted)
	if !ok {
		if _, frag := m.Payloads[n-1].(*EncryptedFragment); frag {
			return fmt.Errorf("%w: the message is a fragment (SKF); use a Reassembler", ErrNotEncrypted)
		}
		return ErrNotEncrypted
	}
	prefix := e.prefix
	if prefix == nil {
		full, err := m.Marshal()
		if err != nil {
			return err
		}
		prefix = full[:len(full)-len(e.Body)]
	}
	plain, err := c.Open(prefix, bytes.Clone(e.Body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	// The first inner payload's type as authenticated: the SK header's
	// Next Payload, the fourth octet from the end of the prefix.
	next := PayloadType(prefix[len(prefix)-genHeaderLen+offGenNext])
	inner, err := parseChain(plain, 0, next, true)
	if err != nil {
		return err
	}
	m.Payloads = append(m.Payloads[:n-1:n-1], inner...)
	return nil
}
