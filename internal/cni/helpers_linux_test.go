package cni

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
)

// The plugin and the CNI project's cnitool (from the module's tool
// dependency: the binary `go tool cnitool` runs), built once per test
// binary into one directory, the CNI_PATH of the tests.
var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// binDir builds the binaries on first use, failing t if that fails.
func binDir(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if builtDir, buildErr = os.MkdirTemp("", "rampart-cni-bin-"); buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"rampart-cni", "github.com/rampartnet/rampart/cmd/rampart-cni"},
			{"cnitool", "github.com/containernetworking/cni/cnitool"},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(builtDir, b.out), b.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

// TestMain removes the binaries after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// testNode is a node in a network namespace of its own, with an uplink
// veth to a router namespace that is its default route (proxy ARP for the
// pods' gateway needs one), and pods made on demand:
//
//	gw  ul0 198.18.K.254/24  ══  ul0 198.18.K.1/24  node  ── rmp… ── pod
//	gw: route to the pod CIDR 198.19.K.0/24 via the node
type testNode struct {
	name     string // prefix of every namespace name: rcni-XXXXXX
	node, gw *netns.NS
	podCIDR  netip.Prefix
	nodeAddr netip.Addr // the node's address on the uplink
	gwAddr   netip.Addr

	mu   sync.Mutex
	made []*netns.NS
}

// newTestNode builds a node for subnet number k (198.18.k.0/24 uplink,
// 198.19.k.0/24 pods); every namespace is deleted when t ends.
func newTestNode(t *testing.T, k int) *testNode {
	t.Helper()
	netns.RequirePrivileged(t)
	var rnd [3]byte
	rand.Read(rnd[:])
	n := &testNode{
		name:     "rcni-" + hex.EncodeToString(rnd[:]),
		podCIDR:  netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", k)),
		nodeAddr: netip.MustParseAddr(fmt.Sprintf("198.18.%d.1", k)),
		gwAddr:   netip.MustParseAddr(fmt.Sprintf("198.18.%d.254", k)),
	}
	t.Cleanup(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for i := len(n.made) - 1; i >= 0; i-- {
			if err := n.made[i].Delete(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	n.node = n.newNS(t, "node")
	n.gw = n.newNS(t, "gw")
	err := netns.Veth(
		netns.End{NS: n.node, Name: "ul0", Addrs: []netip.Prefix{netip.PrefixFrom(n.nodeAddr, 24)}},
		netns.End{NS: n.gw, Name: "ul0", Addrs: []netip.Prefix{netip.PrefixFrom(n.gwAddr, 24)}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.node.AddRoute(netns.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: n.gwAddr}); err != nil {
		t.Fatal(err)
	}
	if err := n.gw.AddRoute(netns.Route{Dst: n.podCIDR, Via: n.nodeAddr}); err != nil {
		t.Fatal(err)
	}
	return n
}

// newNS makes namespace rcni-XXXXXX-role, deleted when t ends.
func (n *testNode) newNS(t *testing.T, role string) *netns.NS {
	t.Helper()
	x, err := netns.New(n.name + "-" + role)
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.made = append(n.made, x)
	n.mu.Unlock()
	return x
}

// conf is the network configuration of the node's pods.
func (n *testNode) conf(dataDir string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"rampart","type":"rampart-cni","podCIDR":%q,"dataDir":%q,"mtu":1400}`,
		n.podCIDR, dataDir)
}

// sh runs a command in x and returns its standard output.
func sh(t *testing.T, x *netns.NS, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := x.Command(ctx, name, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %s %s: %v\n%s%s", x.Name, name, strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// ping checks that from reaches dst. -w keeps sending for up to 5 s
// until one answer: a link that was just set up drops packets for up to
// a second, until the kernel's link watcher activates it.
func ping(t *testing.T, from *netns.NS, dst netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := from.Command(ctx, "ping", "-c", "1", "-w", "5", "-i", "0.2", dst.String()).CombinedOutput(); err != nil {
		t.Errorf("ping %s -> %s: %v\n%s", from.Name, dst, err, out)
	}
}

// links lists the names of the links in x.
func links(t *testing.T, x *netns.NS) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(sh(t, x, "ip", "-o", "link", "show")), "\n") {
		// "12: rmpd72e032fedd@if2: <BROADCAST,..."
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

// addressFiles lists the address files of a store directory (none if the
// directory does not exist).
func addressFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}
