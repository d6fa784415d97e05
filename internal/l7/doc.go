// Package l7 is the node's HTTP authorization proxy, without sidecars: a
// transparent proxy in the node agent that authorizes each HTTP request
// to the pod ports that need it (decide.go, proxy.go), and the kernel
// steering that brings those connections to it (steering_linux.go).
//
// # The path of a request
//
//  1. A caller, a local pod (anti-spoofed by table inet rampart) or a pod
//     of another node (out of an IKE-authenticated tunnel), opens a TCP
//     connection to pod:port. If pod . port is in set l7_targets, the
//     prerouting chain of table inet rampart_l7 assigns the SYN to the
//     proxy's transparent listener (TPROXY) and marks it; the mark's
//     routing table delivers it locally. The destination address is left
//     as it was, so the accepted socket's local address is the original
//     destination (Steering).
//  2. The proxy serves HTTP on the connection: HTTP/1.1 (keep-alive,
//     chunked and streaming bodies, Expect: 100-continue, WebSocket) and
//     h2c, with prior knowledge or by "Upgrade: h2c". Any other upgrade
//     is ignored (the request goes on without it): after a 101 the
//     connection is a tunnel, and one to another HTTP would carry
//     requests nobody decided. Until
//     a request has been parsed the proxy writes nothing: bytes that are
//     not HTTP, or silence until the header timeout, get the connection
//     closed without an answer and without a byte forwarded.
//  3. Each request becomes a Request (source, original destination,
//     method, normalized path, host, header, protocol) for the Decider.
//     Denied: 403 with x-rampart-denied: <reason>, and nothing reaches the
//     destination. A path with dot segments, CONNECT and a stray PRI are
//     refused (400, 405) before the Decider is asked.
//  4. Allowed: forwarded unchanged (method, target, query, header; only
//     the hop-by-hop headers of RFC 9110 section 7.6.1 are handled, no
//     X-Forwarded-For is added) to the original destination, never to a
//     host the request names, over a connection bound to the caller's
//     address with IP_TRANSPARENT: the destination sees the caller. The
//     response streams back as it comes (FlushInterval -1), its header as
//     the destination sent it. The destination's replies, addressed to
//     the caller, reach the proxy's socket through the same mark and
//     route (rule "socket transparent"). A destination that cannot be
//     reached gives 502 with x-rampart-upstream-error.
//
// # Upstream connections and protocols
//
// Upstream connections are pooled per caller address (one http.Transport
// each) and destination, so one connection never carries two callers'
// requests. A caller that spoke HTTP/2 with prior knowledge knew the
// destination speaks h2c, so its requests go on in h2c (prior knowledge,
// multiplexed); everything else, including a connection upgraded from
// HTTP/1.1 with "Upgrade: h2c" (whose client was ready for HTTP/1.1
// answers), goes on in HTTP/1.1. gRPC over h2c therefore works with prior
// knowledge, which is how gRPC clients speak h2c.
//
// # Fail closed
//
// No Decider, or a Decider that panics, denies. The steering has no owner
// and outlives the agent: while it is in place and no proxy listens, a
// steered connection is reset by the table's last rule (nftables' tproxy
// lets a packet through when it finds no listener), never forwarded
// unauthorized. A proxy that restarts loses the connections it held;
// their next packets reach the new listener and are reset by TCP.
//
// # Left out, on purpose
//
//   - IPv6, like the rest of the pod network.
//   - TLS: an L7 port carries plaintext HTTP (inside the IPsec tunnel
//     between nodes). A TLS client hello is not HTTP and is refused.
//   - The node's L3/L4 policy (table inet rampart) judges forwarded
//     packets; steered connections are delivered to the proxy instead of
//     being forwarded, and its upstream connections leave through output.
//     The L4 verdict for an L7 port must be part of the Decider, or the
//     policy table must judge the proxy's upstream connections in output.
//   - Established connections to a port that becomes a target are cut
//     (their packets go to the listener, which resets them): a new policy
//     applies to connections made before it.
package l7
