package message

import (
	"encoding/binary"
	"fmt"
)

var be = binary.BigEndian

// Header is the fixed IKE header (RFC 7296 §3.1).
type Header struct {
	// SPIi and SPIr are the IKE SA's SPIs, chosen by the original
	// initiator and responder; SPIr is zero in the first IKE_SA_INIT
	// request.
	SPIi, SPIr uint64
	// NextPayload is the type of the first payload. Parse sets it; Marshal
	// ignores it and writes the type of the first payload it writes.
	NextPayload PayloadType
	// MinorVersion is the low nibble of the version octet (0 in IKEv2).
	// RFC 7296 §3.1: it must be ignored on receipt; it is kept so that a
	// parsed message marshals to the same octets.
	MinorVersion uint8
	Exchange     ExchangeType
	Flags        Flags
	MessageID    uint32
	// Length is the length of the whole message. Parse sets it; Marshal
	// ignores it and writes the length of what it built.
	Length uint32
}

// IsResponse reports whether the R flag is set.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the I flag is set: the sender is the
// original initiator of the IKE SA.
func (h *Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// String describes the header for logs, e.g.
// "IKE_AUTH request 1 [I] 0123456789abcdef_i fedcba9876543210_r".
func (h Header) String() string {
	kind := "request"
	if h.IsResponse() {
		kind = "response"
	}
	return fmt.Sprintf("%s %s %d [%s] %016x_i %016x_r", h.Exchange, kind, h.MessageID, h.Flags, h.SPIi, h.SPIr)
}

// headerView is the fixed IKE header of a message. Its accessors are valid
// once len(v) >= HeaderLen, which ParseHeader checks first.
type headerView []byte

func (v headerView) spii() uint64             { return be.Uint64(v[offSPIi:]) }
func (v headerView) spir() uint64             { return be.Uint64(v[offSPIr:]) }
func (v headerView) nextPayload() PayloadType { return PayloadType(v[offNextPayload]) }
func (v headerView) major() uint8             { return v[offVersion] >> 4 }
func (v headerView) minor() uint8             { return v[offVersion] & 0x0f }
func (v headerView) exchange() ExchangeType   { return ExchangeType(v[offExchange]) }
func (v headerView) flags() Flags             { return Flags(v[offFlags]) }
func (v headerView) messageID() uint32        { return be.Uint32(v[offMessageID:]) }
func (v headerView) length() uint32           { return be.Uint32(v[offLength:]) }

// ParseHeader decodes the fixed header at the start of b, so that a caller
// can find the IKE SA (by SPIs) and check the message ID before parsing the
// rest. It does not require b to hold the whole message: Parse checks that
// Length matches.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, perr(len(b), PayloadNone, "%d octets, shorter than the %d-octet IKE header", len(b), HeaderLen)
	}
	v := headerView(b)
	if v.major() != MajorVersion {
		return Header{}, &ParseError{Offset: offVersion, Reason: fmt.Sprintf("version %d.%d, want %d.x", v.major(), v.minor(), MajorVersion), Err: ErrInvalidMajorVersion}
	}
	h := Header{
		SPIi:         v.spii(),
		SPIr:         v.spir(),
		NextPayload:  v.nextPayload(),
		MinorVersion: v.minor(),
		Exchange:     v.exchange(),
		Flags:        v.flags(),
		MessageID:    v.messageID(),
		Length:       v.length(),
	}
	if h.Length < HeaderLen || h.Length > maxMessageLen {
		return Header{}, perr(offLength, PayloadNone, "length %d outside %d-%d", h.Length, HeaderLen, maxMessageLen)
	}
	return h, nil
}

// putHeader writes h into v (len(v) >= HeaderLen) with the given first
// payload type and length.
func putHeader(v []byte, h *Header, next PayloadType, length int) {
	be.PutUint64(v[offSPIi:], h.SPIi)
	be.PutUint64(v[offSPIr:], h.SPIr)
	v[offNextPayload] = byte(next)
	v[offVersion] = MajorVersion<<4 | h.MinorVersion&0x0f
	v[offExchange] = byte(h.Exchange)
	v[offFlags] = byte(h.Flags)
	be.PutUint32(v[offMessageID:], h.MessageID)
	be.PutUint32(v[offLength:], uint32(length))
}
