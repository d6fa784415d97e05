// Command nft-bench measures NetworkPolicy enforcement in nftables at
// cluster scale on one node (issue 5), as the agent does it: build the
// policy Model from a snapshot, compile the node's Ruleset (internal/nft),
// apply it in one netlink batch.
//
//  1. sync: from an empty, fresh network namespace, for the whole cluster
//     (default 5,000 pods, 50 namespaces, 1,000 policies, 100 pods local,
//     10 pods per workload; cluster.go says how the cluster is made);
//  2. change: one policy edited (bench/bench-in loses or regains TCP 80):
//     model, compile and apply, and the time from the start of the change
//     until a TCP probe from bench/client to bench/server:80 flips (a
//     connect every millisecond, 5 ms timeout, from a process of its own,
//     this binary with -prober, in the client pod's namespace);
//  3. churn: one pod added or removed, local to the node or remote, from
//     the full ruleset in force;
//  4. throughput (-iperf-rounds > 0): iperf3 TCP, one stream, from
//     bench/client to bench/server on the node (routed /32 veths, as
//     internal/cni wires pods), with the full ruleset in force, with no
//     table, and with a table that only turns conntrack on (one
//     "ct state established,related accept" rule), interleaved.
//
// Every figure is the median (and min–max) of -reps repetitions (of
// -iperf-rounds for throughput). It makes four network namespaces (node,
// its uplink, client pod, server pod) plus one fresh namespace per sync
// repetition, named rbn-<pid>-..., and removes them all before it exits;
// iperf3 and prober processes are killed by PID. Root only; traffic stays
// inside those namespaces, on 198.18.0.0/24 and 198.19.0.0/24. -trace
// prints each policy change's probe outcomes; -compile-only the ruleset's
// size per set, without touching the kernel; -only runs some parts.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/nft"
	"github.com/rampartnet/rampart/internal/policy"
	"golang.org/x/sys/unix"
)

func main() { os.Exit(run()) }

type config struct {
	cluster      clusterOpts
	reps         int
	iperfRounds  int
	iperfSeconds int
	compileOnly  bool
	trace        bool
	only         string
}

func run() int {
	var c config
	flag.IntVar(&c.cluster.pods, "pods", 5000, "pods in the cluster")
	flag.IntVar(&c.cluster.namespaces, "namespaces", 50, "namespaces")
	flag.IntVar(&c.cluster.policies, "policies", 1000, "NetworkPolicies")
	flag.IntVar(&c.cluster.local, "local", 100, "pods on the node under test (besides bench/client and bench/server)")
	flag.IntVar(&c.cluster.replicas, "replicas", 10, "pods per generated workload (same labels and ports)")
	flag.Int64Var(&c.cluster.seed, "seed", 1, "generator seed")
	flag.IntVar(&c.reps, "reps", 7, "repetitions of each timed step")
	flag.IntVar(&c.iperfRounds, "iperf-rounds", 3, "iperf3 rounds (each: with and without the table); 0 skips throughput")
	flag.IntVar(&c.iperfSeconds, "iperf-seconds", 10, "seconds per iperf3 run")
	flag.BoolVar(&c.compileOnly, "compile-only", false, "print the ruleset's size per set and stop (no namespaces)")
	flag.BoolVar(&c.trace, "trace", false, "print each policy change's probe outcomes as runs, in ms from the start of the change")
	flag.StringVar(&c.only, "only", "", "run only these parts, comma-separated: sync, change, churn, throughput (default: all)")
	probeMode := flag.Bool("prober", false, "internal: be the TCP prober (in the client pod's namespace)")
	flag.Parse()
	if *probeMode {
		return prober()
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "nft-bench: needs root (network namespaces, nftables)")
		return 2
	}
	b := &bench{cfg: c, prefix: fmt.Sprintf("rbn-%d", os.Getpid())}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := b.run(ctx)
	if cerr := b.cleanup(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nft-bench:", err)
		return 1
	}
	return 0
}

type bench struct {
	cfg    config
	prefix string

	namespaces []*netns.NS
	closers    []func()
	procs      []*exec.Cmd

	snap   *cluster.Snapshot
	veths  map[string]string // pod ref → host veth name, stable across changes
	node   *netns.NS
	nodeFD *os.File
	client *netns.NS
	server *netns.NS
	// appliers, one per namespace (by file descriptor), as an agent keeps
	// one: after the first whole table, changes go as element changes.
	appliers map[int]*nft.Applier
}

func (b *bench) newNS(role string) (*netns.NS, error) {
	n, err := netns.New(b.prefix + "-" + role)
	if err != nil {
		return nil, err
	}
	b.namespaces = append(b.namespaces, n)
	return n, nil
}

func (b *bench) deleteNS(n *netns.NS) error {
	b.namespaces = slices.DeleteFunc(b.namespaces, func(x *netns.NS) bool { return x == n })
	return n.Delete()
}

// cleanup kills what the run started (by PID), closes its sockets (they
// would keep namespaces alive) and deletes its namespaces.
func (b *bench) cleanup() error {
	var errs []error
	for _, p := range b.procs {
		if p.Process != nil {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}
	for _, c := range b.closers {
		c()
	}
	if b.nodeFD != nil {
		b.nodeFD.Close()
	}
	for _, n := range b.namespaces {
		if err := n.Delete(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func (b *bench) run(ctx context.Context) error {
	c := b.cfg
	fmt.Printf("# nft-bench %s: %d pods (%d replicas per workload; %d on %s + 2 bench pods), %d namespaces, %d policies, seed %d, %d reps; loadavg %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), c.cluster.pods, c.cluster.replicas, c.cluster.local, nodeName,
		c.cluster.namespaces+1, c.cluster.policies, c.cluster.seed, c.reps, loadavg())
	snap, err := generate(c.cluster)
	if err != nil {
		return err
	}
	b.snap = snap
	m, err := model(snap)
	if err != nil {
		return err
	}
	b.veths = map[string]string{"bench/client": "rmpc", "bench/server": "rmps"}
	for _, e := range m.Endpoints {
		if e.Node == nodeName && b.veths[e.Ref()] == "" {
			b.veths[e.Ref()] = fmt.Sprintf("rmp%d", len(b.veths))
		}
	}
	rs, err := b.compile(m)
	if err != nil {
		return err
	}
	fmt.Printf("# ruleset: %d local pods, %d profiles, %d classes, %d elements\n",
		len(rs.Pods), len(rs.Profiles), len(rs.Classes), elements(rs))
	if c.compileOnly {
		for _, s := range rs.Sets {
			fmt.Printf("#   %-18s %8d elements\n", s.Name, len(s.Elements))
		}
		return nil
	}

	parts := map[string]bool{}
	for _, p := range strings.Split(c.only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	all := c.only == ""
	if all || parts["sync"] {
		if err := b.sync(ctx); err != nil {
			return err
		}
	}
	if err := b.wire(); err != nil {
		return err
	}
	if all || parts["change"] {
		if err := b.change(ctx); err != nil {
			return err
		}
	}
	if all || parts["churn"] {
		if err := b.churn(ctx); err != nil {
			return err
		}
	}
	if (all || parts["throughput"]) && c.iperfRounds > 0 {
		if err := b.throughput(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("# done %s; loadavg %s\n", time.Now().UTC().Format("15:04 UTC"), loadavg())
	return nil
}

func elements(rs *nft.Ruleset) int {
	n := 0
	for _, s := range rs.Sets {
		n += len(s.Elements)
	}
	return n
}

func model(s *cluster.Snapshot) (*policy.Model, error) {
	m, diags := policy.NewModel(s)
	if cluster.HasErrors(diags) {
		return nil, fmt.Errorf("model: %v", diags)
	}
	return m, nil
}

// compile is the agent's applyPolicy without the kernel: the node's pods
// with their veths, then nft.Compile.
func (b *bench) compile(m *policy.Model) (*nft.Ruleset, error) {
	node := nft.Node{Name: nodeName}
	for _, e := range m.Endpoints {
		if e.Node != nodeName {
			continue
		}
		v := b.veths[e.Ref()]
		if v == "" {
			v = "rmpnew"
		}
		node.Pods = append(node.Pods, nft.Pod{Ref: e.Ref(), Veth: v})
	}
	return nft.Compile(m, node)
}

// step is one timed change: model, compile, apply.
type step struct{ model, compile, apply, total time.Duration }

func (b *bench) step(s *cluster.Snapshot, fd int) (step, nft.Stats, error) {
	var st step
	t0 := time.Now()
	m, err := model(s)
	if err != nil {
		return st, nft.Stats{}, err
	}
	t1 := time.Now()
	rs, err := b.compile(m)
	if err != nil {
		return st, nft.Stats{}, err
	}
	t2 := time.Now()
	if b.appliers == nil {
		b.appliers = map[int]*nft.Applier{}
	}
	a := b.appliers[fd]
	if a == nil {
		a = nft.NewApplier(fd)
		b.appliers[fd] = a
	}
	stats, err := a.Apply(rs)
	if err != nil {
		return st, stats, err
	}
	t3 := time.Now()
	st = step{model: t1.Sub(t0), compile: t2.Sub(t1), apply: t3.Sub(t2), total: t3.Sub(t0)}
	return st, stats, nil
}

// sync: the whole cluster into a fresh namespace that has no table.
func (b *bench) sync(ctx context.Context) error {
	var steps []step
	var stats nft.Stats
	for i := range b.cfg.reps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, err := b.newNS(fmt.Sprintf("sync%d", i))
		if err != nil {
			return err
		}
		f, err := os.Open(n.Path())
		if err != nil {
			return err
		}
		st, s, err := b.step(b.snap, int(f.Fd()))
		delete(b.appliers, int(f.Fd())) // the descriptor's number is reused
		f.Close()
		if err != nil {
			return err
		}
		if err := b.deleteNS(n); err != nil {
			return err
		}
		steps, stats = append(steps, st), s
	}
	fmt.Printf("# sync from empty: %d sets, %d elements, %d rules in one batch\n", stats.Sets, stats.Elements, stats.Rules)
	report("sync", steps)
	return nil
}

// howApplied says how a change reached the kernel.
func howApplied(st nft.Stats) string {
	if st.Incremental {
		return fmt.Sprintf("%d elements added and %d deleted (of %d; %d unreachable ones left in place)", st.Added, st.Deleted, st.Elements, st.Unreachable)
	}
	return fmt.Sprintf("the whole table (%d elements) replaced %s", st.Elements, st.Fallback)
}

func report(what string, steps []step) {
	pick := func(f func(step) time.Duration) []time.Duration {
		var ds []time.Duration
		for _, s := range steps {
			ds = append(ds, f(s))
		}
		return ds
	}
	fmt.Printf("%-22s model %s  compile %s  apply %s  total %s\n", what,
		med(pick(func(s step) time.Duration { return s.model })),
		med(pick(func(s step) time.Duration { return s.compile })),
		med(pick(func(s step) time.Duration { return s.apply })),
		med(pick(func(s step) time.Duration { return s.total })))
}

// med is "median (min–max)" in milliseconds.
func med(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return fmt.Sprintf("%.1f ms (%.1f–%.1f)", ms(median(s)), ms(s[0]), ms(s[len(s)-1]))
}

func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// wire makes the node and the two bench pods, as internal/cni wires them
// (and internal/nft's lab test): a /32 on the pod's eth0, default route via
// 169.254.1.1, answered by proxy ARP on the host veth, which the pod's /32
// is routed to. A listener on the server's TCP 80 accepts and closes.
func (b *bench) wire() error {
	var err error
	if b.node, err = b.newNS("node"); err != nil {
		return err
	}
	if b.client, err = b.newNS("client"); err != nil {
		return err
	}
	if b.server, err = b.newNS("server"); err != nil {
		return err
	}
	if b.nodeFD, err = os.Open(b.node.Path()); err != nil {
		return err
	}
	if err := b.node.EnableForwarding(); err != nil {
		return err
	}
	// The node's uplink, towards a namespace that stands for the rest of
	// the cluster: the pods' gateway 169.254.1.1 must be routed somewhere
	// other than their veth for proxy ARP to answer for it (internal/cni).
	up, err := b.newNS("up")
	if err != nil {
		return err
	}
	if err := netns.Veth(netns.End{NS: b.node, Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}},
		netns.End{NS: up, Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")}}, 0); err != nil {
		return err
	}
	if err := b.node.AddRoute(netns.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.0.2")}); err != nil {
		return err
	}
	for _, p := range []struct {
		ns   *netns.NS
		veth string
		addr netip.Addr
	}{{b.client, "rmpc", netip.MustParseAddr(clientAddr)}, {b.server, "rmps", netip.MustParseAddr(serverAddr)}} {
		if err := netns.WireRoutedPod(b.node, p.ns, p.veth, p.addr); err != nil {
			return err
		}
	}
	var ln net.Listener
	if err := b.server.Do(func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(serverAddr, fmt.Sprint(probePort)))
		return err
	}); err != nil {
		return err
	}
	b.closers = append(b.closers, func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// probeOnce connects from the client pod to the server's port 80.
func probeOnce(d *net.Dialer) bool {
	c, err := d.Dial("tcp4", net.JoinHostPort(serverAddr, fmt.Sprint(probePort)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// monotonic is CLOCK_MONOTONIC, which the prober process and this one
// share (Go's own monotonic readings are per process).
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// prober is the -prober mode, run in the client pod's namespace as a
// process of its own (so that the measuring process's garbage collector
// and compile work do not delay its connects): a TCP connect to the server
// every millisecond (5 ms timeout) until stdin closes, one line per
// connect on stdout: its start on CLOCK_MONOTONIC in ns, and 1 or 0.
func prober() int {
	stop := make(chan struct{})
	go func() {
		var buf [1]byte
		_, _ = os.Stdin.Read(buf[:])
		close(stop)
	}()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	d := &net.Dialer{Timeout: 5 * time.Millisecond}
	for {
		select {
		case <-stop:
			return 0
		default:
		}
		start := monotonic()
		ok := probeOnce(d)
		v := 0
		if ok {
			v = 1
		}
		fmt.Fprintf(w, "%d %d\n", int64(start), v)
		if ok {
			time.Sleep(time.Millisecond)
		}
	}
}

type attempt struct {
	at time.Duration // CLOCK_MONOTONIC
	ok bool
}

// startProber starts the prober in the client's namespace; stop ends it
// and returns its connects.
func (b *bench) startProber(ctx context.Context) (stop func() ([]attempt, error), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := b.client.Command(ctx, self, "-prober")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b.procs = append(b.procs, cmd)
	return func() ([]attempt, error) {
		in.Close()
		err := cmd.Wait()
		b.procs = slices.DeleteFunc(b.procs, func(c *exec.Cmd) bool { return c == cmd })
		if err != nil {
			return nil, fmt.Errorf("prober: %w", err)
		}
		var as []attempt
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var ns int64
			var v int
			if _, err := fmt.Sscanf(line, "%d %d", &ns, &v); err != nil {
				return nil, fmt.Errorf("prober output %q: %w", line, err)
			}
			as = append(as, attempt{time.Duration(ns), v == 1})
		}
		return as, nil
	}, nil
}

// flip finds when the outcome became want, from the connects' start
// times: a connect that succeeded proves the rules let it through, but one
// that failed may only have timed out on a busy machine (5 ms). So a flip
// to allowed is the first success after from, and a flip to denied is the
// first connect after the last success. Blips are the failures that this
// rule sets aside (before the last success, or after the first one).
func flip(as []attempt, want bool, from time.Duration) (time.Duration, int, error) {
	if len(as) == 0 || as[0].ok == want {
		return 0, 0, fmt.Errorf("probe: did not start with the old outcome")
	}
	blips := 0
	if want {
		for i, a := range as {
			if a.ok && a.at >= from {
				for _, b := range as[i:] {
					if !b.ok {
						blips++
					}
				}
				return a.at - from, blips, nil
			}
		}
		return 0, 0, fmt.Errorf("probe: no flip to allowed")
	}
	last := -1
	for i, a := range as {
		if a.ok {
			last = i
		}
	}
	if last == len(as)-1 {
		return 0, 0, fmt.Errorf("probe: no flip to denied")
	}
	for _, a := range as[:last] {
		if !a.ok {
			blips++
		}
	}
	return as[last+1].at - from, blips, nil
}

// trace prints the prober's connects as runs of one outcome: from, to
// (ms since t0, the start of the change), outcome and count; and when the
// model, compile and apply steps ended.
func trace(as []attempt, t0 time.Duration, st step) {
	ms := func(d time.Duration) float64 { return float64(d-t0) / float64(time.Millisecond) }
	fmt.Printf("trace: model done %.1f, compiled %.1f, applied %.1f ms:",
		float64(st.model)/1e6, float64(st.model+st.compile)/1e6, float64(st.total)/1e6)
	for i := 0; i < len(as); {
		j := i
		for j+1 < len(as) && as[j+1].ok == as[i].ok {
			j++
		}
		fmt.Printf(" [%.1f..%.1f %v×%d]", ms(as[i].at), ms(as[j].at), as[i].ok, j-i+1)
		i = j + 1
	}
	fmt.Println()
}

// change edits bench/bench-in: alternately drop TCP 80 from its ports
// (probe flips allowed → denied) and put it back (denied → allowed). The
// prober runs from 100 ms before the change until 300 ms after it was
// applied.
func (b *bench) change(ctx context.Context) error {
	fd := int(b.nodeFD.Fd())
	with := b.snap
	without := withPolicy(b.snap, benchIn(false))
	if _, _, err := b.step(with, fd); err != nil {
		return err
	}
	// One connect with a long timeout first: ARP, and a check that the
	// wiring works at all.
	var ok bool
	if err := b.client.Do(func() error {
		ok = probeOnce(&net.Dialer{Timeout: time.Second})
		return nil
	}); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("bench/client cannot reach bench/server:%d with the ruleset that allows it", probePort)
	}
	var steps []step
	var enforced [2][]time.Duration // [0]: allowed → denied, [1]: denied → allowed
	var blips [2]int
	var changes nft.Stats
	for i := range 2 * b.cfg.reps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		allow := i%2 == 1
		next := without
		if allow {
			next = with
		}
		stop, err := b.startProber(ctx)
		if err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // the prober's process is up and probing
		t0 := monotonic()
		st, stats, err := b.step(next, fd)
		if err != nil {
			stop()
			return err
		}
		changes = stats
		time.Sleep(300 * time.Millisecond)
		as, err := stop()
		if err != nil {
			return err
		}
		d, n, err := flip(as, allow, t0)
		if b.cfg.trace {
			trace(as, t0, st)
		}
		if err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
		steps = append(steps, st)
		k := 0
		if allow {
			k = 1
		}
		enforced[k] = append(enforced[k], d)
		blips[k] += n
	}
	report("policy change", steps)
	fmt.Printf("# the last change: %s\n", howApplied(changes))
	fmt.Printf("%-22s allowed→denied %s  denied→allowed %s  (from the start of the change to the first probe connect with the new outcome; %d and %d timeouts set aside)\n",
		"enforced after", med(enforced[0]), med(enforced[1]), blips[0], blips[1])
	return nil
}

// churn adds or removes one pod, local or remote, from the full ruleset in
// force (re-applied, untimed, before each repetition).
func (b *bench) churn(ctx context.Context) error {
	fd := int(b.nodeFD.Fd())
	localIdx, remoteIdx := -1, -1
	for i, p := range b.snap.Pods {
		if p.Namespace == benchNS {
			continue
		}
		if p.Spec.NodeName == nodeName && localIdx < 0 {
			localIdx = i
		}
		if p.Spec.NodeName != nodeName && remoteIdx < 0 {
			remoteIdx = i
		}
	}
	cases := []struct {
		what string
		snap *cluster.Snapshot
	}{
		{"local pod added", withPod(b.snap, localIdx, "added", nodeName, netip.MustParseAddr("198.19.0.240"))},
		{"local pod removed", withoutPod(b.snap, localIdx)},
		{"remote pod added", withPod(b.snap, remoteIdx, "added", "node2", netip.MustParseAddr("198.19.200.1"))},
		{"remote pod removed", withoutPod(b.snap, remoteIdx)},
	}
	for _, c := range cases {
		var steps []step
		var last nft.Stats
		for range b.cfg.reps {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if _, _, err := b.step(b.snap, fd); err != nil {
				return err
			}
			st, stats, err := b.step(c.snap, fd)
			if err != nil {
				return fmt.Errorf("%s: %w", c.what, err)
			}
			steps = append(steps, st)
			last = stats
		}
		report(c.what, steps)
		fmt.Printf("# %s: %s\n", c.what, howApplied(last))
	}
	return nil
}

// throughput: iperf3 from bench/client to bench/server, with the full
// ruleset in force and with no table, interleaved (the order alternates
// each round).
func (b *bench) throughput(ctx context.Context) error {
	fd := int(b.nodeFD.Fd())
	srv := b.server.Command(ctx, "iperf3", "-s", "-B", serverAddr, "-p", fmt.Sprint(iperfPort))
	srv.Stdout, srv.Stderr = nil, nil
	if err := srv.Start(); err != nil {
		return fmt.Errorf("iperf3 server: %w", err)
	}
	b.procs = append(b.procs, srv)
	time.Sleep(300 * time.Millisecond)
	gbps := map[string][]float64{}
	// "no policies" is Rampart's table for the same pods without any
	// NetworkPolicy: the cost of 1,000 policies is ruleset against it.
	variants := []string{"no table", "conntrack only", "no policies", "ruleset"}
	open := *b.snap
	open.NetworkPolicies = nil
	perRound := map[string][]float64{}
	for r := range b.cfg.iperfRounds {
		for i := range variants {
			v := variants[(i+r)%len(variants)] // the order rotates each round
			switch v {
			case "no table":
				if err := nft.Remove(fd, nft.TableName); err != nil {
					return err
				}
			case "conntrack only":
				if err := conntrackOnly(fd); err != nil {
					return err
				}
			case "no policies":
				if _, _, err := b.step(&open, fd); err != nil {
					return err
				}
			default:
				if _, _, err := b.step(b.snap, fd); err != nil {
					return err
				}
			}
			g, retr, err := b.iperf(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", v, err)
			}
			fmt.Printf("round %d %-16s %.2f Gbit/s (%d retransmits); loadavg %s\n", r+1, v, g, retr, loadavg())
			gbps[v] = append(gbps[v], g)
		}
		perRound["ruleset/no policies"] = append(perRound["ruleset/no policies"], gbps["ruleset"][r]/gbps["no policies"][r])
		perRound["ruleset/no table"] = append(perRound["ruleset/no table"], gbps["ruleset"][r]/gbps["no table"][r])
		fmt.Printf("round %d ratio ruleset/no-policies=%.3f ruleset/no-table=%.3f\n", r+1, gbps["ruleset"][r]/gbps["no policies"][r], gbps["ruleset"][r]/gbps["no table"][r])
	}
	for _, v := range variants {
		fmt.Printf("%-22s %-16s %.2f Gbit/s (%s)\n", "throughput", v, fmedian(gbps[v]), frange(gbps[v]))
	}
	none := fmedian(gbps["no table"])
	fmt.Printf("ratio of medians: ruleset/no-policies=%.3f ruleset/no-table=%.3f no-policies/no-table=%.3f conntrack/no-table=%.3f\n",
		fmedian(gbps["ruleset"])/fmedian(gbps["no policies"]), fmedian(gbps["ruleset"])/none, fmedian(gbps["no policies"])/none, fmedian(gbps["conntrack only"])/none)
	fmt.Printf("median of per-round ratios: ruleset/no-policies=%.3f (%s) ruleset/no-table=%.3f (%s)\n",
		fmedian(perRound["ruleset/no policies"]), frange(perRound["ruleset/no policies"]), fmedian(perRound["ruleset/no table"]), frange(perRound["ruleset/no table"]))
	return nil
}

// conntrackOnly replaces table inet rampart with one forward chain that
// accepts established and related packets: what it costs to have
// connection tracking on, and one rule, without any of the policy.
func conntrackOnly(fd int) error {
	if err := nft.Remove(fd, nft.TableName); err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: nft.TableName})
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	zero := []byte{0, 0, 0, 0}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: zero},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: zero},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	return c.Flush()
}

func (b *bench) iperf(ctx context.Context) (float64, int, error) {
	cmd := b.client.Command(ctx, "iperf3", "-c", serverAddr, "-p", fmt.Sprint(iperfPort),
		"-t", fmt.Sprint(b.cfg.iperfSeconds), "-J")
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("iperf3: %w: %s", err, out)
	}
	var res struct {
		End struct {
			SumSent     struct{ Retransmits int } `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, 0, fmt.Errorf("iperf3 output: %w", err)
	}
	if res.Error != "" {
		return 0, 0, fmt.Errorf("iperf3: %s", res.Error)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9, res.End.SumSent.Retransmits, nil
}

func fmedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func frange(xs []float64) string {
	if len(xs) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f–%.2f", slices.Min(xs), slices.Max(xs))
}
