package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrAuthFailed means an AUTH payload did not verify: the peer answers
// AUTHENTICATION_FAILED (RFC 7296 §2.21.2).
var ErrAuthFailed = errors.New("ikecrypto: authentication failed")

// ErrSignatureKeyMismatch means the AUTH payload names a signature
// algorithm for a kind of key other than the certificate's (RSA versus
// ECDSA versus Ed25519). It wraps ErrAuthFailed.
var ErrSignatureKeyMismatch = fmt.Errorf("%w: signature algorithm does not match the public key", ErrAuthFailed)

// SignedOctets builds the octets an AUTH payload covers (RFC 7296 §2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//	MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//	MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
//
// message is the signer's IKE_SA_INIT message exactly as sent (from the
// IKE header on, without the UDP encapsulation's non-ESP marker), peerNonce
// the other side's nonce data, skp the signer's SK_pi or SK_pr, and
// restOfIDPayload the signer's ID payload from the ID Type octet to its
// end, as sent or received (Identity.PayloadBody builds it).
func SignedOctets(p PRFID, message, peerNonce, skp, restOfIDPayload []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(message)+len(peerNonce)+p.Size())
	out = append(append(out, message...), peerNonce...)
	return p.sum(out, skp, restOfIDPayload), nil
}

// InitiatorSignedOctets is SignedOctets for the initiator's AUTH: msg1 is
// the IKE_SA_INIT request, nr the responder's nonce, restOfIDi the IDi
// payload from ID Type on. Both sides compute it, one to sign and one to
// verify.
func (k *Keys) InitiatorSignedOctets(msg1, nr, restOfIDi []byte) ([]byte, error) {
	return SignedOctets(k.Suite.PRF, msg1, nr, k.SKpi, restOfIDi)
}

// ResponderSignedOctets is SignedOctets for the responder's AUTH: msg2 is
// the IKE_SA_INIT response, ni the initiator's nonce, restOfIDr the IDr
// payload from ID Type on.
func (k *Keys) ResponderSignedOctets(msg2, ni, restOfIDr []byte) ([]byte, error) {
	return SignedOctets(k.Suite.PRF, msg2, ni, k.SKpr, restOfIDr)
}

// PSKAuth computes the Authentication Data of a "Shared Key Message
// Integrity Code" AUTH payload (Auth Method 2, RFC 7296 §2.15):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
func PSKAuth(p PRFID, psk, signedOctets []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if len(psk) == 0 {
		return nil, errors.New("ikecrypto: psk auth: empty pre-shared key")
	}
	inner := p.sum(nil, psk, []byte(keyPad))
	defer clear(inner)
	return p.sum(nil, inner, signedOctets), nil
}

// VerifyPSKAuth checks a received PSK AUTH value in constant time. It
// returns ErrAuthFailed on a mismatch.
func VerifyPSKAuth(p PRFID, psk, signedOctets, auth []byte) error {
	want, err := PSKAuth(p, psk, signedOctets)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, auth) {
		return ErrAuthFailed
	}
	return nil
}

// SignatureScheme is a signature algorithm of the RFC 7427 "Digital
// Signature" authentication method, named in the AUTH data by an ASN.1
// AlgorithmIdentifier.
type SignatureScheme uint8

// Signature schemes. The AlgorithmIdentifier of each is the DER of RFC 7427
// Appendix A (A.1 for PKCS #1 v1.5, A.3 for ECDSA, A.4.3 for RSASSA-PSS
// with SHA-256) or RFC 8420 §2 for Ed25519. For RSASSA-PSS with SHA-384
// and SHA-512 it is A.4.3's encoding with the other hash and a salt as
// long as the hash, which is what strongSwan and libreswan send.
const (
	SigRSAPKCS1SHA256 SignatureScheme = iota + 1
	SigRSAPKCS1SHA384
	SigRSAPKCS1SHA512
	SigRSAPSSSHA256
	SigRSAPSSSHA384
	SigRSAPSSSHA512
	SigECDSASHA256
	SigECDSASHA384
	SigECDSASHA512
	SigEd25519
)

type schemeInfo struct {
	name  string
	algID []byte
	hash  HashAlgorithm
	h     crypto.Hash // 0 for Ed25519
	key   string      // "rsa", "ecdsa", "ed25519"
	pss   bool
}

var schemes = map[SignatureScheme]schemeInfo{
	// RFC 7427 A.1.2-A.1.4: sha{256,384,512}WithRSAEncryption, NULL
	// parameters.
	SigRSAPKCS1SHA256: {"rsa-pkcs1-sha256", unhexConst("300d06092a864886f70d01010b0500"), HashSHA256, crypto.SHA256, "rsa", false},
	SigRSAPKCS1SHA384: {"rsa-pkcs1-sha384", unhexConst("300d06092a864886f70d01010c0500"), HashSHA384, crypto.SHA384, "rsa", false},
	SigRSAPKCS1SHA512: {"rsa-pkcs1-sha512", unhexConst("300d06092a864886f70d01010d0500"), HashSHA512, crypto.SHA512, "rsa", false},
	// RFC 7427 A.4.3: id-RSASSA-PSS with hashAlgorithm sha256 (NULL
	// parameters), maskGenAlgorithm mgf1SHA256, saltLength 32; the
	// trailer field is the default and omitted.
	SigRSAPSSSHA256: {"rsa-pss-sha256", unhexConst("304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120"), HashSHA256, crypto.SHA256, "rsa", true},
	SigRSAPSSSHA384: {"rsa-pss-sha384", unhexConst("304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130"), HashSHA384, crypto.SHA384, "rsa", true},
	SigRSAPSSSHA512: {"rsa-pss-sha512", unhexConst("304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140"), HashSHA512, crypto.SHA512, "rsa", true},
	// RFC 7427 A.3.2-A.3.4: ecdsa-with-SHA{256,384,512}, no parameters.
	SigECDSASHA256: {"ecdsa-sha256", unhexConst("300a06082a8648ce3d040302"), HashSHA256, crypto.SHA256, "ecdsa", false},
	SigECDSASHA384: {"ecdsa-sha384", unhexConst("300a06082a8648ce3d040303"), HashSHA384, crypto.SHA384, "ecdsa", false},
	SigECDSASHA512: {"ecdsa-sha512", unhexConst("300a06082a8648ce3d040304"), HashSHA512, crypto.SHA512, "ecdsa", false},
	// RFC 8420 §2 (RFC 8410 §3): id-Ed25519, parameters absent; the
	// "hash" is Identity (RFC 8420 §3).
	SigEd25519: {"ed25519", unhexConst("300506032b6570"), HashIdentity, 0, "ed25519", false},
}

// schemeOrder lists the schemes for lookups that must be deterministic.
var schemeOrder = []SignatureScheme{
	SigRSAPKCS1SHA256, SigRSAPKCS1SHA384, SigRSAPKCS1SHA512,
	SigRSAPSSSHA256, SigRSAPSSSHA384, SigRSAPSSSHA512,
	SigECDSASHA256, SigECDSASHA384, SigECDSASHA512, SigEd25519,
}

// String names the scheme, for example "ecdsa-sha256".
func (s SignatureScheme) String() string {
	if i, ok := schemes[s]; ok {
		return i.name
	}
	return fmt.Sprintf("SignatureScheme(%d)", uint8(s))
}

// AlgorithmIdentifier returns the DER AlgorithmIdentifier the scheme puts
// in the AUTH data (a copy), or nil for an unknown scheme.
func (s SignatureScheme) AlgorithmIdentifier() []byte {
	return bytes.Clone(schemes[s].algID)
}

// Hash is the scheme's hash algorithm as the SIGNATURE_HASH_ALGORITHMS
// notification names it: the peer must have announced it (RFC 7427 §4).
func (s SignatureScheme) Hash() HashAlgorithm { return schemes[s].hash }

// keyKind names the kind of public key pub is: "rsa", "ecdsa", "ed25519",
// or "" for anything else.
func keyKind(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecdsa"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return ""
}

// SignatureAuth computes the Authentication Data of a "Digital Signature"
// AUTH payload (Auth Method 14, RFC 7427 §3): the length of the
// AlgorithmIdentifier in one octet, the AlgorithmIdentifier, and the
// signature of signedOctets (SignedOctets) made with signer. ECDSA
// signatures are the DER Ecdsa-Sig-Value, Ed25519 signs the octets
// themselves (RFC 8420 §3). rand is crypto/rand's Reader in production.
func SignatureAuth(s SignatureScheme, signer crypto.Signer, rand io.Reader, signedOctets []byte) ([]byte, error) {
	info, ok := schemes[s]
	if !ok {
		return nil, fmt.Errorf("ikecrypto: signature auth: unknown scheme %d", uint8(s))
	}
	if k := keyKind(signer.Public()); k != info.key {
		return nil, fmt.Errorf("ikecrypto: signature auth: %s needs an %s key, the signer has %s", s, info.key, describeKey(signer.Public()))
	}
	var digest []byte
	var opts crypto.SignerOpts = info.h
	if info.h == 0 {
		digest = signedOctets // Ed25519: pure EdDSA, no prehash
	} else {
		h := info.h.New()
		h.Write(signedOctets)
		digest = h.Sum(nil)
		if info.pss {
			opts = &rsa.PSSOptions{SaltLength: info.h.Size(), Hash: info.h}
		}
	}
	sig, err := signer.Sign(rand, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: signature auth: %s: %w", s, err)
	}
	out := make([]byte, 0, 1+len(info.algID)+len(sig))
	out = append(out, byte(len(info.algID)))
	out = append(out, info.algID...)
	return append(out, sig...), nil
}

func describeKey(pub crypto.PublicKey) string {
	if k := keyKind(pub); k != "" {
		return "an " + k + " key"
	}
	return fmt.Sprintf("a %T", pub)
}

// VerifySignatureAuth checks the Authentication Data of a "Digital
// Signature" AUTH payload (RFC 7427 §3) against the peer's public key (its
// certificate's PublicKey) and the signed octets. It reads the
// AlgorithmIdentifier (the blobs of RFC 7427 Appendix A byte for byte, and
// any other DER encoding of the same algorithms, including RSASSA-PSS with
// other salt lengths), refuses one for another kind of key
// (ErrSignatureKeyMismatch), and returns the scheme it verified. Failures
// wrap ErrAuthFailed. The caller checks that scheme.Hash() is one it
// announced in SIGNATURE_HASH_ALGORITHMS.
func VerifySignatureAuth(pub crypto.PublicKey, authData, signedOctets []byte) (SignatureScheme, error) {
	if len(authData) < 1 || len(authData) < 1+int(authData[0]) {
		return 0, fmt.Errorf("%w: auth data too short for its AlgorithmIdentifier", ErrAuthFailed)
	}
	algID, sig := authData[1:1+int(authData[0])], authData[1+int(authData[0]):]
	s, salt, err := parseAlgorithmIdentifier(algID)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrAuthFailed, err)
	}
	info := schemes[s]
	if k := keyKind(pub); k != info.key {
		return 0, fmt.Errorf("%w: AUTH uses %s, the certificate has %s", ErrSignatureKeyMismatch, s, describeKey(pub))
	}
	var digest []byte
	if info.h != 0 {
		h := info.h.New()
		h.Write(signedOctets)
		digest = h.Sum(nil)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if info.pss {
			err = rsa.VerifyPSS(k, info.h, digest, sig, &rsa.PSSOptions{SaltLength: salt, Hash: info.h})
		} else {
			err = rsa.VerifyPKCS1v15(k, info.h, digest, sig)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			err = errors.New("bad signature")
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, signedOctets, sig) {
			err = errors.New("bad signature")
		}
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s signature: %v", ErrAuthFailed, s, err)
	}
	return s, nil
}

// OIDs of RFC 7427 Appendix A, RFC 4055 and RFC 8410.
var (
	oidRSAPKCS1SHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidRSAPKCS1SHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidRSAPKCS1SHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSAPSS         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256         = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384         = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512         = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSASHA256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384    = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512    = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519        = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// pssParams is RSASSA-PSS-params (RFC 4055 §3.1).
type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0,optional"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1,optional"`
	SaltLength   int                      `asn1:"explicit,tag:2,optional,default:20"`
	TrailerField int                      `asn1:"explicit,tag:3,optional,default:1"`
}

// parseAlgorithmIdentifier maps a DER AlgorithmIdentifier to a scheme and,
// for RSASSA-PSS, its salt length. RFC 7427 §3 lets an implementation
// compare the blobs of Appendix A as binary; those are tried first, then
// the DER is parsed, so that a peer's equivalent encoding (parameters
// absent rather than NULL, another PSS salt) is accepted too.
func parseAlgorithmIdentifier(der []byte) (SignatureScheme, int, error) {
	for _, s := range schemeOrder {
		if info := schemes[s]; bytes.Equal(der, info.algID) {
			salt := 0
			if info.pss {
				salt = info.h.Size() // the blobs' salt is the hash length
			}
			return s, salt, nil
		}
	}
	var ai pkix.AlgorithmIdentifier
	if rest, err := asn1.Unmarshal(der, &ai); err != nil || len(rest) != 0 {
		return 0, 0, errors.New("malformed AlgorithmIdentifier")
	}
	nullOrAbsent := len(ai.Parameters.FullBytes) == 0 || bytes.Equal(ai.Parameters.FullBytes, asn1.NullRawValue.FullBytes)
	absent := len(ai.Parameters.FullBytes) == 0
	switch {
	case ai.Algorithm.Equal(oidRSAPKCS1SHA256) && nullOrAbsent:
		return SigRSAPKCS1SHA256, 0, nil
	case ai.Algorithm.Equal(oidRSAPKCS1SHA384) && nullOrAbsent:
		return SigRSAPKCS1SHA384, 0, nil
	case ai.Algorithm.Equal(oidRSAPKCS1SHA512) && nullOrAbsent:
		return SigRSAPKCS1SHA512, 0, nil
	case ai.Algorithm.Equal(oidECDSASHA256) && absent:
		return SigECDSASHA256, 0, nil
	case ai.Algorithm.Equal(oidECDSASHA384) && absent:
		return SigECDSASHA384, 0, nil
	case ai.Algorithm.Equal(oidECDSASHA512) && absent:
		return SigECDSASHA512, 0, nil
	case ai.Algorithm.Equal(oidEd25519) && absent:
		return SigEd25519, 0, nil
	case ai.Algorithm.Equal(oidRSAPSS):
		return parsePSS(ai.Parameters.FullBytes)
	}
	return 0, 0, fmt.Errorf("unsupported signature algorithm %v", ai.Algorithm)
}

// parsePSS reads RSASSA-PSS-params. Absent parameters (RFC 7427 A.4.1)
// mean SHA-1, which we refuse, as are a mask hash different from the
// message hash and a trailer field other than 1.
func parsePSS(der []byte) (SignatureScheme, int, error) {
	var p pssParams
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		return 0, 0, errors.New("malformed RSASSA-PSS parameters")
	}
	var s SignatureScheme
	var hashOID asn1.ObjectIdentifier = p.Hash.Algorithm
	switch {
	case hashOID.Equal(oidSHA256):
		s = SigRSAPSSSHA256
	case hashOID.Equal(oidSHA384):
		s = SigRSAPSSSHA384
	case hashOID.Equal(oidSHA512):
		s = SigRSAPSSSHA512
	default:
		return 0, 0, errors.New("RSASSA-PSS: hash must be SHA-256, SHA-384 or SHA-512 (SHA-1, the default, is refused)")
	}
	var mgfHash pkix.AlgorithmIdentifier
	if !p.MGF.Algorithm.Equal(oidMGF1) {
		return 0, 0, errors.New("RSASSA-PSS: mask generation must be MGF1")
	}
	if rest, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil || len(rest) != 0 || !mgfHash.Algorithm.Equal(hashOID) {
		return 0, 0, errors.New("RSASSA-PSS: MGF1 must use the message hash")
	}
	if p.TrailerField != 1 {
		return 0, 0, errors.New("RSASSA-PSS: trailer field must be 1")
	}
	if p.SaltLength < 0 {
		return 0, 0, errors.New("RSASSA-PSS: negative salt length")
	}
	return s, p.SaltLength, nil
}

// ChooseSignatureScheme picks the scheme to sign with for our key, given
// the hash algorithms the peer announced in SIGNATURE_HASH_ALGORITHMS (RFC
// 7427 §4: "a peer MUST pick one hash algorithm sent by the other peer").
// Ed25519 needs Identity; ECDSA prefers the hash that matches its curve
// (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512); RSA uses
// RSASSA-PSS, with SHA-256 if the peer has it (RFC 8247 §3.2 recommends
// PSS). ok is false when the peer announced nothing usable with our key:
// then RFC 7427 cannot be used with this peer.
func ChooseSignatureScheme(pub crypto.PublicKey, peer []HashAlgorithm) (s SignatureScheme, ok bool) {
	var prefs []SignatureScheme
	switch k := pub.(type) {
	case ed25519.PublicKey:
		prefs = []SignatureScheme{SigEd25519}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			prefs = []SignatureScheme{SigECDSASHA384, SigECDSASHA512, SigECDSASHA256}
		case elliptic.P521():
			prefs = []SignatureScheme{SigECDSASHA512, SigECDSASHA384, SigECDSASHA256}
		default:
			prefs = []SignatureScheme{SigECDSASHA256, SigECDSASHA384, SigECDSASHA512}
		}
	case *rsa.PublicKey:
		prefs = []SignatureScheme{SigRSAPSSSHA256, SigRSAPSSSHA384, SigRSAPSSSHA512}
	}
	for _, p := range prefs {
		if slices.Contains(peer, p.Hash()) {
			return p, true
		}
	}
	return 0, false
}

// DefaultHashAlgorithms is what we announce in SIGNATURE_HASH_ALGORITHMS:
// SHA-256, SHA-384, SHA-512 and Identity (for Ed25519, RFC 8420 §3).
func DefaultHashAlgorithms() []HashAlgorithm {
	return []HashAlgorithm{HashSHA256, HashSHA384, HashSHA512, HashIdentity}
}

// EncodeHashAlgorithms builds the Notification Data of
// SIGNATURE_HASH_ALGORITHMS: one 2-octet identifier per algorithm (RFC
// 7427 §4).
func EncodeHashAlgorithms(hs []HashAlgorithm) []byte {
	out := make([]byte, 0, 2*len(hs))
	for _, h := range hs {
		out = binary.BigEndian.AppendUint16(out, uint16(h))
	}
	return out
}

// ParseHashAlgorithms reads the Notification Data of
// SIGNATURE_HASH_ALGORITHMS. Unknown identifiers are kept (they never
// match); an odd length is an error.
func ParseHashAlgorithms(data []byte) ([]HashAlgorithm, error) {
	if len(data)%2 != 0 {
		return nil, fmt.Errorf("ikecrypto: SIGNATURE_HASH_ALGORITHMS: %d octets is not a list of 2-octet identifiers", len(data))
	}
	hs := make([]HashAlgorithm, 0, len(data)/2)
	for i := 0; i < len(data); i += 2 {
		hs = append(hs, HashAlgorithm(binary.BigEndian.Uint16(data[i:])))
	}
	return hs, nil
}

// unhexConst decodes a hex constant of this package.
func unhexConst(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("ikecrypto: bad hex constant: " + err.Error())
	}
	return b
}
