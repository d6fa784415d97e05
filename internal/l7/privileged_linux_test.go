package l7

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rampartnet/rampart/internal/netns"
)

// The kernel half for real: a node namespace with two pods wired as
// internal/cni wires them (routed /32 behind an rmp* veth), the proxy and
// the steering in the node, a Go HTTP server in the server pod that
// answers with the remote address it sees.
//
//	client pod  eth0 198.19.7.2/32 ─ rmpcli ┐
//	                                        node ── up0 198.18.7.1/24 ── up0 198.18.7.2/24  uplink
//	server pod  eth0 198.19.7.3/32 ─ rmpsrv ┘ default via 198.18.7.2
//
// The node forwards, runs the proxy on 127.0.0.1:15006, has table inet
// rampart_l7 steering 198.19.7.3:80 (not 198.19.7.3:8080), and drops
// what conntrack finds invalid on input and output (dropInvalid). The uplink is
// there because proxy ARP answers for the pods' gateway 169.254.1.1 only
// if the node routes it out of another interface (as bench/nft's lab).
var (
	labClient = netip.MustParseAddr("198.19.7.2")
	labServer = netip.MustParseAddr("198.19.7.3")
	labProxy  = netip.MustParseAddrPort("127.0.0.1:15006")
)

type l7Lab struct {
	t                            *testing.T
	node, client, server, uplink *netns.NS
	proxy                        *Proxy
	steering                     *Steering
	// forcePort, when not 0, is the source port of the proxy's next
	// upstream connections (instead of one the kernel picks).
	forcePort atomic.Uint32

	mu    sync.Mutex
	hits  []string                 // "port method remote" per request the server got
	conns map[string]*atomic.Int32 // connections the server accepted, by port
}

func newL7Lab(t *testing.T) *l7Lab {
	netns.RequirePrivileged(t)
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "l7-" + hex.EncodeToString(rnd[:])
	lab := &l7Lab{t: t, conns: map[string]*atomic.Int32{"80": {}, "8080": {}}}
	for _, x := range []struct {
		dst  **netns.NS
		role string
	}{{&lab.node, "n"}, {&lab.client, "c"}, {&lab.server, "s"}, {&lab.uplink, "u"}} {
		n, err := netns.New(name + "-" + x.role)
		if err != nil {
			t.Fatal(err)
		}
		// Deleted last (cleanups run in reverse): servers, proxy and
		// steering are stopped first, so nothing keeps them alive.
		t.Cleanup(func() {
			if err := n.Delete(); err != nil {
				t.Errorf("delete namespace: %v", err)
			}
			if _, err := os.Stat(n.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("namespace %s left behind", n.Name)
			}
		})
		*x.dst = n
	}
	must(t, lab.node.EnableForwarding())
	must(t, netns.Veth(netns.End{NS: lab.node, Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.7.1/24")}},
		netns.End{NS: lab.uplink, Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.7.2/24")}}, 0))
	must(t, lab.node.AddRoute(netns.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.7.2")}))
	must(t, lab.node.Do(dropInvalid))
	must(t, netns.WireRoutedPod(lab.node, lab.client, "rmpcli", labClient))
	must(t, netns.WireRoutedPod(lab.node, lab.server, "rmpsrv", labServer))

	// The server pod: ports 80 (steered) and 8080 (not).
	for _, port := range []string{"80", "8080"} {
		var l net.Listener
		must(t, lab.server.Do(func() (err error) {
			l, err = net.Listen("tcp4", net.JoinHostPort(labServer.String(), port))
			return err
		}))
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				lab.mu.Lock()
				lab.hits = append(lab.hits, port+" "+r.Method+" "+r.RemoteAddr)
				lab.mu.Unlock()
				io.WriteString(w, r.RemoteAddr)
			}),
			ConnState: func(_ net.Conn, st http.ConnState) {
				if st == http.StateNew {
					lab.conns[port].Add(1)
				}
			},
			ReadHeaderTimeout: 10 * time.Second,
		}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}

	// The proxy in the node: allow POST, deny GET.
	var l net.Listener
	must(t, lab.node.Do(func() (err error) {
		l, err = ListenTransparent(context.Background(), labProxy)
		return err
	}))
	p, err := NewProxy(Config{
		Decider: DeciderFunc(func(r Request) Decision {
			if r.Method == http.MethodPost {
				return Decision{Allow: true, Reason: "lab/allow-post"}
			}
			return Decision{Reason: "lab/deny-" + r.Method}
		}),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dial:          lab.dial,
		HeaderTimeout: 2 * time.Second,
	})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	lab.proxy = p
	served := make(chan error, 1)
	go func() { served <- p.Serve(l) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	lab.steering, err = NewSteering(labProxy)
	must(t, err)
	t.Cleanup(func() {
		if err := lab.node.Do(lab.steering.Remove); err != nil {
			t.Errorf("remove steering: %v", err)
		}
	})
	must(t, lab.node.Do(lab.steering.Install))
	must(t, lab.node.Do(func() error {
		return lab.steering.SetTargets([]netip.AddrPort{netip.AddrPortFrom(labServer, 80)})
	}))
	return lab
}

// dropInvalid hardens the node as many are: packets that conntrack finds
// invalid are dropped on input and output, where the proxy's two legs
// pass. A proxied connection must not produce any.
func dropInvalid() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "l7lab_hardening"})
	accept := nftables.ChainPolicyAccept
	for _, hook := range []*nftables.ChainHook{nftables.ChainHookInput, nftables.ChainHookOutput} {
		ch := c.AddChain(&nftables.Chain{Name: fmt.Sprint("hook", *hook), Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitINVALID), Xor: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	return c.Flush()
}

// dial is the proxy's upstream dial, in the node's namespace.
func (lab *l7Lab) dial(ctx context.Context, src netip.Addr, dst netip.AddrPort) (c net.Conn, err error) {
	err = lab.node.Do(func() (err error) {
		port := lab.forcePort.Load()
		if port == 0 {
			c, err = DialTransparent(ctx, src, dst)
			return err
		}
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(port))), Control: transparent(false)}
		c, err = d.DialContext(ctx, "tcp4", dst.String())
		return err
	})
	return c, err
}

// request sends one request from the client pod, from source port sport
// (0: any), on a connection of its own.
func (lab *l7Lab) request(method string, dst netip.AddrPort, sport int) (*http.Response, string, error) {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (c net.Conn, err error) {
			err = lab.client.Do(func() (err error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: labClient.AsSlice(), Port: sport}}
				c, err = d.DialContext(ctx, "tcp4", addr)
				return err
			})
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+dst.String()+"/lab", strings.NewReader("payload"))
	if err != nil {
		return nil, "", err
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func (lab *l7Lab) served() []string {
	lab.mu.Lock()
	defer lab.mu.Unlock()
	return slices.Clone(lab.hits)
}

func TestPrivilegedL7Proxy(t *testing.T) {
	lab := newL7Lab(t)
	steered := netip.AddrPortFrom(labServer, 80)

	// POST is allowed, and reaches the server from the client's address.
	res, body, err := lab.request("POST", steered, 0)
	if err != nil {
		t.Fatalf("POST %s: %v", steered, err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(body, labClient.String()+":") {
		t.Fatalf("POST %s: %d %q; want 200 and the server seeing %s", steered, res.StatusCode, body, labClient)
	}
	if st := lab.proxy.Stats(); st.Allowed != 1 {
		t.Fatalf("the request did not go through the proxy: %+v", st)
	}

	// GET is denied by the proxy; the server sees nothing.
	hits, conns := len(lab.served()), lab.conns["80"].Load()
	res, body, err = lab.request("GET", steered, 0)
	if err != nil {
		t.Fatalf("GET %s: %v", steered, err)
	}
	if res.StatusCode != 403 || res.Header.Get(HeaderDenied) != "lab/deny-GET" {
		t.Fatalf("GET %s: %d %v %q; want 403 with %s", steered, res.StatusCode, res.Header, body, HeaderDenied)
	}
	if len(lab.served()) != hits || lab.conns["80"].Load() != conns {
		t.Fatalf("the server saw the denied GET: %v", lab.served())
	}

	// Bytes that are not HTTP get nothing back, and never reach the
	// server.
	refused := lab.proxy.Stats().Refused
	var got []byte
	err = lab.client.Do(func() error {
		c, err := net.DialTimeout("tcp4", steered.String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("\x16\x03\x01\x00\x10not http at all\r\n\r\n")); err != nil {
			return err
		}
		got, err = io.ReadAll(c)
		if errors.Is(err, syscall.ECONNRESET) {
			err = nil // closed with unread data: a reset is a close too
		}
		return err
	})
	if err != nil || len(got) != 0 {
		t.Fatalf("raw bytes to %s: got %q, %v; want the connection closed without a byte", steered, got, err)
	}
	waitFor(t, func() bool { return lab.proxy.Stats().Refused == refused+1 }, "the proxy to count the refused connection")
	if lab.conns["80"].Load() != conns {
		t.Fatalf("the server saw a connection for the raw bytes")
	}

	// Another port of the same pod is not steered: GET reaches it
	// directly, and the proxy knows nothing of it.
	before := lab.proxy.Stats()
	other := netip.AddrPortFrom(labServer, 8080)
	res, body, err = lab.request("GET", other, 0)
	if err != nil || res.StatusCode != 200 || !strings.HasPrefix(body, labClient.String()+":") {
		t.Fatalf("GET %s (not steered): %v %v %q", other, res, err, body)
	}
	if lab.proxy.Stats() != before {
		t.Fatalf("the proxy saw traffic to %s: %+v, was %+v", other, lab.proxy.Stats(), before)
	}
}

// TestPrivilegedL7SameSourcePort makes the proxy's upstream connection use
// the caller's own source port, so that both legs of the proxied
// connection have the same addresses and ports: the conntrack zone of the
// caller's leg keeps them apart, one entry each, where without it both
// legs would share one entry (the upstream SYN "ignored" in an
// established entry, then a resync on its SYN/ACK).
func TestPrivilegedL7SameSourcePort(t *testing.T) {
	lab := newL7Lab(t)
	const sport = 40123
	lab.forcePort.Store(sport)
	res, body, err := lab.request("POST", netip.AddrPortFrom(labServer, 80), sport)
	if err != nil {
		t.Fatalf("POST with the same source port on both legs: %v", err)
	}
	want := fmt.Sprintf("%s:%d", labClient, sport)
	if res.StatusCode != 200 || body != want {
		t.Fatalf("POST: %d %q; want 200 and the server seeing %s", res.StatusCode, body, want)
	}
	var zones []uint16
	must(t, lab.node.Do(func() error {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		if err != nil {
			return fmt.Errorf("list conntrack: %w", err)
		}
		for _, f := range flows {
			if f.Forward.SrcIP.Equal(labClient.AsSlice()) && f.Forward.SrcPort == sport && f.Forward.DstPort == 80 {
				zones = append(zones, f.Zone)
			}
		}
		return nil
	}))
	slices.Sort(zones)
	if !slices.Equal(zones, []uint16{0, ConntrackZone}) {
		t.Errorf("conntrack entries of %s:%d -> %s:80 in zones %v; want one per leg: the caller's in zone %d, the upstream's in 0",
			labClient, sport, labServer, zones, ConntrackZone)
	}
}

// TestPrivilegedL7Steering checks the steering's own contract: Install is
// idempotent and keeps the targets, SetTargets replaces them, a steered
// port without a listening proxy resets connections (fail closed), and
// Remove leaves nothing and unsteers.
func TestPrivilegedL7Steering(t *testing.T) {
	lab := newL7Lab(t)
	s := lab.steering
	steered := netip.AddrPortFrom(labServer, 80)
	other := netip.AddrPortFrom(labServer, 8080)

	must(t, lab.node.Do(s.Install))
	must(t, lab.node.Do(s.Install))
	lab.checkKernel(true, []netip.AddrPort{steered})

	targets := []netip.AddrPort{other, steered, netip.MustParseAddrPort("198.19.7.9:443"), steered}
	must(t, lab.node.Do(func() error { return s.SetTargets(targets) }))
	lab.checkKernel(true, []netip.AddrPort{steered, other, netip.MustParseAddrPort("198.19.7.9:443")})
	if res, _, err := lab.request("GET", other, 0); err != nil || res.StatusCode != 403 {
		t.Fatalf("GET %s once steered: %v %v; want 403 from the proxy", other, res, err)
	}
	// A new Steering (a restarted agent) adopts what the table holds, and
	// its Install keeps it.
	adopted, err := NewSteering(lab.steering.proxy)
	if err != nil {
		t.Fatal(err)
	}
	must(t, lab.node.Do(adopted.Adopt))
	must(t, lab.node.Do(adopted.Install))
	lab.checkKernel(true, []netip.AddrPort{steered, other, netip.MustParseAddrPort("198.19.7.9:443")})
	if got := adopted.Targets(); len(got) != 3 {
		t.Errorf("adopted targets %v", got)
	}
	must(t, lab.node.Do(func() error { return s.SetTargets([]netip.AddrPort{steered}) }))
	lab.checkKernel(true, []netip.AddrPort{steered})
	if res, _, err := lab.request("GET", other, 0); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s once unsteered: %v %v; want 200 from the server", other, res, err)
	}
	if err := lab.node.Do(func() error { return s.SetTargets([]netip.AddrPort{netip.MustParseAddrPort("[fd00::1]:80")}) }); err == nil {
		t.Errorf("SetTargets took an IPv6 target")
	}
	if got := s.Targets(); !slices.Equal(got, []netip.AddrPort{steered}) {
		t.Errorf("a refused SetTargets changed the targets: %v", got)
	}

	// Fail closed: with the proxy gone and the table in place, a steered
	// connection is reset and never reaches the server.
	lab.proxy.Close()
	conns := lab.conns["80"].Load()
	_, _, err = lab.request("POST", steered, 0)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("POST %s without a proxy: %v; want the connection refused (reset)", steered, err)
	}
	if lab.conns["80"].Load() != conns {
		t.Fatalf("the server saw a connection while its port was steered to no proxy")
	}

	must(t, lab.node.Do(s.Remove))
	must(t, lab.node.Do(s.Remove))
	lab.checkKernel(false, nil)
	res, body, err := lab.request("GET", steered, 0)
	if err != nil || res.StatusCode != 200 || !strings.HasPrefix(body, labClient.String()+":") {
		t.Fatalf("GET %s after Remove: %v %v %q; want the server's answer", steered, res, err, body)
	}
}

// checkKernel compares the node's table, rule and route with what they
// should be (installed or not, and the set's elements).
func (lab *l7Lab) checkKernel(installed bool, want []netip.AddrPort) {
	t := lab.t
	t.Helper()
	err := lab.node.Do(func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		_, terr := c.ListTableOfFamily(Table, nftables.TableFamilyINet)
		if (terr == nil) != installed {
			return fmt.Errorf("table inet %s: installed=%v, listing: %v", Table, installed, terr)
		}
		if installed {
			set, err := c.GetSetByName(table, TargetsSet)
			if err != nil {
				return err
			}
			els, err := c.GetSetElements(set)
			if err != nil {
				return err
			}
			var got []netip.AddrPort
			for _, e := range els {
				k := e.Key
				got = append(got, netip.AddrPortFrom(netip.AddrFrom4([4]byte(k[:4])), uint16(k[4])<<8|uint16(k[5])))
			}
			slices.SortFunc(got, netip.AddrPort.Compare)
			if !slices.Equal(got, want) {
				return fmt.Errorf("set %s holds %v, want %v", TargetsSet, got, want)
			}
			for chain, n := range map[string]int{"prerouting_raw": 1, "output_raw": 1, "prerouting": 3} {
				rules, err := c.GetRules(table, &nftables.Chain{Name: chain, Table: table})
				if err != nil {
					return fmt.Errorf("chain %s: %w", chain, err)
				}
				if len(rules) != n {
					return fmt.Errorf("chain %s has %d rules, want %d (Install must replace, not add)", chain, len(rules), n)
				}
			}
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		rules, err := h.RuleList(unix.AF_INET)
		if err != nil {
			return err
		}
		n := 0
		for _, r := range rules {
			if r.Table == RouteTable {
				n++
				if r.Mark != Mark || r.Mask == nil || *r.Mask != Mark || r.Priority != RulePriority {
					return fmt.Errorf("rule %v, want fwmark %#x/%#x priority %d", r, Mark, Mark, RulePriority)
				}
			}
		}
		if want := map[bool]int{true: 1, false: 0}[installed]; n != want {
			return fmt.Errorf("%d rules to table %d, want %d", n, RouteTable, want)
		}
		routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: RouteTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		if want := map[bool]int{true: 1, false: 0}[installed]; len(routes) != want {
			return fmt.Errorf("table %d has routes %v, want %d", RouteTable, routes, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
