package cni

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// VersionInfo lists the CNI spec versions the plugin speaks (VERSION).
// CHECK needs 0.4.0 or later; GC and STATUS (1.1.0) are not implemented.
var VersionInfo = version.PluginSupports("0.3.1", "0.4.0", "1.0.0")

// Plugin implements the CNI commands. Each method takes what skel decoded
// from the environment and stdin, and runs in the node's network namespace:
// the one of the calling thread (the plugin process's, when the runtime
// runs it; a test enters the node's namespace with its thread locked).
type Plugin struct {
	// Stdout receives ADD's result; nil means os.Stdout.
	Stdout io.Writer
}

// testHookStep, when set (by tests), runs before each step of ADD that
// follows the allocation of the address, and can fail it, to check that a
// failure anywhere undoes everything.
var testHookStep func(step string) error

// Add wires a pod: it allocates an address, makes the veth pair with one end
// in the pod's namespace, configures both ends and prints the result. If a
// step fails, it undoes the earlier ones (deletes the veth, releases the
// address) before returning the error.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	if err := checkArgs(args, true); err != nil {
		return err
	}
	nss, err := openNamespaces(args.Netns)
	if err != nil {
		return err
	}
	defer nss.close()
	// Before anything exists, so there is nothing to undo: a pod of a node
	// without this route could not send anything.
	if err := nss.checkGatewayRoute(); err != nil {
		return types.NewError(types.ErrInternal, err.Error(), "")
	}

	store, err := NewStore(conf.StoreDir(), conf.Prefix)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	owner := Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	addr, err := store.Allocate(owner)
	if err != nil {
		return types.NewError(types.ErrInternal, err.Error(), "")
	}

	w := &wiring{nss: nss, conf: conf, args: args, addr: addr, host: HostVethName(args.ContainerID, args.IfName)}
	result, err := w.wire()
	if err == nil {
		if err = runStep("result", func() error { return printResult(result, conf.CNIVersion, p.stdout()) }); err == nil {
			return nil
		}
	}
	// Undo in reverse: the veth (its pod end, addresses and routes go with
	// it), then the address, and only the address this ADD took.
	undo := errors.Join(w.undo(), store.ReleaseAddr(addr, owner))
	msg := fmt.Sprintf("add %s (%s): %v", owner, addr, err)
	if undo != nil {
		msg += fmt.Sprintf("; undoing it also failed, clean up by hand or with DEL: %v", undo)
	}
	return types.NewError(types.ErrInternal, msg, "")
}

// Del unwires a pod: it deletes the host veth (and with it the pod's end and
// the node's route) and releases the address. Whatever is already gone is
// skipped, so DEL succeeds twice in a row, for a container never added,
// and after the pod's namespace is gone.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	if err := checkArgs(args, false); err != nil {
		return err
	}
	nss, err := openNamespaces("")
	if err != nil {
		return err
	}
	defer nss.close()
	owner := Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	// The veth first: its address must not be handed out while it still
	// routes to this pod.
	host := HostVethName(args.ContainerID, args.IfName)
	if err := nss.deleteHostVeth(host); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("del %s: %v", owner, err), "")
	}
	store, err := NewStore(conf.StoreDir(), conf.Prefix)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if _, err := store.Release(owner); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("del %s: %v", owner, err), "")
	}
	return nil
}

// Check verifies that a pod is wired as ADD left it: its address recorded,
// the pod's interface with that address and its two routes, the host veth
// (the pod interface's peer) with proxy ARP and the node's route to the pod.
// It reports every difference at once.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	if err := checkArgs(args, true); err != nil {
		return err
	}
	owner := Owner{ContainerID: args.ContainerID, IfName: args.IfName}
	store, err := NewStore(conf.StoreDir(), conf.Prefix)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	addr, ok, err := store.Lookup(owner)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if !ok {
		return types.NewError(types.ErrInternal, fmt.Sprintf("check %s: no address recorded in %s", owner, store.Dir()), "")
	}
	nss, err := openNamespaces(args.Netns)
	if err != nil {
		return err
	}
	defer nss.close()

	var problems []error
	if err := checkPrevResult(conf, args, addr); err != nil {
		problems = append(problems, err)
	}
	if err := nss.checkGatewayRoute(); err != nil {
		problems = append(problems, err)
	}
	w := &wiring{nss: nss, conf: conf, args: args, addr: addr, host: HostVethName(args.ContainerID, args.IfName)}
	problems = append(problems, w.check()...)
	if len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, e := range problems {
			msgs[i] = e.Error()
		}
		return types.NewError(types.ErrInternal, fmt.Sprintf("check %s (%s): %s", owner, addr, strings.Join(msgs, "; ")), "")
	}
	return nil
}

func (p *Plugin) stdout() io.Writer {
	if p.Stdout != nil {
		return p.Stdout
	}
	return os.Stdout
}

// checkArgs validates what the runtime passed in the environment.
func checkArgs(args *skel.CmdArgs, needNetns bool) error {
	if e := utils.ValidateContainerID(args.ContainerID); e != nil {
		return types.NewError(e.Code, fmt.Sprintf("CNI_CONTAINERID %q: %s", args.ContainerID, e.Msg), e.Details)
	}
	if e := utils.ValidateInterfaceName(args.IfName); e != nil {
		return types.NewError(e.Code, fmt.Sprintf("CNI_IFNAME %q: %s", args.IfName, e.Msg), e.Details)
	}
	if needNetns && args.Netns == "" {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: missing; want the path of the pod's network namespace", "")
	}
	return nil
}

// namespaces holds the node's namespace (the caller's) and, for ADD and
// CHECK, the pod's, each with a netlink handle whose socket lives in it.
type namespaces struct {
	node, pod     ns.NetNS
	nodeNL, podNL *netlink.Handle
}

// openNamespaces opens the node's namespace and, if podPath is not empty,
// the pod's.
func openNamespaces(podPath string) (_ *namespaces, err error) {
	nss := &namespaces{}
	defer func() {
		if err != nil {
			nss.close()
		}
	}()
	if nss.node, err = ns.GetCurrentNS(); err != nil {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("open the node's network namespace: %v", err), "")
	}
	if nss.nodeNL, err = netlink.NewHandleAt(vnetns.NsHandle(nss.node.Fd()), unix.NETLINK_ROUTE); err != nil {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("netlink in the node's network namespace: %v", err), "")
	}
	if podPath == "" {
		return nss, nil
	}
	if nss.pod, err = ns.GetNS(podPath); err != nil {
		return nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("CNI_NETNS %q: %v", podPath, err), "")
	}
	if vnetns.NsHandle(nss.pod.Fd()).Equal(vnetns.NsHandle(nss.node.Fd())) {
		return nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("CNI_NETNS %q is the node's own network namespace; want the pod's", podPath), "")
	}
	if nss.podNL, err = netlink.NewHandleAt(vnetns.NsHandle(nss.pod.Fd()), unix.NETLINK_ROUTE); err != nil {
		return nil, types.NewError(types.ErrInternal, fmt.Sprintf("netlink in %s: %v", podPath, err), "")
	}
	return nss, nil
}

func (n *namespaces) close() {
	for _, h := range []*netlink.Handle{n.nodeNL, n.podNL} {
		if h != nil {
			h.Close()
		}
	}
	for _, x := range []ns.NetNS{n.node, n.pod} {
		if x != nil {
			x.Close()
		}
	}
}

// checkGatewayRoute checks that the node routes Gateway. The kernel
// answers an ARP request by proxy only for an address it would forward out
// of another interface (net/ipv4/arp.c, arp_fwd_proxy), so without such a
// route no pod resolves its gateway and none can send anything
// (projectcalico/calico#3270). The node's default route is the usual one.
func (n *namespaces) checkGatewayRoute() error {
	if _, err := n.nodeNL.RouteGet(Gateway.AsSlice()); err != nil {
		return fmt.Errorf("the node has no route to %s, the pods' gateway (%v): proxy ARP answers only for addresses the node routes elsewhere; give the node a default route", Gateway, err)
	}
	return nil
}

// deleteHostVeth deletes the host veth name if it exists.
func (n *namespaces) deleteHostVeth(name string) error {
	l, err := n.nodeNL.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("host veth %s: %w", name, err)
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return fmt.Errorf("host link %s is a %s, not a veth: not deleting it", name, l.Type())
	}
	// The kernel may be removing it already, with the pod's namespace.
	if err := n.nodeNL.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete host veth %s: %w", name, err)
	}
	return nil
}

// isNotFound reports whether err says that a link does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// wiring is one attachment of a pod: what ADD makes and CHECK verifies.
type wiring struct {
	nss  *namespaces
	conf *NetConf
	args *skel.CmdArgs
	addr netip.Addr
	host string // the host veth's name

	madeVeth bool // this ADD created the veth, so undo deletes it
}

// runStep runs one step of ADD, through testHookStep when it is set.
func runStep(name string, fn func() error) error {
	if testHookStep != nil {
		if err := testHookStep(name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// addrNet is the pod's address as a /32.
func (w *wiring) addrNet() *net.IPNet {
	return &net.IPNet{IP: w.addr.AsSlice(), Mask: net.CIDRMask(32, 32)}
}

var (
	gatewayNet = &net.IPNet{IP: Gateway.AsSlice(), Mask: net.CIDRMask(32, 32)}
	defaultNet = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
)

// wire makes and configures the veth pair, in this order:
//
//  1. the pair, the host end in the node's namespace and the pod end
//     created directly in the pod's namespace under its final name (one
//     request: nothing is ever left in the node under the pod's name, and a
//     name taken in either namespace fails before anything exists);
//  2. the host end's sysctls: proxy ARP (answer for Gateway), no proxy
//     delay, forwarding, strict reverse-path filtering (only the pod's
//     address may come in on it), no IPv6; and the node's IPv4 forwarding;
//  3. the host end up and the node's route to the pod's /32 through it;
//  4. the pod end's /32 address, up, its route to Gateway (on-link) and its
//     default route through Gateway.
//
// The host route exists before the pod end is up, so the pod's first ARP
// request passes the reverse-path check.
func (w *wiring) wire() (*types100.Result, error) {
	n, ifName := w.nss, w.args.IfName
	var hostLink, podLink netlink.Link
	steps := []struct {
		name string
		do   func() error
	}{
		{"veth", func() error {
			attrs := netlink.NewLinkAttrs()
			attrs.Name = w.host
			attrs.MTU = w.conf.MTU // the peer's too: netlink sends it for both ends
			veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ifName, PeerNamespace: netlink.NsFd(int(n.pod.Fd()))}
			if err := n.nodeNL.LinkAdd(veth); err != nil {
				return w.explainLinkAdd(err)
			}
			w.madeVeth = true
			var err error
			if hostLink, err = n.nodeNL.LinkByName(w.host); err != nil {
				return fmt.Errorf("host veth %s: %w", w.host, err)
			}
			if podLink, err = n.podNL.LinkByName(ifName); err != nil {
				return fmt.Errorf("pod interface %s: %w", ifName, err)
			}
			return nil
		}},
		{"host sysctls", w.setHostSysctls},
		{"host up", func() error { return n.nodeNL.LinkSetUp(hostLink) }},
		{"host route", func() error {
			r := &netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: w.addrNet(), Scope: netlink.SCOPE_LINK}
			if err := n.nodeNL.RouteAdd(r); err != nil {
				return fmt.Errorf("route %s dev %s: %w", w.addr, w.host, err)
			}
			return nil
		}},
		{"pod address", func() error {
			if err := n.podNL.AddrAdd(podLink, &netlink.Addr{IPNet: w.addrNet()}); err != nil {
				return fmt.Errorf("address %s/32 on %s: %w", w.addr, ifName, err)
			}
			return nil
		}},
		{"pod up", func() error { return n.podNL.LinkSetUp(podLink) }},
		{"pod routes", func() error {
			idx := podLink.Attrs().Index
			if err := n.podNL.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: gatewayNet, Scope: netlink.SCOPE_LINK}); err != nil {
				return fmt.Errorf("route %s dev %s scope link: %w", Gateway, ifName, err)
			}
			if err := n.podNL.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: defaultNet, Gw: Gateway.AsSlice()}); err != nil {
				return fmt.Errorf("route default via %s dev %s: %w", Gateway, ifName, err)
			}
			return nil
		}},
	}
	for _, st := range steps {
		if err := runStep(st.name, st.do); err != nil {
			return nil, err
		}
	}
	return &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: w.host, Mac: hostLink.Attrs().HardwareAddr.String()},
			{Name: ifName, Mac: podLink.Attrs().HardwareAddr.String(), Sandbox: w.args.Netns},
		},
		IPs: []*types100.IPConfig{{
			Interface: types100.Int(1),
			Address:   *w.addrNet(),
			Gateway:   Gateway.AsSlice(),
		}},
		Routes: []*types.Route{{Dst: *defaultNet, GW: Gateway.AsSlice()}},
		DNS:    w.conf.DNS,
	}, nil
}

// explainLinkAdd names the link that already exists when the kernel
// refuses the pair with EEXIST, which does not say which end's name it is.
func (w *wiring) explainLinkAdd(err error) error {
	if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create veth %s (peer %s in %s, mtu %d): %w", w.host, w.args.IfName, w.args.Netns, w.conf.MTU, err)
	}
	if _, lerr := w.nss.nodeNL.LinkByName(w.host); lerr == nil {
		return fmt.Errorf("host veth %s already exists on the node: container %s interface %s is attached already (ADD without DEL?): %w", w.host, w.args.ContainerID, w.args.IfName, err)
	}
	if _, lerr := w.nss.podNL.LinkByName(w.args.IfName); lerr == nil {
		return fmt.Errorf("interface %s already exists in %s: %w", w.args.IfName, w.args.Netns, err)
	}
	return fmt.Errorf("create veth %s (peer %s in %s): %w", w.host, w.args.IfName, w.args.Netns, err)
}

// hostSysctl is one sysctl of the host end, relative to /proc/sys/net.
type hostSysctl struct {
	path, value string
	optional    bool // absent when the kernel has no IPv6
}

func (w *wiring) hostSysctls() []hostSysctl {
	return []hostSysctl{
		// Forwarding for the whole node first: writing it resets every
		// interface's forwarding switch too (net/ipv4/devinet.c).
		{"ipv4/ip_forward", "1", false},
		{"ipv4/conf/" + w.host + "/forwarding", "1", false},
		{"ipv4/conf/" + w.host + "/proxy_arp", "1", false},
		// Answer at once: the default delays the answer to a broadcast
		// request by up to 0.8 s (proxy_delay, in jiffies).
		{"ipv4/neigh/" + w.host + "/proxy_delay", "0", false},
		// Strict: a packet in from the pod must come from the one address
		// routed back out of this veth, so no spoofed source reaches the
		// policy. (The kernel uses the larger of this and conf/all: a node
		// with all/rp_filter=2 gets the loose check only.)
		{"ipv4/conf/" + w.host + "/rp_filter", "1", false},
		// The design is IPv4 only: no IPv6 (not even link-local) between
		// the pod and the node, so no path around the IPv4 policy.
		{"ipv6/conf/" + w.host + "/disable_ipv6", "1", true},
	}
}

// setHostSysctls writes the host end's sysctls. /proc/sys/net shows the
// namespace of the thread that opens the file, hence Do.
func (w *wiring) setHostSysctls() error {
	return w.nss.node.Do(func(ns.NetNS) error {
		for _, s := range w.hostSysctls() {
			p := filepath.Join("/proc/sys/net", s.path)
			if err := os.WriteFile(p, []byte(s.value+"\n"), 0o644); err != nil {
				if s.optional && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return err
			}
		}
		return nil
	})
}

// undo deletes the veth if this ADD made it.
func (w *wiring) undo() error {
	if !w.madeVeth {
		return nil
	}
	return w.nss.deleteHostVeth(w.host)
}

// check lists every difference between the kernel and what wire makes.
func (w *wiring) check() []error {
	n, ifName := w.nss, w.args.IfName
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	hostLink, err := n.nodeNL.LinkByName(w.host)
	if err != nil {
		bad("host veth %s: %v", w.host, err)
	}
	podLink, err := n.podNL.LinkByName(ifName)
	if err != nil {
		bad("interface %s in %s: %v", ifName, w.args.Netns, err)
	}

	if hostLink != nil {
		a := hostLink.Attrs()
		if _, ok := hostLink.(*netlink.Veth); !ok {
			bad("host link %s is a %s, want a veth", w.host, hostLink.Type())
		}
		if a.Flags&net.FlagUp == 0 {
			bad("host veth %s is down", w.host)
		}
		if a.MTU != w.conf.MTU {
			bad("host veth %s has mtu %d, want %d", w.host, a.MTU, w.conf.MTU)
		}
		if !hasRoute(n.nodeNL, hostLink, func(r netlink.Route) bool {
			return ipNetIs(r.Dst, w.addr, 32) && r.Scope == netlink.SCOPE_LINK
		}) {
			bad("the node has no route %s/32 dev %s scope link", w.addr, w.host)
		}
		for _, s := range w.hostSysctls() {
			if s.optional {
				continue
			}
			var got []byte
			err := n.node.Do(func(ns.NetNS) error {
				var err error
				got, err = os.ReadFile(filepath.Join("/proc/sys/net", s.path))
				return err
			})
			if err != nil {
				bad("sysctl net/%s: %v", s.path, err)
			} else if v := strings.TrimSpace(string(got)); v != s.value {
				bad("sysctl net/%s is %s, want %s", s.path, v, s.value)
			}
		}
	}

	if podLink != nil {
		a := podLink.Attrs()
		if hostLink != nil && (a.ParentIndex != hostLink.Attrs().Index || hostLink.Attrs().ParentIndex != a.Index) {
			bad("interface %s in %s is not the peer of host veth %s", ifName, w.args.Netns, w.host)
		}
		if a.Flags&net.FlagUp == 0 {
			bad("interface %s in %s is down", ifName, w.args.Netns)
		}
		if a.MTU != w.conf.MTU {
			bad("interface %s in %s has mtu %d, want %d", ifName, w.args.Netns, a.MTU, w.conf.MTU)
		}
		addrs, err := dump(func() ([]netlink.Addr, error) { return n.podNL.AddrList(podLink, netlink.FAMILY_V4) })
		found := false
		for _, x := range addrs {
			found = found || ipNetIs(x.IPNet, w.addr, 32)
		}
		if err != nil {
			bad("addresses of %s in %s: %v", ifName, w.args.Netns, err)
		} else if !found {
			bad("interface %s in %s does not have %s/32", ifName, w.args.Netns, w.addr)
		}
		if !hasRoute(n.podNL, podLink, func(r netlink.Route) bool {
			return ipNetIs(r.Dst, Gateway, 32) && r.Scope == netlink.SCOPE_LINK && r.Gw == nil
		}) {
			bad("%s has no route %s dev %s scope link", w.args.Netns, Gateway, ifName)
		}
		if !hasRoute(n.podNL, podLink, func(r netlink.Route) bool {
			return (r.Dst == nil || ipNetIs(r.Dst, netip.IPv4Unspecified(), 0)) && Gateway.Compare(addrOf(r.Gw)) == 0
		}) {
			bad("%s has no route default via %s dev %s", w.args.Netns, Gateway, ifName)
		}
	}
	return problems
}

// checkPrevResult compares the result of ADD, which the runtime passes to
// CHECK, with the store.
func checkPrevResult(conf *NetConf, args *skel.CmdArgs, addr netip.Addr) error {
	if conf.RawPrevResult == nil {
		return nil
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return fmt.Errorf("prevResult: %w", err)
	}
	prev, err := types100.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return fmt.Errorf("prevResult: %w", err)
	}
	found := false
	for _, ipc := range prev.IPs {
		found = found || ipNetIs(&ipc.Address, addr, 32)
	}
	if !found {
		return fmt.Errorf("prevResult does not list %s/32, the address recorded for the pod", addr)
	}
	for _, i := range prev.Interfaces {
		if i.Name == args.IfName && i.Sandbox != "" && i.Sandbox != args.Netns {
			return fmt.Errorf("prevResult puts %s in %s, not %s", args.IfName, i.Sandbox, args.Netns)
		}
	}
	return nil
}

// printResult writes the result in the configuration's CNI version.
func printResult(r *types100.Result, cniVersion string, w io.Writer) error {
	v, err := r.GetAsVersion(cniVersion)
	if err != nil {
		return err
	}
	return v.PrintTo(w)
}

// hasRoute reports whether link has a route in the main table that match
// accepts.
func hasRoute(h *netlink.Handle, link netlink.Link, match func(netlink.Route) bool) bool {
	routes, err := dump(func() ([]netlink.Route, error) { return h.RouteList(link, netlink.FAMILY_V4) })
	if err != nil {
		return false
	}
	for _, r := range routes {
		if match(r) {
			return true
		}
	}
	return false
}

// dump retries a netlink dump that the kernel interrupted because the
// table changed meanwhile (NLM_F_DUMP_INTR: other pods come and go on a
// node), rather than use its possibly inconsistent answer.
func dump[T any](fn func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range 5 {
		if out, err = fn(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return out, err
}

// ipNetIs reports whether n is exactly a/bits.
func ipNetIs(n *net.IPNet, a netip.Addr, bits int) bool {
	if n == nil {
		return false
	}
	ones, size := n.Mask.Size()
	return ones == bits && size == 32 && addrOf(n.IP) == a
}

// addrOf converts a net.IP to a netip.Addr, IPv4 unmapped.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
