package message

// Protocol constants. Every wire offset used by this package is named here;
// no other file writes a bare offset into a message. Offsets are relative to
// the start of the structure they belong to.
const (
	// IKE header (RFC 7296 §3.1).
	offSPIi        = 0
	offSPIr        = 8
	offNextPayload = 16
	offVersion     = 17 // MjVer (high nibble) | MnVer (low nibble)
	offExchange    = 18
	offFlags       = 19
	offMessageID   = 20
	offLength      = 24
	// HeaderLen is the length of the fixed IKE header.
	HeaderLen = 28

	// MajorVersion is the IKE major version this package speaks (RFC 7296
	// §3.1: 2 for IKEv2; IKEv1 is 1).
	MajorVersion = 2

	// Generic payload header (RFC 7296 §3.2): Next Payload | C | RESERVED |
	// Payload Length, where the length counts the header too.
	offGenNext    = 0
	offGenFlags   = 1
	offGenLength  = 2
	genHeaderLen  = 4
	genCritical   = 0x80 // the C bit (RFC 7296 §3.2)
	maxPayloadLen = 0xffff

	// Proposal substructure (RFC 7296 §3.3.1).
	offPropLast          = 0 // 0 = last, 2 = more (IKEv1's payload type 2)
	offPropLength        = 2
	offPropNum           = 4
	offPropProtocol      = 5
	offPropSPISize       = 6
	offPropNumTransforms = 7
	propHeaderLen        = 8
	propMore             = 2

	// Transform substructure (RFC 7296 §3.3.2).
	offTrLast   = 0 // 0 = last, 3 = more (IKEv1's payload type 3)
	offTrLength = 2
	offTrType   = 4
	offTrID     = 6
	trHeaderLen = 8
	trMore      = 3

	// Data attributes (RFC 7296 §3.3.5, also the shape of transform
	// attributes): AF | Attribute Type, then the value (AF = 1, TV) or
	// Attribute Length and value (AF = 0, TLV).
	offAttrType   = 0
	offAttrTV     = 2 // TV: the 2-octet value
	offAttrLength = 2 // TLV: the length of the value
	attrTVLen     = 4
	attrTLVHeader = 4
	attrAF        = 0x8000

	// Key Exchange payload (RFC 7296 §3.4).
	offKEGroup  = 0
	keHeaderLen = 4

	// Identification payload (RFC 7296 §3.5).
	offIDType   = 0
	idHeaderLen = 4

	// Certificate and Certificate Request payloads (RFC 7296 §3.6, §3.7).
	offCertEncoding = 0
	certHeaderLen   = 1

	// Authentication payload (RFC 7296 §3.8).
	offAuthMethod = 0
	authHeaderLen = 4

	// Nonce payload (RFC 7296 §3.9): 16 to 256 octets.
	MinNonceLen = 16
	MaxNonceLen = 256

	// Notify payload (RFC 7296 §3.10).
	offNotifyProtocol = 0
	offNotifySPISize  = 1
	offNotifyType     = 2
	notifyHeaderLen   = 4

	// Delete payload (RFC 7296 §3.11).
	offDeleteProtocol = 0
	offDeleteSPISize  = 1
	offDeleteNumSPIs  = 2
	deleteHeaderLen   = 4
	childSPILen       = 4 // AH and ESP SPIs
	ikeSPILen         = 8

	// Traffic Selector payload (RFC 7296 §3.13) and its selectors
	// (§3.13.1).
	offTSNum       = 0
	tsHeaderLen    = 4
	offSelType     = 0
	offSelProtocol = 1
	offSelLength   = 2
	offSelStart    = 4
	offSelEnd      = 6
	offSelAddrs    = 8
	selHeaderLen   = 8
	selIPv4Len     = selHeaderLen + 2*4
	selIPv6Len     = selHeaderLen + 2*16

	// Configuration payload (RFC 7296 §3.15) and its attributes (§3.15.1):
	// R | Attribute Type (15 bits), Length, Value.
	offCPType     = 0
	cpHeaderLen   = 4
	offCfgType    = 0
	offCfgLength  = 2
	cfgAttrHeader = 4
	cfgTypeMask   = 0x7fff

	// Encrypted Fragment payload (RFC 7383 §2.5): Fragment Number | Total
	// Fragments after the generic header, then IV, ciphertext and ICV.
	offFragNumber = 0
	offFragTotal  = 2
	fragHeaderLen = 4

	// maxMessageLen bounds what Marshal builds and Parse accepts. The
	// header's Length is 32 bits, but an IKE message travels in one UDP
	// datagram (RFC 7296 §2) or a TCP stream record with a 16-bit length
	// (RFC 9329 §3), so no real message is longer.
	maxMessageLen = 0xffff
)

// Implementation choices: values the RFCs leave to the implementation.
const (
	// DefaultMaxFragments is the largest Total Fragments a Reassembler
	// accepts by default. RFC 7383 §2.5.1 asks senders to keep fragments
	// near 1280 octets (576 for IPv4 without PMTU discovery); a 64 KiB
	// message in 576-octet datagrams needs about 130, and real messages
	// (IKE_AUTH with a certificate chain) need a handful.
	DefaultMaxFragments = 128
	// DefaultMaxReassemblyLen bounds the decrypted octets a Reassembler
	// holds for one message: the largest message Parse accepts.
	DefaultMaxReassemblyLen = maxMessageLen
	// maxFragmentTotal is the largest Total Fragments that fits the field.
	maxFragmentTotal = 0xffff
)
