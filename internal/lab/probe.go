package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rampartnet/rampart/internal/analyze"
	"github.com/rampartnet/rampart/internal/policy"
)

// Probing: every selected pod connects to every selected pod, for real,
// from inside its namespace, on each probe's port and protocol, and the
// outcome is set beside what `rampart reach` says for the same pair (the
// same code: analyze.Reach on the lab's cluster, with its real addresses).
//
//   - TCP: a connect. An answer (SYN-ACK, or a reset: something on the
//     far side answered, so policy let the packet through) is "reached";
//     silence until the timeout is "blocked".
//   - UDP: a datagram, sent again every retryEvery until the timeout, and
//     any answer (or an ICMP port unreachable) is "reached".
//   - SCTP: an INIT from a raw socket, sent again every retryEvery, and an
//     INIT-ACK with the right verification tag is "reached" (sctp.go).
//
// Each probe uses a source port no other probe of the run used, so that
// no conntrack entry of an earlier probe (made under another policy) can
// carry it, and no TIME_WAIT socket is in its way. Probes run
// concurrently, bounded by ProbeOptions.Parallel.

// ProbeOptions select what to probe.
type ProbeOptions struct {
	Probes []policy.Probe
	// From and To select pods by "namespace/name" with shell wildcards,
	// as `rampart reach --from/--to`; empty means all.
	From, To string
	// Timeout is how long a probe waits for an answer (default 1s), and
	// Parallel how many probes run at once (default 128).
	Timeout  time.Duration
	Parallel int
	// Expected, if set, is the cluster the observations are held to,
	// instead of the lab's own (its manifests, or its API server): a
	// test's view of what must hold while the API server is away.
	Expected *policy.Model
}

// Defaults of ProbeOptions.
const (
	DefaultProbeTimeout  = time.Second
	DefaultProbeParallel = 128
	retryEvery           = 250 * time.Millisecond
)

// ProbeRow is one probe: `rampart reach`'s row (whose "allowed" is the
// verdict engine's expectation) and what was observed. Observed is null
// when the probe could not be made: a named port the destination does not
// have has no number to connect to.
type ProbeRow struct {
	analyze.ReachRow
	Observed *bool  `json:"observed"`
	Error    string `json:"error,omitempty"`
}

// Differs reports whether the observed outcome is not the expected one.
func (r ProbeRow) Differs() bool {
	return r.Error != "" || (r.Observed != nil && *r.Observed != r.Allowed)
}

// ProbeResult is a probe run.
type ProbeResult struct {
	Probes   []policy.Probe
	From, To []string // pod refs, in order
	Rows     []ProbeRow
	// Why explains each difference: what the verdict engine decided.
	Why  map[int]string
	Took time.Duration
}

// Differences counts the rows that differ.
func (r *ProbeResult) Differences() int {
	n := 0
	for _, row := range r.Rows {
		if row.Differs() {
			n++
		}
	}
	return n
}

// Probe runs the probes.
func (l *Lab) Probe(ctx context.Context, o ProbeOptions) (*ProbeResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultProbeTimeout
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultProbeParallel
	}
	if err := l.reload(); err != nil {
		return nil, err
	}
	m := o.Expected
	if m == nil {
		var err error
		if m, err = l.Model(); err != nil {
			return nil, err
		}
	}
	if len(o.Probes) == 0 {
		o.Probes = DefaultProbes(m)
	}
	t, err := analyze.Reach(m, o.Probes, o.From, o.To)
	if err != nil {
		return nil, err
	}
	res := &ProbeResult{Probes: o.Probes, Why: map[int]string{}}
	// Only the lab's pods are probed: with --apiserver the cluster also
	// holds pods the lab did not wire (the agents' own, host network).
	for _, e := range t.From {
		if l.st.pod(e.Ref()) != nil {
			res.From = append(res.From, e.Ref())
		}
	}
	for _, e := range t.To {
		if l.st.pod(e.Ref()) != nil {
			res.To = append(res.To, e.Ref())
		}
	}
	for _, row := range t.Rows() {
		if l.st.pod(row.From) != nil && l.st.pod(row.To) != nil {
			res.Rows = append(res.Rows, ProbeRow{ReachRow: row})
		}
	}
	probes := map[string]policy.Probe{}
	for _, pr := range o.Probes {
		probes[probeKey(pr.Port, pr.Name, string(pr.Protocol))] = pr
	}
	start := time.Now()
	ports := newPortAllocator()
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i := range res.Rows {
		row := &res.Rows[i]
		src, dst := l.st.pod(row.From), l.st.pod(row.To)
		dstE := m.Endpoint(row.To)
		if src == nil || dst == nil || dstE == nil {
			row.Error = "not a pod of the lab"
			continue
		}
		pr := probes[probeKey(row.Port, row.PortName, row.Protocol)]
		port, ok := resolvePort(pr, dstE)
		if !ok {
			continue // nothing to connect to; Observed stays null
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				row.Error = ctx.Err().Error()
				return
			}
			defer func() { <-sem }()
			reached, err := probeOnce(ctx, src, netip.AddrPortFrom(dst.Address, port), string(pr.Protocol), o.Timeout, ports)
			if err != nil {
				row.Error = err.Error()
				return
			}
			row.Observed = &reached
		}()
	}
	wg.Wait()
	res.Took = time.Since(start)
	for i, row := range res.Rows {
		if !row.Differs() || row.Error != "" {
			continue
		}
		pr := probes[probeKey(row.Port, row.PortName, row.Protocol)]
		v := m.Verdict(pr.Query(policy.Party{Endpoint: m.Endpoint(row.From)}, policy.Party{Endpoint: m.Endpoint(row.To)}))
		res.Why[i] = fmt.Sprintf("egress: %s; ingress: %s", v.Egress.Reason, v.Ingress.Reason)
	}
	return res, ctx.Err()
}

func probeKey(port int32, name, proto string) string {
	return fmt.Sprintf("%d/%s/%s", port, name, proto)
}

// portAllocator hands out source ports, each once per run, from a random
// start in [firstPort, firstPort+portRange), so that two runs in a row
// rarely meet either.
type portAllocator struct {
	next atomic.Uint32
}

const (
	firstPort = 20000
	portRange = 40000
)

func newPortAllocator() *portAllocator {
	n, _ := rand.Int(rand.Reader, big.NewInt(portRange))
	a := &portAllocator{}
	a.next.Store(uint32(n.Int64()))
	return a
}

func (a *portAllocator) take() uint16 {
	return uint16(firstPort + (a.next.Add(1) % portRange))
}

// errPortInUse asks for another source port.
var errPortInUse = errors.New("source port in use")

// probeOnce makes one probe from pod src to dst, with a fresh source port
// (another one if that port is in use in src's namespace).
func probeOnce(ctx context.Context, src *PodState, dst netip.AddrPort, proto string, timeout time.Duration, ports *portAllocator) (bool, error) {
	for range 10 {
		from := netip.AddrPortFrom(src.Address, ports.take())
		var reached bool
		var err error
		switch corev1.Protocol(proto) {
		case corev1.ProtocolTCP:
			reached, err = probeTCP(ctx, src.Netns, from, dst, timeout)
		case corev1.ProtocolUDP:
			reached, err = probeUDP(ctx, src.Netns, from, dst, timeout)
		case corev1.ProtocolSCTP:
			reached, err = probeSCTP(ctx, src.Netns, from, dst, timeout)
		default:
			return false, fmt.Errorf("protocol %q", proto)
		}
		if !errors.Is(err, errPortInUse) {
			return reached, err
		}
	}
	return false, errors.New("no free source port")
}

// outcome classifies a connection error: the far side answered (a reset,
// a port unreachable), or nothing came back (the timeout, or a node's
// "unreachable"), or a local failure.
func outcome(err error) (bool, error) {
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, syscall.ECONNREFUSED):
		return true, nil
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return false, nil
	case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, syscall.EADDRNOTAVAIL):
		return false, errPortInUse
	default:
		return false, err
	}
}

func probeTCP(ctx context.Context, netns string, from, to netip.AddrPort, timeout time.Duration) (bool, error) {
	var conn net.Conn
	err := nsDo(netns, func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: net.TCPAddrFromAddrPort(from)}
		var err error
		conn, err = d.DialContext(ctx, "tcp4", to.String())
		return err
	})
	if conn != nil {
		conn.Close()
	}
	return outcome(err)
}

func probeUDP(ctx context.Context, netns string, from, to netip.AddrPort, timeout time.Duration) (bool, error) {
	var conn *net.UDPConn
	err := nsDo(netns, func() error {
		var err error
		conn, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(from), net.UDPAddrFromAddrPort(to))
		return err
	})
	if err != nil {
		return outcome(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 512)
	for {
		if _, err := conn.Write([]byte("rampart-lab probe\n")); err != nil {
			if r, err := outcome(err); err != nil || r {
				return r, err
			}
		}
		conn.SetReadDeadline(minTime(time.Now().Add(retryEvery), deadline))
		_, err := conn.Read(buf)
		if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
			return true, nil
		}
		if !isTimeout(err) {
			return outcome(err)
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return false, nil
		}
	}
}

func probeSCTP(ctx context.Context, netns string, from, to netip.AddrPort, timeout time.Duration) (bool, error) {
	var conn *net.IPConn
	err := nsDo(netns, func() error {
		var err error
		// Bound and connected: the kernel hands this socket only SCTP
		// packets from the destination to the source address.
		conn, err = net.DialIP("ip4:132", &net.IPAddr{IP: from.Addr().AsSlice()}, &net.IPAddr{IP: to.Addr().AsSlice()})
		return err
	})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var r [8]byte
	rand.Read(r[:])
	tag := nonZero(binary.BigEndian.Uint32(r[:]))
	init := appendInit(nil, from.Port(), to.Port(), initChunk{InitiateTag: tag, Window: labWindow,
		OutStreams: labStreams, InStreams: labStreams, InitialTSN: binary.BigEndian.Uint32(r[4:])})
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 2048)
	for {
		if _, err := conn.Write(init); err != nil {
			return false, err
		}
		resend := minTime(time.Now().Add(retryEvery), deadline)
		conn.SetReadDeadline(resend)
		for {
			n, _, err := conn.ReadFromIP(buf) // the IPv4 header stripped
			if err != nil {
				if !isTimeout(err) {
					return false, err
				}
				break
			}
			p, err := parseSCTP(buf[:n])
			if err == nil && p.Chunk == chunkInitAck && p.VerificationTag == tag && p.SrcPort == to.Port() && p.DstPort == from.Port() {
				return true, nil
			}
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return false, nil
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ParseProbes reads "80/TCP" and the like (policy.ParseProbe).
func ParseProbes(specs []string) ([]policy.Probe, error) {
	var out []policy.Probe
	for _, s := range specs {
		for _, part := range strings.Split(s, ",") {
			p, err := policy.ParseProbe(strings.TrimSpace(part))
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}
