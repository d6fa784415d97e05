package esp

import "time"

// Protocol constants. Every wire offset used by this package is named here;
// no other file writes a bare offset into a packet.
const (
	// ESP header (RFC 4303 §2): SPI | Sequence Number, then the IV that the
	// transforms carry at the start of the Payload Data field.
	offSPI       = 0
	offSeq       = 4
	espHeaderLen = 8

	// ESP trailer (RFC 4303 §2.4-§2.6): Padding | Pad Length | Next Header.
	trailerLen = 2
	// RFC 4303 §2.4: the Pad Length and Next Header fields must be
	// right-aligned on a 4-octet boundary, so that the ICV is aligned.
	minAlign = 4

	// RFC 4106 §3.1 and RFC 7634 §2: an 8-octet explicit IV on the wire and
	// a 4-octet salt taken from the end of the keying material; the AEAD
	// nonce is salt || IV.
	aeadIVLen    = 8
	saltLen      = 4
	aeadNonceLen = saltLen + aeadIVLen

	// Every algorithm here has a 16-octet ICV: AES-GCM with the 16-octet
	// tag (RFC 4106 §8, "AES-GCM with a 16 octet ICV"), ChaCha20-Poly1305
	// (RFC 7634 §2) and HMAC-SHA-256-128 (RFC 4868 §2.3, truncated to the
	// first 128 bits of the output).
	icvLen = 16

	// AES-CBC (RFC 3602 §2.1, §3): the IV is one cipher block and the
	// ciphertext is a whole number of blocks.
	aesBlockLen = 16
	cbcIVLen    = aesBlockLen
	// RFC 4868 §2.1.1: HMAC-SHA-256-128 keys are exactly 256 bits.
	hmacSHA256KeyLen = 32
	chachaKeyLen     = 32

	// Next Header values (IANA protocol numbers).
	protoIPv4     = 4  // IP-in-IP: tunnel mode with an IPv4 inner packet
	protoIPv6     = 41 // tunnel mode with an IPv6 inner packet
	protoIPv6Frag = 44 // IPv6 Fragment header
	protoNoNext   = 59 // RFC 4303 §2.6: dummy packet, "no next header"

	// RFC 4303 §2.1: SPI 0 is reserved for local, implementation-specific
	// use and must never be sent; 1-255 are reserved by IANA.
	minSPI = 256

	// IPv4 header (RFC 791 §3.1).
	ipv4HeaderLen     = 20
	ipv4OffVersionIHL = 0
	ipv4OffTotalLen   = 2
	ipv4OffFlagsFrag  = 6
	ipv4OffTTL        = 8
	ipv4OffProto      = 9
	ipv4OffChecksum   = 10
	ipv4OffSrc        = 12
	ipv4OffDst        = 16
	ipv4FlagDF        = 0x4000
	ipv4FlagMF        = 0x2000
	ipv4FragOffMask   = 0x1fff

	// IPv6 header (RFC 8200 §3).
	ipv6HeaderLen     = 40
	ipv6OffPayloadLen = 4
	ipv6OffNextHeader = 6
	ipv6OffHopLimit   = 7
	ipv6OffSrc        = 8
	ipv6OffDst        = 24

	// Largest IP packet (IPv4 Total Length and IPv6 Payload Length are 16
	// bits; ESP-in-UDP cannot carry jumbograms).
	maxIPPacket = 65535

	// RFC 3948 §2.2: a UDP payload that starts with four zero octets (the
	// non-ESP marker, where an SPI of zero can never be) is an IKE message.
	NonESPMarkerLen = 4
	// RFC 7296 §3.1: the fixed IKE header is 28 octets.
	ikeHeaderLen = 28
	// RFC 3948 §2.3: a NAT-keepalive is a single octet of 0xFF.
	keepaliveByte = 0xff
	// NATTPort is the UDP port of IKE and ESP-in-UDP once NAT traversal is
	// in use (RFC 3947 §4, RFC 3948 §1).
	NATTPort = 4500
)

// Implementation choices: values the RFCs leave to the implementation.
const (
	// DefaultReplayWindow is the anti-replay window used when
	// Config.ReplayWindow is 0. RFC 4303 §3.4.3 asks for at least 32 and
	// suggests 64; high-rate links reorder more than that across parallel
	// decryption workers, and the Linux kernel and strongSwan users
	// commonly run with windows of this size.
	DefaultReplayWindow = 1024
	// MaxReplayWindow bounds Config.ReplayWindow (a 65536-packet window is
	// an 8 KiB bitmap per inbound SA).
	MaxReplayWindow = 65536
	// replayBlockBits is the width of one bitmap word of the window ring.
	replayBlockBits = 64

	// transportTTL is the TTL (IPv4) or hop limit (IPv6) of the IP header
	// that Open rebuilds in transport mode. The receiver never sees the
	// sender's TTL (ESP does not protect it); the packet is delivered
	// locally, so any value above 1 works.
	transportTTL = 64

	// DefaultGrace is how long an inbound SA replaced by Table.Replace keeps
	// accepting packets when the peer's DELETE never arrives. The peer
	// switches to the new SA after one round trip; 30 s also covers a few
	// IKE retransmissions of the INFORMATIONAL exchange that carries the
	// DELETE (RFC 7296 §2.1, §2.8) while bounding how long stale keys stay
	// usable.
	DefaultGrace = 30 * time.Second
	// DefaultEventBuffer is the capacity of the Table's event channel.
	DefaultEventBuffer = 64
	// DefaultSPIReservation is how long an SPI handed out by AllocateSPI
	// stays reserved without being installed (a CREATE_CHILD_SA exchange
	// that failed halfway). It outlasts IKE's retransmission schedule.
	DefaultSPIReservation = 5 * time.Minute
	// maxSPIAttempts bounds the random search in AllocateSPI.
	maxSPIAttempts = 128

	// cacheLinePad separates fields written on every packet by different
	// cores from the read-mostly fields next to them (false sharing).
	cacheLinePad = 64
)
