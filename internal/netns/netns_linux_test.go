package netns

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
)

// uniqueName is a namespace name no other run uses.
func uniqueName(t testing.TB, role string) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("rt-%x-%s", b, role)
}

// openFDs counts this process's open sockets and namespace files: a leaked
// netlink socket or namespace handle would keep a deleted namespace, and
// every link in it, alive.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the fd ReadDir itself used
		}
		if strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "net:") {
			n++
		}
	}
	return n
}

// assertGone checks that none of names is a namespace any more: no file
// under RunDir, and not in `ip netns list`.
func assertGone(t testing.TB, names ...string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(RunDir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("namespace %s: %s still exists (stat: %v)", name, filepath.Join(RunDir, name), err)
		}
		if listed[name] {
			t.Errorf("namespace %s still in `ip netns list`", name)
		}
	}
}

func TestPrivilegedNS(t *testing.T) {
	RequirePrivileged(t)
	fds := openFDs(t)
	name := uniqueName(t, "ns")
	n, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Delete() })

	if _, err := New(name); !errors.Is(err, fs.ErrExist) {
		t.Errorf("New of a taken name: got %v, want an error wrapping fs.ErrExist", err)
	}

	// Do runs in the namespace and comes back.
	root, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	var inside vnetns.NsHandle
	if err := n.Do(func() error {
		var err error
		inside, err = vnetns.Get()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside.Equal(root) {
		t.Error("Do: closure ran in the caller's namespace")
	}
	inside.Close()
	root.Close()
	sentinel := errors.New("from the closure")
	if err := n.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do: got %v, want the closure's error", err)
	}

	// lo is up, ip netns exec finds the namespace, and addresses on lo work.
	if err := n.AddLoopbackAddr(netip.MustParsePrefix("198.18.255.1/32")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := n.Command(ctx, "ping", "-c", "1", "-W", "2", "198.18.255.1").CombinedOutput(); err != nil {
		t.Errorf("ping an address on lo: %v\n%s", err, out)
	}

	// Forwarding is per namespace: on inside, untouched outside.
	before, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.EnableForwarding(); err != nil {
		t.Fatal(err)
	}
	out, err := n.Command(ctx, "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding").Output()
	if err != nil || string(out) != "1\n1\n" {
		t.Errorf("forwarding inside: %q, %v; want 1 and 1", out, err)
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(after) != string(before) {
		t.Errorf("forwarding outside changed from %q to %q", before, after)
	}

	if err := n.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := n.Delete(); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := n.Do(func() error { return nil }); err == nil {
		t.Error("Do after Delete: no error")
	}
	assertGone(t, name)
	if got := openFDs(t); got != fds {
		t.Errorf("open sockets and namespace files: %d before, %d after", fds, got)
	}
}

func TestPrivilegedVethRoutes(t *testing.T) {
	RequirePrivileged(t)
	a, err := New(uniqueName(t, "va"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Delete() })
	b, err := New(uniqueName(t, "vb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Delete() })

	p := netip.MustParsePrefix
	if err := Veth(
		End{NS: a, Name: "x0", Addrs: []netip.Prefix{p("198.18.10.1/30"), p("fd00:10::1/64")}},
		End{NS: b, Name: "y0", Addrs: []netip.Prefix{p("198.18.10.2/30"), p("fd00:10::2/64")}},
		1400); err != nil {
		t.Fatal(err)
	}
	if err := b.AddLoopbackAddr(p("198.18.20.1/32")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Route{
		{Dst: p("198.18.20.1/32"), Via: netip.MustParseAddr("198.18.10.2")},
		{Dst: p("198.18.21.0/24"), Dev: "x0"},
	} {
		if err := a.AddRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.AddRoute(Route{Dst: p("198.18.22.0/24"), Via: netip.MustParseAddr("fd00:10::2")}); err == nil {
		t.Error("AddRoute with a gateway of the other family: no error")
	}
	if err := a.SetMTU("x0", 1300); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := a.Command(ctx, "ip", "-o", "link", "show", "x0").Output()
	if err != nil || !strings.Contains(string(out), "mtu 1300") || !strings.Contains(string(out), "UP") {
		t.Errorf("x0: %q, %v; want up with mtu 1300", out, err)
	}
	out, err = b.Command(ctx, "ip", "-o", "link", "show", "y0").Output()
	if err != nil || !strings.Contains(string(out), "mtu 1400") {
		t.Errorf("y0: %q, %v; want the veth's mtu 1400", out, err)
	}
	out, err = a.Command(ctx, "ip", "route", "show").Output()
	if err != nil || !strings.Contains(string(out), "198.18.20.1 via 198.18.10.2 dev x0") ||
		!strings.Contains(string(out), "198.18.21.0/24 dev x0") {
		t.Errorf("routes: %q, %v", out, err)
	}
	for _, dst := range []string{"198.18.20.1", "fd00:10::2"} {
		if out, err := a.Command(ctx, "ping", "-c", "1", "-W", "2", dst).CombinedOutput(); err != nil {
			t.Errorf("ping %s: %v\n%s", dst, err, out)
		}
	}

	if ok, err := b.HasLink("y0"); err != nil || !ok {
		t.Fatalf("HasLink(y0) = %v, %v; want true", ok, err)
	}
	if err := a.DeleteLink("x0"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.HasLink("y0"); err != nil || ok {
		t.Errorf("HasLink(y0) after deleting its peer = %v, %v; want false", ok, err)
	}
}

func TestPrivilegedTwoSites(t *testing.T) {
	RequirePrivileged(t)
	fds := openFDs(t)
	s, err := TwoSites(TwoSitesOptions{PlainRoutes: true, Prefix: "rtt"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range s.Namespaces() {
		names = append(names, n.Name)
	}
	t.Cleanup(func() { s.Close() })
	if len(names) != 4 {
		t.Fatalf("namespaces %v, want 4", names)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, dst := range []netip.Prefix{s.B.PodAddr4, s.B.PodAddr6, s.B.UnderlayAddr4} {
		if out, err := s.A.Pod.Command(ctx, "ping", "-c", "1", "-W", "2", dst.Addr().String()).CombinedOutput(); err != nil {
			t.Errorf("ping podA -> %s: %v\n%s", dst.Addr(), err, out)
		}
	}
	out, err := s.A.Host.Command(ctx, "ip", "-o", "link", "show", s.A.UnderlayLink).Output()
	if err != nil || !strings.Contains(string(out), "mtu 1500") {
		t.Errorf("underlay: %q, %v; want mtu 1500", out, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	assertGone(t, names...)
	if got := openFDs(t); got != fds {
		t.Errorf("open sockets and namespace files: %d before, %d after", fds, got)
	}
}

func TestPrivilegedTwoSitesNoRoutes(t *testing.T) {
	s := TwoSitesT(t, TwoSitesOptions{UnderlayMTU: 1400})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The hosts reach each other, the pods reach their hosts, but nothing
	// routes podA to podB: that is the tunnel's job.
	for _, c := range []struct {
		from *NS
		dst  netip.Prefix
		ok   bool
	}{
		{s.A.Host, s.B.UnderlayAddr4, true},
		{s.A.Host, s.B.UnderlayAddr6, true},
		{s.A.Pod, s.A.HostPodAddr4, true},
		{s.B.Pod, s.B.HostPodAddr6, true},
		{s.A.Pod, s.B.PodAddr4, false},
		{s.A.Pod, s.B.PodAddr6, false},
	} {
		out, err := c.from.Command(ctx, "ping", "-c", "1", "-W", "1", c.dst.Addr().String()).CombinedOutput()
		if (err == nil) != c.ok {
			t.Errorf("ping %s -> %s: err %v, want reachable=%v\n%s", c.from.Name, c.dst.Addr(), err, c.ok, out)
		}
	}
	out, err := s.B.Host.Command(ctx, "ip", "-o", "link", "show", s.B.UnderlayLink).Output()
	if err != nil || !strings.Contains(string(out), "mtu 1400") {
		t.Errorf("underlay: %q, %v; want mtu 1400", out, err)
	}
}

// TestPrivilegedTwoSitesPartialFailure fails the build at every step in
// turn, and once for real (an MTU the kernel refuses), and checks that
// nothing is left behind.
func TestPrivilegedTwoSitesPartialFailure(t *testing.T) {
	RequirePrivileged(t)
	fds := openFDs(t)

	// Learn the steps from a build that records them.
	var steps []string
	testHookStep = func(_ *Sites, step string) error { steps = append(steps, step); return nil }
	s, err := TwoSites(TwoSitesOptions{})
	testHookStep = nil
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(steps) < 8 {
		t.Fatalf("steps %v: the hook saw too few", steps)
	}

	injected := errors.New("injected")
	for _, fail := range append(steps, "mtu") {
		t.Run(fail, func(t *testing.T) {
			var name string // the topology's PREFIX-XXXXXX
			var existed []string
			opts := TwoSitesOptions{PlainRoutes: true}
			if fail == "mtu" {
				opts.UnderlayMTU = 1 << 20 // beyond any veth's max_mtu
			}
			testHookStep = func(s *Sites, step string) error {
				name = s.Name
				if step != fail {
					return nil
				}
				existed = ours(t, name)
				return injected
			}
			defer func() { testHookStep = nil }()
			s, err := TwoSites(opts)
			if err == nil {
				s.Close()
				t.Fatal("TwoSites: no error")
			}
			if fail != "mtu" && !errors.Is(err, injected) {
				t.Errorf("TwoSites: got %v, want the injected error", err)
			}
			if left := ours(t, name); len(left) > 0 {
				t.Errorf("left behind after failing at %q: %v", fail, left)
			}
			assertGone(t, existed...)
		})
	}
	if got := openFDs(t); got != fds {
		t.Errorf("open sockets and namespace files: %d before, %d after", fds, got)
	}
}

// ours lists the namespaces of topology name.
func ours(t testing.TB, name string) []string {
	t.Helper()
	ents, err := os.ReadDir(RunDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name+"-") {
			names = append(names, e.Name())
		}
	}
	return names
}

// fakeTB records what RequirePrivileged does instead of doing it.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skip(...any)           { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

func TestRequirePrivileged(t *testing.T) {
	defer func(g func() int) { geteuid = g }(geteuid)
	for _, c := range []struct {
		euid              int
		env               string
		wantSkip, wantErr bool
	}{
		{euid: 0},
		{euid: 0, env: "1"},
		{euid: 1000, wantSkip: true},
		{euid: 1000, env: "0", wantSkip: true},
		{euid: 1000, env: "1", wantErr: true},
	} {
		t.Run(fmt.Sprintf("euid=%d,env=%q", c.euid, c.env), func(t *testing.T) {
			t.Setenv(RequirePrivilegedEnv, c.env)
			geteuid = func() int { return c.euid }
			f := &fakeTB{TB: t}
			RequirePrivileged(f)
			if f.skipped != c.wantSkip || f.failed != c.wantErr {
				t.Errorf("skipped=%v failed=%v, want skipped=%v failed=%v", f.skipped, f.failed, c.wantSkip, c.wantErr)
			}
		})
	}
}
