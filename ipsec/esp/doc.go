// Package esp implements user-space IPsec ESP security associations
// carried in UDP: the cryptography, sequence numbers, anti-replay window,
// lifetimes and the SA database contract between IKE and a datapath.
//
// The package is pure. It opens no socket and no TUN device, and imports
// only the standard library and golang.org/x/crypto. A datapath moves the
// packets; IKE installs the SAs.
//
// # Standards
//
//   - RFC 4303 ESP: packet format (§2), padding (§2.4), dummy packets
//     (§2.6), sequence numbers and ESN (§2.2.1, §3.3.3, Appendix A),
//     anti-replay (§3.4.3), ICV verification before decryption (§3.4.4).
//   - RFC 4301 security architecture: SA lifetimes (§4.4.2.1), traffic
//     selectors (§4.4.1, §5.2).
//   - RFC 3948 UDP encapsulation of ESP: what this package produces and
//     consumes is the UDP payload SPI | Seq | IV | ciphertext | ICV; the
//     non-ESP marker and NAT-keepalives (§2.2, §2.3).
//   - RFC 4106 AES-GCM in ESP (AESGCM16), RFC 7634 ChaCha20-Poly1305 in ESP
//     (ChaCha20Poly1305), RFC 3602 AES-CBC with RFC 4868 HMAC-SHA-256-128
//     (AESCBCHMACSHA256).
//   - RFC 6479 (the ring-of-blocks replay bitmap), RFC 7296 §2.8 (rekeying
//     make-before-break, which Table.Replace implements).
//
// # Outbound pipeline
//
//  1. The datapath reads an IP packet from TUN, leaving headroom for the
//     outer IP and UDP headers and SA.HeaderLen().
//  2. SPD lookup: Table.Route (or the datapath's own policy) finds the
//     pair; Entry.Out is the SA.
//  3. SA.Seal takes the next sequence number with one atomic
//     compare-and-swap (never cycling, RFC 4303 §3.3.3), counts the packet
//     against the lifetimes, pads, and encrypts. Seal runs on every core at
//     once; sequence numbers are unique, though packets may leave out of
//     order, which the receiver's window absorbs.
//  4. The datapath adds UDP and IP headers and sends to Entry.Remote.
//
// # Inbound pipeline
//
//  1. The datapath receives a UDP datagram on port 4500; ClassifyUDP sorts
//     ESP from IKE and keepalives, PeekSPI gives the SPI.
//  2. SAD lookup: Table.Inbound (or InboundEntry for the selectors).
//  3. SA.Open, in parallel on all cores: early replay check (read only),
//     ICV verification (AEAD, or hmac.Equal before decrypting), decryption,
//     padding check, inner packet (tunnel) or rebuilt IP header
//     (transport). It returns the full 64-bit sequence number, with ESN's
//     high-order bits inferred from the window.
//  4. SA.Accept, sequentially per SA and only after Open succeeded (or
//     returned ErrDummy): the authoritative anti-replay check, which
//     records the number, and lifetime accounting.
//  5. The datapath checks the inner addresses against the selectors
//     (InnerAddrs, Entry.AllowsInbound) and writes the packet to TUN.
//
// The ordering invariant: the window changes only in Accept, only for
// packets whose ICV verified, and Accept's verdict is final. Open's view of
// the window may be stale; it can only turn away packets Accept would turn
// away too.
//
// # Keys
//
// NewSA copies keys; SA.Zero wipes the copies and makes the SA unusable
// (ErrSADeleted). Zero waits for running Seal and Open calls. Go's crypto
// packages keep expanded key schedules in unexported state that cannot be
// wiped; Zero drops the last reference to them. Config and SA print
// without keys. Nothing here logs.
//
// # Allocations
//
// Seal, Open and Accept do not allocate per packet when the destination
// buffer has room (a few pooled scratch buffers are reused), for every
// algorithm.
package esp
