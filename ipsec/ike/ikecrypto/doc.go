// Package ikecrypto is the cryptography of IKEv2: algorithm suites and
// proposals, Diffie-Hellman, the key derivation of IKE and CHILD SAs, the
// protection of SK payloads, AUTH payloads (pre-shared keys and RFC 7427
// signatures), certificate checks and the handling of secret files.
//
// The package is pure: it sends nothing, keeps no state between calls but
// the keys it is given, and imports only the standard library and
// golang.org/x/crypto (for ChaCha20-Poly1305), nothing of Rampart's. It
// implements no primitive: AES, GCM, HMAC, SHA-2, the curves, RSA, ECDSA
// and Ed25519 are Go's. What is implemented here are IKE's own
// constructions on top of them: prf+, SKEYSEED and the key schedules, the
// SK payload layout, the AUTH octets.
//
// # Standards
//
//   - RFC 7296 IKEv2: prf and prf+ (§2.13), SKEYSEED and the IKE SA keys
//     (§2.14), AUTH and the signed octets (§2.15), CHILD_SA keys (§2.17),
//     IKE SA rekeying (§2.18), transforms (§3.3), the SK payload (§3.14).
//   - RFC 4868: HMAC-SHA-256/384/512 as PRF and, truncated to half, as
//     integrity algorithm.
//   - RFC 3602 AES-CBC; RFC 5282 AES-GCM in IKEv2 (with RFC 4106 for the
//     CHILD_SA keys); RFC 7634 ChaCha20-Poly1305 in IKEv2 and ESP.
//   - RFC 5903 ECP groups 19, 20, 21 (public value x || y, shared secret x);
//     RFC 8031 Curve25519 (group 31, with the all-zero check of §2.1). No
//     MODP group: Go has no constant-time modular exponentiation.
//   - RFC 7427 signature authentication (Auth Method 14) with the
//     AlgorithmIdentifiers of its Appendix A, RFC 8420 Ed25519, the
//     SIGNATURE_HASH_ALGORITHMS notification (§4).
//   - RFC 7383 §2.5: SKF fragments are protected like SK payloads, with the
//     fragment fields in the prefix.
//   - RFC 4945 §5.1.3: what an IKE peer checks in a certificate; RFC 8247
//     for which algorithms are offered by default.
//
// # Use in an IKE SA's life
//
//  1. IKE_SA_INIT: the initiator offers DefaultIKEProposals (or its
//     configured ParseIKEProposals) and a GenerateKey public value; the
//     responder picks with SelectIKE. Both compute SharedSecret and
//     DeriveIKEKeys with the nonces and SPIs.
//  2. From IKE_AUTH on, every message is protected with Keys.SKCiphers:
//     Seal with ours, Open with the peer's.
//  3. IKE_AUTH: each side builds its signed octets
//     (Keys.InitiatorSignedOctets / ResponderSignedOctets) and proves
//     itself with PSKAuth or SignatureAuth; the other side verifies with
//     VerifyPSKAuth, or with VerifyPeerCertificate, MatchIdentity and
//     VerifySignatureAuth. The first CHILD_SA's keys come from
//     Keys.ChildKeys with the IKE_SA_INIT nonces and no Diffie-Hellman.
//  4. CREATE_CHILD_SA: Keys.ChildKeys with the exchange's nonces (and
//     g^ir for PFS) for a new or rekeyed CHILD_SA; Keys.Rekey for a new
//     IKE SA.
//  5. When an SA is gone: Keys.Zero, ChildKeys.Zero, SK.Zero.
//
// # Keys
//
// Derived keys live in Keys and ChildKeys, each in its own array; Zero
// wipes them. Nothing in this package prints or logs a key: Keys,
// ChildKeys, SK and PrivateKey have String and GoString methods that name
// the algorithms only, and no error carries key material.
package ikecrypto
