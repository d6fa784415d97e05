//go:build e2e

package datapath

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/testbin"
)

var tunnelCases = []tunnelCase{
	{algorithm: "aes-gcm-16", keyLen: 36, mode: "tunnel"},
	{algorithm: "aes-gcm-16", keyLen: 36, mode: "tunnel", underlay6: true},
	{algorithm: "chacha20-poly1305", keyLen: 36, mode: "tunnel"},
	{algorithm: "aes-cbc-hmac-sha256", keyLen: 32, authLen: 32, mode: "tunnel"},
}

// tshark's names for our transforms in its esp_sa table.
var tsharkAlgorithms = map[string][2]string{
	"aes-gcm-16":          {"AES-GCM with 16 octet ICV [RFC4106]", "NULL"},
	"aes-cbc-hmac-sha256": {"AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]"},
}

func TestPrivilegedTunnel(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := testbin.Path(t, "rampart")
	for _, c := range tunnelCases {
		name := c.algorithm
		if c.underlay6 {
			name += "-over-ipv6"
		}
		t.Run(name, func(t *testing.T) { testTunnel(t, bin, c) })
	}
}

func testTunnel(t *testing.T, bin string, c tunnelCase) {
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	dir := t.TempDir()
	aToB := saKeys{spi: 0x1001, key: randomKey(t, c.keyLen), auth: randomKey(t, c.authLen)}
	bToA := saKeys{spi: 0x2001, key: randomKey(t, c.keyLen), auth: randomKey(t, c.authLen)}
	ulA, ulB := sites.A.UnderlayAddr4.Addr(), sites.B.UnderlayAddr4.Addr()
	if c.underlay6 {
		ulA, ulB = sites.A.UnderlayAddr6.Addr(), sites.B.UnderlayAddr6.Addr()
	}
	netsA := []netip.Prefix{sites.A.Subnet4(), sites.A.Subnet6()}
	netsB := []netip.Prefix{sites.B.Subnet4(), sites.B.Subnet6()}
	cfgA := writeEndpointConfig(t, dir, "a", "rpt0", ulA, ulB, c, netsA, netsB, aToB, bToA, 0)
	cfgB := writeEndpointConfig(t, dir, "b", "rpt0", ulB, ulA, c, netsB, netsA, bToA, aToB, 0)

	pcap := filepath.Join(dir, "underlay.pcap")
	capture := startCapture(t, sites.A.Host, sites.A.UnderlayLink, pcap)
	a := startEndpoint(t, sites.A.Host, bin, cfgA, filepath.Join(dir, "a.sock"))
	b := startEndpoint(t, sites.B.Host, bin, cfgB, filepath.Join(dir, "b.sock"))

	podA, podB := sites.A.Pod, sites.B.Pod
	pB4, pB6 := sites.B.PodAddr4.Addr(), sites.B.PodAddr6.Addr()
	t.Run("ping", func(t *testing.T) {
		run(t, podA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-p", hex.EncodeToString([]byte(plaintextMarker[:16])), pB4.String())
		run(t, podA, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", pB6.String())
	})
	t.Run("tcp", func(t *testing.T) {
		echoTCP(t, podB, podA, pB4, 4<<20)
		echoTCP(t, podB, podA, pB6, 1<<20)
	})
	t.Run("udp", func(t *testing.T) {
		echoUDP(t, podB, podA, pB4)
		echoUDP(t, podB, podA, pB6)
	})
	stA := a.status(t)
	if p := stA.Peers[0]; p.TxPackets == 0 || p.RxPackets == 0 {
		t.Errorf("site A counted no traffic: %+v", p)
	}

	capture.stop()
	espFromA := checkUnderlay(t, pcap, ulA)
	if len(espFromA) == 0 {
		t.Fatal("no ESP from site A in the capture")
	}

	if names, ok := tsharkAlgorithms[c.algorithm]; ok {
		t.Run("tshark decrypts", func(t *testing.T) {
			tsharkDecrypt(t, pcap, names, ulA, ulB, aToB, bToA, sites.A.PodAddr4.Addr(), pB4)
		})
	}

	t.Run("replay and corruption dropped", func(t *testing.T) {
		to := netip.AddrPortFrom(ulB, 4500)
		before := b.status(t).Peers[0].RxPackets
		// Replays of packets B already accepted.
		inject(t, sites.A.Host, ulA, to, espFromA[:min(10, len(espFromA))]...)
		waitDrops(t, b, "replay", uint64(min(10, len(espFromA))))
		// Forgeries: captured packets given sequence numbers far ahead of
		// the window (so the replay pre-check lets them through, RFC 4303
		// §3.4.3), one also with a flipped ciphertext byte, one with a
		// flipped ICV byte. The sequence number is authenticated, so the
		// ICV check fails for all of them, and none may move the window.
		var bad [][]byte
		for i, p := range espFromA[:min(10, len(espFromA))] {
			q := append([]byte(nil), p...)
			binary.BigEndian.PutUint32(q[4:], 1<<30+uint32(i))
			switch i {
			case 1:
				q[len(q)/2] ^= 0x40
			case 2:
				q[len(q)-1] ^= 1
			}
			bad = append(bad, q)
		}
		inject(t, sites.A.Host, ulA, to, bad...)
		waitDrops(t, b, "auth-failed", uint64(len(bad)))
		// An SPI nobody has.
		unknown := append([]byte(nil), espFromA[0]...)
		copy(unknown, []byte{0xde, 0xad, 0xbe, 0xef})
		inject(t, sites.A.Host, ulA, to, unknown)
		waitDrops(t, b, "unknown-spi", 1)
		if after := b.status(t).Peers[0].RxPackets; after != before {
			t.Errorf("site B forwarded %d injected packets", after-before)
		}
	})

	t.Run("tunnel still works after the attack", func(t *testing.T) {
		run(t, podA, "ping", "-c", "1", "-W", "2", pB4.String())
	})

	t.Run("status command", func(t *testing.T) {
		out, err := exec.Command(bin, "tunnel", "status", "--config", cfgA).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "peer peer at "+netip.AddrPortFrom(ulB, 4500).String()) {
			t.Errorf("rampart tunnel status: %v\n%s", err, out)
		}
		if strings.Contains(string(out), hex.EncodeToString(aToB.key)) {
			t.Error("status shows a key")
		}
	})

	a.stop(t)
	b.stop(t)
	for _, s := range []netns.Site{sites.A, sites.B} {
		if ok, err := s.Host.HasLink("rpt0"); err != nil || ok {
			t.Errorf("%s: TUN device left behind (%v)", s.Host.Name, err)
		}
	}
	for _, sock := range []string{a.socket, b.socket} {
		if _, err := ReadStatus(sock); err == nil {
			t.Errorf("%s still answers after stop", sock)
		}
	}
}

// tsharkDecrypt has tshark, an independent ESP implementation, decrypt the
// capture with our keys and checks it finds the inner packets.
func tsharkDecrypt(t *testing.T, pcap string, names [2]string, ulA, ulB netip.Addr, aToB, bToA saKeys, podA, podB netip.Addr) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is not installed (make deps installs it)")
	}
	sa := func(src, dst netip.Addr, k saKeys) string {
		auth := ""
		if names[1] != "NULL" {
			auth = "0x" + hex.EncodeToString(k.auth)
		}
		family := "IPv4"
		if src.Is6() {
			family = "IPv6"
		}
		return fmt.Sprintf(`"%s","%s","%s","%#08x","%s","0x%s","%s","%s"`, family, src, dst, k.spi, names[0], hex.EncodeToString(k.key), names[1], auth)
	}
	base := []string{"-n", "-r", pcap,
		"-o", "esp.enable_encryption_decode:TRUE",
		"-o", "esp.enable_authentication_check:TRUE",
		"-o", "uat:esp_sa:" + sa(ulA, ulB, aToB),
		"-o", "uat:esp_sa:" + sa(ulB, ulA, bToA),
		"-Y", "esp && icmp", "-T", "fields"}
	out, err := exec.Command("tshark", append(base, "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type")...).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	// Each line lists the outer then the inner addresses.
	var requests, replies int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		switch {
		case strings.Contains(f[0], podA.String()) && strings.Contains(f[1], podB.String()) && strings.Contains(f[2], "8"):
			requests++
		case strings.Contains(f[0], podB.String()) && strings.Contains(f[1], podA.String()) && strings.Contains(f[2], "0"):
			replies++
		}
	}
	if requests == 0 || replies == 0 {
		t.Fatalf("tshark found %d echo requests and %d replies inside the ESP; its output:\n%s", requests, replies, out)
	}
	// And the decrypted payload of the requests carries our marker (ping
	// -p repeats it over the payload, so one whole copy is in there).
	out, err = exec.Command("tshark", append(base, "-e", "data.data")...).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if !bytes.Contains(out, []byte(hex.EncodeToString([]byte("rampart")))) {
		t.Errorf("tshark's decrypted bytes do not show the ping payload:\n%s", out)
	}
}

// TestPrivilegedTunnelTransport protects the hosts' own traffic: transport
// mode between the two underlay addresses.
func TestPrivilegedTunnelTransport(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := testbin.Path(t, "rampart")
	c := tunnelCase{algorithm: "aes-cbc-hmac-sha256", keyLen: 32, authLen: 32, mode: "transport"}
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	dir := t.TempDir()
	aToB := saKeys{spi: 0x3001, key: randomKey(t, c.keyLen), auth: randomKey(t, c.authLen)}
	bToA := saKeys{spi: 0x4001, key: randomKey(t, c.keyLen), auth: randomKey(t, c.authLen)}
	ulA, ulB := sites.A.UnderlayAddr4.Addr(), sites.B.UnderlayAddr4.Addr()
	cfgA := writeEndpointConfig(t, dir, "a", "rpt0", ulA, ulB, c, nil, nil, aToB, bToA, 0)
	cfgB := writeEndpointConfig(t, dir, "b", "rpt0", ulB, ulA, c, nil, nil, bToA, aToB, 0)
	pcap := filepath.Join(dir, "underlay.pcap")
	capture := startCapture(t, sites.A.Host, sites.A.UnderlayLink, pcap)
	a := startEndpoint(t, sites.A.Host, bin, cfgA, filepath.Join(dir, "a.sock"))
	b := startEndpoint(t, sites.B.Host, bin, cfgB, filepath.Join(dir, "b.sock"))

	run(t, sites.A.Host, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-p", hex.EncodeToString([]byte(plaintextMarker[:16])), ulB.String())
	echoTCP(t, sites.B.Host, sites.A.Host, ulB, 1<<20)
	echoUDP(t, sites.B.Host, sites.A.Host, ulB)
	if st := b.status(t); st.Peers[0].RxPackets == 0 || st.Peers[0].Mode != "transport" {
		t.Errorf("site B: %+v", st.Peers[0])
	}
	capture.stop()
	checkUnderlay(t, pcap, ulA)
	t.Run("tshark decrypts", func(t *testing.T) {
		tsharkDecrypt(t, pcap, tsharkAlgorithms[c.algorithm], ulA, ulB, aToB, bToA, ulA, ulB)
	})
	a.stop(t)
	b.stop(t)
	// The rule and table for transport mode are gone with the endpoint.
	if out := run(t, sites.A.Host, "ip", "rule"); strings.Contains(out, "0x52504d") {
		t.Errorf("rule left behind:\n%s", out)
	}
}

// TestPrivilegedTunnelMTU: a packet larger than the path to the peer
// allows gets ICMP "fragmentation needed", so TCP's path MTU discovery
// works through the tunnel.
func TestPrivilegedTunnelMTU(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := testbin.Path(t, "rampart")
	c := tunnelCases[2]
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	dir := t.TempDir()
	aToB := saKeys{spi: 0x5001, key: randomKey(t, c.keyLen), auth: randomKey(t, c.authLen)}
	bToA := saKeys{spi: 0x6001, key: randomKey(t, c.keyLen), auth: randomKey(t, c.authLen)}
	ulA, ulB := sites.A.UnderlayAddr4.Addr(), sites.B.UnderlayAddr4.Addr()
	netsA := []netip.Prefix{sites.A.Subnet4(), sites.A.Subnet6()}
	netsB := []netip.Prefix{sites.B.Subnet4(), sites.B.Subnet6()}
	// The path to B is 1400 bytes (so the inner MTU stays above IPv6's 1280); the TUN device keeps the underlay's
	// 1500 minus overhead, so the datapath itself must say "too big".
	cfgA := writeEndpointConfig(t, dir, "a", "rpt0", ulA, ulB, c, netsA, netsB, aToB, bToA, 1400)
	cfgB := writeEndpointConfig(t, dir, "b", "rpt0", ulB, ulA, c, netsB, netsA, bToA, aToB, 1400)
	a := startEndpoint(t, sites.A.Host, bin, cfgA, filepath.Join(dir, "a.sock"))
	startEndpoint(t, sites.B.Host, bin, cfgB, filepath.Join(dir, "b.sock"))
	inner := a.status(t).Peers[0].InnerMTU
	if inner < 1280 || inner >= 1400 {
		t.Fatalf("inner MTU %d", inner)
	}
	pB4 := sites.B.PodAddr4.Addr()
	run(t, sites.A.Pod, "ping", "-c", "1", "-W", "2", "-s", fmt.Sprint(inner-28), "-M", "do", pB4.String())
	out, _ := sites.A.Pod.Command(t.Context(), "ping", "-c", "2", "-W", "2", "-s", fmt.Sprint(inner-28+1), "-M", "do", pB4.String()).CombinedOutput()
	if !strings.Contains(string(out), fmt.Sprintf("mtu = %d", inner)) && !strings.Contains(string(out), fmt.Sprintf("mtu=%d", inner)) {
		t.Errorf("a packet one byte too big got no ICMP with mtu %d:\n%s", inner, out)
	}
	// TCP finds the path MTU and goes through.
	echoTCP(t, sites.B.Pod, sites.A.Pod, pB4, 1<<20)
	if st := a.status(t); st.Peers[0].Drops["too-big"] == 0 {
		t.Errorf("no too-big drops counted: %+v", st.Peers[0].Drops)
	}
	// IPv6: packet too big.
	pB6 := sites.B.PodAddr6.Addr()
	out, _ = sites.A.Pod.Command(t.Context(), "ping", "-6", "-c", "2", "-W", "2", "-s", fmt.Sprint(inner-48+1), "-M", "do", pB6.String()).CombinedOutput()
	if !strings.Contains(string(out), fmt.Sprintf("mtu = %d", inner)) && !strings.Contains(string(out), fmt.Sprintf("mtu=%d", inner)) {
		t.Errorf("IPv6: no packet too big with mtu %d:\n%s", inner, out)
	}
}

// TestPrivilegedTunnelIKE: two `rampart tunnel run` keyed by IKEv2 with
// each other, by a pre-shared key and by certificates of one CA, carrying
// IPv4 and IPv6 subnets: ping and TCP pass both ways, a CHILD_SA rekey
// (and, in the certificate case, an IKE SA rekey too) under a TCP stream
// loses nothing, and stopping one end deletes the SAs at the other.
func TestPrivilegedTunnelIKE(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := testbin.Path(t, "rampart")
	pki := newTestPKI(t, t.TempDir(), "a.example", "b.example")
	for _, c := range []struct {
		auth string
		// Who rekeys under the stream: a (the initiator), b, or nobody.
		childBy, ikeBy string
	}{
		{"psk", "a", ""},
		{"cert", "b", "a"},
	} {
		t.Run(c.auth, func(t *testing.T) { testTunnelIKE(t, bin, pki, c.auth, c.childBy, c.ikeBy) })
	}
}

func testTunnelIKE(t *testing.T, bin string, pki *testPKI, auth, childBy, ikeBy string) {
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	dir := t.TempDir()
	sa, sb := sites.A, sites.B
	ea := ikeEnd{name: "a", dev: "rpt0", local: sa.UnderlayAddr4.Addr(), remote: sb.UnderlayAddr4.Addr(),
		localNets: []netip.Prefix{sa.Subnet4(), sa.Subnet6()}, remoteNets: []netip.Prefix{sb.Subnet4(), sb.Subnet6()}, initiate: true}
	eb := ikeEnd{name: "b", dev: "rpt0", local: sb.UnderlayAddr4.Addr(), remote: sa.UnderlayAddr4.Addr(),
		localNets: ea.remoteNets, remoteNets: ea.localNets}
	switch auth {
	case "psk":
		ea.pskFile, _ = writePSK(t, dir)
		eb.pskFile = ea.pskFile
	case "cert":
		ea.localID, ea.remoteID, eb.localID, eb.remoteID = "a.example", "b.example", "b.example", "a.example"
		ea.certFile, ea.keyFile, ea.caFile = pki.cert["a.example"], pki.key["a.example"], pki.ca
		eb.certFile, eb.keyFile, eb.caFile = pki.cert["b.example"], pki.key["b.example"], pki.ca
	}
	byName := map[string]*ikeEnd{"a": &ea, "b": &eb}
	// The rekeyer's log and the other's, as the stream must see them.
	var want [][2]string // end, message
	if e := byName[childBy]; e != nil {
		e.childRekeyTime = ourChildRekey.String() // see e2e_interop_test.go
		want = append(want, [2]string{childBy, `msg="CHILD_SA rekeyed"`}, [2]string{other(childBy), `msg="CHILD_SA rekeyed by the peer"`})
	}
	if e := byName[ikeBy]; e != nil {
		e.rekeyTime = ikeRekey.String()
		want = append(want, [2]string{ikeBy, `msg="IKE SA rekeyed"`}, [2]string{other(ikeBy), `msg="IKE SA rekeyed by the peer"`})
	}
	cfgB, sockB := writeIKEConfig(t, dir, eb)
	cfgA, sockA := writeIKEConfig(t, dir, ea)
	b := startEndpoint(t, sb.Host, bin, cfgB, sockB)
	a := startEndpoint(t, sa.Host, bin, cfgA, sockA)
	eps := map[string]*endpoint{"a": a, "b": b}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("site A:\n%s\nsite B:\n%s", a.log, b.log)
		}
	})
	for _, e := range []*endpoint{a, b} {
		waitForPeer(t, e, 10*time.Second, "the CHILD_SA is installed at both ends", func(p PeerStatus) bool {
			return len(p.SAs) > 0 && len(p.IKE) == 1 && p.IKE[0].State == "established"
		})
	}

	pA4, pB4, pA6, pB6 := sa.PodAddr4.Addr(), sb.PodAddr4.Addr(), sa.PodAddr6.Addr(), sb.PodAddr6.Addr()
	run(t, sa.Pod, "ping", "-c", "3", "-i", "0.2", "-W", "2", pB4.String())
	run(t, sb.Pod, "ping", "-c", "3", "-i", "0.2", "-W", "2", pA4.String())
	run(t, sa.Pod, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", pB6.String())
	run(t, sb.Pod, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", pA6.String())
	echoTCP(t, sb.Pod, sa.Pod, pB4, 4<<20)
	echoTCP(t, sa.Pod, sb.Pod, pA4, 4<<20)
	echoTCP(t, sa.Pod, sb.Pod, pA6, 1<<20)

	if len(want) > 0 {
		before := make([]int, len(want))
		for i, w := range want {
			before[i] = eps[w[0]].log.Count(w[1])
		}
		_, held := streamTCP(t, sb.Pod, sa.Pod, pB4, func() bool {
			for i, w := range want {
				if eps[w[0]].log.Count(w[1]) <= before[i] {
					return false
				}
			}
			return true
		}, 20*time.Second)
		if !held {
			for i, w := range want {
				if eps[w[0]].log.Count(w[1]) <= before[i] {
					t.Errorf("no %s in site %s's log during a 20 s TCP stream", w[1], strings.ToUpper(w[0]))
				}
			}
		}
		run(t, sb.Pod, "ping", "-6", "-c", "1", "-W", "2", pA6.String())
	}

	// Stopping A deletes the IKE SA, and B drops it with its CHILD_SAs.
	a.stop(t)
	waitForPeer(t, b, 5*time.Second, "site B drops the SAs site A deleted", func(p PeerStatus) bool {
		return len(p.IKE) == 0 && len(p.SAs) == 0
	})
	waitFor(t, 2*time.Second, "site B logs the DELETE", func() bool {
		return strings.Contains(b.log.String(), `msg="IKE SA deleted by the peer"`)
	})
	b.stop(t)
}

func other(end string) string {
	if end == "a" {
		return "b"
	}
	return "a"
}
