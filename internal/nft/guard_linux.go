package nft

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The guard keeps pod traffic between nodes from ever crossing the
// underlay in clear (enforce mode). It is its own nftables table, apart
// from the policy's, installed before the agent first starts (`rampart
// agent install`, the CNI install step) and left in place when the agent
// stops, so it does not depend on the agent's process: while the agent is
// down, its TUN device and routes are gone, and without the guard pod
// traffic to other nodes would follow the default route in clear.
//
//	table inet rampart_guard
//	  forward: ip saddr LOCAL  ip daddr CLUSTER  ip daddr != LOCAL  oifname != TUN  drop
//	           ip daddr LOCAL  ip saddr CLUSTER  ip saddr != LOCAL  iifname != TUN  drop
//	  output:  ip daddr CLUSTER  ip daddr != LOCAL  oifname != TUN  drop
//	  input:   ip saddr CLUSTER  ip saddr != LOCAL  iifname != TUN  drop
//
// LOCAL is this node's pod CIDR, CLUSTER the block of every node's pod
// CIDR, TUN the datapath's device. Traffic that must go through TUN and
// finds no SA there is dropped by the datapath, also never sent in clear.

// GuardTable is the guard's table.
const GuardTable = "rampart_guard"

// Guard is what the guard's rules need.
type Guard struct {
	Local, Cluster netip.Prefix
	Device         string
}

// InstallGuard replaces the guard table of the calling thread's network
// namespace in one transaction.
func InstallGuard(g Guard) error {
	if !g.Local.Addr().Is4() || !g.Cluster.Addr().Is4() || !g.Cluster.Contains(g.Local.Addr()) || g.Cluster.Bits() > g.Local.Bits() {
		return fmt.Errorf("guard: pod CIDR %s must lie inside the cluster's %s (IPv4)", g.Local, g.Cluster)
	}
	if len(g.Device) == 0 || len(g.Device) > 15 {
		return fmt.Errorf("guard: %q is not an interface name", g.Device)
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("guard: netlink: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: GuardTable}
	// Add, then delete, then add again: the delete of a table that is not
	// there would fail the batch; of one just added, it never does.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	accept := nftables.ChainPolicyAccept
	chain := func(name string, hook *nftables.ChainHook) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook,
			Priority: nftables.ChainPriorityRef(-10), Policy: &accept})
	}
	rule := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		all = append(all, ipv4()...)
		for _, e := range exprs {
			all = append(all, e...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: append(all, drop)})
	}
	fwd := chain("forward", nftables.ChainHookForward)
	rule(fwd, addrIn(srcOff, g.Local, true), addrIn(dstOff, g.Cluster, true), addrIn(dstOff, g.Local, false), ifname(expr.MetaKeyOIFNAME, g.Device, false))
	rule(fwd, addrIn(dstOff, g.Local, true), addrIn(srcOff, g.Cluster, true), addrIn(srcOff, g.Local, false), ifname(expr.MetaKeyIIFNAME, g.Device, false))
	out := chain("output", nftables.ChainHookOutput)
	rule(out, addrIn(dstOff, g.Cluster, true), addrIn(dstOff, g.Local, false), ifname(expr.MetaKeyOIFNAME, g.Device, false))
	in := chain("input", nftables.ChainHookInput)
	rule(in, addrIn(srcOff, g.Cluster, true), addrIn(srcOff, g.Local, false), ifname(expr.MetaKeyIIFNAME, g.Device, false))
	if err := c.Flush(); err != nil {
		return fmt.Errorf("guard: the kernel refused table inet %s: %w", GuardTable, err)
	}
	return nil
}

// RemoveGuard deletes the guard table (uninstall only: without it, pod
// traffic may leave in clear while the agent is down).
func RemoveGuard() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: GuardTable}
	c.AddTable(t)
	c.DelTable(t)
	return c.Flush()
}

// IPv4 header offsets of the source and destination addresses.
const (
	srcOff = 12
	dstOff = 16
)

func ipv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// addrIn matches (in) or refuses (!in) the IPv4 address at off inside p.
func addrIn(off uint32, p netip.Prefix, in bool) []expr.Any {
	mask := netip.PrefixFrom(netip.IPv4Unspecified(), 0).Addr().As4()
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	op := expr.CmpOpEq
	if !in {
		op = expr.CmpOpNeq
	}
	net := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask[:], Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: net[:]},
	}
}

// ifname matches (is) or refuses (!is) an input or output interface name.
func ifname(key expr.MetaKey, name string, is bool) []expr.Any {
	op := expr.CmpOpEq
	if !is {
		op = expr.CmpOpNeq
	}
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}
