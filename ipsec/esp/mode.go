package esp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// Mode is the ESP mode of an SA (RFC 4301 §4.1, RFC 4303 §3.1).
type Mode uint8

const (
	// ModeTunnel protects a whole inner IP packet (Next Header 4 or 41).
	ModeTunnel Mode = iota + 1
	// ModeTransport protects what follows the IP header; the receiver
	// rebuilds the IP header from the outer addresses.
	ModeTransport
)

// String returns "tunnel" or "transport".
func (m Mode) String() string {
	switch m {
	case ModeTunnel:
		return "tunnel"
	case ModeTransport:
		return "transport"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses "tunnel" or "transport" (any case).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tunnel":
		return ModeTunnel, nil
	case "transport":
		return ModeTransport, nil
	}
	return 0, fmt.Errorf("esp: unknown mode %q (want tunnel or transport)", s)
}

func (m Mode) valid() bool { return m == ModeTunnel || m == ModeTransport }

// outbound splits the IP packet ip into the ESP payload and the Next
// Header value (RFC 4303 §3.1).
//
// Tunnel mode: the payload is the whole packet and Next Header is 4 or 41
// by its version.
//
// Transport mode: the payload is what follows the IP header and Next
// Header is the header's protocol. For IPv4 that is the header with its
// options (IHL); the options are not carried. For IPv6 it is the 40-octet
// base header only: extension headers travel inside ESP, as if they were
// destination options (RFC 4303 §3.1.1 puts hop-by-hop, routing and
// fragment headers before ESP; between two hosts that only talk to each
// other through this package nothing on the path needs to see them).
// RFC 4303 §3.1.1 applies transport mode to whole datagrams only, so
// fragments are refused.
func (m Mode) outbound(ip []byte) (payload []byte, nh byte, err error) {
	if len(ip) == 0 {
		return nil, 0, errInnerShort
	}
	v := ip[ipv4OffVersionIHL] >> 4
	if m == ModeTunnel {
		switch {
		case v == 4 && len(ip) >= ipv4HeaderLen:
			return ip, protoIPv4, nil
		case v == 6 && len(ip) >= ipv6HeaderLen:
			return ip, protoIPv6, nil
		case v == 4 || v == 6:
			return nil, 0, errInnerShort
		}
		return nil, 0, errInnerVersion
	}
	switch v {
	case 4:
		if len(ip) < ipv4HeaderLen {
			return nil, 0, errInnerShort
		}
		ihl := int(ip[ipv4OffVersionIHL]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[ipv4OffTotalLen:]))
		if ihl < ipv4HeaderLen || total < ihl || total > len(ip) {
			return nil, 0, errInnerLength
		}
		if ff := binary.BigEndian.Uint16(ip[ipv4OffFlagsFrag:]); ff&(ipv4FlagMF|ipv4FragOffMask) != 0 {
			return nil, 0, errTransportFragment
		}
		return ip[ihl:total], ip[ipv4OffProto], nil
	case 6:
		if len(ip) < ipv6HeaderLen {
			return nil, 0, errInnerShort
		}
		end := ipv6HeaderLen + int(binary.BigEndian.Uint16(ip[ipv6OffPayloadLen:]))
		if end > len(ip) {
			return nil, 0, errInnerLength
		}
		nh := ip[ipv6OffNextHeader]
		if nh == protoIPv6Frag {
			return nil, 0, errTransportFragment
		}
		return ip[ipv6HeaderLen:end], nh, nil
	}
	return nil, 0, errInnerVersion
}

// tunnelInner checks that the decrypted payload is an IP packet of the
// version Next Header announced and returns it without any traffic flow
// confidentiality padding that followed it (RFC 4303 §2.4, §2.7: the
// receiver finds the end of the inner packet from its own length field).
func tunnelInner(payload []byte, nh byte) ([]byte, error) {
	switch nh {
	case protoIPv4:
		if len(payload) < ipv4HeaderLen || payload[ipv4OffVersionIHL]>>4 != 4 {
			return nil, errInnerMismatch
		}
		ihl := int(payload[ipv4OffVersionIHL]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(payload[ipv4OffTotalLen:]))
		if ihl < ipv4HeaderLen || total < ihl || total > len(payload) {
			return nil, errInnerLength
		}
		return payload[:total], nil
	case protoIPv6:
		if len(payload) < ipv6HeaderLen || payload[ipv4OffVersionIHL]>>4 != 6 {
			return nil, errInnerMismatch
		}
		end := ipv6HeaderLen + int(binary.BigEndian.Uint16(payload[ipv6OffPayloadLen:]))
		if end > len(payload) {
			return nil, errInnerLength
		}
		return payload[:end], nil
	}
	return nil, errTunnelNextHeader
}

// transportHeaderLen returns the length of the IP header that Open builds
// in transport mode for these outer addresses, which must be valid and of
// one family (IPv4-mapped IPv6 addresses from a dual-stack socket count as
// IPv4).
func transportHeaderLen(src, dst netip.Addr) (int, error) {
	src, dst = src.Unmap(), dst.Unmap()
	switch {
	case !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4():
		return 0, errOuterAddrs
	case src.Is4():
		return ipv4HeaderLen, nil
	}
	return ipv6HeaderLen, nil
}

// putTransportHeader writes, into the first hdrLen octets of pkt, the IP
// header that transport mode stripped (RFC 4303 §3.4.4.2 "reconstruct the
// original IP datagram"): the outer addresses as the receiver saw them,
// Next Header as the protocol and the lengths of pkt. The IPv4 header is
// 20 octets with DF set and ID 0 (an atomic datagram, RFC 6864 §4), TOS
// and options are not carried.
//
// Upper-layer checksums are left as they are. RFC 3948 §3.1.2 has the
// receiver fix TCP/UDP checksums when a NAT rewrote the addresses that the
// pseudo-header covers; the peers of this package reach each other without
// NAT, so the checksums already match the outer addresses. A sender in
// transport mode must therefore use the IP packet's own addresses as the
// UDP endpoints.
func putTransportHeader(pkt []byte, hdrLen int, nh byte, src, dst netip.Addr) {
	src, dst = src.Unmap(), dst.Unmap()
	h := pkt[:hdrLen]
	clear(h)
	if hdrLen == ipv4HeaderLen {
		h[ipv4OffVersionIHL] = 4<<4 | ipv4HeaderLen/4
		binary.BigEndian.PutUint16(h[ipv4OffTotalLen:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(h[ipv4OffFlagsFrag:], ipv4FlagDF)
		h[ipv4OffTTL] = transportTTL
		h[ipv4OffProto] = nh
		s, d := src.As4(), dst.As4()
		copy(h[ipv4OffSrc:], s[:])
		copy(h[ipv4OffDst:], d[:])
		binary.BigEndian.PutUint16(h[ipv4OffChecksum:], ipv4Checksum(h))
		return
	}
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[ipv6OffPayloadLen:], uint16(len(pkt)-ipv6HeaderLen))
	h[ipv6OffNextHeader] = nh
	h[ipv6OffHopLimit] = transportTTL
	s, d := src.As16(), dst.As16()
	copy(h[ipv6OffSrc:], s[:])
	copy(h[ipv6OffDst:], d[:])
}

// ipv4Checksum is the Internet checksum of an IPv4 header whose checksum
// field is zero (RFC 791 §3.1, RFC 1071).
func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// InnerAddrs returns the source and destination addresses of the IP packet
// ip, as Open returns it, so that a datapath can check them against the
// SA's traffic selectors (RFC 4301 §5.2: an inbound packet must match the
// selectors of the SA it arrived on).
func InnerAddrs(ip []byte) (src, dst netip.Addr, ok bool) {
	if len(ip) == 0 {
		return src, dst, false
	}
	switch ip[ipv4OffVersionIHL] >> 4 {
	case 4:
		if len(ip) < ipv4HeaderLen {
			return src, dst, false
		}
		return netip.AddrFrom4([4]byte(ip[ipv4OffSrc:])), netip.AddrFrom4([4]byte(ip[ipv4OffDst:])), true
	case 6:
		if len(ip) < ipv6HeaderLen {
			return src, dst, false
		}
		return netip.AddrFrom16([16]byte(ip[ipv6OffSrc:])), netip.AddrFrom16([16]byte(ip[ipv6OffDst:])), true
	}
	return src, dst, false
}
