package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
)

// HostVethPrefix starts the name of every pod's host-side veth, so the node
// agent and the nftables rules can match all of them ("rmp*").
const HostVethPrefix = "rmp"

// hostVethHashLen hex digits of the hash follow the prefix: 14 bytes in
// all, within IFNAMSIZ-1 (15). 44 bits make a collision between two pods of
// one node negligible (and harmless: the second ADD fails).
const hostVethHashLen = 11

// HostVethName is the name of the host-side veth of one attachment,
// derived from the container ID and the interface name only, so DEL and
// CHECK find it without any state, and the node agent can compute it.
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return HostVethPrefix + hex.EncodeToString(sum[:])[:hostVethHashLen]
}

// Gateway is every pod's next hop: a link-local address that no interface
// has. The node answers ARP for it on each host veth (proxy ARP), so pods
// need neither a subnet nor a gateway address of their own.
var Gateway = netip.MustParseAddr("169.254.1.1")
