package message

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per way a caller reacts. Errors from Parse, Decrypt
// and the Reassembler wrap them, most in a *ParseError that says where.
var (
	// ErrInvalidSyntax: the message or a payload is malformed (a length
	// that does not add up, a field out of range, trailing octets). In an
	// authenticated exchange the answer is INVALID_SYNTAX (RFC 7296 §2.21.2,
	// §3.10.1); an unauthenticated message is dropped.
	ErrInvalidSyntax = errors.New("ike: invalid syntax")
	// ErrInvalidMajorVersion: the header's major version is not 2. RFC 7296
	// §2.5: drop the message and answer INVALID_MAJOR_VERSION with the
	// version this side speaks in the header.
	ErrInvalidMajorVersion = errors.New("ike: unsupported major version")
	// ErrUnsupportedCriticalPayload: a payload of a type this package does
	// not know has the critical bit set. RFC 7296 §2.5: reject the whole
	// message and answer UNSUPPORTED_CRITICAL_PAYLOAD with the payload type
	// as the notification data (ParseError.Payload; NotifyFor builds it).
	ErrUnsupportedCriticalPayload = errors.New("ike: unsupported critical payload")
	// ErrNotEncrypted: Decrypt was called on a message whose last payload
	// is not SK.
	ErrNotEncrypted = errors.New("ike: no encrypted payload")
	// ErrDecrypt: the SKCipher refused an SK or SKF payload (integrity
	// check, padding). RFC 7296 §2.21.2: such a message is dropped
	// silently; nothing of it can be trusted. The cipher's own error is
	// wrapped too.
	ErrDecrypt = errors.New("ike: encrypted payload does not verify")
	// ErrFragmentIgnored: the Reassembler dropped an authentic-looking
	// fragment as RFC 7383 §2.6 asks (a duplicate, or one of an older,
	// larger fragmentation of the message). Not a failure: the caller keeps
	// waiting.
	ErrFragmentIgnored = errors.New("ike: fragment ignored")
	// ErrReassemblyLimit: a fragmented message exceeds the Reassembler's
	// limits on fragments or octets. The partial message is discarded.
	ErrReassemblyLimit = errors.New("ike: fragmented message exceeds the reassembly limits")
)

// ParseError says what is wrong in a message and where.
type ParseError struct {
	// Offset is the octet offset of the offending field: from the start of
	// the IKE message, or, when Encrypted, from the start of the decrypted
	// plaintext of the SK payload (or of the reassembled fragments).
	Offset    int
	Encrypted bool
	// Payload is the type of the payload being parsed (PayloadNone for the
	// IKE header). For ErrUnsupportedCriticalPayload it is the unsupported
	// type, which the UNSUPPORTED_CRITICAL_PAYLOAD notification carries.
	Payload PayloadType
	// Reason is the detail, for logs.
	Reason string
	// Err is one of the sentinel errors above.
	Err error
}

func (e *ParseError) Error() string {
	where := "header"
	if e.Payload != PayloadNone {
		where = e.Payload.String() + " payload"
	}
	in := "message"
	if e.Encrypted {
		in = "decrypted payloads"
	}
	return fmt.Sprintf("%v: %s at offset %d of the %s: %s", e.Err, where, e.Offset, in, e.Reason)
}

func (e *ParseError) Unwrap() error { return e.Err }

// NotifyFor returns the error notification RFC 7296 asks a responder to
// send for a message that Parse or Decrypt rejected with err, or nil when
// the message is to be dropped without an answer (a failed integrity check,
// or an error this package did not produce). Whether to answer at all is
// the state machine's decision: RFC 7296 §2.21 allows answers only to
// requests, and only with INVALID_MAJOR_VERSION, INVALID_SYNTAX or
// UNSUPPORTED_CRITICAL_PAYLOAD to unauthenticated ones.
func NotifyFor(err error) *Notify {
	switch {
	case errors.Is(err, ErrDecrypt), errors.Is(err, ErrFragmentIgnored), errors.Is(err, ErrReassemblyLimit):
		return nil
	case errors.Is(err, ErrInvalidMajorVersion):
		return &Notify{NotifyType: NotifyInvalidMajorVersion}
	case errors.Is(err, ErrUnsupportedCriticalPayload):
		var pe *ParseError
		if errors.As(err, &pe) {
			return &Notify{NotifyType: NotifyUnsupportedCriticalPayload, Data: []byte{byte(pe.Payload)}}
		}
		return nil
	case errors.Is(err, ErrInvalidSyntax):
		return &Notify{NotifyType: NotifyInvalidSyntax}
	}
	return nil
}

// perr builds a *ParseError for ErrInvalidSyntax.
func perr(off int, t PayloadType, format string, args ...any) *ParseError {
	return &ParseError{Offset: off, Payload: t, Reason: fmt.Sprintf(format, args...), Err: ErrInvalidSyntax}
}
