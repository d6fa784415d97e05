package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespaces are made and removed with iproute2 (`ip netns add|del`), and
// entered by name for each operation, rather than held as internal/netns
// NS values: a lab outlives the command that made it, every later command
// (apply, probe, down) is another process, and an open handle would keep a
// deleted namespace alive in the kernel for as long as its holder runs.

const netnsRunDir = "/run/netns"

// Link names. Each namespace is the lab's own, so these need not be unique
// across labs; the namespaces' names are.
const (
	bridgeName   = "br0" // in the underlay namespace
	nodeUplink   = "ul0" // a node's end of its veth to the bridge
	underlayMTU  = 1500
	podInterface = "eth0" // CNI_IFNAME
)

func bridgePort(node int) string { return fmt.Sprintf("n%d", node) }

// ipCommand runs ip(8) and returns its error with its output.
func ipCommand(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsCreate makes a named network namespace with its loopback up and IPv6
// off (the lab is IPv4 only; without router solicitations and MLD reports
// a capture of the underlay holds only what the lab sends).
func nsCreate(name string) error {
	if err := ipCommand("netns", "add", name); err != nil {
		return err
	}
	return nsDo(name, func() error {
		for _, p := range []string{"all", "default"} {
			if err := writeSysctl("net/ipv6/conf/"+p+"/disable_ipv6", "1"); err != nil {
				return err
			}
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		return err
	})
}

// nsExists reports whether the named namespace is there.
func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join(netnsRunDir, name))
	return err == nil
}

// nsDelete removes a named namespace, as `ip netns del` does: the kernel
// destroys it, with its links, rules and conntrack entries, once nothing
// uses it any more. A namespace already gone is not an error.
func nsDelete(name string) error {
	path := filepath.Join(netnsRunDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("umount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// nsDo runs fn on an OS thread that is in the named namespace (the
// containernetworking/plugins pattern, as internal/netns does): sockets fn
// opens stay in it. If the thread cannot go back, it stays locked and the
// runtime discards it.
func nsDo(name string, fn func() error) error {
	target, err := vnetns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := vnetns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		fnErr := fn()
		if err := vnetns.Set(orig); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("leave netns %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// nsNetlink runs fn with a netlink handle whose socket is in the named
// namespace.
func nsNetlink(name string, fn func(h *netlink.Handle) error) error {
	ns, err := vnetns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netns %s: netlink: %w", name, err)
	}
	defer h.Close()
	return fn(h)
}

// nsCommand is a command run in the named namespace by `ip netns exec`,
// which execs it: the process's PID is the command's.
func nsCommand(ctx context.Context, name, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", name, bin}, args...)...)
}

// writeSysctl writes /proc/sys/<key> in the calling thread's namespace.
func writeSysctl(key, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value+"\n"), 0o644)
}

// makeUnderlay fills the underlay namespace: a bridge holding the
// gateway address, up.
func makeUnderlay(ns string) error {
	return nsNetlink(ns, func(h *netlink.Handle) error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = bridgeName, underlayMTU
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("%s: add bridge: %w", ns, err)
		}
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(UnderlayGW, UnderlayPrefix.Bits()))}); err != nil {
			return fmt.Errorf("%s: address the bridge: %w", ns, err)
		}
		return h.LinkSetUp(br)
	})
}

// attachNode joins a node's namespace to the bridge with a veth, gives the
// node its address and a default route through the gateway, and turns
// forwarding on (the node routes its pods' traffic).
func attachNode(underlay string, n NodeState, index int) error {
	nodeNS, err := vnetns.GetFromName(n.Netns)
	if err != nil {
		return err
	}
	defer nodeNS.Close()
	port := bridgePort(index)
	err = nsNetlink(underlay, func(h *netlink.Handle) error {
		br, err := h.LinkByName(bridgeName)
		if err != nil {
			return err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.MasterIndex = port, underlayMTU, br.Attrs().Index
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: nodeUplink, PeerNamespace: netlink.NsFd(nodeNS)}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("%s: add veth %s: %w", underlay, port, err)
		}
		l, err := h.LinkByName(port)
		if err == nil {
			err = h.LinkSetUp(l)
		}
		return err
	})
	if err != nil {
		return err
	}
	err = nsNetlink(n.Netns, func(h *netlink.Handle) error {
		l, err := h.LinkByName(nodeUplink)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.Address, UnderlayPrefix.Bits()))}); err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		gw := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: UnderlayGW.AsSlice(), LinkIndex: l.Attrs().Index}
		if err := h.RouteAdd(gw); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", n.Netns, err)
	}
	return nsDo(n.Netns, func() error { return writeSysctl("net/ipv4/ip_forward", "1") })
}

// waitLinkUp waits until a link is operationally up: a veth drops what it
// is given until the kernel's link watcher activates it.
func waitLinkUp(ns, link string, within time.Duration) error {
	return nsNetlink(ns, func(h *netlink.Handle) error {
		deadline := time.Now().Add(within)
		for {
			l, err := h.LinkByName(link)
			if err != nil {
				return err
			}
			if l.Attrs().OperState == netlink.OperUp {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: link %s still %s after %v", ns, link, l.Attrs().OperState, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// processesIn returns the processes whose network namespace is one of the
// named ones (what `ip netns pids` finds): after a crash, a process the
// lab started but had not recorded yet is found this way.
func processesIn(names []string) []int {
	type key struct{ dev, ino uint64 }
	want := map[key]bool{}
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsRunDir, n), &st); err == nil {
			want[key{st.Dev, st.Ino}] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
			continue
		}
		if want[key{st.Dev, st.Ino}] {
			pids = append(pids, pid)
		}
	}
	return pids
}
