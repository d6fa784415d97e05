package message

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Payload is one payload of a message. The types of this package are
// *SA, *KE, *ID, *Cert, *CertReq, *Auth, *Nonce, *Notify, *Delete,
// *VendorID, *TS, *CP, *Encrypted, *EncryptedFragment and *Raw (EAP and
// payload types this package does not know).
type Payload interface {
	// Type is the payload's type, the Next Payload value that announces it.
	Type() PayloadType
	// AppendBody appends the payload's body, everything after the generic
	// payload header, to b. It fails when a field cannot be encoded.
	AppendBody(b []byte) ([]byte, error)
}

// Message is an IKE message: the header and the payloads in order.
//
// A parsed message keeps an SK payload as *Encrypted (SKF as
// *EncryptedFragment) until Decrypt (or a Reassembler) replaces it with the
// payloads it carries.
type Message struct {
	Header
	Payloads []Payload

	// raw is the message as parsed (a copy of Parse's input); nil for a
	// message built in memory.
	raw []byte
}

// genericView is a generic payload header followed by the body; valid once
// len(v) >= genHeaderLen.
type genericView []byte

func (v genericView) next() PayloadType { return PayloadType(v[offGenNext]) }
func (v genericView) critical() bool    { return v[offGenFlags]&genCritical != 0 }
func (v genericView) length() int       { return int(be.Uint16(v[offGenLength:])) }

// Parse decodes a whole IKE message (what a UDP datagram on port 500
// carries; on port 4500 the caller strips the four-octet non-ESP marker
// first, RFC 3948 §2.2). It checks every length, rejects octets after the
// last payload and an unknown payload with the critical bit set, and never
// panics. Errors wrap ErrInvalidSyntax, ErrInvalidMajorVersion or
// ErrUnsupportedCriticalPayload in a *ParseError.
//
// Parse copies b; the payloads refer to the copy.
func Parse(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if int(h.Length) != len(b) {
		return nil, perr(offLength, PayloadNone, "length field says %d octets, the message has %d", h.Length, len(b))
	}
	raw := bytes.Clone(b)
	ps, err := parseChain(raw, HeaderLen, h.NextPayload, false)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: ps, raw: raw}, nil
}

// ParsePayloads decodes a chain of payloads that fills b exactly, the first
// of type first: the plaintext of an SK payload, for instance. Errors are
// *ParseError with Encrypted set and offsets from the start of b.
func ParsePayloads(first PayloadType, b []byte) ([]Payload, error) {
	return parseChain(b, 0, first, true)
}

// parseChain decodes the payloads from b[off:] to the end of b. encrypted
// says b is a decrypted plaintext: offsets in errors refer to it, and SK and
// SKF may not appear.
func parseChain(b []byte, off int, next PayloadType, encrypted bool) (ps []Payload, err error) {
	defer func() {
		var pe *ParseError
		if encrypted && errors.As(err, &pe) {
			pe.Encrypted = true
		}
	}()
	for next != PayloadNone {
		t := next
		if len(b)-off < genHeaderLen {
			return nil, perr(off, t, "%d octets left, shorter than a generic payload header", len(b)-off)
		}
		g := genericView(b[off:])
		n := g.length()
		if n < genHeaderLen || n > len(b)-off {
			return nil, perr(off+offGenLength, t, "payload length %d outside %d-%d", n, genHeaderLen, len(b)-off)
		}
		body := b[off+genHeaderLen : off+n]
		bodyOff := off + genHeaderLen
		var p Payload
		switch t {
		case PayloadSK, PayloadSKF:
			// RFC 7296 §3.14, RFC 7383 §2.5: the encrypted payload is the
			// last one, and its Next Payload field names the first payload
			// inside it.
			if encrypted {
				return nil, perr(off, t, "encrypted payload inside an encrypted payload")
			}
			if off+n != len(b) {
				return nil, perr(off+offGenLength, t, "%d octets follow the encrypted payload, which must be the last", len(b)-off-n)
			}
			if t == PayloadSK {
				p = &Encrypted{Next: g.next(), Body: body, prefix: b[:bodyOff]}
			} else {
				f, err := parseFragment(g.next(), body, bodyOff)
				if err != nil {
					return nil, err
				}
				f.prefix = b[:bodyOff+fragHeaderLen]
				p = f
			}
			next = PayloadNone
		default:
			if p, err = parseBody(t, g.critical(), body, bodyOff); err != nil {
				return nil, err
			}
			next = g.next()
		}
		ps = append(ps, p)
		off += n
	}
	if off != len(b) {
		return nil, perr(off, PayloadNone, "%d octets after the last payload", len(b)-off)
	}
	return ps, nil
}

// parseBody decodes the body of one unencrypted payload of type t found at
// offset off.
func parseBody(t PayloadType, critical bool, body []byte, off int) (Payload, error) {
	switch t {
	case PayloadSA:
		return parseSA(body, off)
	case PayloadKE:
		return parseKE(body, off)
	case PayloadIDi, PayloadIDr:
		return parseID(t, body, off)
	case PayloadCERT:
		return parseCert(body, off)
	case PayloadCERTREQ:
		return parseCertReq(body, off)
	case PayloadAUTH:
		return parseAuth(body, off)
	case PayloadNonce:
		return parseNonce(body, off)
	case PayloadNotify:
		return parseNotify(body, off)
	case PayloadDelete:
		return parseDelete(body, off)
	case PayloadVendorID:
		return &VendorID{Data: body}, nil
	case PayloadTSi, PayloadTSr:
		return parseTS(t, body, off)
	case PayloadCP:
		return parseCP(body, off)
	}
	if critical && !t.known() {
		// RFC 7296 §2.5.
		return nil, &ParseError{Offset: off - genHeaderLen + offGenFlags, Payload: t,
			Reason: "unknown payload type with the critical bit set", Err: ErrUnsupportedCriticalPayload}
	}
	return &Raw{PayloadType: t, Critical: critical, Body: body}, nil
}

// Marshal encodes the message. Header.NextPayload and Header.Length are
// computed. A message with an encrypted payload built in memory is
// marshalled with MarshalEncrypted or Fragment; Marshal writes an
// *Encrypted payload's body as it is (a parsed message marshals to the
// octets it was parsed from).
func (m *Message) Marshal() ([]byte, error) { return m.Append(nil) }

// Append appends the encoded message to b.
func (m *Message) Append(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	b, err := appendChain(b, m.Payloads, PayloadNone, false)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start
	if n > maxMessageLen {
		return b[:start], fmt.Errorf("ike: message of %d octets is longer than %d", n, maxMessageLen)
	}
	putHeader(b[start:], &m.Header, firstType(m.Payloads, PayloadNone), n)
	return b, nil
}

// AppendPayloads appends the chain of payloads ps (the last with Next
// Payload 0): the plaintext of an SK payload, for instance.
func AppendPayloads(b []byte, ps []Payload) ([]byte, error) {
	return appendChain(b, ps, PayloadNone, true)
}

func firstType(ps []Payload, none PayloadType) PayloadType {
	if len(ps) == 0 {
		return none
	}
	return ps[0].Type()
}

// appendChain appends the payloads ps, each with its generic header; the
// last one's Next Payload is last. inner says the chain goes inside an SK
// payload, where SK and SKF may not appear.
func appendChain(b []byte, ps []Payload, last PayloadType, inner bool) ([]byte, error) {
	for i, p := range ps {
		if p == nil {
			return b, fmt.Errorf("ike: payload %d is nil", i)
		}
		t := p.Type()
		if t == PayloadNone {
			return b, fmt.Errorf("ike: payload %d has type 0", i)
		}
		next := last
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		var flags byte
		switch p := p.(type) {
		case *Encrypted:
			next = p.Next
		case *EncryptedFragment:
			next = p.Next
		case *Raw:
			if p.Critical {
				flags = genCritical
			}
		}
		if t == PayloadSK || t == PayloadSKF {
			if inner || i != len(ps)-1 || last != PayloadNone {
				return b, fmt.Errorf("ike: payload %d: %s must be the last payload of the message (RFC 7296 §3.14)", i, t)
			}
		}
		at := len(b)
		b = append(b, byte(next), flags, 0, 0)
		var err error
		if b, err = p.AppendBody(b); err != nil {
			return b[:at], fmt.Errorf("ike: payload %d (%s): %w", i, t, err)
		}
		n := len(b) - at
		if n > maxPayloadLen {
			return b[:at], fmt.Errorf("ike: payload %d (%s): %d octets, longer than %d", i, t, n, maxPayloadLen)
		}
		be.PutUint16(b[at+offGenLength:], uint16(n))
	}
	return b, nil
}

// Bytes returns the message as parsed, or nil for a message built in
// memory. RFC 7296 §2.15 signs the IKE_SA_INIT messages as sent; §2.1
// detects retransmitted requests by comparing them.
func (m *Message) Bytes() []byte { return m.raw }

// Get returns the first payload of type t, or nil.
func (m *Message) Get(t PayloadType) Payload {
	for _, p := range m.Payloads {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

// All returns the payloads of type t in order.
func (m *Message) All(t PayloadType) []Payload {
	var out []Payload
	for _, p := range m.Payloads {
		if p.Type() == t {
			out = append(out, p)
		}
	}
	return out
}

// First returns the first payload of m with Go type T, e.g.
// First[*KE](m).
func First[T Payload](m *Message) (T, bool) {
	for _, p := range m.Payloads {
		if x, ok := p.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

// Notifies returns the Notify payloads in order.
func (m *Message) Notifies() []*Notify {
	var out []*Notify
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok {
			out = append(out, n)
		}
	}
	return out
}

// Notify returns the first notification of type t, or nil.
func (m *Message) Notify(t NotifyType) *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// ErrorNotify returns the first error notification (type below 16384), or
// nil. RFC 7296 §2.21.
func (m *Message) ErrorNotify() *Notify {
	for _, p := range m.Payloads {
		if n, ok := p.(*Notify); ok && n.NotifyType.IsError() {
			return n
		}
	}
	return nil
}

// String describes the message for logs in the notation of RFC 7296
// §1.2, e.g. "IKE_SA_INIT request 0 [I] ... [ SA KE Nonce N(COOKIE) ]".
func (m *Message) String() string {
	var s strings.Builder
	s.WriteString(m.Header.String())
	s.WriteString(" [")
	for _, p := range m.Payloads {
		s.WriteByte(' ')
		switch p := p.(type) {
		case *Notify:
			s.WriteString("N(" + p.NotifyType.String() + ")")
		case *EncryptedFragment:
			fmt.Fprintf(&s, "SKF(%d/%d)", p.Number, p.Total)
		case nil:
			s.WriteString("nil")
		default:
			s.WriteString(p.Type().String())
		}
	}
	s.WriteString(" ]")
	return s.String()
}
