// Package cni is Rampart's CNI plugin (spec 1.0: ADD, DEL, CHECK; VERSION
// is skel's) and its address management. cmd/rampart-cni only hands skel
// the methods of Plugin; tests call them directly.
//
// # Wiring: routed, one /32 per pod
//
// Each pod gets one veth pair and one IPv4 address of the node's pod CIDR
// (podCIDR in the network configuration):
//
//	pod netns                              node netns (where the plugin runs)
//	eth0  198.19.1.7/32  ──── veth ────   rmp<11 hex>   no address, proxy_arp=1
//	  169.254.1.1 dev eth0 scope link       198.19.1.7 dev rmp<11 hex> scope link
//	  default via 169.254.1.1 dev eth0      net.ipv4.ip_forward=1
//
// The pod has no subnet: its only neighbor is the gateway 169.254.1.1, a
// link-local address that no interface has. The host end answers ARP for it
// by proxy (proxy_arp=1, proxy_delay=0), with its own MAC address, so every
// packet the pod sends arrives at the node, which routes it. The node in
// turn reaches each pod through a route to its /32 out of that pod's veth.
// This is Calico's layout, for the same reasons:
//
//   - Addresses are not tied to links: no bridge, no per-node gateway
//     address in the pods, no broadcast domain shared by pods. Two pods of
//     one node talk through the node's routing, like pods of two nodes.
//   - Everything a pod sends or receives crosses exactly one host interface,
//     its own veth, and the pod's address is routed only through it. The
//     nftables policy (internal/nft) relies on that: a pod is identified by
//     its veth (iifname/oifname "rmp…") as much as by its address.
//   - Strict reverse-path filtering on the host end (rp_filter=1) drops
//     anything the pod sends from another address, and IPv6 is off on it,
//     so no traffic bypasses the IPv4 policy.
//
// The host end's name, HostVethName, is "rmp" and 11 hex digits of
// SHA-256(containerID + "/" + ifname): DEL and CHECK find it without state,
// and the node agent can compute it from the runtime's attachment.
//
// Proxy ARP answers only for an address the node would forward out of
// another interface (the kernel's arp_fwd_proxy), so the node must have a
// route to 169.254.1.1, normally its default route. ADD and CHECK refuse to
// proceed without one rather than leave a pod that cannot send.
//
// # ADD, DEL, CHECK
//
// ADD allocates the address, then makes the pair in one netlink request
// with the pod's end created directly in the pod's namespace under its final
// name (CNI_IFNAME), configures both ends (wiring.wire lists the steps) and
// prints a types100.Result: the host interface, the pod interface (with
// its sandbox), the /32 with the gateway, and the default route. If any
// step fails it deletes the veth it made (which removes the pod's end, its
// addresses and routes, and the node's /32 route) and releases the address
// it took, never anything that existed before it ran.
//
// DEL deletes the host veth, then releases the address; whatever is already
// gone is skipped, so DEL twice, DEL of an unknown container and DEL after
// the pod's namespace is gone all succeed.
//
// CHECK compares the kernel with what ADD makes (and the runtime's
// prevResult with the store) and reports every difference.
//
// # Address management
//
// Store keeps one directory per network under dataDir, one file per
// allocated address named by the address and holding the owner (container
// ID and ifname), created with O_EXCL under an flock(2), so plugin processes
// running at once never hand out an address twice, and a restarted node
// agent or a new plugin process sees every allocation. The network address,
// the first address (kept for the node) and the broadcast address are never
// handed out; allocation resumes after the last address handed out, so an
// address just freed is the last to be reused.
package cni
