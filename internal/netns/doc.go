// Package netns owns the network-namespace test hosts that Rampart's
// privileged tests, benchmarks and lab are made of: named namespaces that
// `ip netns exec` can enter, veth pairs between them, addresses, routes and
// forwarding, and the two-site topology of the tunnel tests (topo_linux.go).
//
// Every function that enters a namespace does it through (*NS).Do, which
// follows containernetworking/plugins' pkg/ns discipline: the closure runs
// on a goroutine of its own with its OS thread locked, and if switching the
// thread back to its original namespace fails the thread stays locked, so
// the Go runtime discards it when the goroutine ends instead of reusing a
// thread that sits in the wrong namespace. Link, address and route changes
// go through netlink sockets opened inside the namespace (a socket keeps the
// namespace it was created in), never through ip(8).
//
// Tests that use this package are named TestPrivileged… and call
// RequirePrivileged first: they skip when not root, and fail instead when
// RAMPART_REQUIRE_PRIVILEGED=1 (as in CI), so a missing capability cannot
// turn a suite green by skipping it.
//
// Addresses: only 198.18.0.0/15, the TEST-NET ranges and IPv6 ULA fd00::/8,
// and only inside namespaces made here.
package netns
