package cni

import (
	"context"
	"crypto/sha512"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/rampartnet/rampart/internal/netns"
)

// cnitool runs the CNI project's cnitool in the node's namespace, which
// runs the plugin binary there, exactly as a container runtime would.
type cnitool struct {
	n                *testNode
	bin, confDir     string
	cleanupCacheKeys []string
}

// cnitoolContainerID is the container ID cnitool derives from the netns
// path (cnitool/cmd/root.go): "cnitool-" and 20 hex digits of SHA-512.
func cnitoolContainerID(nsPath string) string {
	s := sha512.Sum512([]byte(nsPath))
	return fmt.Sprintf("cnitool-%x", s[:10])
}

func (c *cnitool) run(t *testing.T, cmd, nsPath string) (string, error) {
	t.Helper()
	// libcni caches ADD's result for CHECK and DEL under /var/lib/cni
	// (cnitool has no option for another place); remove ours at the end.
	c.cleanupCacheKeys = append(c.cleanupCacheKeys, filepath.Join("/var/lib/cni/results", "rampart-"+cnitoolContainerID(nsPath)+"-eth0"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x := c.n.node.Command(ctx, filepath.Join(c.bin, "cnitool"), cmd, "rampart", nsPath)
	x.Env = append(os.Environ(), "CNI_PATH="+c.bin, "NETCONFPATH="+c.confDir, "CNI_IFNAME=eth0")
	out, err := x.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("cnitool %s %s: %v: %s%s", cmd, nsPath, err, out, ee.Stderr)
	}
	return string(out), err
}

// add runs ADD and returns the pod's address and the host veth's name
// from the result.
func (c *cnitool) add(t *testing.T, pod *netns.NS) (netip.Addr, string) {
	t.Helper()
	out, err := c.run(t, "add", pod.Path())
	if err != nil {
		t.Fatal(err)
	}
	res, err := types100.NewResult([]byte(out))
	if err != nil {
		t.Fatalf("ADD result %q: %v", out, err)
	}
	r := res.(*types100.Result)
	if len(r.IPs) != 1 || len(r.Interfaces) != 2 || len(r.Routes) != 1 {
		t.Fatalf("ADD result: %s", out)
	}
	ip := r.IPs[0]
	addr, _ := netip.AddrFromSlice(ip.Address.IP.To4())
	if ones, _ := ip.Address.Mask.Size(); ones != 32 || ip.Gateway.String() != "169.254.1.1" || ip.Interface == nil || *ip.Interface != 1 {
		t.Errorf("ADD result IP: %s", ip)
	}
	host, podIf := r.Interfaces[0], r.Interfaces[1]
	if want := HostVethName(cnitoolContainerID(pod.Path()), "eth0"); host.Name != want || host.Sandbox != "" {
		t.Errorf("ADD result host interface %s, want %s", host, want)
	}
	if podIf.Name != "eth0" || podIf.Sandbox != pod.Path() {
		t.Errorf("ADD result pod interface %s", podIf)
	}
	if r.Routes[0].Dst.String() != "0.0.0.0/0" || r.Routes[0].GW.String() != "169.254.1.1" {
		t.Errorf("ADD result route %s", r.Routes[0])
	}
	return addr, host.Name
}

// TestPrivilegedCNITool drives the plugin binary with cnitool against real
// namespaces: a node (with an uplink to a router) and pods on it.
func TestPrivilegedCNITool(t *testing.T) {
	start := time.Now()
	n := newTestNode(t, 7)
	c := &cnitool{n: n, bin: binDir(t), confDir: t.TempDir()}
	t.Cleanup(func() {
		for _, f := range c.cleanupCacheKeys {
			os.Remove(f)
		}
	})
	dataDir := t.TempDir()
	storeDir := filepath.Join(dataDir, "rampart")
	conflist := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"rampart","plugins":[%s]}`,
		strings.Replace(n.conf(dataDir), `"cniVersion":"1.0.0","name":"rampart",`, "", 1))
	if err := os.WriteFile(filepath.Join(c.confDir, "10-rampart.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	a, b := n.newNS(t, "a"), n.newNS(t, "b")
	setup := time.Now()

	addrA, hostA := c.add(t, a)
	addrB, hostB := c.add(t, b)
	for _, x := range []netip.Addr{addrA, addrB} {
		if !n.podCIDR.Contains(x) || x == n.podCIDR.Addr() || x == n.podCIDR.Addr().Next() || x.String() == "198.19.7.255" {
			t.Errorf("address %s: want a pod address of %s", x, n.podCIDR)
		}
	}
	if addrA == addrB {
		t.Fatalf("both pods got %s", addrA)
	}
	if got, want := addressFiles(t, storeDir), []string{addrA.String(), addrB.String()}; !slices.Equal(got, want) {
		t.Errorf("address files %v, want %v", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(storeDir, addrA.String())); err != nil || string(b) != cnitoolContainerID(a.Path())+"\neth0\n" {
		t.Errorf("address file of %s: %q, %v", addrA, b, err)
	}

	// The wiring, as ip(8) shows it.
	for _, p := range []struct {
		pod        *netns.NS
		addr       netip.Addr
		host, name string
	}{{a, addrA, hostA, "a"}, {b, addrB, hostB, "b"}} {
		if out := sh(t, p.pod, "ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "inet "+p.addr.String()+"/32 ") {
			t.Errorf("pod %s addresses: %s", p.name, out)
		}
		routes := sh(t, p.pod, "ip", "-4", "route", "show")
		for _, want := range []string{"default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link"} {
			if !strings.Contains(routes, want) {
				t.Errorf("pod %s routes lack %q:\n%s", p.name, want, routes)
			}
		}
		if out := sh(t, p.pod, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1400") {
			t.Errorf("pod %s eth0: %s, want mtu 1400", p.name, out)
		}
		if out := sh(t, n.node, "ip", "-o", "link", "show", p.host); !strings.Contains(out, "mtu 1400") {
			t.Errorf("host veth %s: %s, want mtu 1400", p.host, out)
		}
		if routes := sh(t, n.node, "ip", "-4", "route", "show"); !strings.Contains(routes, p.addr.String()+" dev "+p.host+" scope link") {
			t.Errorf("node routes lack %s dev %s scope link:\n%s", p.addr, p.host, routes)
		}
		if v := sh(t, n.node, "cat", "/proc/sys/net/ipv4/conf/"+p.host+"/proxy_arp"); strings.TrimSpace(v) != "1" {
			t.Errorf("%s proxy_arp = %q", p.host, v)
		}
	}
	if v := sh(t, n.node, "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(v) != "1" {
		t.Errorf("node ip_forward = %q", v)
	}

	ping(t, n.node, addrA)
	ping(t, n.node, addrB)
	ping(t, a, addrB)
	ping(t, b, addrA)
	ping(t, a, n.nodeAddr)
	ping(t, b, n.gwAddr) // routed by the node out of its uplink
	for _, p := range []*netns.NS{a, b} {
		if _, err := c.run(t, "check", p.Path()); err != nil {
			t.Errorf("CHECK: %v", err)
		}
	}

	// DEL removes the veth, the route and the address; DEL again succeeds.
	for i := range 2 {
		if _, err := c.run(t, "del", a.Path()); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	if slices.Contains(links(t, n.node), hostA) {
		t.Errorf("host veth %s left after DEL", hostA)
	}
	if got := links(t, a); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("pod a links after DEL: %v", got)
	}
	if routes := sh(t, n.node, "ip", "-4", "route", "show"); strings.Contains(routes, addrA.String()+" ") {
		t.Errorf("node route to %s left after DEL:\n%s", addrA, routes)
	}
	if got, want := addressFiles(t, storeDir), []string{addrB.String()}; !slices.Equal(got, want) {
		t.Errorf("address files after DEL %v, want %v", got, want)
	}

	// A new ADD (a new plugin process) gets neither a held address nor the
	// one just freed: the allocations and the position survived on disk.
	addrA2, _ := c.add(t, a)
	if addrA2 == addrA || addrA2 == addrB {
		t.Errorf("re-ADD got %s; held %s, just freed %s", addrA2, addrB, addrA)
	}
	if _, err := c.run(t, "check", a.Path()); err != nil {
		t.Errorf("CHECK after re-ADD: %v", err)
	}
	ping(t, b, addrA2)

	// DEL after the pod's namespace is gone, and of a container never added.
	if err := b.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.run(t, "del", b.Path()); err != nil {
		t.Errorf("DEL after the netns is gone: %v", err)
	}
	if slices.Contains(links(t, n.node), hostB) {
		t.Errorf("host veth %s left after DEL", hostB)
	}
	if _, err := c.run(t, "del", "/run/netns/"+n.name+"-never"); err != nil {
		t.Errorf("DEL of an unknown container: %v", err)
	}

	// What is on disk, as a new process sees it.
	s, err := NewStore(storeDir, n.podCIDR)
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[addrA2] != (Owner{cnitoolContainerID(a.Path()), "eth0"}) {
		t.Errorf("store holds %v, want only %s for pod a", held, addrA2)
	}
	if _, err := c.run(t, "del", a.Path()); err != nil {
		t.Fatal(err)
	}
	if got := addressFiles(t, storeDir); len(got) > 0 {
		t.Errorf("address files after deleting every pod: %v", got)
	}
	t.Logf("setup (build, namespaces) %v, the CNI commands %v", setup.Sub(start).Round(time.Millisecond), time.Since(setup).Round(time.Millisecond))
}
