package datapath

import (
	"encoding/binary"

	"github.com/rampartnet/rampart/ipsec/esp"
)

// Offsets into IPv4 (RFC 791) and IPv6 (RFC 8200) headers.
const (
	ipv4HeaderLen    = 20
	ipv4TotalLenOff  = 2
	ipv4ProtoOff     = 9
	ipv4ChecksumOff  = 10
	ipv4SrcOff       = 12
	ipv4DstOff       = 16
	ipv6HeaderLen    = 40
	ipv6PayloadOff   = 4
	ipv6NextHdrOff   = 6
	ipv6SrcOff       = 8
	ipv6DstOff       = 24
	protoICMP        = 1
	protoICMPv6      = 58
	icmpv4HeaderLen  = 8
	icmpv6HeaderLen  = 8
	ipv6MinMTU       = 1280
	icmpv4QuoteLimit = 576 // RFC 1812 §4.3.2.3: the whole ICMP packet stays within 576 bytes
)

// tooBig writes into dst, and returns, the ICMP message that tells the
// sender of pkt that the path MTU is mtu: "fragmentation needed" (RFC 792,
// RFC 1191) for IPv4 with DF set, "packet too big" (RFC 4443 §3.2) for
// IPv6. It returns nil when no message is due (IPv4 without DF, where the
// kernel would fragment; an ICMP error about an ICMP error).
//
// The message comes from pkt's destination: the kernel drops a packet that
// arrives on the TUN device with one of its own addresses as the source
// (a martian), and any source makes the sender's path MTU discovery work.
func tooBig(dst, pkt []byte, mtu int) []byte {
	src, to, ok := esp.InnerAddrs(pkt)
	if !ok {
		return nil
	}
	if src.Is4() {
		const dfBit = 0x40
		if pkt[6]&dfBit == 0 || isICMPError4(pkt) {
			return nil
		}
		quote := min(len(pkt), icmpv4QuoteLimit-ipv4HeaderLen-icmpv4HeaderLen)
		n := ipv4HeaderLen + icmpv4HeaderLen + quote
		b := dst[:n]
		clear(b[:ipv4HeaderLen+icmpv4HeaderLen])
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[ipv4TotalLenOff:], uint16(n))
		b[8] = 64 // TTL
		b[ipv4ProtoOff] = protoICMP
		copy(b[ipv4SrcOff:], to.AsSlice())
		copy(b[ipv4DstOff:], src.AsSlice())
		binary.BigEndian.PutUint16(b[ipv4ChecksumOff:], ^checksum(b[:ipv4HeaderLen], 0))
		icmp := b[ipv4HeaderLen:]
		icmp[0], icmp[1] = 3, 4 // destination unreachable, fragmentation needed
		binary.BigEndian.PutUint16(icmp[6:], uint16(mtu))
		copy(icmp[icmpv4HeaderLen:], pkt[:quote])
		binary.BigEndian.PutUint16(icmp[2:], ^checksum(icmp, 0))
		return b
	}
	if isICMPError6(pkt) {
		return nil
	}
	quote := min(len(pkt), ipv6MinMTU-ipv6HeaderLen-icmpv6HeaderLen)
	n := ipv6HeaderLen + icmpv6HeaderLen + quote
	b := dst[:n]
	clear(b[:ipv6HeaderLen+icmpv6HeaderLen])
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[ipv6PayloadOff:], uint16(n-ipv6HeaderLen))
	b[ipv6NextHdrOff] = protoICMPv6
	b[7] = 64 // hop limit
	copy(b[ipv6SrcOff:], to.AsSlice())
	copy(b[ipv6DstOff:], src.AsSlice())
	icmp := b[ipv6HeaderLen:]
	icmp[0] = 2 // packet too big
	binary.BigEndian.PutUint32(icmp[4:], uint32(mtu))
	copy(icmp[icmpv6HeaderLen:], pkt[:quote])
	// The ICMPv6 checksum covers a pseudo-header (RFC 8200 §8.1).
	var pseudo uint32
	pseudo = sum(b[ipv6SrcOff:ipv6DstOff+16], pseudo)
	pseudo += uint32(len(icmp)) + protoICMPv6
	binary.BigEndian.PutUint16(icmp[2:], ^checksum(icmp, pseudo))
	return b
}

func isICMPError4(pkt []byte) bool {
	ihl := int(pkt[0]&0x0f) * 4
	if pkt[ipv4ProtoOff] != protoICMP || len(pkt) <= ihl {
		return false
	}
	switch pkt[ihl] {
	case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
		return true
	}
	return false
}

func isICMPError6(pkt []byte) bool {
	// ICMPv6 error types are below 128 (RFC 4443 §2.1).
	return pkt[ipv6NextHdrOff] == protoICMPv6 && len(pkt) > ipv6HeaderLen && pkt[ipv6HeaderLen] < 128
}

func sum(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// checksum is the Internet checksum (RFC 1071) of b plus a partial sum,
// before the final complement.
func checksum(b []byte, acc uint32) uint16 {
	acc = sum(b, acc)
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
