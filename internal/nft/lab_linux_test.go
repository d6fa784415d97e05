package nft

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/policy"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// The lab: one node namespace wired as the CNI plugin wires a node
// (internal/cni: routed /32 per pod, one host veth each, proxy ARP for the
// pods' gateway 169.254.1.1), a handful of pod namespaces, and a "remote"
// namespace behind the node's uplink that stands for everything the node
// reaches through the TUN device or its other interfaces: a pod of another
// node, that node, and hosts outside the cluster.
//
//	pod netns (×5)            node netns                       remote netns
//	eth0 198.19.0.x/32 ─ veth ─ rmpN (proxy ARP)                 lo: 198.19.1.10 (beta/remote, node2)
//	default via 169.254.1.1     198.19.0.x/32 dev rmpN            198.18.5.5, 198.18.6.6 (outside)
//	                            tun0 198.18.0.1/24 ──── veth ──── up0 198.18.0.2/24 (node2)
//	                            default via 198.18.0.2           198.19.0.0/24 via 198.18.0.1
//
// Every party listens on TCP 80 and 8080 and UDP 53 and 5353 (pods'
// listeners are opened inside their namespace from this process), and
// every pair with a local pod on one end is probed for real on every port.

const labBase = `
apiVersion: v1
kind: Namespace
metadata: {name: alpha, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: beta, labels: {team: b}}
---
apiVersion: v1
kind: Node
metadata: {name: node1}
status: {addresses: [{type: InternalIP, address: 198.18.0.1}]}
---
apiVersion: v1
kind: Node
metadata: {name: node2}
status: {addresses: [{type: InternalIP, address: 198.18.0.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: alpha, labels: {app: web}}
spec:
  nodeName: node1
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 80}]}]
status: {podIP: 198.19.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: alpha, labels: {app: web}}
spec:
  nodeName: node1
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 198.19.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: alpha, labels: {app: db}}
spec:
  nodeName: node1
  containers: [{name: c, image: x, ports: [{name: db, containerPort: 5353, protocol: UDP}]}]
status: {podIP: 198.19.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: beta, labels: {role: client}}
spec: {nodeName: node1, containers: [{name: c, image: x}]}
status: {podIP: 198.19.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: locked, namespace: beta, labels: {role: locked}}
spec: {nodeName: node1, containers: [{name: c, image: x}]}
status: {podIP: 198.19.0.6}
---
apiVersion: v1
kind: Pod
metadata: {name: remote, namespace: beta, labels: {role: client}}
spec:
  nodeName: node2
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 80}]}]
status: {podIP: 198.19.1.10}
`

// labPolicies: default deny for alpha's ingress; web pods take their named
// port "http" (80 on web-1, 8080 on web-2) from clients of team b, and DNS
// from part of 198.18.5.0/24; db takes its named UDP port from web pods;
// beta/locked may only send to alpha's web pods on 80-8080, to the remote
// pod network on UDP, and to 198.18.0.0/16 but 198.18.5.0/24 on TCP 80.
const labPolicies = `
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: alpha}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: alpha}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: b}}
      podSelector: {matchLabels: {role: client}}
    ports: [{port: http}]
  - from:
    - ipBlock: {cidr: 198.18.5.0/24, except: [198.18.5.128/25]}
    ports: [{port: 53, protocol: UDP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: alpha}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: db, protocol: UDP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: locked, namespace: beta}
spec:
  podSelector: {matchLabels: {role: locked}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchLabels: {app: web}}
    ports: [{port: 80, endPort: 8080}]
  - to: [{ipBlock: {cidr: 198.19.1.0/24}}]
    ports: [{protocol: UDP}]
  - to: [{ipBlock: {cidr: 198.18.0.0/16, except: [198.18.5.0/24]}}]
    ports: [{port: 80}]
`

// labTightened replaces alpha/web: clients may use 8080 only, so
// client -> web-1:80 is now denied while client -> web-2:8080 stays.
var labTightened = strings.Replace(labPolicies, "    ports: [{port: http}]\n", "    ports: [{port: 8080}]\n", 1)

// nftTableFOwner is NFT_TABLE_F_OWNER (linux/netfilter/nf_tables.h): a
// table that the kernel deletes with the netlink socket that made it.
const nftTableFOwner = 0x2

type labParty struct {
	name  string
	addr  netip.Addr
	ns    *netns.NS
	local bool // a pod of this node
	veth  string
}

type lab struct {
	t             *testing.T
	node, remote  *netns.NS
	nodeFD        int
	applier       *Applier // what the agent applies with
	parties       []*labParty
	byName        map[string]*labParty
	mu            sync.Mutex
	udpSeen       map[string]bool // payloads the UDP listeners received
	lnMu          sync.Mutex
	closers       []func()
	probeTCPPorts []int32
	probeUDPPorts []int32
}

func uniqueLabName(t *testing.T) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "rt-" + hex.EncodeToString(b[:])
}

// newLab builds the lab; t.Cleanup removes every namespace.
func newLab(t *testing.T) *lab {
	l := &lab{t: t, byName: map[string]*labParty{}, udpSeen: map[string]bool{},
		probeTCPPorts: []int32{80, 8080}, probeUDPPorts: []int32{53, 5353}}
	prefix := uniqueLabName(t)
	mkNS := func(role string) *netns.NS {
		n, err := netns.New(prefix + "-" + role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := n.Delete(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		return n
	}
	l.node, l.remote = mkNS("node"), mkNS("remote")
	f, err := os.Open(l.node.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l.nodeFD = int(f.Fd())
	l.applier = NewApplier(l.nodeFD)
	t.Cleanup(func() { // runs before the namespaces go: sockets would keep them alive
		l.lnMu.Lock()
		defer l.lnMu.Unlock()
		for _, c := range l.closers {
			c()
		}
	})

	// The node forwards; reverse-path filtering is off so that the only
	// anti-spoofing is ours.
	must(t, l.node.EnableForwarding())
	must(t, l.node.Do(func() error {
		for _, k := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+k+"/rp_filter", []byte("0\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	}))
	p := netip.MustParsePrefix
	must(t, netns.Veth(netns.End{NS: l.node, Name: "tun0", Addrs: []netip.Prefix{p("198.18.0.1/24")}},
		netns.End{NS: l.remote, Name: "up0", Addrs: []netip.Prefix{p("198.18.0.2/24")}}, 0))
	must(t, l.node.AddRoute(netns.Route{Dst: p("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.0.2")}))
	must(t, l.remote.AddRoute(netns.Route{Dst: p("198.19.0.0/24"), Via: netip.MustParseAddr("198.18.0.1")}))
	for _, a := range []string{"198.19.1.10", "198.18.5.5", "198.18.6.6"} {
		must(t, l.remote.AddLoopbackAddr(p(a+"/32")))
	}

	pods := []struct{ ref, addr string }{
		{"alpha/web-1", "198.19.0.2"}, {"alpha/web-2", "198.19.0.3"}, {"alpha/db", "198.19.0.4"},
		{"beta/client", "198.19.0.5"}, {"beta/locked", "198.19.0.6"},
	}
	for i, pd := range pods {
		pns := mkNS(fmt.Sprintf("p%d", i))
		lp := &labParty{name: pd.ref, addr: netip.MustParseAddr(pd.addr), ns: pns, local: true, veth: fmt.Sprintf("rmp%d", i)}
		l.wirePod(lp)
		l.add(lp)
	}
	l.add(&labParty{name: "beta/remote", addr: netip.MustParseAddr("198.19.1.10"), ns: l.remote})
	l.add(&labParty{name: "outside-in-block", addr: netip.MustParseAddr("198.18.5.5"), ns: l.remote})
	l.add(&labParty{name: "outside", addr: netip.MustParseAddr("198.18.6.6"), ns: l.remote})
	l.add(&labParty{name: "node1", addr: netip.MustParseAddr("198.18.0.1"), ns: l.node})
	for _, pt := range l.parties {
		l.listen(pt)
	}
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (l *lab) add(p *labParty) {
	l.parties = append(l.parties, p)
	l.byName[p.name] = p
}

// wirePod is the CNI plugin's ADD, reduced to what the rules rely on.
func (l *lab) wirePod(p *labParty) {
	must(l.t, netns.WireRoutedPod(l.node, p.ns, p.veth, p.addr))
}

// listen opens p's listeners inside its namespace: TCP servers greet and
// then echo lines, UDP servers record and echo datagrams.
func (l *lab) listen(p *labParty) {
	t := l.t
	for _, port := range l.probeTCPPorts {
		var ln net.Listener
		must(t, p.ns.Do(func() (err error) {
			ln, err = net.Listen("tcp4", netip.AddrPortFrom(p.addr, uint16(port)).String())
			return err
		}))
		l.closer(func() { ln.Close() })
		greeting := fmt.Sprintf("hello from %s:%d\n", p.name, port)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				l.closer(func() { c.Close() })
				go func() {
					defer c.Close()
					if _, err := c.Write([]byte(greeting)); err != nil {
						return
					}
					r := bufio.NewReader(c)
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						if _, err := c.Write([]byte("echo " + line)); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	for _, port := range l.probeUDPPorts {
		var pc net.PacketConn
		must(t, p.ns.Do(func() (err error) {
			pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(p.addr, uint16(port)).String())
			return err
		}))
		l.closer(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				l.mu.Lock()
				l.udpSeen[string(buf[:n])] = true
				l.mu.Unlock()
				pc.WriteTo(append([]byte("echo "), buf[:n]...), from)
			}
		}()
	}
}

func (l *lab) closer(f func()) {
	l.lnMu.Lock()
	l.closers = append(l.closers, f)
	l.lnMu.Unlock()
}

func (l *lab) seen(payload string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.udpSeen[payload]
}

// Timeouts: a probe the model expects to pass gets time to pass; one it
// expects to fail gets enough time for a packet to cross two veths many
// times over, so that a flow the rules wrongly allow is still seen.
const (
	passTimeout = 3 * time.Second
	failTimeout = 500 * time.Millisecond
)

// dialTCP connects from src to dst:port inside src's namespace, with
// src's address as the source, and reads the greeting.
func dialTCP(src, dst *labParty, port int32, timeout time.Duration) (net.Conn, *bufio.Reader, error) {
	var c net.Conn
	err := src.ns.Do(func() (err error) {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: src.addr.AsSlice()}}
		c, err = d.Dial("tcp4", netip.AddrPortFrom(dst.addr, uint16(port)).String())
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(timeout))
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("no greeting: %w", err)
	}
	if want := fmt.Sprintf("hello from %s:%d\n", dst.name, port); line != want {
		c.Close()
		return nil, nil, fmt.Errorf("greeting %q, want %q", line, want)
	}
	c.SetReadDeadline(time.Time{})
	return c, r, nil
}

// probeUDP sends a request from src to dst:port and waits for the echo,
// trying up to three times when the probe is expected to pass.
func probeUDP(src, dst *labParty, port int32, expect bool) error {
	tries, timeout := 1, failTimeout
	if expect {
		tries, timeout = 3, passTimeout/3
	}
	return src.ns.Do(func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: src.addr.AsSlice()},
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.addr, uint16(port))))
		if err != nil {
			return err
		}
		defer c.Close()
		msg := fmt.Sprintf("probe %s -> %s:%d", src.name, dst.name, port)
		buf := make([]byte, 1500)
		var lastErr error
		for range tries {
			if _, err := c.Write([]byte(msg)); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(timeout))
			n, err := c.Read(buf)
			if err == nil && string(buf[:n]) == "echo "+msg {
				return nil
			}
			lastErr = err
			if err == nil {
				lastErr = fmt.Errorf("unexpected answer %q", buf[:n])
			}
		}
		return lastErr
	})
}

// labModel is the Model of the lab's manifests plus policies.
func labModel(t *testing.T, policies string) *policy.Model {
	s := &cluster.Snapshot{}
	cluster.LoadBytes("lab.yaml", []byte(labBase+policies), s)
	s.Finish()
	return modelOf(t, s)
}

// labRuleset compiles the lab's node.
func (l *lab) ruleset(m *policy.Model) *Ruleset {
	n := Node{Name: "node1"}
	for _, p := range l.parties {
		if p.local {
			n.Pods = append(n.Pods, Pod{Ref: p.name, Veth: p.veth})
		}
	}
	rs, err := Compile(m, n)
	if err != nil {
		l.t.Fatal(err)
	}
	return rs
}

// expect is the verdict engine's answer for what this node enforces: the
// source's egress when the source is a local pod, the destination's
// ingress when the destination is. (beta/remote's own side is node2's
// business; node2 runs no rules in this lab.)
func expect(m *policy.Model, src, dst *labParty, port int32, proto corev1.Protocol) (bool, policy.Result) {
	from, err1 := m.Party(src.addr.String())
	to, err2 := m.Party(dst.addr.String())
	if err := errors.Join(err1, err2); err != nil {
		panic(err)
	}
	v := m.Verdict(policy.Query{From: from, To: to, Port: port, Protocol: proto})
	return (!src.local || v.Egress.Allowed) && (!dst.local || v.Ingress.Allowed), v
}

// matrix probes every pair with a local pod on one end, on every port, and
// fails t for every probe where the kernel and the model disagree.
func (l *lab) matrix(t *testing.T, m *policy.Model) {
	t.Helper()
	type result struct {
		what      string
		want, got bool
		err       error
		v         policy.Result
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
		sem     = make(chan struct{}, 48)
	)
	start := time.Now()
	for _, src := range l.parties {
		for _, dst := range l.parties {
			if src == dst || (!src.local && !dst.local) {
				continue
			}
			for _, pp := range []struct {
				proto corev1.Protocol
				ports []int32
			}{{corev1.ProtocolTCP, l.probeTCPPorts}, {corev1.ProtocolUDP, l.probeUDPPorts}} {
				for _, port := range pp.ports {
					want, v := expect(m, src, dst, port, pp.proto)
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer func() { <-sem; wg.Done() }()
						var err error
						if pp.proto == corev1.ProtocolTCP {
							timeout := failTimeout
							if want {
								timeout = passTimeout
							}
							var c net.Conn
							if c, _, err = dialTCP(src, dst, port, timeout); err == nil {
								c.Close()
							}
						} else {
							err = probeUDP(src, dst, port, want)
						}
						mu.Lock()
						results = append(results, result{
							what: fmt.Sprintf("%s (%s) -> %s (%s) %d/%s", src.name, src.addr, dst.name, dst.addr, port, pp.proto),
							want: want, got: err == nil, err: err, v: v})
						mu.Unlock()
					}()
				}
			}
		}
	}
	wg.Wait()
	var allowed, denied, bad int
	for _, r := range results {
		if r.got {
			allowed++
		} else {
			denied++
		}
		if r.got != r.want {
			bad++
			t.Errorf("%s: kernel %v (%v), model %v\n  egress: %s\n  ingress: %s", r.what, r.got, r.err, r.want, r.v.Egress.Reason, r.v.Ingress.Reason)
		}
	}
	t.Logf("%d probes in %v: %d passed, %d dropped, %d disagreements", len(results), time.Since(start).Round(time.Millisecond), allowed, denied, bad)
	if allowed == 0 || (denied == 0 && len(m.Policies) > 0) {
		t.Errorf("lopsided matrix: %d passed, %d dropped", allowed, denied)
	}
}

// spoof sends UDP datagrams from src's namespace with a source address
// that is not src's (IP_TRANSPARENT lets a socket send from any address),
// and reports whether the destination's listener received one.
func (l *lab) spoof(src *labParty, from netip.Addr, dst *labParty, port int32, tag string) bool {
	payload := fmt.Sprintf("spoof %s as %s %s", src.name, from, tag)
	err := src.ns.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
			})
			return errors.Join(err, serr)
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(from, 0).String())
		if err != nil {
			return err
		}
		defer pc.Close()
		to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.addr, uint16(port)))
		for range 3 {
			if _, err := pc.WriteTo([]byte(payload), to); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
	must(l.t, err)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if l.seen(payload) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (l *lab) apply(t *testing.T, rs *Ruleset) Stats {
	t.Helper()
	st, err := l.applier.Apply(rs)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPrivilegedLab holds the kernel to the verdict engine: real pods,
// real packets, every pair, every port, under several rulesets; and checks
// anti-spoofing, conntrack clean-up on a live change, and that a failed
// apply leaves the rules in force.
func TestPrivilegedLab(t *testing.T) {
	netns.RequirePrivileged(t)
	start := time.Now()
	l := newLab(t)
	t.Logf("lab built in %v", time.Since(start).Round(time.Millisecond))
	web1, db, client := l.byName["alpha/web-1"], l.byName["alpha/db"], l.byName["beta/client"]
	remote := l.byName["beta/remote"]

	// Without our table the wiring forwards spoofed packets: the check
	// below would see it if the rules did not stop them.
	t.Run("spoof-without-rules", func(t *testing.T) {
		if !l.spoof(client, web1.addr, db, 5353, "before") {
			t.Fatal("a spoofed datagram from a pod did not arrive without rules: the spoofing check proves nothing")
		}
		if !l.spoof(remote, web1.addr, db, 5353, "before") {
			t.Fatal("a datagram with a local pod's address from outside did not arrive without rules")
		}
	})

	open := labModel(t, "")
	t.Run("open", func(t *testing.T) {
		st := l.apply(t, l.ruleset(open))
		t.Logf("applied: %+v", st)
		l.matrix(t, open)
	})

	// A pod that the CNI plugin wired but the rules do not know yet (the
	// agent has not caught up) passes nothing either way, although no
	// policy isolates anything here.
	t.Run("unknown-veth", func(t *testing.T) {
		late := &labParty{name: "beta/late", addr: netip.MustParseAddr("198.19.0.9"), veth: "rmp9"}
		var err error
		if late.ns, err = netns.New(uniqueLabName(t) + "-late"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { late.ns.Delete() })
		l.wirePod(late)
		l.listen(late)
		web1 := l.byName["alpha/web-1"]
		for _, c := range []struct{ src, dst *labParty }{{late, web1}, {web1, late}, {remote, late}} {
			err := probeUDP(c.src, c.dst, 53, false)
			if err == nil || l.seen(fmt.Sprintf("probe %s -> %s:%d", c.src.name, c.dst.name, 53)) {
				t.Errorf("%s -> %s: a datagram arrived (answer: %v)", c.src.name, c.dst.name, err)
			}
		}
		// The known pods still talk.
		if err := probeUDP(client, web1, 53, true); err != nil {
			t.Errorf("client -> web-1: %v", err)
		}
	})

	pol := labModel(t, labPolicies)
	var keep1, keep2 net.Conn
	var keep1r, keep2r *bufio.Reader
	t.Run("policies", func(t *testing.T) {
		st := l.apply(t, l.ruleset(pol))
		t.Logf("applied: %+v", st)
		if !st.Incremental || st.Added == 0 {
			t.Errorf("policies on an open table: not sent as element changes: %+v", st)
		}
		// Fail closed: Apply's netlink socket is closed by now, and the
		// table does not belong to it (no owner flag), so the rules that
		// the matrix meets are what a node whose agent stopped keeps.
		conn, err := nftables.New(nftables.WithNetNSFd(l.nodeFD))
		must(t, err)
		tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
		must(t, err)
		for _, tb := range tables {
			if tb.Name == TableName && tb.Flags&nftTableFOwner != 0 {
				t.Error("the table is owned by a socket: it would vanish with the agent")
			}
		}
		l.matrix(t, pol)

		// db admits its UDP port from web pods: a pod that claims
		// web-1's address must not get in.
		if ok, _ := expect(pol, web1, db, 5353, corev1.ProtocolUDP); !ok {
			t.Fatal("the lab's policies should let web-1 reach db")
		}
		if l.spoof(client, web1.addr, db, 5353, "policies") {
			t.Error("beta/client sent as alpha/web-1 and reached alpha/db")
		}
		if l.spoof(remote, web1.addr, db, 5353, "policies") {
			t.Error("a packet with alpha/web-1's address from outside the node reached alpha/db")
		}

		// Two connections for the live change below.
		if keep1, keep1r, err = dialTCP(client, web1, 80, passTimeout); err != nil {
			t.Fatalf("client -> web-1:80: %v", err)
		}
		if keep2, keep2r, err = dialTCP(client, l.byName["alpha/web-2"], 8080, passTimeout); err != nil {
			t.Fatalf("client -> web-2:8080: %v", err)
		}
	})
	if keep1 == nil || keep2 == nil {
		return // policies failed, or -run left it out: the rest builds on it
	}
	t.Cleanup(func() { keep1.Close(); keep2.Close() })

	tight := labModel(t, labTightened)
	t.Run("live-change", func(t *testing.T) {
		if ok, _ := expect(tight, client, web1, 80, corev1.ProtocolTCP); ok {
			t.Fatal("the tightened policies should deny client -> web-1:80")
		}
		// Both connections carry data before the change.
		for _, c := range []struct {
			c net.Conn
			r *bufio.Reader
		}{{keep1, keep1r}, {keep2, keep2r}} {
			if err := echo(c.c, c.r, "before", passTimeout); err != nil {
				t.Fatalf("before the change: %v", err)
			}
		}
		st := l.apply(t, l.ruleset(tight))
		t.Logf("applied: %+v", st)
		if !st.Incremental {
			t.Errorf("a policy edit was not sent as element changes: %+v", st)
		}
		if st.ConntrackDeleted == 0 {
			t.Error("no conntrack entry deleted")
		}
		if err := echo(keep1, keep1r, "after", 2*failTimeout); err == nil {
			t.Error("client -> web-1:80, established before the change, still carries data after it")
		}
		if err := echo(keep2, keep2r, "after", passTimeout); err != nil {
			t.Errorf("client -> web-2:8080 is still allowed, but the connection broke: %v", err)
		}
		l.matrix(t, tight)
	})

	// The applier's memory of the table is checked: a table removed behind
	// its back is replaced whole, even when nothing changed since.
	t.Run("table-removed-behind", func(t *testing.T) {
		must(t, Remove(l.nodeFD, TableName))
		st := l.apply(t, l.ruleset(tight))
		t.Logf("applied: %+v", st)
		if st.Incremental || st.Fallback == "" {
			t.Errorf("the table was gone, yet no whole table was sent: %+v", st)
		}
		l.matrix(t, tight)
	})

	// Element changes the kernel refuses (two new ranges that overlap, in
	// a pipapo set) change nothing, and the next apply is a whole table.
	t.Run("failed-changes", func(t *testing.T) {
		bad := l.ruleset(tight)
		var nets *Set
		for _, s := range bad.Sets {
			if s.Name == "ingress_from_nets" {
				nets = s
			}
		}
		if nets == nil {
			t.Fatal("no set ingress_from_nets")
		}
		el := func(lo, hi string) Element {
			return Element{Key: []Datum{Num(1), AddrRange(netip.MustParseAddr(lo), netip.MustParseAddr(hi)), Num(6), Num(1)}}
		}
		nets.Elements = append(nets.Elements, el("192.0.2.0", "192.0.2.100"), el("192.0.2.50", "192.0.2.200"))
		st, err := l.applier.Apply(bad)
		if err == nil {
			t.Fatalf("overlapping ranges were accepted: %+v", st)
		}
		t.Logf("refused as expected: %v (%+v)", err, st)
		l.matrix(t, tight)
		st = l.apply(t, l.ruleset(tight))
		if st.Incremental {
			t.Errorf("after refused changes, the applier still trusts its memory: %+v", st)
		}
		l.matrix(t, tight)
	})

	t.Run("failed-apply", func(t *testing.T) {
		bad := l.ruleset(pol)
		// A set name longer than the kernel's 255 bytes: the batch is
		// refused after the old table's deletion was queued in it.
		bad.Sets = append(bad.Sets, &Set{Name: strings.Repeat("x", 300), Key: []Type{TypeIPv4}})
		if _, err := Apply(l.nodeFD, bad); err == nil {
			t.Fatal("Apply of a ruleset the kernel must refuse succeeded")
		} else {
			t.Logf("refused as expected: %v", err)
		}
		// The tightened rules are still in force, whole.
		l.matrix(t, tight)
	})

	t.Run("remove", func(t *testing.T) {
		locked := l.byName["beta/locked"]
		if ok, _ := expect(tight, locked, db, 5353, corev1.ProtocolUDP); ok {
			t.Fatal("the lab's policies should deny locked -> db")
		}
		if err := Remove(l.nodeFD, TableName); err != nil {
			t.Fatal(err)
		}
		if err := probeUDP(locked, db, 5353, true); err != nil {
			t.Errorf("after Remove, locked -> db: %v", err)
		}
		if err := Remove(l.nodeFD, TableName); err != nil {
			t.Errorf("Remove of a table that is gone: %v", err)
		}
	})
	t.Logf("lab total %v", time.Since(start).Round(time.Millisecond))
}

// echo sends a line on c and waits for its echo.
func echo(c net.Conn, r *bufio.Reader, msg string, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "echo "+msg+"\n" {
		return fmt.Errorf("got %q", line)
	}
	return nil
}
