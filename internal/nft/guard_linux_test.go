package nft

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
)

// TestPrivilegedGuard: with the guard in a host whose pods' traffic to the
// other site would go over the underlay in clear (no TUN: the agent is
// down), none of it passes, either way, nor the host's own traffic to
// remote pods; the underlay itself still works. Without the guard the
// same pings pass (the test can fail).
func TestPrivilegedGuard(t *testing.T) {
	netns.RequirePrivileged(t)
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{Prefix: "rg", PlainRoutes: true})
	a, b := sites.A, sites.B
	ping := func(ns *netns.NS, to netip.Addr) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return ns.Command(ctx, "ping", "-c", "1", "-W", "1", to.String()).Run() == nil
	}
	podA, podB, hostB := a.PodAddr4.Addr(), b.PodAddr4.Addr(), b.UnderlayAddr4.Addr()
	probes := []struct {
		name string
		from *netns.NS
		to   netip.Addr
		// guarded: dropped with the guard in place
		guarded bool
	}{
		{"pod A to pod B", a.Pod, podB, true},
		{"pod B to pod A", b.Pod, podA, true},
		{"host A to pod B", a.Host, podB, true},
		{"host A to host B (underlay)", a.Host, hostB, false},
	}
	for _, p := range probes {
		if !ping(p.from, p.to) {
			t.Fatalf("%s: no answer even without the guard", p.name)
		}
	}
	g := Guard{Local: a.Subnet4(), Cluster: netip.MustParsePrefix("198.19.0.0/16"), Device: "rampart0"}
	if err := a.Host.Do(func() error { return InstallGuard(g) }); err != nil {
		t.Fatal(err)
	}
	// Installing again replaces it (idempotent).
	if err := a.Host.Do(func() error { return InstallGuard(g) }); err != nil {
		t.Fatal(err)
	}
	for _, p := range probes {
		if got := ping(p.from, p.to); got == p.guarded {
			t.Errorf("%s with the guard: answered %v", p.name, got)
		}
	}
	if err := a.Host.Do(RemoveGuard); err != nil {
		t.Fatal(err)
	}
	if !ping(a.Pod, podB) {
		t.Error("pod A to pod B: no answer after the guard was removed")
	}
	if err := a.Host.Do(func() error {
		return InstallGuard(Guard{Local: netip.MustParsePrefix("10.0.0.0/8"), Cluster: netip.MustParsePrefix("198.19.0.0/16"), Device: "rampart0"})
	}); err == nil {
		t.Error("a pod CIDR outside the cluster's was accepted")
	}
}
