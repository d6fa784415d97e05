package ikecrypto

import "fmt"

// TransformType is an IKEv2 transform type (RFC 7296 §3.3.2, IANA "IKEv2
// Parameters", Transform Type Values).
type TransformType uint8

// Transform types.
const (
	TransformENCR  TransformType = 1 // encryption algorithm
	TransformPRF   TransformType = 2 // pseudorandom function
	TransformINTEG TransformType = 3 // integrity algorithm
	TransformDH    TransformType = 4 // Diffie-Hellman group (Key Exchange Method since RFC 9370)
	TransformESN   TransformType = 5 // extended sequence numbers
)

// EncrID is an IKEv2 encryption algorithm (Transform Type 1).
type EncrID uint16

// Encryption algorithms. Only these three are implemented; the AEADs are
// the ones RFC 8247 §2 marks MUST/SHOULD for IKE, and AES-CBC is there for
// peers that have no AEAD.
const (
	// EncrAESCBC is ENCR_AES_CBC (RFC 3602, RFC 7296 §3.3.2). The key
	// length (128, 192 or 256 bits) is carried by the Key Length attribute.
	EncrAESCBC EncrID = 12
	// EncrAESGCM16 is ENCR_AES_GCM_16, AES-GCM with a 16-octet ICV
	// (RFC 4106, RFC 5282). Key length 128, 192 or 256 bits by the Key
	// Length attribute.
	EncrAESGCM16 EncrID = 20
	// EncrChaCha20Poly1305 is ENCR_CHACHA20_POLY1305 (RFC 7634). It has a
	// fixed 256-bit key and takes no Key Length attribute (RFC 7634 §2, §3).
	EncrChaCha20Poly1305 EncrID = 28
)

// PRFID is an IKEv2 pseudorandom function (Transform Type 2).
type PRFID uint16

// Pseudorandom functions (RFC 4868 §2.1).
const (
	PRFHMACSHA256 PRFID = 5 // PRF_HMAC_SHA2_256
	PRFHMACSHA384 PRFID = 6 // PRF_HMAC_SHA2_384
	PRFHMACSHA512 PRFID = 7 // PRF_HMAC_SHA2_512
)

// IntegID is an IKEv2 integrity algorithm (Transform Type 3).
type IntegID uint16

// Integrity algorithms (RFC 4868 §2.3, truncated HMAC-SHA-2).
const (
	// IntegNone is "NONE": no integrity algorithm, the only valid value
	// with an AEAD (RFC 5282 §8).
	IntegNone          IntegID = 0
	IntegHMACSHA256128 IntegID = 12 // AUTH_HMAC_SHA2_256_128
	IntegHMACSHA384192 IntegID = 13 // AUTH_HMAC_SHA2_384_192
	IntegHMACSHA512256 IntegID = 14 // AUTH_HMAC_SHA2_512_256
	integHMACSHA196    IntegID = 2  // AUTH_HMAC_SHA1_96: named only for error messages
	integAESXCBC96     IntegID = 5  // AUTH_AES_XCBC_96: named only for error messages
	integAESCMAC96     IntegID = 8  // AUTH_AES_CMAC_96: named only for error messages
)

// DHGroup is an IKEv2 Diffie-Hellman group (Transform Type 4).
type DHGroup uint16

// Diffie-Hellman groups. Only the elliptic-curve groups are implemented:
// Go's standard library has no constant-time modular exponentiation for
// the MODP groups, and RFC 8247 §2.4 already prefers ECP and Curve25519.
const (
	// DHNone is "NONE": no Diffie-Hellman exchange (a CHILD_SA without
	// PFS).
	DHNone       DHGroup = 0
	DHECP256     DHGroup = 19 // 256-bit random ECP group, NIST P-256 (RFC 5903)
	DHECP384     DHGroup = 20 // 384-bit random ECP group, NIST P-384 (RFC 5903)
	DHECP521     DHGroup = 21 // 521-bit random ECP group, NIST P-521 (RFC 5903)
	DHCurve25519 DHGroup = 31 // Curve25519 (RFC 8031)
)

// modpGroups names the MODP groups so that a peer offering one gets a
// clear "unsupported" rather than "unknown" (IANA "IKEv2 Parameters",
// Transform Type 4; RFC 7296 Appendix B, RFC 3526, RFC 5114).
var modpGroups = map[DHGroup]string{
	1: "modp768", 2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072",
	16: "modp4096", 17: "modp6144", 18: "modp8192", 22: "modp1024s160",
	23: "modp2048s224", 24: "modp2048s256",
}

// ESNID is the Extended Sequence Numbers transform (Transform Type 5),
// used in ESP proposals only.
type ESNID uint16

// ESN transform IDs (RFC 7296 §3.3.2).
const (
	ESNNo  ESNID = 0 // 32-bit sequence numbers
	ESNYes ESNID = 1 // 64-bit extended sequence numbers
)

// AttrKeyLength is the Key Length transform attribute (RFC 7296 §3.3.5),
// type 14 in TV format (so 0x800e on the wire), its value in bits.
const AttrKeyLength = 14

// AuthMethod is the Auth Method field of the AUTH payload (RFC 7296 §3.8).
type AuthMethod uint8

// Authentication methods implemented here.
const (
	// AuthPSK is "Shared Key Message Integrity Code" (RFC 7296 §2.15).
	AuthPSK AuthMethod = 2
	// AuthDigitalSignature is the generic "Digital Signature" method of
	// RFC 7427 §3: the AUTH data names its signature algorithm itself.
	AuthDigitalSignature AuthMethod = 14
)

// HashAlgorithm is an IKEv2 hash algorithm identifier as carried in the
// SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 §4, IANA "IKEv2 Hash
// Algorithms").
type HashAlgorithm uint16

// Hash algorithms for RFC 7427 signatures. SHA-1 (1) is deliberately
// absent: RFC 8247 §3.2 says SHOULD NOT for signatures.
const (
	HashSHA256   HashAlgorithm = 2
	HashSHA384   HashAlgorithm = 3
	HashSHA512   HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // RFC 8420: for EdDSA, which hashes internally
)

// NotifySignatureHashAlgorithms is the notify message type of
// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
const NotifySignatureHashAlgorithms = 16431

// IDType is the ID Type of an IDi or IDr payload (RFC 7296 §3.5).
type IDType uint8

// Identification types.
const (
	IDIPv4Addr   IDType = 1  // ID_IPV4_ADDR: four octets
	IDFQDN       IDType = 2  // ID_FQDN: a domain name, no terminator
	IDRFC822Addr IDType = 3  // ID_RFC822_ADDR: an e-mail address
	IDIPv6Addr   IDType = 5  // ID_IPV6_ADDR: sixteen octets
	IDDERASN1DN  IDType = 9  // ID_DER_ASN1_DN: a DER Name
	IDKeyID      IDType = 11 // ID_KEY_ID: opaque octets
)

// Protocol constants.
const (
	// keyPad is the fixed string of RFC 7296 §2.15: AUTH =
	// prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>),
	// 17 ASCII octets without a terminator.
	keyPad = "Key Pad for IKEv2"

	// RFC 5282 §3 (AES-GCM) and RFC 7634 §3 (ChaCha20-Poly1305 in IKEv2):
	// an 8-octet explicit IV in the SK payload and a 4-octet salt taken
	// from the end of SK_ei / SK_er (RFC 5282 §7.1, RFC 7634 §4). The
	// nonce is salt || IV.
	aeadIVLen    = 8
	saltLen      = 4
	aeadNonceLen = saltLen + aeadIVLen
	// Both AEADs here have a 16-octet ICV (RFC 5282 §3 for ENCR_AES_GCM_16,
	// RFC 7634 §2 for ChaCha20-Poly1305).
	aeadICVLen = 16
	// RFC 7634 §2: ChaCha20 has a 256-bit key.
	chachaKeyLen = 32

	// AES (RFC 3602 §2): 16-octet blocks; in CBC mode the IV is one block.
	aesBlockLen = 16

	// RFC 7296 §3.14: the Pad Length octet that follows the padding.
	padLenLen = 1
	// RFC 7296 §3.14: "the Pad Length ... the number of octets of padding";
	// one octet, so at most 255 octets of padding.
	maxPadLen = 255

	// RFC 5903 §7: an ECP public value is x || y without the SEC1 point
	// format octet; crypto/ecdh speaks SEC1 with the 0x04 prefix.
	sec1Uncompressed = 0x04
	// RFC 8031 §2: a Curve25519 public value and shared secret are 32
	// octets.
	x25519Len = 32

	// RFC 7296 §2.13: prf+ counts its blocks in one octet, 0x01 to 0xff,
	// so it yields at most 255 blocks.
	maxPRFPlusBlocks = 255

	// RFC 7296 §3.1: an IKE SPI is 8 octets.
	ikeSPILen = 8
)

// Implementation choices.
const (
	// maxSecretFile bounds what ReadSecretFile reads: enough for any PEM
	// private key with its chain comments, small enough that a wrong path
	// (a log, a device) fails fast.
	maxSecretFile = 1 << 20
)

// String returns the IANA name of the transform type.
func (t TransformType) String() string {
	switch t {
	case TransformENCR:
		return "ENCR"
	case TransformPRF:
		return "PRF"
	case TransformINTEG:
		return "INTEG"
	case TransformDH:
		return "DH"
	case TransformESN:
		return "ESN"
	}
	return fmt.Sprintf("TRANSFORM_TYPE_%d", uint8(t))
}

// String returns the IANA name of the encryption algorithm.
func (e EncrID) String() string {
	switch e {
	case EncrAESCBC:
		return "ENCR_AES_CBC"
	case EncrAESGCM16:
		return "ENCR_AES_GCM_16"
	case EncrChaCha20Poly1305:
		return "ENCR_CHACHA20_POLY1305"
	}
	return fmt.Sprintf("ENCR_%d", uint16(e))
}

// String returns the IANA name of the PRF.
func (p PRFID) String() string {
	switch p {
	case PRFHMACSHA256:
		return "PRF_HMAC_SHA2_256"
	case PRFHMACSHA384:
		return "PRF_HMAC_SHA2_384"
	case PRFHMACSHA512:
		return "PRF_HMAC_SHA2_512"
	}
	return fmt.Sprintf("PRF_%d", uint16(p))
}

// String returns the IANA name of the integrity algorithm.
func (i IntegID) String() string {
	switch i {
	case IntegNone:
		return "NONE"
	case IntegHMACSHA256128:
		return "AUTH_HMAC_SHA2_256_128"
	case IntegHMACSHA384192:
		return "AUTH_HMAC_SHA2_384_192"
	case IntegHMACSHA512256:
		return "AUTH_HMAC_SHA2_512_256"
	case integHMACSHA196:
		return "AUTH_HMAC_SHA1_96"
	case integAESXCBC96:
		return "AUTH_AES_XCBC_96"
	case integAESCMAC96:
		return "AUTH_AES_CMAC_96"
	}
	return fmt.Sprintf("AUTH_%d", uint16(i))
}

// String returns the name of the group as IANA lists it.
func (g DHGroup) String() string {
	switch g {
	case DHNone:
		return "NONE"
	case DHECP256:
		return "ECP_256"
	case DHECP384:
		return "ECP_384"
	case DHECP521:
		return "ECP_521"
	case DHCurve25519:
		return "CURVE_25519"
	}
	if name, ok := modpGroups[g]; ok {
		return name
	}
	return fmt.Sprintf("DH_GROUP_%d", uint16(g))
}

// String returns the hash algorithm's IANA name.
func (h HashAlgorithm) String() string {
	switch h {
	case 1:
		return "SHA1"
	case HashSHA256:
		return "SHA2_256"
	case HashSHA384:
		return "SHA2_384"
	case HashSHA512:
		return "SHA2_512"
	case HashIdentity:
		return "IDENTITY"
	}
	return fmt.Sprintf("HASH_%d", uint16(h))
}

// String returns the ID type's IANA name.
func (t IDType) String() string {
	switch t {
	case IDIPv4Addr:
		return "ID_IPV4_ADDR"
	case IDFQDN:
		return "ID_FQDN"
	case IDRFC822Addr:
		return "ID_RFC822_ADDR"
	case IDIPv6Addr:
		return "ID_IPV6_ADDR"
	case IDDERASN1DN:
		return "ID_DER_ASN1_DN"
	case IDKeyID:
		return "ID_KEY_ID"
	}
	return fmt.Sprintf("ID_TYPE_%d", uint8(t))
}
