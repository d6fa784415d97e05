package cni

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/rampartnet/rampart/internal/netns"
)

// inProcess calls the plugin's methods directly, in the node's namespace,
// as the plugin binary would run there.
type inProcess struct {
	n       *testNode
	dataDir string
}

func (p *inProcess) args(containerID string, pod *netns.NS, ifName string) *skel.CmdArgs {
	path := ""
	if pod != nil {
		path = pod.Path()
	}
	return &skel.CmdArgs{ContainerID: containerID, Netns: path, IfName: ifName, StdinData: []byte(p.n.conf(p.dataDir))}
}

func (p *inProcess) run(cmd string, args *skel.CmdArgs) (string, error) {
	var out bytes.Buffer
	pl := &Plugin{Stdout: &out}
	fn := map[string]func(*skel.CmdArgs) error{"ADD": pl.Add, "DEL": pl.Del, "CHECK": pl.Check}[cmd]
	err := p.n.node.Do(func() error { return fn(args) })
	return out.String(), err
}

func (p *inProcess) storeDir() string { return filepath.Join(p.dataDir, "rampart") }

// assertClean checks that no trace of an attachment is left: no host
// veth, nothing but lo in the pod, no address file, no route to the pod
// CIDR on the node.
func (p *inProcess) assertClean(t *testing.T, containerID string, pod *netns.NS) {
	t.Helper()
	host := HostVethName(containerID, "eth0")
	if slices.Contains(links(t, p.n.node), host) {
		t.Errorf("host veth %s left on the node", host)
	}
	if got := links(t, pod); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("links left in the pod: %v", got)
	}
	if got := addressFiles(t, p.storeDir()); len(got) > 0 {
		t.Errorf("addresses left allocated: %v", got)
	}
	for _, r := range strings.Split(sh(t, p.n.node, "ip", "-4", "route", "show"), "\n") {
		if strings.Contains(r, " dev "+HostVethPrefix) {
			t.Errorf("route left on the node: %s", r)
		}
	}
}

// TestPrivilegedAddRollback fails ADD at every step in turn, by the
// test hook and by real failures, and checks that each failure leaves
// nothing behind and leaves alone what existed before.
func TestPrivilegedAddRollback(t *testing.T) {
	n := newTestNode(t, 8)
	p := &inProcess{n: n, dataDir: t.TempDir()}
	pod := n.newNS(t, "pod")

	// Learn the steps from an ADD that records them.
	var steps []string
	testHookStep = func(step string) error { steps = append(steps, step); return nil }
	_, err := p.run("ADD", p.args("learn", pod, "eth0"))
	testHookStep = nil
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.run("DEL", p.args("learn", pod, "eth0")); err != nil {
		t.Fatal(err)
	}
	p.assertClean(t, "learn", pod)
	if want := []string{"veth", "host sysctls", "host up", "host route", "pod address", "pod up", "pod routes", "result"}; !slices.Equal(steps, want) {
		t.Fatalf("steps %q, want %q", steps, want)
	}

	injected := errors.New("injected")
	for _, fail := range steps {
		t.Run(fail, func(t *testing.T) {
			testHookStep = func(step string) error {
				if step == fail {
					return injected
				}
				return nil
			}
			defer func() { testHookStep = nil }()
			out, err := p.run("ADD", p.args("c-"+strings.ReplaceAll(fail, " ", "-"), pod, "eth0"))
			if err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("ADD: %v, want the injected error", err)
			}
			if out != "" {
				t.Errorf("ADD failed but printed %q", out)
			}
			p.assertClean(t, "c-"+strings.ReplaceAll(fail, " ", "-"), pod)
		})
	}

	t.Run("ifname taken in the pod", func(t *testing.T) {
		_, err := p.run("ADD", p.args("c-lo", pod, "lo"))
		if err == nil || !strings.Contains(err.Error(), "interface lo already exists in "+pod.Path()) {
			t.Fatalf("ADD with CNI_IFNAME=lo: %v, want a name collision in the pod", err)
		}
		if got := addressFiles(t, p.storeDir()); len(got) > 0 {
			t.Errorf("addresses left allocated: %v", got)
		}
		if slices.Contains(links(t, n.node), HostVethName("c-lo", "lo")) {
			t.Error("host veth left on the node")
		}
	})

	t.Run("host veth exists", func(t *testing.T) {
		// A link someone else made under the attachment's name must
		// survive the failed ADD.
		host := HostVethName("c-taken", "eth0")
		if err := netns.Veth(netns.End{NS: n.node, Name: host}, netns.End{NS: n.node, Name: "other0"}, 0); err != nil {
			t.Fatal(err)
		}
		defer n.node.DeleteLink(host)
		_, err := p.run("ADD", p.args("c-taken", pod, "eth0"))
		if err == nil || !strings.Contains(err.Error(), "host veth "+host+" already exists") {
			t.Fatalf("ADD: %v, want the host veth collision", err)
		}
		if ok, _ := n.node.HasLink(host); !ok {
			t.Error("the failed ADD deleted a link it did not make")
		}
		if got := links(t, pod); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("links left in the pod: %v", got)
		}
		if got := addressFiles(t, p.storeDir()); len(got) > 0 {
			t.Errorf("addresses left allocated: %v", got)
		}
	})

	t.Run("no route to the gateway", func(t *testing.T) {
		sh(t, n.node, "ip", "route", "del", "default")
		defer sh(t, n.node, "ip", "route", "add", "default", "via", n.gwAddr.String())
		_, err := p.run("ADD", p.args("c-nogw", pod, "eth0"))
		if err == nil || !strings.Contains(err.Error(), "no route to 169.254.1.1") {
			t.Fatalf("ADD: %v, want the missing gateway route", err)
		}
		p.assertClean(t, "c-nogw", pod)
	})

	for _, c := range []struct {
		name string
		args *skel.CmdArgs
		code uint
		want string
	}{
		{"node's own netns", &skel.CmdArgs{ContainerID: "c", Netns: n.node.Path(), IfName: "eth0"}, types.ErrInvalidNetNS, "the node's own"},
		{"no such netns", &skel.CmdArgs{ContainerID: "c", Netns: "/run/netns/" + n.name + "-none", IfName: "eth0"}, types.ErrInvalidNetNS, "CNI_NETNS"},
		{"no netns", &skel.CmdArgs{ContainerID: "c", IfName: "eth0"}, types.ErrInvalidEnvironmentVariables, "CNI_NETNS: missing"},
		{"bad ifname", &skel.CmdArgs{ContainerID: "c", Netns: pod.Path(), IfName: "a/b"}, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME"},
		{"bad container", &skel.CmdArgs{ContainerID: "c\n", Netns: pod.Path(), IfName: "eth0"}, types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.args.StdinData = []byte(n.conf(p.dataDir))
			_, err := p.run("ADD", c.args)
			var e *types.Error
			if !errors.As(err, &e) || e.Code != c.code || !strings.Contains(e.Msg, c.want) {
				t.Errorf("ADD: %v, want code %d with %q", err, c.code, c.want)
			}
			if got := addressFiles(t, p.storeDir()); len(got) > 0 {
				t.Errorf("addresses left allocated: %v", got)
			}
		})
	}
}

// TestPrivilegedCheck breaks an attachment one piece at a time and checks
// that CHECK names each broken piece.
func TestPrivilegedCheck(t *testing.T) {
	n := newTestNode(t, 9)
	p := &inProcess{n: n, dataDir: t.TempDir()}
	pod := n.newNS(t, "pod")
	args := p.args("c1", pod, "eth0")
	out, err := p.run("ADD", args)
	if err != nil {
		t.Fatal(err)
	}
	res, err := types100.NewResult([]byte(out))
	if err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	r := res.(*types100.Result)
	addr, _ := netip.AddrFromSlice(r.IPs[0].Address.IP.To4())

	// With the runtime's prevResult, as libcni passes it.
	withPrev := func(prev string) *skel.CmdArgs {
		a := *args
		conf := strings.TrimSuffix(n.conf(p.dataDir), "}") + `,"prevResult":` + prev + `}`
		a.StdinData = []byte(conf)
		return &a
	}
	if _, err := p.run("CHECK", withPrev(out)); err != nil {
		t.Fatalf("CHECK of a fresh pod: %v", err)
	}
	wrong := strings.Replace(out, addr.String(), "198.19.9.200", 1)
	if _, err := p.run("CHECK", withPrev(wrong)); err == nil || !strings.Contains(err.Error(), "prevResult does not list "+addr.String()) {
		t.Errorf("CHECK with a wrong prevResult: %v", err)
	}

	host := HostVethName("c1", "eth0")
	for _, c := range []struct {
		name   string
		break_ func()
		want   string
	}{
		{"pod default route", func() { sh(t, pod, "ip", "route", "del", "default") }, "no route default via 169.254.1.1 dev eth0"},
		{"pod gateway route", func() { sh(t, pod, "ip", "route", "del", "169.254.1.1") }, "no route 169.254.1.1 dev eth0 scope link"},
		{"pod address", func() { sh(t, pod, "ip", "addr", "del", addr.String()+"/32", "dev", "eth0") }, "does not have " + addr.String() + "/32"},
		{"node route", func() { sh(t, n.node, "ip", "route", "del", addr.String()+"/32") }, "the node has no route " + addr.String() + "/32 dev " + host},
		{"proxy arp", func() { sh(t, n.node, "sysctl", "-qw", "net.ipv4.conf."+host+".proxy_arp=0") }, "proxy_arp is 0, want 1"},
		{"mtu", func() { sh(t, n.node, "ip", "link", "set", host, "mtu", "1300") }, "has mtu 1300, want 1400"},
		{"pod down", func() { sh(t, pod, "ip", "link", "set", "eth0", "down") }, "eth0 in " + pod.Path() + " is down"},
		{"address record", func() { os.Remove(filepath.Join(p.storeDir(), addr.String())) }, "no address recorded"},
	} {
		c.break_()
		_, err := p.run("CHECK", args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CHECK after breaking the %s: %v, want %q", c.name, err, c.want)
		}
	}

	// DEL cleans up what is left, twice.
	for i := range 2 {
		if _, err := p.run("DEL", args); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	p.assertClean(t, "c1", pod)
	if _, err := p.run("CHECK", args); err == nil {
		t.Error("CHECK after DEL: no error")
	}
}

// TestPrivilegedAddMany adds pods until the pod CIDR is full, then checks
// that the next ADD fails cleanly and that DEL of all leaves nothing.
func TestPrivilegedAddMany(t *testing.T) {
	n := newTestNode(t, 10)
	p := &inProcess{n: n, dataDir: t.TempDir()}
	n.podCIDR = netip.MustParsePrefix("198.19.10.0/29") // 5 pod addresses
	var pods []*netns.NS
	seen := map[string]bool{}
	for i := range 5 {
		pod := n.newNS(t, fmt.Sprintf("p%d", i))
		pods = append(pods, pod)
		out, err := p.run("ADD", p.args(fmt.Sprintf("c%d", i), pod, "eth0"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := types100.NewResult([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		a := res.(*types100.Result).IPs[0].Address.IP.String()
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
	extra := n.newNS(t, "px")
	if _, err := p.run("ADD", p.args("cx", extra, "eth0")); err == nil || !strings.Contains(err.Error(), "no free address") {
		t.Errorf("ADD on a full pod CIDR: %v, want no free address", err)
	}
	if got := links(t, extra); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("links in the pod of the failed ADD: %v", got)
	}
	ping(t, pods[0], n.gwAddr)
	for i, pod := range pods {
		if _, err := p.run("DEL", p.args(fmt.Sprintf("c%d", i), pod, "eth0")); err != nil {
			t.Fatal(err)
		}
	}
	if got := addressFiles(t, p.storeDir()); len(got) > 0 {
		t.Errorf("addresses left allocated: %v", got)
	}
	for _, l := range links(t, n.node) {
		if strings.HasPrefix(l, HostVethPrefix) {
			t.Errorf("host veth %s left", l)
		}
	}
}
