package message

import "strconv"

// The IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registries
// this package names. Each type prints its registry name for logs, and its
// number when the registry has no entry.

// name looks v up in names and falls back to what(number).
func name[T ~uint8 | ~uint16](names map[T]string, what string, v T) string {
	if s, ok := names[v]; ok {
		return s
	}
	return what + "(" + strconv.Itoa(int(v)) + ")"
}

// ExchangeType is the IKE header's Exchange Type (RFC 7296 §3.1).
type ExchangeType uint8

const (
	IKESAInit        ExchangeType = 34
	IKEAuth          ExchangeType = 35
	CreateChildSA    ExchangeType = 36
	Informational    ExchangeType = 37
	IKESessionResume ExchangeType = 38 // RFC 5723
	IKEIntermediate  ExchangeType = 43 // RFC 9242
	IKEFollowupKE    ExchangeType = 44 // RFC 9370
)

var exchangeNames = map[ExchangeType]string{
	IKESAInit:        "IKE_SA_INIT",
	IKEAuth:          "IKE_AUTH",
	CreateChildSA:    "CREATE_CHILD_SA",
	Informational:    "INFORMATIONAL",
	IKESessionResume: "IKE_SESSION_RESUME",
	IKEIntermediate:  "IKE_INTERMEDIATE",
	IKEFollowupKE:    "IKE_FOLLOWUP_KE",
}

func (t ExchangeType) String() string { return name(exchangeNames, "EXCHANGE", t) }

// PayloadType is a Next Payload value (RFC 7296 §3.2).
type PayloadType uint8

const (
	PayloadNone     PayloadType = 0  // No Next Payload
	PayloadSA       PayloadType = 33 // Security Association (§3.3)
	PayloadKE       PayloadType = 34 // Key Exchange (§3.4)
	PayloadIDi      PayloadType = 35 // Identification - Initiator (§3.5)
	PayloadIDr      PayloadType = 36 // Identification - Responder (§3.5)
	PayloadCERT     PayloadType = 37 // Certificate (§3.6)
	PayloadCERTREQ  PayloadType = 38 // Certificate Request (§3.7)
	PayloadAUTH     PayloadType = 39 // Authentication (§3.8)
	PayloadNonce    PayloadType = 40 // Nonce (§3.9), Ni and Nr
	PayloadNotify   PayloadType = 41 // Notify (§3.10)
	PayloadDelete   PayloadType = 42 // Delete (§3.11)
	PayloadVendorID PayloadType = 43 // Vendor ID (§3.12)
	PayloadTSi      PayloadType = 44 // Traffic Selector - Initiator (§3.13)
	PayloadTSr      PayloadType = 45 // Traffic Selector - Responder (§3.13)
	PayloadSK       PayloadType = 46 // Encrypted and Authenticated (§3.14)
	PayloadCP       PayloadType = 47 // Configuration (§3.15)
	PayloadEAP      PayloadType = 48 // Extensible Authentication (§3.16)
	PayloadSKF      PayloadType = 53 // Encrypted and Authenticated Fragment (RFC 7383)
)

var payloadNames = map[PayloadType]string{
	PayloadNone:     "NONE",
	PayloadSA:       "SA",
	PayloadKE:       "KE",
	PayloadIDi:      "IDi",
	PayloadIDr:      "IDr",
	PayloadCERT:     "CERT",
	PayloadCERTREQ:  "CERTREQ",
	PayloadAUTH:     "AUTH",
	PayloadNonce:    "Nonce",
	PayloadNotify:   "N",
	PayloadDelete:   "D",
	PayloadVendorID: "V",
	PayloadTSi:      "TSi",
	PayloadTSr:      "TSr",
	PayloadSK:       "SK",
	PayloadCP:       "CP",
	PayloadEAP:      "EAP",
	49:              "GSPM", // RFC 6467
	50:              "IDg",  // G-IKEv2
	51:              "GSA",
	52:              "KD",
	PayloadSKF:      "SKF",
	54:              "PS", // RFC 8019
}

// String returns the registry's notation (SA, KE, IDi, N, SK, ...).
func (t PayloadType) String() string { return name(payloadNames, "PAYLOAD", t) }

// known reports whether this package parses payloads of type t (RFC 7296
// §2.5: the critical bit matters only for payload types a receiver does not
// understand). EAP is understood in that sense: it is kept raw for an EAP
// implementation, and never rejected as unsupported.
func (t PayloadType) known() bool {
	return t >= PayloadSA && t <= PayloadEAP || t == PayloadSKF
}

// Flags are the IKE header flags (RFC 7296 §3.1).
type Flags uint8

const (
	// FlagInitiator is set in messages sent by the original initiator of
	// the IKE SA (I).
	FlagInitiator Flags = 0x08
	// FlagVersion says the sender can speak a higher major version (V).
	FlagVersion Flags = 0x10
	// FlagResponse marks a response (R).
	FlagResponse Flags = 0x20
)

// String returns the set flags as "I|V|R" (or "0").
func (f Flags) String() string {
	s := ""
	for _, x := range []struct {
		f Flags
		n string
	}{{FlagInitiator, "I"}, {FlagVersion, "V"}, {FlagResponse, "R"}} {
		if f&x.f != 0 {
			if s != "" {
				s += "|"
			}
			s += x.n
		}
	}
	if rest := f &^ (FlagInitiator | FlagVersion | FlagResponse); rest != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + strconv.FormatUint(uint64(rest), 16)
	}
	if s == "" {
		return "0"
	}
	return s
}

// ProtocolID is the Protocol ID of proposals, notifications and deletes
// (RFC 7296 §3.3.1, §3.10, §3.11).
type ProtocolID uint8

const (
	ProtocolNone ProtocolID = 0 // in Notify payloads without an SPI
	ProtocolIKE  ProtocolID = 1
	ProtocolAH   ProtocolID = 2
	ProtocolESP  ProtocolID = 3
)

var protocolNames = map[ProtocolID]string{
	ProtocolNone: "NONE",
	ProtocolIKE:  "IKE",
	ProtocolAH:   "AH",
	ProtocolESP:  "ESP",
	4:            "FC_ESP_HEADER", // RFC 4595
	5:            "FC_CT_AUTHENTICATION",
}

func (p ProtocolID) String() string { return name(protocolNames, "PROTOCOL", p) }

// TransformType is a transform's type (RFC 7296 §3.3.2, RFC 9370 §2.2).
type TransformType uint8

const (
	TransformENCR  TransformType = 1 // Encryption Algorithm
	TransformPRF   TransformType = 2 // Pseudorandom Function
	TransformINTEG TransformType = 3 // Integrity Algorithm
	// TransformDH is the Key Exchange Method, called Diffie-Hellman Group
	// until RFC 9370.
	TransformDH TransformType = 4
	// TransformESN is Extended Sequence Numbers (RFC 7296 §3.3.2).
	TransformESN TransformType = 5
	// TransformADDKE1 ... TransformADDKE7 are the Additional Key Exchanges
	// of RFC 9370 (types 6 to 12).
	TransformADDKE1 TransformType = 6
	TransformADDKE7 TransformType = 12
)

var transformTypeNames = map[TransformType]string{
	TransformENCR:  "ENCR",
	TransformPRF:   "PRF",
	TransformINTEG: "INTEG",
	TransformDH:    "KE",
	TransformESN:   "ESN",
	6:              "ADDKE1",
	7:              "ADDKE2",
	8:              "ADDKE3",
	9:              "ADDKE4",
	10:             "ADDKE5",
	11:             "ADDKE6",
	12:             "ADDKE7",
}

func (t TransformType) String() string { return name(transformTypeNames, "TRANSFORM", t) }

// EncrID is a Transform Type 1 (ENCR) Transform ID.
type EncrID uint16

const (
	EncrDES              EncrID = 2
	Encr3DES             EncrID = 3
	EncrNULL             EncrID = 11
	EncrAESCBC           EncrID = 12 // RFC 3602; needs a Key Length attribute
	EncrAESCTR           EncrID = 13 // RFC 5930
	EncrAESCCM8          EncrID = 14 // RFC 5282
	EncrAESCCM12         EncrID = 15
	EncrAESCCM16         EncrID = 16
	EncrAESGCM8          EncrID = 18 // RFC 5282; needs a Key Length attribute
	EncrAESGCM12         EncrID = 19
	EncrAESGCM16         EncrID = 20
	EncrNULLAuthAESGMAC  EncrID = 21 // RFC 4543
	EncrCamelliaCBC      EncrID = 23 // RFC 5529
	EncrChaCha20Poly1305 EncrID = 28 // RFC 7634; fixed 256-bit key, no Key Length
)

var encrNames = map[EncrID]string{
	1:                    "ENCR_DES_IV64",
	EncrDES:              "ENCR_DES",
	Encr3DES:             "ENCR_3DES",
	4:                    "ENCR_RC5",
	5:                    "ENCR_IDEA",
	6:                    "ENCR_CAST",
	7:                    "ENCR_BLOWFISH",
	8:                    "ENCR_3IDEA",
	9:                    "ENCR_DES_IV32",
	EncrNULL:             "ENCR_NULL",
	EncrAESCBC:           "ENCR_AES_CBC",
	EncrAESCTR:           "ENCR_AES_CTR",
	EncrAESCCM8:          "ENCR_AES_CCM_8",
	EncrAESCCM12:         "ENCR_AES_CCM_12",
	EncrAESCCM16:         "ENCR_AES_CCM_16",
	EncrAESGCM8:          "ENCR_AES_GCM_8",
	EncrAESGCM12:         "ENCR_AES_GCM_12",
	EncrAESGCM16:         "ENCR_AES_GCM_16",
	EncrNULLAuthAESGMAC:  "ENCR_NULL_AUTH_AES_GMAC",
	EncrCamelliaCBC:      "ENCR_CAMELLIA_CBC",
	24:                   "ENCR_CAMELLIA_CTR",
	25:                   "ENCR_CAMELLIA_CCM_8",
	26:                   "ENCR_CAMELLIA_CCM_12",
	27:                   "ENCR_CAMELLIA_CCM_16",
	EncrChaCha20Poly1305: "ENCR_CHACHA20_POLY1305",
}

func (e EncrID) String() string { return name(encrNames, "ENCR", e) }

// AEAD reports whether e is a combined-mode algorithm, which is negotiated
// without an INTEG transform (RFC 7296 §3.3.3, RFC 5282 §8).
func (e EncrID) AEAD() bool {
	switch e {
	case EncrAESCCM8, EncrAESCCM12, EncrAESCCM16, EncrAESGCM8, EncrAESGCM12, EncrAESGCM16,
		EncrNULLAuthAESGMAC, 25, 26, 27, EncrChaCha20Poly1305:
		return true
	}
	return false
}

// PRFID is a Transform Type 2 (PRF) Transform ID.
type PRFID uint16

const (
	PRFHMACMD5    PRFID = 1
	PRFHMACSHA1   PRFID = 2
	PRFAES128XCBC PRFID = 4 // RFC 4434
	PRFHMACSHA256 PRFID = 5 // RFC 4868
	PRFHMACSHA384 PRFID = 6
	PRFHMACSHA512 PRFID = 7
	PRFAES128CMAC PRFID = 8 // RFC 4615
)

var prfNames = map[PRFID]string{
	PRFHMACMD5:    "PRF_HMAC_MD5",
	PRFHMACSHA1:   "PRF_HMAC_SHA1",
	3:             "PRF_HMAC_TIGER",
	PRFAES128XCBC: "PRF_AES128_XCBC",
	PRFHMACSHA256: "PRF_HMAC_SHA2_256",
	PRFHMACSHA384: "PRF_HMAC_SHA2_384",
	PRFHMACSHA512: "PRF_HMAC_SHA2_512",
	PRFAES128CMAC: "PRF_AES128_CMAC",
}

func (p PRFID) String() string { return name(prfNames, "PRF", p) }

// IntegID is a Transform Type 3 (INTEG) Transform ID.
type IntegID uint16

const (
	IntegNone           IntegID = 0
	IntegHMACMD596      IntegID = 1
	IntegHMACSHA196     IntegID = 2
	IntegAESXCBC96      IntegID = 5
	IntegAESCMAC96      IntegID = 8
	IntegHMACSHA256_128 IntegID = 12 // RFC 4868
	IntegHMACSHA384_192 IntegID = 13
	IntegHMACSHA512_256 IntegID = 14
)

var integNames = map[IntegID]string{
	IntegNone:           "NONE",
	IntegHMACMD596:      "AUTH_HMAC_MD5_96",
	IntegHMACSHA196:     "AUTH_HMAC_SHA1_96",
	3:                   "AUTH_DES_MAC",
	4:                   "AUTH_KPDK_MD5",
	IntegAESXCBC96:      "AUTH_AES_XCBC_96",
	6:                   "AUTH_HMAC_MD5_128",
	7:                   "AUTH_HMAC_SHA1_160",
	IntegAESCMAC96:      "AUTH_AES_CMAC_96",
	9:                   "AUTH_AES_128_GMAC",
	10:                  "AUTH_AES_192_GMAC",
	11:                  "AUTH_AES_256_GMAC",
	IntegHMACSHA256_128: "AUTH_HMAC_SHA2_256_128",
	IntegHMACSHA384_192: "AUTH_HMAC_SHA2_384_192",
	IntegHMACSHA512_256: "AUTH_HMAC_SHA2_512_256",
}

func (i IntegID) String() string { return name(integNames, "INTEG", i) }

// DHGroup is a Transform Type 4 (Key Exchange Method) Transform ID, and the
// group of a KE payload. The MODP groups are named for completeness; which
// groups an implementation computes is the crypto package's business.
type DHGroup uint16

const (
	DHNone       DHGroup = 0
	DHMODP768    DHGroup = 1  // RFC 7296 Appendix B
	DHMODP1024   DHGroup = 2  // RFC 7296 Appendix B
	DHMODP1536   DHGroup = 5  // RFC 3526
	DHMODP2048   DHGroup = 14 // RFC 3526
	DHMODP3072   DHGroup = 15
	DHMODP4096   DHGroup = 16
	DHMODP6144   DHGroup = 17
	DHMODP8192   DHGroup = 18
	DHECP256     DHGroup = 19 // RFC 5903 (NIST P-256)
	DHECP384     DHGroup = 20
	DHECP521     DHGroup = 21
	DHCurve25519 DHGroup = 31 // RFC 8031
	DHCurve448   DHGroup = 32
)

var dhNames = map[DHGroup]string{
	DHNone:       "NONE",
	DHMODP768:    "768-bit MODP Group",
	DHMODP1024:   "1024-bit MODP Group",
	DHMODP1536:   "1536-bit MODP Group",
	DHMODP2048:   "2048-bit MODP Group",
	DHMODP3072:   "3072-bit MODP Group",
	DHMODP4096:   "4096-bit MODP Group",
	DHMODP6144:   "6144-bit MODP Group",
	DHMODP8192:   "8192-bit MODP Group",
	DHECP256:     "256-bit random ECP group",
	DHECP384:     "384-bit random ECP group",
	DHECP521:     "521-bit random ECP group",
	22:           "1024-bit MODP Group with 160-bit Prime Order Subgroup",
	23:           "2048-bit MODP Group with 224-bit Prime Order Subgroup",
	24:           "2048-bit MODP Group with 256-bit Prime Order Subgroup",
	25:           "192-bit Random ECP Group",
	26:           "224-bit Random ECP Group",
	27:           "brainpoolP224r1",
	28:           "brainpoolP256r1",
	29:           "brainpoolP384r1",
	30:           "brainpoolP512r1",
	DHCurve25519: "Curve25519",
	DHCurve448:   "Curve448",
}

func (g DHGroup) String() string { return name(dhNames, "GROUP", g) }

// ESNID is a Transform Type 5 (Sequence Numbers) Transform ID.
type ESNID uint16

const (
	ESNNone ESNID = 0 // 32-bit sequence numbers
	ESNOn   ESNID = 1 // 64-bit extended sequence numbers (RFC 4303 §2.2.1)
)

var esnNames = map[ESNID]string{
	ESNNone: "No Extended Sequence Numbers",
	ESNOn:   "Extended Sequence Numbers",
}

func (e ESNID) String() string { return name(esnNames, "ESN", e) }

// AttributeType is a transform attribute type (RFC 7296 §3.3.5).
type AttributeType uint16

// AttrKeyLength is the Key Length attribute, in bits, always in TV form
// (RFC 7296 §3.3.5).
const AttrKeyLength AttributeType = 14

func (a AttributeType) String() string {
	if a == AttrKeyLength {
		return "Key Length"
	}
	return "ATTRIBUTE(" + strconv.Itoa(int(a)) + ")"
}

// IDType is an Identification payload's ID Type (RFC 7296 §3.5).
type IDType uint8

const (
	IDIPv4Addr   IDType = 1
	IDFQDN       IDType = 2
	IDRFC822Addr IDType = 3
	IDIPv6Addr   IDType = 5
	IDDERASN1DN  IDType = 9
	IDDERASN1GN  IDType = 10
	IDKeyID      IDType = 11
	IDNull       IDType = 13 // RFC 7619
)

var idNames = map[IDType]string{
	IDIPv4Addr:   "ID_IPV4_ADDR",
	IDFQDN:       "ID_FQDN",
	IDRFC822Addr: "ID_RFC822_ADDR",
	IDIPv6Addr:   "ID_IPV6_ADDR",
	IDDERASN1DN:  "ID_DER_ASN1_DN",
	IDDERASN1GN:  "ID_DER_ASN1_GN",
	IDKeyID:      "ID_KEY_ID",
	12:           "ID_FC_NAME", // RFC 4595
	IDNull:       "ID_NULL",
}

func (t IDType) String() string { return name(idNames, "ID", t) }

// AuthMethod is an Authentication payload's Auth Method (RFC 7296 §3.8).
type AuthMethod uint8

const (
	AuthRSASignature     AuthMethod = 1
	AuthPSK              AuthMethod = 2 // Shared Key Message Integrity Code
	AuthDSSSignature     AuthMethod = 3
	AuthECDSASHA256P256  AuthMethod = 9 // RFC 4754
	AuthECDSASHA384P384  AuthMethod = 10
	AuthECDSASHA512P521  AuthMethod = 11
	AuthGSPM             AuthMethod = 12 // RFC 6467
	AuthNULL             AuthMethod = 13 // RFC 7619
	AuthDigitalSignature AuthMethod = 14 // RFC 7427
)

var authNames = map[AuthMethod]string{
	AuthRSASignature:     "RSA Digital Signature",
	AuthPSK:              "Shared Key Message Integrity Code",
	AuthDSSSignature:     "DSS Digital Signature",
	AuthECDSASHA256P256:  "ECDSA with SHA-256 on the P-256 curve",
	AuthECDSASHA384P384:  "ECDSA with SHA-384 on the P-384 curve",
	AuthECDSASHA512P521:  "ECDSA with SHA-512 on the P-521 curve",
	AuthGSPM:             "Generic Secure Password Authentication Method",
	AuthNULL:             "NULL Authentication",
	AuthDigitalSignature: "Digital Signature",
}

func (m AuthMethod) String() string { return name(authNames, "AUTH", m) }

// CertEncoding is a CERT or CERTREQ payload's Cert Encoding (RFC 7296
// §3.6).
type CertEncoding uint8

const (
	CertPKCS7X509         CertEncoding = 1
	CertPGP               CertEncoding = 2
	CertDNSSignedKey      CertEncoding = 3
	CertX509Signature     CertEncoding = 4
	CertKerberos          CertEncoding = 6
	CertCRL               CertEncoding = 7
	CertARL               CertEncoding = 8
	CertSPKI              CertEncoding = 9
	CertX509Attribute     CertEncoding = 10
	CertRawRSAKey         CertEncoding = 11
	CertHashURLX509       CertEncoding = 12
	CertHashURLX509Bundle CertEncoding = 13
	CertOCSP              CertEncoding = 14 // RFC 4806
	CertRawPublicKey      CertEncoding = 15 // RFC 7670
)

var certNames = map[CertEncoding]string{
	CertPKCS7X509:         "PKCS #7 wrapped X.509 certificate",
	CertPGP:               "PGP Certificate",
	CertDNSSignedKey:      "DNS Signed Key",
	CertX509Signature:     "X.509 Certificate - Signature",
	CertKerberos:          "Kerberos Token",
	CertCRL:               "Certificate Revocation List (CRL)",
	CertARL:               "Authority Revocation List (ARL)",
	CertSPKI:              "SPKI Certificate",
	CertX509Attribute:     "X.509 Certificate - Attribute",
	CertRawRSAKey:         "Raw RSA Key",
	CertHashURLX509:       "Hash and URL of X.509 certificate",
	CertHashURLX509Bundle: "Hash and URL of X.509 bundle",
	CertOCSP:              "OCSP Content",
	CertRawPublicKey:      "Raw Public Key",
}

func (e CertEncoding) String() string { return name(certNames, "CERT", e) }

// TSType is a traffic selector's TS Type (RFC 7296 §3.13.1).
type TSType uint8

const (
	TSIPv4AddrRange TSType = 7
	TSIPv6AddrRange TSType = 8
)

var tsNames = map[TSType]string{
	TSIPv4AddrRange: "TS_IPV4_ADDR_RANGE",
	TSIPv6AddrRange: "TS_IPV6_ADDR_RANGE",
	9:               "TS_FC_ADDR_RANGE", // RFC 4595
	10:              "TS_SECLABEL",      // RFC 9478
}

func (t TSType) String() string { return name(tsNames, "TS", t) }

// CfgType is a Configuration payload's CFG Type (RFC 7296 §3.15).
type CfgType uint8

const (
	CfgRequest CfgType = 1
	CfgReply   CfgType = 2
	CfgSet     CfgType = 3
	CfgAck     CfgType = 4
)

var cfgNames = map[CfgType]string{
	CfgRequest: "CFG_REQUEST",
	CfgReply:   "CFG_REPLY",
	CfgSet:     "CFG_SET",
	CfgAck:     "CFG_ACK",
}

func (t CfgType) String() string { return name(cfgNames, "CFG", t) }

// CfgAttrType is a configuration attribute type (RFC 7296 §3.15.1).
type CfgAttrType uint16

const (
	CfgInternalIP4Address  CfgAttrType = 1
	CfgInternalIP4Netmask  CfgAttrType = 2
	CfgInternalIP4DNS      CfgAttrType = 3
	CfgInternalIP4NBNS     CfgAttrType = 4
	CfgInternalIP4DHCP     CfgAttrType = 6
	CfgApplicationVersion  CfgAttrType = 7
	CfgInternalIP6Address  CfgAttrType = 8
	CfgInternalIP6DNS      CfgAttrType = 10
	CfgInternalIP6DHCP     CfgAttrType = 12
	CfgInternalIP4Subnet   CfgAttrType = 13
	CfgSupportedAttributes CfgAttrType = 14
	CfgInternalIP6Subnet   CfgAttrType = 15
	CfgInternalDNSDomain   CfgAttrType = 25 // RFC 8598
)

var cfgAttrNames = map[CfgAttrType]string{
	CfgInternalIP4Address:  "INTERNAL_IP4_ADDRESS",
	CfgInternalIP4Netmask:  "INTERNAL_IP4_NETMASK",
	CfgInternalIP4DNS:      "INTERNAL_IP4_DNS",
	CfgInternalIP4NBNS:     "INTERNAL_IP4_NBNS",
	CfgInternalIP4DHCP:     "INTERNAL_IP4_DHCP",
	CfgApplicationVersion:  "APPLICATION_VERSION",
	CfgInternalIP6Address:  "INTERNAL_IP6_ADDRESS",
	CfgInternalIP6DNS:      "INTERNAL_IP6_DNS",
	CfgInternalIP6DHCP:     "INTERNAL_IP6_DHCP",
	CfgInternalIP4Subnet:   "INTERNAL_IP4_SUBNET",
	CfgSupportedAttributes: "SUPPORTED_ATTRIBUTES",
	CfgInternalIP6Subnet:   "INTERNAL_IP6_SUBNET",
	16:                     "MIP6_HOME_PREFIX",
	17:                     "INTERNAL_IP6_LINK",
	18:                     "INTERNAL_IP6_PREFIX",
	19:                     "HOME_AGENT_ADDRESS",
	20:                     "P_CSCF_IP4_ADDRESS",
	21:                     "P_CSCF_IP6_ADDRESS",
	22:                     "FTT_KAT",
	23:                     "EXTERNAL_SOURCE_IP4_NAT_INFO",
	24:                     "TIMEOUT_PERIOD_FOR_LIVENESS_CHECK",
	CfgInternalDNSDomain:   "INTERNAL_DNS_DOMAIN",
	26:                     "INTERNAL_DNSSEC_TA",
}

func (t CfgAttrType) String() string { return name(cfgAttrNames, "CFG_ATTR", t) }

// HashAlgorithm is an entry of a SIGNATURE_HASH_ALGORITHMS notification
// (RFC 7427 §4, the "IKEv2 Hash Algorithms" registry).
type HashAlgorithm uint16

const (
	HashSHA1     HashAlgorithm = 1
	HashSHA256   HashAlgorithm = 2
	HashSHA384   HashAlgorithm = 3
	HashSHA512   HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // RFC 8420 (EdDSA)
)

var hashNames = map[HashAlgorithm]string{
	HashSHA1:     "SHA1",
	HashSHA256:   "SHA2-256",
	HashSHA384:   "SHA2-384",
	HashSHA512:   "SHA2-512",
	HashIdentity: "Identity",
}

func (h HashAlgorithm) String() string { return name(hashNames, "HASH", h) }

// NotifyType is a Notify Message Type (RFC 7296 §3.10.1). Types below
// 16384 report errors; the others carry status.
type NotifyType uint16

// Error types.
const (
	NotifyUnsupportedCriticalPayload NotifyType = 1
	NotifyInvalidIKESPI              NotifyType = 4
	NotifyInvalidMajorVersion        NotifyType = 5
	NotifyInvalidSyntax              NotifyType = 7
	NotifyInvalidMessageID           NotifyType = 9
	NotifyInvalidSPI                 NotifyType = 11
	NotifyNoProposalChosen           NotifyType = 14
	NotifyInvalidKEPayload           NotifyType = 17
	NotifyAuthenticationFailed       NotifyType = 24
	NotifySinglePairRequired         NotifyType = 34
	NotifyNoAdditionalSAs            NotifyType = 35
	NotifyInternalAddressFailure     NotifyType = 36
	NotifyFailedCPRequired           NotifyType = 37
	NotifyTSUnacceptable             NotifyType = 38
	NotifyInvalidSelectors           NotifyType = 39
	NotifyUnacceptableAddresses      NotifyType = 40 // RFC 4555
	NotifyUnexpectedNATDetected      NotifyType = 41 // RFC 4555
	NotifyUseAssignedHoA             NotifyType = 42 // RFC 5026
	NotifyTemporaryFailure           NotifyType = 43
	NotifyChildSANotFound            NotifyType = 44
)

// Status types.
const (
	NotifyInitialContact                NotifyType = 16384
	NotifySetWindowSize                 NotifyType = 16385
	NotifyAdditionalTSPossible          NotifyType = 16386
	NotifyIPCompSupported               NotifyType = 16387
	NotifyNATDetectionSourceIP          NotifyType = 16388
	NotifyNATDetectionDestinationIP     NotifyType = 16389
	NotifyCookie                        NotifyType = 16390
	NotifyUseTransportMode              NotifyType = 16391
	NotifyHTTPCertLookupSupported       NotifyType = 16392
	NotifyRekeySA                       NotifyType = 16393
	NotifyESPTFCPaddingNotSupported     NotifyType = 16394
	NotifyNonFirstFragmentsAlso         NotifyType = 16395
	NotifyMOBIKESupported               NotifyType = 16396 // RFC 4555
	NotifyAdditionalIP4Address          NotifyType = 16397
	NotifyAdditionalIP6Address          NotifyType = 16398
	NotifyNoAdditionalAddresses         NotifyType = 16399
	NotifyUpdateSAAddresses             NotifyType = 16400
	NotifyCookie2                       NotifyType = 16401
	NotifyNoNATsAllowed                 NotifyType = 16402
	NotifyAuthLifetime                  NotifyType = 16403 // RFC 4478
	NotifyMultipleAuthSupported         NotifyType = 16404 // RFC 4739
	NotifyAnotherAuthFollows            NotifyType = 16405
	NotifyRedirectSupported             NotifyType = 16406 // RFC 5685
	NotifyRedirect                      NotifyType = 16407
	NotifyRedirectedFrom                NotifyType = 16408
	NotifyEAPOnlyAuthentication         NotifyType = 16417 // RFC 5998
	NotifyChildlessIKEv2Supported       NotifyType = 16418 // RFC 6023
	NotifyIKEv2MessageIDSyncSupported   NotifyType = 16420 // RFC 6311
	NotifyIKEv2FragmentationSupported   NotifyType = 16430 // RFC 7383
	NotifySignatureHashAlgorithms       NotifyType = 16431 // RFC 7427
	NotifyUsePPK                        NotifyType = 16435 // RFC 8784
	NotifyIntermediateExchangeSupported NotifyType = 16438 // RFC 9242
	NotifyAdditionalKeyExchange         NotifyType = 16441 // RFC 9370
	NotifyUseAggfrag                    NotifyType = 16442 // RFC 9347
)

var notifyNames = map[NotifyType]string{
	NotifyUnsupportedCriticalPayload: "UNSUPPORTED_CRITICAL_PAYLOAD",
	NotifyInvalidIKESPI:              "INVALID_IKE_SPI",
	NotifyInvalidMajorVersion:        "INVALID_MAJOR_VERSION",
	NotifyInvalidSyntax:              "INVALID_SYNTAX",
	NotifyInvalidMessageID:           "INVALID_MESSAGE_ID",
	NotifyInvalidSPI:                 "INVALID_SPI",
	NotifyNoProposalChosen:           "NO_PROPOSAL_CHOSEN",
	NotifyInvalidKEPayload:           "INVALID_KE_PAYLOAD",
	NotifyAuthenticationFailed:       "AUTHENTICATION_FAILED",
	NotifySinglePairRequired:         "SINGLE_PAIR_REQUIRED",
	NotifyNoAdditionalSAs:            "NO_ADDITIONAL_SAS",
	NotifyInternalAddressFailure:     "INTERNAL_ADDRESS_FAILURE",
	NotifyFailedCPRequired:           "FAILED_CP_REQUIRED",
	NotifyTSUnacceptable:             "TS_UNACCEPTABLE",
	NotifyInvalidSelectors:           "INVALID_SELECTORS",
	NotifyUnacceptableAddresses:      "UNACCEPTABLE_ADDRESSES",
	NotifyUnexpectedNATDetected:      "UNEXPECTED_NAT_DETECTED",
	NotifyUseAssignedHoA:             "USE_ASSIGNED_HoA",
	NotifyTemporaryFailure:           "TEMPORARY_FAILURE",
	NotifyChildSANotFound:            "CHILD_SA_NOT_FOUND",

	NotifyInitialContact:                "INITIAL_CONTACT",
	NotifySetWindowSize:                 "SET_WINDOW_SIZE",
	NotifyAdditionalTSPossible:          "ADDITIONAL_TS_POSSIBLE",
	NotifyIPCompSupported:               "IPCOMP_SUPPORTED",
	NotifyNATDetectionSourceIP:          "NAT_DETECTION_SOURCE_IP",
	NotifyNATDetectionDestinationIP:     "NAT_DETECTION_DESTINATION_IP",
	NotifyCookie:                        "COOKIE",
	NotifyUseTransportMode:              "USE_TRANSPORT_MODE",
	NotifyHTTPCertLookupSupported:       "HTTP_CERT_LOOKUP_SUPPORTED",
	NotifyRekeySA:                       "REKEY_SA",
	NotifyESPTFCPaddingNotSupported:     "ESP_TFC_PADDING_NOT_SUPPORTED",
	NotifyNonFirstFragmentsAlso:         "NON_FIRST_FRAGMENTS_ALSO",
	NotifyMOBIKESupported:               "MOBIKE_SUPPORTED",
	NotifyAdditionalIP4Address:          "ADDITIONAL_IP4_ADDRESS",
	NotifyAdditionalIP6Address:          "ADDITIONAL_IP6_ADDRESS",
	NotifyNoAdditionalAddresses:         "NO_ADDITIONAL_ADDRESSES",
	NotifyUpdateSAAddresses:             "UPDATE_SA_ADDRESSES",
	NotifyCookie2:                       "COOKIE2",
	NotifyNoNATsAllowed:                 "NO_NATS_ALLOWED",
	NotifyAuthLifetime:                  "AUTH_LIFETIME",
	NotifyMultipleAuthSupported:         "MULTIPLE_AUTH_SUPPORTED",
	NotifyAnotherAuthFollows:            "ANOTHER_AUTH_FOLLOWS",
	NotifyRedirectSupported:             "REDIRECT_SUPPORTED",
	NotifyRedirect:                      "REDIRECT",
	NotifyRedirectedFrom:                "REDIRECTED_FROM",
	NotifyEAPOnlyAuthentication:         "EAP_ONLY_AUTHENTICATION",
	NotifyChildlessIKEv2Supported:       "CHILDLESS_IKEV2_SUPPORTED",
	NotifyIKEv2MessageIDSyncSupported:   "IKEV2_MESSAGE_ID_SYNC_SUPPORTED",
	NotifyIKEv2FragmentationSupported:   "IKEV2_FRAGMENTATION_SUPPORTED",
	NotifySignatureHashAlgorithms:       "SIGNATURE_HASH_ALGORITHMS",
	NotifyUsePPK:                        "USE_PPK",
	NotifyIntermediateExchangeSupported: "INTERMEDIATE_EXCHANGE_SUPPORTED",
	NotifyAdditionalKeyExchange:         "ADDITIONAL_KEY_EXCHANGE",
	NotifyUseAggfrag:                    "USE_AGGFRAG",
}

func (t NotifyType) String() string { return name(notifyNames, "NOTIFY", t) }

// IsError reports whether t is an error type (RFC 7296 §3.10.1: 0-16383).
func (t NotifyType) IsError() bool { return t < 16384 }
