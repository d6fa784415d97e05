// Command l7-bench measures what the node's L7 authorization proxy
// (internal/l7) costs an HTTP/1.1 workload: wrk in a client pod against a
// server pod, once on a port the node only forwards and once on a port
// steered through the proxy (allow-all Decider), side by side in one run.
//
//	client pod  eth0 198.19.9.2/32 ─ rmpcli ┐
//	                                        node ── up0 198.18.9.1/24 ── up0 198.18.9.2/24  uplink
//	server pod  eth0 198.19.9.3/32 ─ rmpsrv ┘ default via 198.18.9.2
//
// The server (port 8080 direct, port 80 steered) and the proxy run in this
// process, in their namespaces; wrk runs in the client's through `ip
// netns exec`. Needs root and wrk (Debian package wrk). Everything it
// makes is removed when it ends, also on failure or SIGINT.
//
//	l7-bench -duration 10s -connections 32 -threads 1
//
// Not part of the rampart binary; benchmark support only.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rampartnet/rampart/internal/l7"
	"github.com/rampartnet/rampart/internal/netns"
)

var (
	clientAddr = netip.MustParseAddr("198.19.9.2")
	serverAddr = netip.MustParseAddr("198.19.9.3")
	proxyAddr  = netip.MustParseAddrPort("127.0.0.1:15006")
)

func main() { os.Exit(run()) }

func run() int {
	duration := flag.Duration("duration", 10*time.Second, "how long each wrk run lasts")
	conns := flag.Int("connections", 32, "wrk connections (-c)")
	threads := flag.Int("threads", 1, "wrk threads (-t)")
	wrk := flag.String("wrk", "wrk", "the wrk binary")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (server and proxy) during the proxied run to `file`")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "l7-bench: needs root to make network namespaces")
		return 1
	}
	if _, err := exec.LookPath(*wrk); err != nil {
		fmt.Fprintf(os.Stderr, "l7-bench: %s not found (Debian package wrk; make bench-l7 installs it)\n", *wrk)
		return 1
	}
	b := &bench{}
	defer b.close()
	// SIGINT and SIGTERM end the runs; the deferred close still runs.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.build(); err != nil {
		fmt.Fprintln(os.Stderr, "l7-bench:", err)
		return 1
	}
	fmt.Printf("machine: %d CPUs, %s; wrk -t%d -c%d -d%v, HTTP/1.1 GET of a 2-byte body\n",
		runtime.NumCPU(), cpuModel(), *threads, *conns, *duration)
	var results [2]result
	for i, c := range []struct {
		name string
		port uint16
	}{{"direct (forwarded)", 8080}, {"through the proxy", 80}} {
		if *cpuProfile != "" && c.port == 80 {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				fmt.Fprintln(os.Stderr, "l7-bench:", err)
				return 1
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "l7-bench:", err)
				return 1
			}
		}
		r, err := b.wrk(ctx, *wrk, *threads, *conns, *duration, netip.AddrPortFrom(serverAddr, c.port))
		if *cpuProfile != "" && c.port == 80 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "l7-bench: %s: %v\n", c.name, err)
			return 1
		}
		r.name = c.name
		results[i] = r
	}
	if st := b.proxy.Stats(); st.Allowed == 0 || st.UpstreamErrors != 0 {
		fmt.Fprintf(os.Stderr, "l7-bench: proxy stats %+v: the steered run did not go through the proxy cleanly\n", st)
		return 1
	}
	fmt.Printf("%-20s %12s %10s %10s %8s\n", "", "requests/s", "p50", "p99", "errors")
	for _, r := range results {
		fmt.Printf("%-20s %12.0f %10v %10v %8d\n", r.name, r.rps, r.p50, r.p99, r.errors)
	}
	d, p := results[0], results[1]
	fmt.Printf("ratio proxy/direct:  requests/s %.2f, p50 %.2f, p99 %.2f\n",
		p.rps/d.rps, float64(p.p50)/float64(d.p50), float64(p.p99)/float64(d.p99))
	return 0
}

type bench struct {
	nss      []*netns.NS
	node     *netns.NS
	client   *netns.NS
	closers  []func()
	proxy    *l7.Proxy
	steering *l7.Steering
}

func (b *bench) newNS(name, role string) (*netns.NS, error) {
	n, err := netns.New(name + "-" + role)
	if err != nil {
		return nil, err
	}
	b.nss = append(b.nss, n)
	return n, nil
}

func (b *bench) build() error {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	name := "l7b-" + hex.EncodeToString(rnd[:])
	node, err := b.newNS(name, "n")
	if err != nil {
		return err
	}
	b.node = node
	if b.client, err = b.newNS(name, "c"); err != nil {
		return err
	}
	server, err := b.newNS(name, "s")
	if err != nil {
		return err
	}
	uplink, err := b.newNS(name, "u")
	if err != nil {
		return err
	}
	if err := node.EnableForwarding(); err != nil {
		return err
	}
	// Proxy ARP answers for the pods' gateway only if the node routes it
	// out of another interface: an uplink with the default route.
	if err := netns.Veth(netns.End{NS: node, Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.9.1/24")}},
		netns.End{NS: uplink, Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.9.2/24")}}, 0); err != nil {
		return err
	}
	if err := node.AddRoute(netns.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.9.2")}); err != nil {
		return err
	}
	if err := netns.WireRoutedPod(node, b.client, "rmpcli", clientAddr); err != nil {
		return err
	}
	if err := netns.WireRoutedPod(node, server, "rmpsrv", serverAddr); err != nil {
		return err
	}

	for _, port := range []string{"80", "8080"} {
		var l net.Listener
		if err := server.Do(func() (err error) {
			l, err = net.Listen("tcp4", net.JoinHostPort(serverAddr.String(), port))
			return err
		}); err != nil {
			return fmt.Errorf("server: %w", err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		b.closers = append(b.closers, func() { srv.Close() })
	}

	var l net.Listener
	if err := node.Do(func() (err error) {
		l, err = l7.ListenTransparent(context.Background(), proxyAddr)
		return err
	}); err != nil {
		return err
	}
	p, err := l7.NewProxy(l7.Config{
		Decider: l7.DeciderFunc(func(l7.Request) l7.Decision { return l7.Decision{Allow: true, Reason: "bench/allow-all"} }),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The upstream sockets must be opened in the node's namespace;
		// in the agent, the process already is there.
		Dial: func(ctx context.Context, src netip.Addr, dst netip.AddrPort) (c net.Conn, err error) {
			err = node.Do(func() (err error) {
				c, err = l7.DialTransparent(ctx, src, dst)
				return err
			})
			return c, err
		},
	})
	if err != nil {
		l.Close()
		return err
	}
	b.proxy = p
	go p.Serve(l)
	b.closers = append(b.closers, func() { p.Close() })

	if b.steering, err = l7.NewSteering(proxyAddr); err != nil {
		return err
	}
	b.closers = append(b.closers, func() {
		if err := node.Do(b.steering.Remove); err != nil {
			fmt.Fprintln(os.Stderr, "l7-bench: remove steering:", err)
		}
	})
	if err := node.Do(b.steering.Install); err != nil {
		return err
	}
	return node.Do(func() error {
		return b.steering.SetTargets([]netip.AddrPort{netip.AddrPortFrom(serverAddr, 80)})
	})
}

// close undoes build in reverse, whatever it got to.
func (b *bench) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	for i := len(b.nss) - 1; i >= 0; i-- {
		if err := b.nss[i].Delete(); err != nil {
			fmt.Fprintln(os.Stderr, "l7-bench:", err)
		}
	}
}

type result struct {
	name     string
	rps      float64
	p50, p99 time.Duration
	errors   int
}

var (
	reRPS     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reErrors  = regexp.MustCompile(`(?m)^\s+(?:Socket errors: .*|Non-2xx or 3xx responses: \d+)$`)
	reNumbers = regexp.MustCompile(`\d+`)
)

// wrk runs wrk in the client pod against dst and parses its report.
func (b *bench) wrk(ctx context.Context, bin string, threads, conns int, d time.Duration, dst netip.AddrPort) (result, error) {
	cmd := b.client.Command(ctx, bin, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", "http://"+dst.String()+"/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	s := string(out)
	var r result
	m := reRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk's report:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range reLatency.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		lat := time.Duration(v * float64(unit)).Round(time.Microsecond)
		if m[1] == "50" {
			r.p50 = lat
		} else {
			r.p99 = lat
		}
	}
	if r.p50 == 0 || r.p99 == 0 {
		return r, fmt.Errorf("no latency distribution in wrk's report:\n%s", s)
	}
	for _, line := range reErrors.FindAllString(s, -1) {
		for _, n := range reNumbers.FindAllString(line, -1) {
			v, _ := strconv.Atoi(n)
			r.errors += v
		}
	}
	return r, nil
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
