//go:build e2e

package datapath

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
)

// The end-to-end tests of `rampart tunnel run` (make e2e-tunnel): two hosts
// in network namespaces joined by a veth underlay, a pod subnet behind
// each (internal/netns.TwoSites), the real binary on both hosts, and
// checks made from outside: ping, TCP and UDP between the pods, a capture
// of the underlay in which there is nothing but ESP in UDP 4500, tshark
// decrypting that capture with the keys, injected replays and corrupted
// packets dropped and counted, and nothing left behind.

// plaintextMarker is sent through the tunnel; it must never be seen on the
// underlay.
const plaintextMarker = "rampart-e2e-plaintext-marker"

// rampartBin returns the binary under test: $RAMPART_BIN (make builds it),
// or one built now.
func rampartBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("RAMPART_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), "rampart")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/rampart").CombinedOutput()
	if err != nil {
		t.Fatalf("build rampart: %v\n%s", err, out)
	}
	return bin
}

// saKeys is one direction's keys, as written to the key files.
type saKeys struct {
	spi       uint32
	key, auth []byte
}

type tunnelCase struct {
	algorithm string
	keyLen    int // for AEADs: key + 4-byte salt
	authLen   int
	mode      string // tunnel or transport
	underlay6 bool   // ESP over IPv6 between the hosts
}

func randomKey(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(crand.Reader, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeEndpointConfig writes one end's Tunnel file and key files.
func writeEndpointConfig(t *testing.T, dir, name, dev string, local, peer netip.Addr, c tunnelCase, localNets, remoteNets []netip.Prefix, out, in saKeys, peerMTU int) string {
	t.Helper()
	keyFile := func(label string, b []byte) string {
		p := filepath.Join(dir, name+"-"+label)
		if err := os.WriteFile(p, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sa := func(dir string, k saKeys) string {
		s := fmt.Sprintf("{spi: \"%#x\", algorithm: %s, keyFile: %s", k.spi, c.algorithm, keyFile(dir+".key", k.key))
		if c.authLen > 0 {
			s += ", authKeyFile: " + keyFile(dir+".auth", k.auth)
		}
		return s + "}"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: rampart.dev/v1alpha1\nkind: Tunnel\nmetadata: {name: %s}\nspec:\n", name)
	fmt.Fprintf(&b, "  device: {name: %s}\n  localAddress: %s\n  controlSocket: %s\n", dev, local, filepath.Join(dir, name+".sock"))
	fmt.Fprintf(&b, "  peers:\n  - name: peer\n    endpoint: %s\n    mode: %s\n", peer, c.mode)
	if peerMTU != 0 {
		fmt.Fprintf(&b, "    mtu: %d\n", peerMTU)
	}
	if c.mode == "tunnel" {
		fmt.Fprintf(&b, "    localSubnets: [%s]\n    remoteSubnets: [%s]\n", joinPrefixes(localNets), joinPrefixes(remoteNets))
	}
	fmt.Fprintf(&b, "    sas:\n      outbound: %s\n      inbound: %s\n", sa("out", out), sa("in", in))
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// endpoint is a running `rampart tunnel run`.
type endpoint struct {
	cmd    *exec.Cmd
	socket string
	log    *bytes.Buffer
	done   chan error
}

func startEndpoint(t *testing.T, ns *netns.NS, bin, config, socket string) *endpoint {
	t.Helper()
	e := &endpoint{socket: socket, log: &bytes.Buffer{}, done: make(chan error, 1)}
	e.cmd = ns.Command(context.Background(), bin, "tunnel", "run", "--config", config, "--insecure-manual-aead-keys")
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.done <- e.cmd.Wait() }()
	t.Cleanup(func() { e.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := ReadStatus(socket); err == nil {
			return e
		}
		select {
		case err := <-e.done:
			e.done <- err
			t.Fatalf("rampart tunnel run exited: %v\n%s", err, e.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rampart tunnel run did not start in 10 s\n%s", e.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM (by PID) and waits; a clean stop removes the socket.
func (e *endpoint) stop(t *testing.T) {
	if e.cmd.ProcessState != nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
		t.Errorf("rampart tunnel run did not stop on SIGTERM\n%s", e.log)
	}
}

func (e *endpoint) status(t *testing.T) *Status {
	t.Helper()
	st, err := ReadStatus(e.socket)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, e.log)
	}
	return st
}

// capture is tcpdump writing the underlay to a pcap file.
type capture struct {
	cmd  *exec.Cmd
	file string
}

func startCapture(t *testing.T, ns *netns.NS, link, file string) *capture {
	t.Helper()
	c := &capture{file: file}
	c.cmd = ns.Command(context.Background(), "tcpdump", "-i", link, "-n", "-U", "-s", "0", "-w", file)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { c.stop() })
	// tcpdump prints "listening on" once the capture is armed.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			go io.Copy(io.Discard, stderr)
			return c
		}
	}
	t.Fatalf("tcpdump did not start")
	return nil
}

func (c *capture) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGINT)
		c.cmd.Wait()
	}
}

// run runs a command in a namespace and fails the test on error.
func run(t *testing.T, ns *netns.NS, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), ns.Name, err, out)
	}
	return string(out)
}

// echoTCP serves one TCP echo in ns and checks a transfer of n bytes that
// carries the plaintext marker.
func echoTCP(t *testing.T, server, client *netns.NS, addr netip.Addr, n int) {
	t.Helper()
	var l net.Listener
	if err := server.Do(func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	payload := bytes.Repeat([]byte(plaintextMarker), n/len(plaintextMarker)+1)[:n]
	var conn net.Conn
	if err := client.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("TCP connect to %s: %v", l.Addr(), err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go conn.Write(payload)
	got := make([]byte, n)
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("TCP echo through the tunnel: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("TCP echo through the tunnel: data differs")
	}
}

// echoUDP checks a UDP datagram and its echo.
func echoUDP(t *testing.T, server, client *netns.NS, addr netip.Addr) {
	t.Helper()
	var pc net.PacketConn
	if err := server.Do(func() (err error) {
		pc, err = net.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	var c net.Conn
	if err := client.Do(func() (err error) {
		c, err = net.Dial("udp", pc.LocalAddr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for try := 0; try < 5; try++ {
		c.Write([]byte(plaintextMarker + "-udp"))
		c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == plaintextMarker+"-udp" {
			return
		}
	}
	t.Fatal("no UDP echo through the tunnel")
}

// checkUnderlay fails if the capture holds an IP packet that is not ESP in
// UDP 4500, or the plaintext marker anywhere; it returns the ESP payloads
// sent from the address from.
func checkUnderlay(t *testing.T, file string, from netip.Addr) (espFromA [][]byte) {
	t.Helper()
	frames, err := readPcap(file)
	if err != nil {
		t.Fatal(err)
	}
	var ipFrames int
	for i, f := range frames {
		if bytes.Contains(f.data, []byte(plaintextMarker)) {
			t.Errorf("frame %d on the underlay carries the plaintext marker", i+1)
		}
		proto, sport, dport, payload, ok := f.ip()
		if !ok {
			continue // ARP
		}
		if proto == 58 && len(payload) > 0 && (payload[0] >= 133 && payload[0] <= 137 || payload[0] == 143 || payload[0] >= 130 && payload[0] <= 132) {
			continue // IPv6 neighbour discovery and multicast listener reports
		}
		ipFrames++
		if proto != 17 || (sport != 4500 && dport != 4500) {
			t.Errorf("frame %d on the underlay: protocol %d ports %d→%d, not ESP in UDP 4500", i+1, proto, sport, dport)
			continue
		}
		// With UDP GSO the capture on the sending veth shows super-packets
		// (several ESP datagrams in one); keep single datagrams only.
		if len(payload) > 8 && len(f.data) <= 14+1500 && f.src() == from {
			espFromA = append(espFromA, append([]byte(nil), payload...))
		}
	}
	if ipFrames == 0 {
		t.Fatal("the capture holds no IP packet: did traffic cross the underlay?")
	}
	return espFromA
}

// inject sends raw UDP payloads from the host at from to the peer's ESP port.
func inject(t *testing.T, ns *netns.NS, from netip.Addr, to netip.AddrPort, payloads ...[]byte) {
	t.Helper()
	if err := ns.Do(func() error {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), net.UDPAddrFromAddrPort(to))
		if err != nil {
			return err
		}
		defer c.Close()
		for _, p := range payloads {
			if _, err := c.Write(p); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func waitDrops(t *testing.T, e *endpoint, reason string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.status(t)
		got := st.Drops[reason]
		for _, p := range st.Peers {
			got += p.Drops[reason]
		}
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			j, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("%s drops: %d, want at least %d\n%s", reason, got, want, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
