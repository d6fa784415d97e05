//go:build e2e

package datapath

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
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
	*netns.Proc
	socket string
	log    *netns.Log
}

func startEndpoint(t *testing.T, ns *netns.NS, bin, config, socket string) *endpoint {
	t.Helper()
	p, err := ns.Start(bin, "tunnel", "run", "--config", config, "--insecure-manual-aead-keys")
	if err != nil {
		t.Fatal(err)
	}
	e := &endpoint{Proc: p, socket: socket, log: p.Log}
	t.Cleanup(func() { e.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := ReadStatus(socket); err == nil {
			return e
		}
		select {
		case <-e.Exited():
			t.Fatalf("rampart tunnel run exited: %v\n%s", e.Err(), e.log)
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
	if err := e.Stop(10 * time.Second); err != nil {
		t.Errorf("%v\n%s", err, e.log)
	}
}

// kill ends the process at once with SIGKILL (by PID): a peer that is gone
// without a DELETE.
func (e *endpoint) kill(t *testing.T) {
	t.Helper()
	if err := e.Kill(); err != nil {
		t.Fatalf("kill rampart: %v", err)
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

// dialEcho serves one TCP echo connection in server at addr (any port)
// and returns the client's connection to it, made in client.
func dialEcho(t *testing.T, server, client *netns.NS, addr netip.Addr) net.Conn {
	t.Helper()
	var l net.Listener
	if err := server.Do(func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	var conn net.Conn
	if err := client.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		l.Close()
		t.Fatalf("TCP connect to %s: %v", l.Addr(), err)
	}
	return conn
}

// echoTCP serves one TCP echo in ns and checks a transfer of n bytes that
// carries the plaintext marker.
func echoTCP(t *testing.T, server, client *netns.NS, addr netip.Addr, n int) {
	t.Helper()
	payload := bytes.Repeat([]byte(plaintextMarker), n/len(plaintextMarker)+1)[:n]
	conn := dialEcho(t, server, client, addr)
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

// waitFor polls cond every 50 ms and fails the test with what if it does
// not hold within timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForPeer is waitFor on the status of e's first peer, which the
// failure shows.
func waitForPeer(t *testing.T, e *endpoint, timeout time.Duration, what string, cond func(p PeerStatus) bool) {
	t.Helper()
	var last PeerStatus
	deadline := time.Now().Add(timeout)
	for {
		if last = e.status(t).Peers[0]; cond(last) {
			return
		}
		if time.Now().After(deadline) {
			j, _ := json.MarshalIndent(struct {
				SAs []SAStatus
				IKE any
			}{last.SAs, last.IKE}, "", "  ")
			t.Fatalf("%s: not after %v; the peer's SAs:\n%s", what, timeout, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testPKI is a test CA and a certificate for each name, as PEM files:
// ECDSA P-256 keys in PKCS#8, mode 0600 (as `rampart tunnel run` and
// strongSwan's pkcs8/ folder want them).
type testPKI struct {
	ca        string
	cert, key map[string]string // file paths by name
}

func newTestPKI(t *testing.T, dir string, names ...string) *testPKI {
	t.Helper()
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Rampart e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(crand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	pki := &testPKI{ca: write("ca.pem", "CERTIFICATE", caDER, 0o644), cert: map[string]string{}, key: map[string]string{}}
	for i, name := range names {
		k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(crand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pki.cert[name] = write(name+".pem", "CERTIFICATE", der, 0o644)
		pki.key[name] = write(name+".key", "PRIVATE KEY", keyDER, 0o600)
	}
	return pki
}

// ikeEnd is one end of a tunnel keyed by IKE, as its Tunnel file says.
type ikeEnd struct {
	name, dev             string
	local, remote         netip.Addr
	localNets, remoteNets []netip.Prefix
	// pskFile, or certFile, keyFile and caFile; IDs default to the
	// addresses.
	pskFile, certFile, keyFile, caFile string
	localID, remoteID                  string
	initiate                           bool
	proposals, espProposals            string // "": the defaults
	// Durations ("" for the defaults) and spec.ike.
	rekeyTime, childRekeyTime, dpdInterval string
	retransmitTimeout                      string
	retransmitTries                        int
}

// writeIKEConfig writes the Tunnel file of e into dir and returns its path
// and the control socket's.
func writeIKEConfig(t *testing.T, dir string, e ikeEnd) (config, socket string) {
	t.Helper()
	socket = filepath.Join(dir, e.name+".sock")
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: rampart.dev/v1alpha1\nkind: Tunnel\nmetadata: {name: %s}\nspec:\n", e.name)
	fmt.Fprintf(&b, "  device: {name: %s}\n  localAddress: %s\n  controlSocket: %s\n", e.dev, e.local, socket)
	if e.retransmitTimeout != "" || e.retransmitTries != 0 {
		b.WriteString("  ike:\n")
		if e.retransmitTimeout != "" {
			fmt.Fprintf(&b, "    retransmitTimeout: %s\n", e.retransmitTimeout)
		}
		if e.retransmitTries != 0 {
			fmt.Fprintf(&b, "    retransmitTries: %d\n", e.retransmitTries)
		}
	}
	fmt.Fprintf(&b, "  peers:\n  - name: peer\n    endpoint: %s\n", e.remote)
	fmt.Fprintf(&b, "    localSubnets: [%s]\n    remoteSubnets: [%s]\n", joinPrefixes(e.localNets), joinPrefixes(e.remoteNets))
	fmt.Fprintf(&b, "    ike:\n      initiate: %v\n", e.initiate)
	for _, f := range [][2]string{
		{"pskFile", e.pskFile}, {"certFile", e.certFile}, {"keyFile", e.keyFile}, {"caFile", e.caFile},
		{"localID", e.localID}, {"remoteID", e.remoteID},
		{"rekeyTime", e.rekeyTime}, {"childRekeyTime", e.childRekeyTime}, {"dpdInterval", e.dpdInterval},
	} {
		if f[1] != "" {
			fmt.Fprintf(&b, "      %s: %q\n", f[0], f[1])
		}
	}
	if e.proposals != "" {
		fmt.Fprintf(&b, "      proposals: [%s]\n", e.proposals)
	}
	if e.espProposals != "" {
		fmt.Fprintf(&b, "      espProposals: [%s]\n", e.espProposals)
	}
	config = filepath.Join(dir, e.name+".yaml")
	if err := os.WriteFile(config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return config, socket
}

// writePSK writes a fresh pre-shared key into dir (mode 0600) and returns
// the file's path and the key.
func writePSK(t *testing.T, dir string) (string, string) {
	t.Helper()
	psk := "e2e-psk-" + hex.EncodeToString(randomKey(t, 16))
	p := filepath.Join(dir, "psk")
	if err := os.WriteFile(p, []byte(psk+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, psk
}

// The pace of streamTCP: 16 KiB every 5 ms, about 3 MB/s each way. The
// stream is meant to last across rekeys, not to fill the path: at full
// speed strongSwan's kernel-libipsec drops packets, IKE messages among
// them, and a test of rekeying becomes one of retransmission.
const (
	streamChunk = 16 << 10
	streamPace  = 5 * time.Millisecond
)

// streamTCP runs a paced TCP echo stream of random bytes from client to a
// server at addr until until() has held for a second (so that what
// follows an event, such as the DELETE of the SAs a rekey replaced,
// happens under the stream too) or timeout passes. Every byte must come
// back, in order. It returns the bytes sent each way and whether until()
// held.
func streamTCP(t *testing.T, server, client *netns.NS, addr netip.Addr, until func() bool, timeout time.Duration) (int, bool) {
	t.Helper()
	conn := dialEcho(t, server, client, addr)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout + 20*time.Second))
	var seed [32]byte
	if _, err := io.ReadFull(crand.Reader, seed[:]); err != nil {
		t.Fatal(err)
	}
	type result struct {
		sent int
		held bool
		err  error
	}
	wrote := make(chan result, 1)
	go func() {
		var r result
		defer func() { wrote <- r }()
		defer conn.(*net.TCPConn).CloseWrite()
		src := rand.NewChaCha8(seed)
		buf := make([]byte, streamChunk)
		tick := time.NewTicker(streamPace)
		defer tick.Stop()
		deadline := time.Now().Add(timeout)
		var heldSince time.Time
		for i := 0; ; i++ {
			if heldSince.IsZero() && i%20 == 0 && until() {
				heldSince = time.Now()
			}
			if r.held = !heldSince.IsZero() && time.Since(heldSince) >= time.Second; r.held || time.Now().After(deadline) {
				return
			}
			src.Read(buf)
			if _, r.err = conn.Write(buf); r.err != nil {
				return
			}
			r.sent += len(buf)
			<-tick.C
		}
	}()
	want := rand.NewChaCha8(seed)
	got, exp := make([]byte, 64<<10), make([]byte, 64<<10)
	received := 0
	for {
		n, err := conn.Read(got)
		want.Read(exp[:n])
		if !bytes.Equal(got[:n], exp[:n]) {
			t.Fatalf("TCP stream through the tunnel: the bytes after offset %d differ from those sent", received)
		}
		received += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("TCP stream through the tunnel: %v after %d bytes came back", err, received)
		}
	}
	r := <-wrote
	if r.err != nil {
		t.Fatalf("TCP stream through the tunnel: send: %v after %d bytes", r.err, r.sent)
	}
	if received != r.sent {
		t.Fatalf("TCP stream through the tunnel: %d bytes sent, %d came back", r.sent, received)
	}
	return r.sent, r.held
}
