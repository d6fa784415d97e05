package strongswan

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
)

// TestPrivilegedTwoCharons checks the harness itself: two charons, PSK,
// tunnel mode between the pod subnets of the two-site topology, and a ping
// through kernel-libipsec.
func TestPrivilegedTwoCharons(t *testing.T) {
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	dir := t.TempDir()
	a, b := sites.A, sites.B
	ts := func(s netns.Site) []netip.Prefix { return []netip.Prefix{s.Subnet4()} }
	cb, err := Start(Options{Dir: filepath.Join(dir, "b"), NS: b.Host, Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(),
		PSK: "harness-test-secret", LocalTS: ts(b), RemoteTS: ts(a)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cb.Stop() })
	ca, err := Start(Options{Dir: filepath.Join(dir, "a"), NS: a.Host, Local: a.UnderlayAddr4.Addr(), Remote: b.UnderlayAddr4.Addr(),
		PSK: "harness-test-secret", LocalTS: ts(a), RemoteTS: ts(b), Initiate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Stop() })
	if err := ca.WaitEstablished(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := a.Pod.Command(t.Context(), "ping", "-c", "2", "-W", "2", b.PodAddr4.Addr().String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ping through strongSwan: %v\n%s\n%s", err, out, ca.ListSAs())
	}
	if err := ca.Stop(); err != nil {
		t.Error(err)
	}
	if err := ca.Stop(); err != nil { // twice: as a test and its cleanup do
		t.Error(err)
	}
}
