package datapath

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// TestPrivilegedTunnelSetPeers: two real devices (TUN, UDP, routes, rules)
// in network namespaces of their own, joined by a veth. Device A starts
// without peers, as the first node of a cluster does; B is added to it
// while it runs, from a goroutine outside A's namespace: the routes, the
// fwmark rule and UDP 500 must still land in A's namespace. Traffic
// passes, to B's subnet and, through the marked table, to B's own
// address. Then B is removed: its routes are gone, B drops its SAs on A's
// DELETE, and traffic to B's subnet is dropped, by A's SPD where a route
// still leads into the TUN device.
//
//	hostA lo 198.19.1.1/32  ul0 198.18.0.1/24 ══ ul0 198.18.0.2/24  lo 198.19.2.1/32 hostB
func TestPrivilegedTunnelSetPeers(t *testing.T) {
	netns.RequirePrivileged(t)
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "rsp-" + hex.EncodeToString(rnd[:])
	mkNS := func(name string) *netns.NS {
		ns, err := netns.New(prefix + "-" + name)
		if err != nil {
			t.Fatal(err)
		}
		// Runs after the devices' cleanup (registered later): the
		// namespace goes with its links once nothing holds it.
		t.Cleanup(func() {
			if err := ns.Delete(); err != nil {
				t.Errorf("delete namespace %s: %v", ns.Name, err)
			}
		})
		return ns
	}
	hostA, hostB := mkNS("a"), mkNS("b")
	ulA, ulB := netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	podA, podB := netip.MustParseAddr("198.19.1.1"), netip.MustParseAddr("198.19.2.1")
	if err := netns.Veth(netns.End{NS: hostA, Name: "ul0", Addrs: []netip.Prefix{ulA}},
		netns.End{NS: hostB, Name: "ul0", Addrs: []netip.Prefix{ulB}}, 0); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		ns   *netns.NS
		addr netip.Addr
	}{{hostA, podA}, {hostB, podB}} {
		if err := x.ns.AddLoopbackAddr(netip.PrefixFrom(x.addr, 32)); err != nil {
			t.Fatal(err)
		}
	}

	// A node agent's peer: the other node's pod subnet and its own
	// address, which takes the marked table.
	peerCfg := func(local, remote netip.Prefix, localPod, remotePod netip.Addr, name, remoteName string, initiate bool) Peer {
		return Peer{Name: remoteName, Endpoint: netip.AddrPortFrom(remote.Addr(), DefaultPort), Mode: esp.ModeTunnel,
			LocalSubnets:  []netip.Prefix{netip.PrefixFrom(localPod, 24).Masked(), netip.PrefixFrom(local.Addr(), 32)},
			RemoteSubnets: []netip.Prefix{netip.PrefixFrom(remotePod, 24).Masked(), netip.PrefixFrom(remote.Addr(), 32)},
			IKE: &IKEPeer{LocalID: ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(name)},
				RemoteID: ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(remoteName)},
				PSK:      []byte("the test's pre-shared key"), Initiate: initiate, StrictTS: true, DPDInterval: 30 * time.Second}}
	}
	start := func(ns *netns.NS, name string, local netip.Prefix, peers ...Peer) *Device {
		cfg := &Config{Name: name, DeviceName: "rpt0", LocalAddr: local.Addr(), Port: DefaultPort, UnderlayMTU: DefaultUnderlayMTU,
			IKE: IKEOptions{Retransmit: 500 * time.Millisecond, Tries: 5}, Peers: peers}
		var d *Device
		if err := ns.Do(func() (err error) {
			d, err = New(cfg, Options{})
			return err
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			d.Run(ctx)
			close(done)
		}()
		t.Cleanup(func() {
			cancel()
			d.Close()
			<-done
			if ok, err := ns.HasLink("rpt0"); err != nil || ok {
				t.Errorf("%s: TUN device left behind (%v)", ns.Name, err)
			}
			if out := nsRun(t, ns, "ip", "rule"); strings.Contains(out, "0x52504d") {
				t.Errorf("%s: rule left behind:\n%s", ns.Name, out)
			}
		})
		return d
	}
	b := start(hostB, "b", ulB, peerCfg(ulB, ulA, podB, podA, "b", "a", false))
	a := start(hostA, "a", ulA)

	// Add B to the running A.
	if err := a.SetPeers([]Peer{peerCfg(ulA, ulB, podA, podB, "a", "b", true)}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, "b", "A's CHILD_SA with B is installed", func(p PeerStatus) bool {
		return len(p.SAs) > 0 && len(p.IKE) == 1 && p.IKE[0].State == "established"
	})
	if out := nsRun(t, hostA, "ip", "route", "show", "dev", "rpt0"); !strings.Contains(out, "198.19.2.0/24") {
		t.Errorf("no route to B's subnet:\n%s", out)
	}
	if out := nsRun(t, hostA, "ip", "route", "show", "table", fmt.Sprint(transportTable)); !strings.Contains(out, "198.18.0.2 dev rpt0") {
		t.Errorf("no route to B's address in the marked table:\n%s", out)
	}
	// A opened UDP 500 with its first IKE peer: in its own namespace.
	if out := nsRun(t, hostA, "ss", "-Hulnp", "sport", "= :500"); !strings.Contains(out, ":500") {
		t.Errorf("A does not listen on UDP 500 in its namespace:\n%s", out)
	}
	nsRun(t, hostA, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-I", podA.String(), podB.String())
	nsRun(t, hostA, "ping", "-c", "2", "-i", "0.2", "-W", "2", ulB.Addr().String())
	pb, _ := peerStatusOf(a, "b")
	if pb.TxPackets < 4 || pb.RxPackets < 4 {
		t.Errorf("A counted tx %d rx %d with B, want at least 4 each", pb.TxPackets, pb.RxPackets)
	}

	// Remove B.
	if err := a.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	if out := nsRun(t, hostA, "ip", "route", "show", "dev", "rpt0"); strings.Contains(out, "198.19.2.0/24") {
		t.Errorf("the route to B's subnet stayed:\n%s", out)
	}
	if out := nsRun(t, hostA, "ip", "route", "show", "table", fmt.Sprint(transportTable)); strings.Contains(out, "198.18.0.2") {
		t.Errorf("the route to B's address stayed:\n%s", out)
	}
	if st := a.Status(); len(st.Peers) != 0 {
		t.Errorf("A still lists peers: %+v", st.Peers)
	}
	waitStatus(t, b, "a", "B drops its SAs on A's DELETE", func(p PeerStatus) bool { return len(p.SAs) == 0 && len(p.IKE) == 0 })
	if out, err := hostA.Command(t.Context(), "ping", "-c", "1", "-W", "1", "-I", podA.String(), podB.String()).CombinedOutput(); err == nil {
		t.Errorf("ping to B's subnet passed after B's removal:\n%s", out)
	}
	// A route into TUN that someone else left: the SPD drops, nothing is
	// sent in clear.
	nsRun(t, hostA, "ip", "route", "add", "198.19.2.0/24", "dev", "rpt0")
	before := a.Status().Drops["no-policy"]
	if out, err := hostA.Command(t.Context(), "ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", podA.String(), podB.String()).CombinedOutput(); err == nil {
		t.Errorf("ping to B's subnet passed through A's TUN device after B's removal:\n%s", out)
	}
	if after := a.Status().Drops["no-policy"]; after < before+2 {
		t.Errorf("A's SPD dropped %d packets to B's subnet, want 2", after-before)
	}
	// And B, which keeps A as a peer, has no SA to send with.
	noSA := func() uint64 { p, _ := peerStatusOf(b, "a"); return p.Drops["no-sa"] }
	was := noSA()
	if out, err := hostB.Command(t.Context(), "ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", podB.String(), podA.String()).CombinedOutput(); err == nil {
		t.Errorf("ping from B to A's subnet passed after A removed B:\n%s", out)
	}
	if now := noSA(); now < was+2 {
		t.Errorf("B dropped %d packets for want of an SA, want 2", now-was)
	}
}

func peerStatusOf(d *Device, name string) (PeerStatus, bool) {
	for _, p := range d.Status().Peers {
		if p.Name == name {
			return p, true
		}
	}
	return PeerStatus{}, false
}

func waitStatus(t *testing.T, d *Device, peer, what string, ok func(PeerStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, found := peerStatusOf(d, peer); found && ok(p) {
			return
		}
		if time.Now().After(deadline) {
			p, _ := peerStatusOf(d, peer)
			t.Fatalf("not within 10 s: %s: %+v", what, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nsRun runs a command in ns and returns its output; failing fails t. The
// process is waited for: none outlives the call.
func nsRun(t *testing.T, ns *netns.NS, name string, args ...string) string {
	t.Helper()
	// Not t.Context(): cleanups run this too, after it is canceled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
