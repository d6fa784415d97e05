package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// The kernel here has no SCTP sockets (CONFIG_IP_SCTP is off), though
// nftables and conntrack handle SCTP. So the lab speaks just enough SCTP
// from raw sockets to show whether policy lets an association start: the
// prober sends an INIT, each pod's responder answers it with an INIT-ACK
// (RFC 9260 §5.1, steps A and B), and the prober counts the destination
// reached when that INIT-ACK arrives. Nothing goes further (no COOKIE-ECHO);
// conntrack forgets the half-open association within seconds.
//
// What conntrack checks (net/netfilter/nf_conntrack_proto_sctp.c), and so
// what these packets must get right, or be dropped as invalid:
//   - the CRC32c checksum (RFC 9260 §6.8, Appendix A), checked on the way in;
//   - an INIT has verification tag 0 and is the only chunk in its packet;
//   - the INIT-ACK carries, as its verification tag, the initiate tag of
//     the INIT (§8.5), and is the only chunk in its packet.

// SCTP wire constants (RFC 9260 §3).
const (
	sctpHeaderLen   = 12 // source port, destination port, verification tag, checksum
	sctpChecksumOff = 8
	chunkHeaderLen  = 4  // type, flags, length
	initBodyLen     = 16 // initiate tag, a_rwnd, outbound streams, inbound streams, initial TSN

	chunkInit    = 1
	chunkInitAck = 2

	paramStateCookie = 7 // mandatory in an INIT-ACK (§3.3.3)

	ipProtoSCTP = 132
)

// Implementation choices for the chunks the lab sends.
const (
	labWindow  = 65535 // a_rwnd
	labStreams = 1     // outbound and inbound streams
)

// castagnoli is CRC32c, the checksum of SCTP (RFC 9260 Appendix A).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sctpChecksum is the CRC32c of an SCTP packet with its checksum field
// taken as zero. It goes on the wire least significant byte first, the
// byte order of RFC 3720's test vectors (Appendix B.4), as Linux's
// sctp_compute_cksum stores it.
func sctpChecksum(pkt []byte) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, pkt[:sctpChecksumOff])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, pkt[sctpChecksumOff+4:])
}

// sctpPacket is the part of an SCTP packet the lab reads: the common
// header and its first chunk, when that is an INIT or an INIT-ACK.
type sctpPacket struct {
	SrcPort, DstPort uint16
	VerificationTag  uint32
	Chunk            byte // type of the first chunk
	// Init is the first chunk's body when it is an INIT or an INIT-ACK.
	Init initChunk
}

// initChunk is the fixed part of an INIT or INIT-ACK (RFC 9260 §3.3.2).
type initChunk struct {
	InitiateTag uint32
	Window      uint32
	OutStreams  uint16
	InStreams   uint16
	InitialTSN  uint32
}

func (c initChunk) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, c.InitiateTag)
	b = binary.BigEndian.AppendUint32(b, c.Window)
	b = binary.BigEndian.AppendUint16(b, c.OutStreams)
	b = binary.BigEndian.AppendUint16(b, c.InStreams)
	return binary.BigEndian.AppendUint32(b, c.InitialTSN)
}

// appendInit appends an INIT from srcPort to dstPort (verification tag
// 0, no optional parameters) with its checksum.
func appendInit(b []byte, srcPort, dstPort uint16, c initChunk) []byte {
	start := len(b)
	b = appendHeader(b, srcPort, dstPort, 0)
	b = append(b, chunkInit, 0)
	b = binary.BigEndian.AppendUint16(b, chunkHeaderLen+initBodyLen)
	b = c.append(b)
	return sealSCTP(b, start)
}

// appendInitAck appends the answer to init (which arrived from the
// sender's port to ours): ports swapped, the INIT's initiate tag as the
// verification tag, and a State Cookie parameter holding cookie.
func appendInitAck(b []byte, init sctpPacket, c initChunk, cookie []byte) []byte {
	start := len(b)
	b = appendHeader(b, init.DstPort, init.SrcPort, init.Init.InitiateTag)
	paramLen := 4 + len(cookie)
	padded := (paramLen + 3) &^ 3
	b = append(b, chunkInitAck, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(chunkHeaderLen+initBodyLen+paramLen))
	b = c.append(b)
	b = binary.BigEndian.AppendUint16(b, paramStateCookie)
	b = binary.BigEndian.AppendUint16(b, uint16(paramLen))
	b = append(b, cookie...)
	b = append(b, make([]byte, padded-paramLen)...) // the chunk length leaves the padding out (§3.2)
	return sealSCTP(b, start)
}

func appendHeader(b []byte, srcPort, dstPort uint16, tag uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, srcPort)
	b = binary.BigEndian.AppendUint16(b, dstPort)
	b = binary.BigEndian.AppendUint32(b, tag)
	return append(b, 0, 0, 0, 0) // checksum, filled in by sealSCTP
}

func sealSCTP(b []byte, start int) []byte {
	binary.LittleEndian.PutUint32(b[start+sctpChecksumOff:], sctpChecksum(b[start:]))
	return b
}

var errNotSCTPInit = errors.New("sctp: first chunk is neither INIT nor INIT-ACK")

// parseSCTP checks an SCTP packet's checksum and reads its common header
// and, when the first chunk is an INIT or INIT-ACK, that chunk. Any other
// first chunk returns the header with errNotSCTPInit.
func parseSCTP(pkt []byte) (sctpPacket, error) {
	var p sctpPacket
	if len(pkt) < sctpHeaderLen+chunkHeaderLen {
		return p, fmt.Errorf("sctp: %d bytes, shorter than a header and a chunk", len(pkt))
	}
	if got, want := binary.LittleEndian.Uint32(pkt[sctpChecksumOff:]), sctpChecksum(pkt); got != want {
		return p, fmt.Errorf("sctp: checksum %08x, want %08x", got, want)
	}
	p.SrcPort = binary.BigEndian.Uint16(pkt[0:])
	p.DstPort = binary.BigEndian.Uint16(pkt[2:])
	p.VerificationTag = binary.BigEndian.Uint32(pkt[4:])
	chunk := pkt[sctpHeaderLen:]
	p.Chunk = chunk[0]
	length := int(binary.BigEndian.Uint16(chunk[2:]))
	if p.Chunk != chunkInit && p.Chunk != chunkInitAck {
		return p, errNotSCTPInit
	}
	if length < chunkHeaderLen+initBodyLen || length > len(chunk) {
		return p, fmt.Errorf("sctp: chunk length %d in %d bytes", length, len(chunk))
	}
	body := chunk[chunkHeaderLen:]
	p.Init = initChunk{
		InitiateTag: binary.BigEndian.Uint32(body[0:]),
		Window:      binary.BigEndian.Uint32(body[4:]),
		OutStreams:  binary.BigEndian.Uint16(body[8:]),
		InStreams:   binary.BigEndian.Uint16(body[10:]),
		InitialTSN:  binary.BigEndian.Uint32(body[12:]),
	}
	if p.Init.InitiateTag == 0 || p.Init.OutStreams == 0 || p.Init.InStreams == 0 {
		// §3.3.2: a zero initiate tag or stream count makes the receiver abort.
		return p, fmt.Errorf("sctp: INIT with initiate tag %d, streams %d/%d", p.Init.InitiateTag, p.Init.OutStreams, p.Init.InStreams)
	}
	return p, nil
}

// parseIPv4 splits what a raw IPv4 socket reads into its addresses,
// protocol and payload.
func parseIPv4(b []byte) (src, dst netip.Addr, proto byte, payload []byte, err error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return src, dst, 0, nil, errors.New("not an IPv4 packet")
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || total > len(b) {
		return src, dst, 0, nil, fmt.Errorf("IPv4 header length %d, total %d in %d bytes", ihl, total, len(b))
	}
	src = netip.AddrFrom4([4]byte(b[12:16]))
	dst = netip.AddrFrom4([4]byte(b[16:20]))
	return src, dst, b[9], b[ihl:total], nil
}
