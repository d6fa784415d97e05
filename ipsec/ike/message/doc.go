// Package message encodes and decodes IKEv2 messages: the header, every
// payload of RFC 7296 (EAP is kept as octets), the encrypted payload SK and
// IKE fragmentation (SKF).
//
// The package is a codec. It keeps no state besides the Reassembler, opens
// no socket, imports only the standard library and does no cryptography:
// an SKCipher supplied by the caller encrypts and authenticates, and this
// package computes the layout and every length around it. The exchange
// state machine builds messages with it and reads what Parse returns.
//
// # Standards
//
//   - RFC 7296 IKEv2: header (§3.1), generic payload header and the
//     critical bit (§2.5, §3.2), SA with proposals, transforms and
//     attributes (§3.3), KE (§3.4), IDi/IDr (§3.5), CERT (§3.6), CERTREQ
//     (§3.7), AUTH (§3.8), Nonce (§3.9), Notify (§3.10), Delete (§3.11),
//     Vendor ID (§3.12), TSi/TSr (§3.13), SK (§3.14), CP (§3.15).
//   - RFC 5282: AEAD algorithms (AES-GCM, AES-CCM) in SK, whose
//     associated data is the message up to the SK payload's header.
//   - RFC 7383: IKE fragmentation, the SKF payload and reassembly.
//   - RFC 7427 (SIGNATURE_HASH_ALGORITHMS), RFC 3948 §2.2 (the non-ESP
//     marker, which the caller strips before Parse on port 4500), and the
//     IANA "IKEv2 Parameters" registries for the names of all numbers.
//
// # The payload chain
//
// A message is the 28-octet header followed by a chain of payloads. The
// header's Next Payload field gives the type of the first payload; each
// payload starts with a 4-octet generic header whose Next Payload gives the
// type of the one after it, and whose length covers the header and body.
// The last payload has Next Payload 0 and ends exactly where the header's
// Length says the message ends:
//
//	header(next=SA) | SA(next=KE) | KE(next=Nonce) | Nonce(next=N) | N(next=0)
//
// SK and SKF must be the last payload; their Next Payload field names the
// first payload inside the encrypted data instead, where the chain goes on:
//
//	header(next=SK) | SK(next=IDi) | IV | E( IDi(next=AUTH) | AUTH(next=0) | padding ) | ICV
//
// In Go, a Message is the Header and a slice of Payload values in order;
// the Next Payload and length fields are derived when marshalling and
// checked when parsing.
//
// # Decoding
//
// Parse validates every length against the octets that are there, never
// allocates more than a constant times its input, rejects trailing octets,
// a chain that runs past the message and an unsupported major version, and
// reports errors as *ParseError (offset, payload, reason) wrapping one of
// the sentinel errors, which NotifyFor maps to the notification RFC 7296
// asks for. A chain cannot loop: every payload is at least four octets and
// the parser only moves forward. Counts in the wire format (transforms,
// selectors, SPIs) are checked against what is present, never used to size
// an allocation.
//
// An encrypted message parses to the unencrypted payloads and an *Encrypted
// payload; Message.Decrypt opens it in place. Fragments parse to an
// *EncryptedFragment; a Reassembler collects and opens them. Both keep the
// received octets that the cipher authenticates and decide with those, not
// with payload fields a caller may have changed since Parse.
//
// Reserved fields and the critical bit of known payloads are ignored on
// receipt, as RFC 7296 §2.5 and §3.2 require, and written as zero:
// Marshal(Parse(b)) reproduces b whenever the sender wrote them as zero,
// which every conforming sender does.
package message
