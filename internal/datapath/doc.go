// Package datapath is Rampart's user-space IPsec endpoint: a TUN device on
// one side, ESP in UDP (RFC 3948) on the other, and the security policy and
// association databases in between. It works on kernels without ESP.
//
// Outbound (send.go), per batch of up to conn.IdealBatchSize packets:
//
//  1. TUN read: one system call returns a batch (the kernel's TSO
//     super-packets are split by golang.zx2c4.com/wireguard/tun).
//  2. SPD lookup (sequential): the destination picks the peer, the source
//     must be in the peer's local subnets; then the peer's current
//     outbound SA. Packets above the peer's inner MTU get ICMP
//     "fragmentation needed" / "packet too big" written back to TUN.
//  3. Seal (parallel, every core): each Seal takes its sequence number
//     atomically; a batch's packets stay in their slots, so the order on
//     the wire is the order read from TUN.
//  4. UDP send (sequential, its own goroutine, so the next batch is read
//     and sealed meanwhile): runs of packets to one peer go out in one
//     sendmmsg with UDP GSO.
//
// Inbound (receive.go), per batch and per socket:
//
//  1. UDP receive: recvmmsg with UDP GRO, split into datagrams.
//  2. Classify (RFC 3948): IKE (non-ESP marker) to the IKE handler, NAT
//     keepalives dropped, ESP by SPI to its SA; unknown SPIs are dropped.
//  3. Open (parallel, every core): verify the ICV, then decrypt, in place.
//  4. Replay check (sequential, in arrival order, only for packets whose
//     ICV verified: RFC 4303 §3.4.3), then the SA's selectors: the inner
//     source must be in the peer's subnets, the destination in ours.
//  5. TUN write (its own goroutine, so the next batch is received and
//     opened meanwhile): one batch, TCP segments coalesced by GRO.
//
// Every drop is counted by reason (stats.go) and nothing that fails a check
// is forwarded. Key material lives in ipsec/esp and is zeroed there.
//
// Peers change while the device runs (peers.go): SetPeers reconciles it
// with a new list by name. The whole list is validated first (an invalid
// one changes nothing); unchanged peers, credentials included, keep their
// SAs, IKE SA and counters; removed ones get an IKE DELETE, lose their SAs
// and routes, and their traffic is dropped by the SPD; changed ones are
// removed and added again. The hot path sees the new SPD and peer map in
// one atomic store. The TUN MTU stays what New made it: a peer added later
// that needs more room gets a smaller inner MTU of its own, enforced with
// ICMP. SetCertificates renews an IKE peer's certificate under its running
// IKE SA.
package datapath
