package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/rampartnet/rampart/internal/netns"
)

// TestPrivilegedResponder holds the responder and the prober to the
// kernel: two namespaces on a veth, each with a prerouting rule that drops
// (and counts) what conntrack finds invalid. TCP and UDP to any port reach
// the responder through its redirect; an SCTP INIT gets its INIT-ACK
// through both conntracks, which check the CRC32c and the verification
// tags; and an INIT with a wrong checksum is counted invalid, so the
// checksum is checked indeed.
func TestPrivilegedResponder(t *testing.T) {
	netns.RequirePrivileged(t)
	prefix := fmt.Sprintf("rlr%d", os.Getpid()%100000)
	a, err := netns.New(prefix + "-a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Delete() })
	b, err := netns.New(prefix + "-b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Delete() })
	addrA, addrB := netip.MustParseAddr("198.18.200.1"), netip.MustParseAddr("198.18.200.2")
	if err := netns.Veth(netns.End{NS: a, Name: "a0", Addrs: []netip.Prefix{netip.PrefixFrom(addrA, 24)}},
		netns.End{NS: b, Name: "b0", Addrs: []netip.Prefix{netip.PrefixFrom(addrB, 24)}}, 0); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{a.Name, b.Name} {
		if err := nsDo(ns, installStrict); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	ready := filepath.Join(t.TempDir(), "ready")
	go func() {
		served <- nsDo(b.Name, func() error {
			return Serve(ctx, ServeOptions{Refs: []string{"ns/b"}, Address: addrB, Redirect: true, Ready: ready})
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the responder is not ready")
		}
	}
	src := &PodState{Ref: "ns/a", Netns: a.Name, Address: addrA}
	ports := newPortAllocator()
	for _, tc := range []struct {
		proto string
		port  uint16
	}{{"TCP", 80}, {"TCP", 31337}, {"UDP", 53}, {"UDP", 9999}, {"SCTP", 81}, {"SCTP", 5000}} {
		ok, err := probeOnce(ctx, src, netip.AddrPortFrom(addrB, tc.port), tc.proto, time.Second, ports)
		if !ok || err != nil {
			t.Errorf("%d/%s: reached %v, %v", tc.port, tc.proto, ok, err)
		}
	}
	// Nothing answers for an address that is not there.
	if ok, err := probeOnce(ctx, src, netip.AddrPortFrom(netip.MustParseAddr("198.18.200.3"), 81), "SCTP", 300*time.Millisecond, ports); ok || err != nil {
		t.Errorf("SCTP to nobody: reached %v, %v", ok, err)
	}
	for _, ns := range []string{a.Name, b.Name} {
		if n := invalidCount(t, ns); n != 0 {
			t.Errorf("%s: conntrack found %d packets invalid", ns, n)
		}
	}
	// An INIT with a broken checksum: conntrack in b calls it invalid.
	err = nsDo(a.Name, func() error {
		c, err := net.DialIP("ip4:132", &net.IPAddr{IP: addrA.AsSlice()}, &net.IPAddr{IP: addrB.AsSlice()})
		if err != nil {
			return err
		}
		defer c.Close()
		pkt := appendInit(nil, 40000, 81, initChunk{InitiateTag: 99, Window: labWindow, OutStreams: 1, InStreams: 1})
		binary.LittleEndian.PutUint32(pkt[sctpChecksumOff:], binary.LittleEndian.Uint32(pkt[sctpChecksumOff:])^1)
		_, err = c.Write(pkt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); invalidCount(t, b.Name) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the INIT with a broken checksum was not found invalid (%d)", invalidCount(t, b.Name))
		}
	}
}

var strictTable = &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "strict"}

// installStrict: table ip strict { chain pre { type filter hook
// prerouting priority 0; ct state invalid counter drop } }.
func installStrict() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.AddTable(strictTable)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "pre", Table: strictTable, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: strictTable, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitINVALID), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	return c.Flush()
}

func invalidCount(t *testing.T, ns string) uint64 {
	t.Helper()
	var n uint64
	err := nsDo(ns, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		rules, err := c.GetRules(strictTable, &nftables.Chain{Name: "pre", Table: strictTable})
		if err != nil {
			return err
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					n += ctr.Packets
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
