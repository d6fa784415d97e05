//go:build e2e

package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/rampartnet/rampart/internal/agent"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	"github.com/rampartnet/rampart/internal/testbin"
)

// TestPrivilegedLab is `make e2e-lab`'s acceptance: the Kubernetes e2e
// model (x/y/z × a/b/c, examples/netpol-e2e) on three nodes; every upstream
// case (internal/policy/policytest) applied in turn with Apply and probed
// on its own port and protocol, observed equal to expected everywhere; a
// capture of the underlay during a probe holds only IKE and ESP; a SIGKILL
// of an agent during a TCP transfer lets no pod packet out in clear, and
// the transfer recovers once the agent is back; a malformed policy, given
// to `lab apply` or dropped into the agents' manifests, is refused with
// file:line and the rules in force stay; `lab probe` exits 0 exactly when
// observed equals expected; a second lab (`lab demo`) runs beside the
// first; `lab down` leaves nothing behind.
func TestPrivilegedLab(t *testing.T) {
	netns.RequirePrivileged(t)
	start := time.Now()
	bin, cni := testbin.Path(t, "rampart"), testbin.Path(t, "rampart-cni")
	name := fmt.Sprintf("e2e%d", os.Getpid()%100000)
	dir := filepath.Join(t.TempDir(), "lab")
	ctx := context.Background()
	l, err := Up(ctx, Options{Name: name, StateDir: dir, Nodes: 3, Binary: bin, CNIBinary: cni, Log: testLog{t}},
		[]string{"../../examples/netpol-e2e/namespaces.yaml", "../../examples/netpol-e2e/pods.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			if err := Down(dir); err != nil {
				t.Errorf("down: %v", err)
			}
		}
	})
	st := l.State()
	t.Logf("up in %v", time.Since(start).Round(time.Millisecond))
	nodes := map[string]bool{}
	for _, p := range st.Pods {
		nodes[p.Node] = true
		if !ClusterCIDR.Contains(p.Address) {
			t.Errorf("pod %s has %s, outside %s", p.Ref, p.Address, ClusterCIDR)
		}
	}
	if len(st.Nodes) != 3 || len(nodes) != 3 || len(st.Pods) != 9 {
		t.Fatalf("%d nodes, pods on %d nodes, %d pods", len(st.Nodes), len(nodes), len(st.Pods))
	}
	addr := func(ref string) string { return st.pod(ref).Address.String() }
	cases := t.TempDir()

	// applyCase applies one upstream case and checks that the verdict
	// engine agrees with the upstream table on the lab's addresses.
	applyCase := func(t *testing.T, i int, tc policytest.E2ECase) policy.Probe {
		t.Helper()
		doc, err := tc.Manifest(addr, ClusterCIDR.String())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(cases, fmt.Sprintf("case-%02d.yaml", i))
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Apply(ctx, []string{path}); err != nil {
			t.Fatalf("apply: %v", err)
		}
		pr, err := policy.ParseProbe(tc.ProbeSpec())
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	probe := func(t *testing.T, want policytest.Reachability, probes ...policy.Probe) *ProbeResult {
		t.Helper()
		res, err := l.Probe(ctx, ProbeOptions{Probes: probes})
		if err != nil {
			t.Fatal(err)
		}
		var bad []string
		for _, r := range res.Rows {
			if want != nil && r.Allowed != want[[2]string{r.From, r.To}] {
				bad = append(bad, fmt.Sprintf("engine %s -> %s = %v, upstream says %v", r.From, r.To, r.Allowed, !r.Allowed))
			}
			if r.Observed == nil {
				bad = append(bad, fmt.Sprintf("%s -> %s not probed", r.From, r.To))
			}
		}
		if d := res.Differences(); d > 0 || len(bad) > 0 {
			var b bytes.Buffer
			res.WriteTable(&b)
			t.Errorf("%d differences\n%s\n%s", d, strings.Join(bad, "\n"), b.String())
		}
		return res
	}

	t.Run("upstream cases", func(t *testing.T) {
		begin := time.Now()
		for i, tc := range policytest.E2ECases {
			t.Run(tc.Name, func(t *testing.T) {
				pr := applyCase(t, i, tc)
				if i == 0 {
					// A capture of the underlay during this probe.
					c := startCapture(t, st.Underlay, bridgeName)
					probe(t, tc.Expected(), pr)
					checkCapture(t, c.stop(t), true)
					return
				}
				probe(t, tc.Expected(), pr)
			})
		}
		t.Logf("%d upstream cases applied and probed in %v", len(policytest.E2ECases), time.Since(begin).Round(time.Millisecond))
	})

	t.Run("malformed policy", func(t *testing.T) {
		// Rules that matter: x denies all ingress.
		tc := policytest.E2ECases[0]
		pr := applyCase(t, 100, tc)
		before := probe(t, tc.Expected(), pr)
		gen := l.State().Generation

		// Through lab apply: refused with file:line, nothing changes.
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(bad, []byte(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: 80, protocol: ICMP}]
`), 0o644)
		code, _, stderr := runLab(t, bin, dir, "apply", bad)
		if code != 1 || !strings.Contains(stderr, bad+":7") || !strings.Contains(stderr, "nothing was changed") {
			t.Errorf("lab apply of a malformed policy: exit %d\n%s", code, stderr)
		}
		if g := l.State().Generation; g != gen {
			t.Errorf("generation %d after the refusal, want %d", g, gen)
		}
		samePicture(t, before, probe(t, tc.Expected(), pr))

		// Into the agents' manifests directly, as an operator's mistake:
		// every agent refuses it with file:line, and keeps its rules.
		stray := filepath.Join(st.manifestsDir(), "zz-stray.yaml")
		os.WriteFile(stray, []byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: stray, namespace: x}\nspec: {podSelector: [\n"), 0o644)
		fp, err := agent.Fingerprint([]string{st.manifestsDir()})
		if err != nil {
			t.Fatal(err)
		}
		refused, err := l.waitFingerprint(ctx, st.Nodes, fp)
		if err != nil {
			t.Fatal(err)
		}
		if len(refused) != len(st.Nodes) {
			t.Errorf("%d of %d agents refused the stray file", len(refused), len(st.Nodes))
		}
		for _, e := range refused {
			if !strings.Contains(e.Error(), "zz-stray.yaml:") {
				t.Errorf("refusal without file:line: %v", e)
			}
		}
		for _, n := range l.Status().Nodes {
			if n.Current || n.Policy.Error == "" {
				t.Errorf("status of %s: current %v, error %q", n.Name, n.Current, n.Policy.Error)
			}
		}
		samePicture(t, before, probe(t, tc.Expected(), pr))
		os.Remove(stray)
		if err := l.waitApplied(ctx, st.Nodes); err != nil {
			t.Fatalf("after removing the stray file: %v", err)
		}
	})

	t.Run("SIGKILL during a transfer", func(t *testing.T) {
		empty := t.TempDir()
		if _, err := l.Apply(ctx, []string{empty}); err != nil {
			t.Fatal(err)
		}
		src, dst := st.pod("x/a"), st.pod("x/b")
		if src.Node == dst.Node {
			t.Fatalf("x/a and x/b are both on %s", src.Node)
		}
		c := startCapture(t, st.Underlay, bridgeName)
		tr := startTransfer(t, src, netip.AddrPortFrom(dst.Address, 5001))
		defer tr.stop()
		tr.waitBytes(t, 1<<20, 10*time.Second)
		if err := l.KillAgent(src.Node); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		// While the agent is down: new connections fail, and nothing
		// the pods send leaves in clear (checked in the capture).
		for _, proto := range []string{"TCP", "UDP", "SCTP"} {
			if ok, err := probeOnce(ctx, src, netip.AddrPortFrom(dst.Address, 80), proto, time.Second, newPortAllocator()); ok || err != nil {
				t.Errorf("%s probe x/a -> x/b with node-1's agent dead: reached %v, %v", proto, ok, err)
			}
		}
		stalled := tr.bytes()
		time.Sleep(time.Second)
		if err := l.StartAgent(ctx, src.Node); err != nil {
			t.Fatal(err)
		}
		t.Logf("agent down for %v; %d bytes echoed before the restart", time.Since(killed).Round(time.Millisecond), stalled)
		tr.waitBytes(t, stalled+(1<<20), 30*time.Second)
		t.Logf("transfer resumed %v after the kill", time.Since(killed).Round(time.Millisecond))
		if err := tr.err(); err != nil {
			t.Errorf("transfer: %v", err)
		}
		tr.stop()
		checkCapture(t, c.stop(t), true)
		probe(t, nil, policy.Probe{Port: 80, Protocol: "TCP"}, policy.Probe{Port: 80, Protocol: "UDP"}, policy.Probe{Port: 80, Protocol: "SCTP"})
	})

	t.Run("CLI", func(t *testing.T) {
		// No differences: exit 0, reach's objects with "observed".
		code, out, stderr := runLab(t, bin, dir, "probe", "--probe", "80/TCP", "--probe", "81/SCTP", "-o", "json")
		var rows []map[string]any
		jerr := json.Unmarshal([]byte(out), &rows)
		if code != 0 || jerr != nil || len(rows) != 9*9*2 {
			for _, r := range rows {
				if r["allowed"] != r["observed"] {
					t.Logf("differs: %v", r)
				}
			}
			t.Fatalf("lab probe: exit %d, %d rows\n%s", code, len(rows), stderr)
		}
		for _, k := range []string{"from", "to", "port", "protocol", "allowed", "observed"} {
			if _, ok := rows[0][k]; !ok {
				t.Errorf("row without %q: %v", k, rows[0])
			}
		}
		// A datapath that drops what policy allows: exit 1, marked.
		undo := breakPod(t, st.pod("y/c").Netns)
		code, out, _ = runLab(t, bin, dir, "probe", "--probe", "80/TCP")
		undo()
		if code != 1 || !strings.Contains(out, "X!") || !strings.Contains(out, "y/b -> y/c: observed blocked, expected allowed") {
			t.Errorf("lab probe with y/c broken: exit %d\n%s", code, out)
		}
		code, out, stderr = runLab(t, bin, dir, "status", "-o", "json")
		var s Status
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil || len(s.Nodes) != 3 || len(s.Pods) != 9 {
			t.Errorf("lab status: exit %d\n%s%s", code, out, stderr)
		}
		for _, n := range s.Nodes {
			if !n.AgentAlive || !n.Current || len(n.Peers) != 2 {
				t.Errorf("status of %s: %+v", n.Name, n)
			}
		}
		// A second lab beside this one: the README's demo.
		demo := exec.Command(bin, "lab", "demo", "../../examples/wordpress/hardened", "--name", name+"w", "--state", filepath.Join(t.TempDir(), "demo"),
			"--cni-bin", cni, "--from", "web/wordpress")
		var dout, derr bytes.Buffer
		demo.Stdout, demo.Stderr = &dout, &derr
		if err := demo.Run(); err != nil || !strings.Contains(dout.String(), "probes as expected") || !strings.Contains(derr.String(), "is down") {
			t.Errorf("lab demo: %v\n%s\n%s", err, dout.String(), derr.String())
		}
		if left := labNamespaces(name + "w"); len(left) > 0 {
			t.Errorf("lab demo left namespaces %v", left)
		}
	})

	// Down, through the command, from state.json alone.
	procs := []Proc{}
	st = l.State()
	for _, n := range st.Nodes {
		procs = append(procs, n.Agent)
	}
	for _, s := range st.Servers {
		procs = append(procs, s.Proc)
	}
	if code, _, stderr := runLab(t, bin, dir, "down"); code != 0 {
		t.Fatalf("lab down: exit %d\n%s", code, stderr)
	}
	downed = true
	if left := labNamespaces(name); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	for _, p := range procs {
		if p.alive() {
			t.Errorf("process %d left", p.PID)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory left: %v", err)
	}
	t.Logf("whole lab test in %v", time.Since(start).Round(time.Millisecond))
}

// samePicture: the observed matrices of two runs are the same.
func samePicture(t *testing.T, a, b *ProbeResult) {
	t.Helper()
	for i := range a.Rows {
		if *a.Rows[i].Observed != *b.Rows[i].Observed {
			t.Errorf("%s -> %s: observed %v before, %v now", a.Rows[i].From, a.Rows[i].To, *a.Rows[i].Observed, *b.Rows[i].Observed)
		}
	}
}

// labNamespaces lists the namespaces of a lab that are still there.
func labNamespaces(name string) []string {
	entries, _ := os.ReadDir(netnsRunDir)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// breakPod makes a pod's namespace drop every TCP packet it receives (a
// broken datapath) and returns the repair.
func breakPod(t *testing.T, ns string) func() {
	t.Helper()
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "e2e_break"}
	err := nsDo(ns, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		c.AddTable(table)
		accept := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{Name: "input", Table: table, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
		return c.Flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		nsDo(ns, func() error {
			c, err := nftables.New()
			if err != nil {
				return err
			}
			c.DelTable(table)
			return c.Flush()
		})
	}
}

// runLab runs `rampart lab VERB --state DIR ARGS...`.
func runLab(t *testing.T, bin, dir, verb string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"lab", verb, "--state", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("rampart lab %s: %v", verb, err)
	return -1, "", ""
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// transfer is a TCP stream from a pod through the echo of another: the
// writer sends all the time, the reader counts what comes back.
type transfer struct {
	conn   net.Conn
	echoed atomic.Int64
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	failed error
}

func startTransfer(t *testing.T, src *PodState, dst netip.AddrPort) *transfer {
	t.Helper()
	tr := &transfer{done: make(chan struct{})}
	err := nsDo(src.Netns, func() error {
		var err error
		tr.conn, err = net.DialTimeout("tcp4", dst.String(), 2*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		chunk := bytes.Repeat([]byte("rampart"), 1170) // 8 KiB
		for {
			select {
			case <-tr.done:
				return
			default:
			}
			tr.conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := tr.conn.Write(chunk); err != nil && !isTimeout(err) {
				tr.fail(err)
				return
			}
		}
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			tr.conn.SetReadDeadline(time.Now().Add(time.Second))
			n, err := tr.conn.Read(buf)
			tr.echoed.Add(int64(n))
			select {
			case <-tr.done:
				return
			default:
			}
			if err != nil && !isTimeout(err) {
				tr.fail(err)
				return
			}
		}
	}()
	return tr
}

func (tr *transfer) fail(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.failed == nil {
		tr.failed = err
	}
}

func (tr *transfer) err() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.failed
}

func (tr *transfer) bytes() int64 { return tr.echoed.Load() }

func (tr *transfer) waitBytes(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for tr.bytes() < n {
		if err := tr.err(); err != nil {
			t.Fatalf("transfer: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("transfer: %d bytes echoed, want %d within %v", tr.bytes(), n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (tr *transfer) stop() {
	tr.once.Do(func() {
		close(tr.done)
		tr.conn.Close()
	})
}

// capture is tcpdump on a link of a namespace, writing a pcap file.
type capture struct {
	cmd  *exec.Cmd
	file string
}

func startCapture(t *testing.T, ns, link string) *capture {
	t.Helper()
	c := &capture{file: filepath.Join(t.TempDir(), "underlay.pcap")}
	c.cmd = nsCommand(context.Background(), ns, "tcpdump", "-i", link, "-n", "-U", "-s", "256", "-w", c.file)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			go io.Copy(io.Discard, stderr)
			return c
		}
	}
	t.Fatalf("tcpdump did not start: %v", sc.Err())
	return nil
}

func (c *capture) stop(t *testing.T) []byte {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // the last packets
	c.cmd.Process.Signal(syscall.SIGINT)
	c.cmd.Wait()
	b, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkCapture holds a pcap of the underlay to "only IKE and ESP": every
// IPv4 packet is UDP from or to port 500 or 4500 (or an ICMP error about
// one), and no header names a pod address. With wantESP, it must also
// hold ESP (UDP 4500 without the non-ESP marker).
func checkCapture(t *testing.T, pcap []byte, wantESP bool) {
	t.Helper()
	if len(pcap) < 24 {
		t.Fatalf("capture of %d bytes", len(pcap))
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if binary.LittleEndian.Uint32(pcap) == 0xd4c3b2a1 {
		order = binary.BigEndian
	}
	var frames, esp, ike int
	var bad []string
	for off := 24; off+16 <= len(pcap); {
		incl := int(order.Uint32(pcap[off+8:]))
		off += 16
		if off+incl > len(pcap) {
			break
		}
		f := pcap[off : off+incl]
		off += incl
		frames++
		if len(f) < 14 {
			continue
		}
		switch binary.BigEndian.Uint16(f[12:]) {
		case 0x0806: // ARP between nodes
			continue
		case 0x0800:
		default:
			bad = append(bad, fmt.Sprintf("frame %d: ethertype %#04x", frames, binary.BigEndian.Uint16(f[12:])))
			continue
		}
		src, dst, proto, payload, err := parseIPv4(f[14:])
		if err != nil {
			// tcpdump cut the frame (-s 256): read the header alone.
			if len(f) < 34 {
				bad = append(bad, fmt.Sprintf("frame %d: %v", frames, err))
				continue
			}
			src, dst, proto = netip.AddrFrom4([4]byte(f[26:30])), netip.AddrFrom4([4]byte(f[30:34])), f[23]
			payload = f[14+int(f[14]&0x0f)*4:]
		}
		if ClusterCIDR.Contains(src) || ClusterCIDR.Contains(dst) {
			bad = append(bad, fmt.Sprintf("frame %d: a pod address in clear: %s -> %s proto %d", frames, src, dst, proto))
			continue
		}
		switch proto {
		case unix.IPPROTO_UDP:
			if len(payload) < 8 {
				bad = append(bad, fmt.Sprintf("frame %d: short UDP", frames))
				continue
			}
			sp, dp := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:])
			switch {
			case sp == 4500 || dp == 4500:
				if len(payload) >= 12 && binary.BigEndian.Uint32(payload[8:]) != 0 {
					esp++
				} else {
					ike++
				}
			case sp == 500 || dp == 500:
				ike++
			default:
				bad = append(bad, fmt.Sprintf("frame %d: UDP %s:%d -> %s:%d", frames, src, sp, dst, dp))
			}
		case unix.IPPROTO_ICMP:
			// An error about a datagram of the tunnel (an agent that is
			// down has no socket on 4500): it quotes outer headers only.
			if len(payload) < 8+20+4 {
				continue
			}
			qsrc, qdst, qproto := netip.AddrFrom4([4]byte(payload[20:24])), netip.AddrFrom4([4]byte(payload[24:28])), payload[17]
			qports := payload[min(len(payload), 8+int(payload[8]&0x0f)*4):]
			if ClusterCIDR.Contains(qsrc) || ClusterCIDR.Contains(qdst) || qproto != unix.IPPROTO_UDP || len(qports) < 4 ||
				(binary.BigEndian.Uint16(qports[2:]) != 4500 && binary.BigEndian.Uint16(qports[2:]) != 500) {
				bad = append(bad, fmt.Sprintf("frame %d: ICMP about %s -> %s proto %d", frames, qsrc, qdst, qproto))
			}
		default:
			bad = append(bad, fmt.Sprintf("frame %d: %s -> %s proto %d", frames, src, dst, proto))
		}
	}
	t.Logf("underlay capture: %d frames, %d ESP, %d IKE", frames, esp, ike)
	if len(bad) > 0 {
		if len(bad) > 20 {
			bad = bad[:20]
		}
		t.Errorf("the underlay carried more than IKE and ESP:\n%s", strings.Join(bad, "\n"))
	}
	if wantESP && esp == 0 {
		t.Error("no ESP on the underlay during the probe")
	}
}
