package esp

import (
	"encoding/binary"
	"fmt"
)

// UDPKind classifies a datagram received on the NAT-T port (RFC 3948 §2).
type UDPKind uint8

const (
	// UDPInvalid is none of the kinds below; drop it.
	UDPInvalid UDPKind = iota
	// UDPESP is an ESP packet: a non-zero SPI first (RFC 3948 §2.1).
	UDPESP
	// UDPIKE is an IKE message behind the four-zero-octet non-ESP marker
	// (RFC 3948 §2.2); strip NonESPMarkerLen octets before parsing it.
	UDPIKE
	// UDPKeepalive is a NAT-keepalive, one octet of 0xFF (RFC 3948 §2.3);
	// the receiver ignores it.
	UDPKeepalive
)

// String returns "esp", "ike", "keepalive" or "invalid".
func (k UDPKind) String() string {
	switch k {
	case UDPInvalid:
		return "invalid"
	case UDPESP:
		return "esp"
	case UDPIKE:
		return "ike"
	case UDPKeepalive:
		return "keepalive"
	}
	return fmt.Sprintf("udpkind(%d)", uint8(k))
}

// KeepalivePacket is the NAT-keepalive payload (RFC 3948 §2.3). Do not
// modify it.
var KeepalivePacket = []byte{keepaliveByte}

// ClassifyUDP tells what a UDP payload received on port 4500 is. An ESP
// packet must hold at least its 8-octet header; an IKE message at least the
// marker and the 28-octet IKE header. Only the leading octets are looked
// at; Open and the IKE parser check the rest.
func ClassifyUDP(payload []byte) UDPKind {
	switch {
	case len(payload) == 1 && payload[0] == keepaliveByte:
		return UDPKeepalive
	case len(payload) < espHeaderLen:
		return UDPInvalid
	case binary.BigEndian.Uint32(payload[offSPI:]) != 0:
		return UDPESP
	case len(payload) >= NonESPMarkerLen+ikeHeaderLen:
		return UDPIKE
	}
	return UDPInvalid
}

// PeekSPI returns the SPI of an ESP-in-UDP payload, for the SAD lookup
// that picks the SA to Open it with. It is false unless ClassifyUDP says
// UDPESP.
func PeekSPI(payload []byte) (uint32, bool) {
	if len(payload) < espHeaderLen {
		return 0, false
	}
	spi := binary.BigEndian.Uint32(payload[offSPI:])
	return spi, spi != 0
}

// AppendNonESPMarker appends the non-ESP marker that precedes an IKE
// message sent on the NAT-T port (RFC 3948 §2.2).
func AppendNonESPMarker(dst []byte) []byte {
	return append(dst, 0, 0, 0, 0)
}
