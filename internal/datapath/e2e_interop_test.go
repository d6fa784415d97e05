//go:build e2e

package datapath

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/strongswan"
	"github.com/rampartnet/rampart/internal/testbin"
)

// The interoperability matrix of `make interop` at the datapath: `rampart
// tunnel run` keyed by IKEv2 on host A, a stock strongSwan charon
// (Debian's, kernel-libipsec) on host B, ping and TCP between the pods
// behind them. The other failures (wrong PSK, no common proposal,
// selectors outside what the peer may ask) are IKE-level cases, in
// ipsec/ike's TestPrivilegedStrongSwan*.

// The proposals of the matrix, in strongSwan's syntax (our Tunnel file
// takes the same).
var interopProposals = []struct{ ike, esp string }{
	{"aes256gcm16-prfsha256-x25519", "aes256gcm16"},
	{"aes256-sha256-prfsha256-ecp256", "aes256-sha256"},
}

// Rekey timing. strongSwan's rekey_time is exact (rand_time = 0). Ours
// (childRekeyTime) sets the CHILD_SA's hard lifetime 10% above it and the
// soft one, where the rekey starts, 0-10% below it; time lifetimes are
// polled once a second (esp.Table.Tick), so below 10s both limits can pass
// between two polls and the SA expires without a rekey. No period is a
// multiple of another's within the stream (ours 9-10 s then about every
// 10 s, theirs at 3, 6, 9 s; the IKE SA's at 4, 8, 12 s), so that a CHILD_SA
// rekey and an IKE SA rekey do not cross: a collision is legal (RFC 7296
// §2.25), but it is not what these cases are about. strongSwan's timers
// start when the IKE SA is up, which is close to a second of our clock
// when it initiates (its first IKE_SA_INIT is sent before we listen, the
// retransmission one second later), so equal times would collide often.
// All fall inside the TCP stream, which starts about a second after the
// tunnel is up.
const (
	theirChildRekey = 3 * time.Second
	ourChildRekey   = 10 * time.Second
	ikeRekey        = 4 * time.Second
)

// interopCase is one cell of the matrix.
type interopCase struct {
	initiator string // rampart or strongswan
	auth      string // psk or cert
	ike, esp  string
	// Who rekeys the CHILD_SA and who the IKE SA under the stream: rampart
	// or strongswan.
	childRekey, ikeRekey string
}

func (c interopCase) name() string {
	return fmt.Sprintf("%s-initiates/%s/%s/child-rekey-by-%s/ike-rekey-by-%s", c.initiator, c.auth, c.esp, c.childRekey, c.ikeRekey)
}

// TestPrivilegedInteropStrongSwan: for each of Rampart as initiator and as
// responder, PSK and certificates, AES-GCM and AES-CBC/SHA-256: the tunnel
// comes up; ping and a TCP transfer pass both ways; a CHILD_SA rekey and
// an IKE SA rekey happen under a TCP stream, which comes through whole;
// strongSwan's DELETE of the CHILD_SA and ours of the IKE SA (at shutdown)
// are honoured. Which side rekeys what alternates, so that each rekey runs
// both ways with each role, auth method and proposal. Then dead peer
// detection, both ways: each side notices the other is gone (SIGKILL).
// Last, a certificate from a CA the other side does not trust: it fails
// with a clear error on both ends.
func TestPrivilegedInteropStrongSwan(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := testbin.Path(t, "rampart")
	pki := newTestPKI(t, t.TempDir(), "a.example", "b.example")
	const r, s = "rampart", "strongswan"
	gcm, cbc := interopProposals[0], interopProposals[1]
	for _, c := range []interopCase{
		{r, "psk", gcm.ike, gcm.esp, r, s},
		{r, "psk", cbc.ike, cbc.esp, s, r},
		{r, "cert", gcm.ike, gcm.esp, s, r},
		{r, "cert", cbc.ike, cbc.esp, r, s},
		{s, "psk", gcm.ike, gcm.esp, s, r},
		{s, "psk", cbc.ike, cbc.esp, r, s},
		{s, "cert", gcm.ike, gcm.esp, r, s},
		{s, "cert", cbc.ike, cbc.esp, s, r},
		// And perfect forward secrecy: CHILD_SA rekeys with a KE.
		{r, "psk", gcm.ike, gcm.esp + "-x25519", s, r},
		{s, "cert", gcm.ike, gcm.esp + "-x25519", r, s},
	} {
		t.Run(c.name(), func(t *testing.T) { testInterop(t, bin, pki, c) })
	}
	t.Run("dead-peer/strongswan-killed", func(t *testing.T) { testInteropStrongSwanKilled(t, bin) })
	t.Run("dead-peer/rampart-killed", func(t *testing.T) { testInteropRampartKilled(t, bin) })
	// A certificate from a CA the peer does not trust. (ipsec/ike's
	// TestPrivilegedStrongSwan* have the other failures: wrong PSK, no
	// common proposal, selectors outside what the peer may ask.)
	rogue := newTestPKI(t, t.TempDir(), "a.example", "b.example")
	for _, c := range []struct {
		initiator, untrusted string
		ours, theirs         string // what each log must say
	}{
		// The responder refuses the initiator's certificate and answers
		// IKE_AUTH with AUTHENTICATION_FAILED.
		{"rampart", "rampart", "the peer answered AUTHENTICATION_FAILED", "no trusted ECDSA public key found for 'a.example'"},
		{"strongswan", "strongswan", "certificate signed by unknown authority", "received AUTHENTICATION_FAILED notify error"},
		// The initiator refuses the responder's certificate, after the
		// responder has installed its SAs: it must tell it with an
		// INFORMATIONAL N(AUTHENTICATION_FAILED) (RFC 7296 §2.21.2).
		{"rampart", "strongswan", "certificate signed by unknown authority", "INFORMATIONAL request 2 [ N(AUTH_FAILED) ]"},
		{"strongswan", "rampart", "AUTHENTICATION_FAILED", "no trusted ECDSA public key found for 'a.example'"},
	} {
		t.Run(fmt.Sprintf("untrusted-certificate/%s-initiates/%s-untrusted", c.initiator, c.untrusted), func(t *testing.T) {
			testInteropUntrusted(t, bin, interopOptions{initiator: c.initiator, auth: "cert", pki: pki, rogue: rogue, untrusted: c.untrusted}, c.ours, c.theirs)
		})
	}
}

// interopOptions set up one run: what the matrix varies, and the timers.
type interopOptions struct {
	initiator, auth string
	ike, esp        string
	// Ours: Tunnel durations and spec.ike ("" and 0 for the defaults).
	rekeyTime, childRekeyTime, dpdInterval, retransmitTimeout string
	retransmitTries                                           int
	// strongSwan's rekey_time of the IKE SA and of the CHILD_SA (0: its
	// defaults, 4h and 1h).
	ssRekey, ssChildRekey time.Duration
	// ssNoDPD turns strongSwan's dead peer detection off (else: every
	// second it heard nothing from us).
	ssNoDPD bool
	// With certificates: the CA both trust and the certificates it issued;
	// untrusted names the side (rampart or strongswan) whose certificate
	// comes from rogue instead, a CA the other does not trust.
	pki, rogue *testPKI
	untrusted  string
}

// interop is a running pair: rampart on host A, charon on host B.
type interop struct {
	sites  *netns.Sites
	charon *strongswan.Charon
	ep     *endpoint
	dir    string
}

// startInterop starts charon and `rampart tunnel run` and waits until both
// have the IKE SA and the CHILD_SA. When the test fails, both logs are
// printed.
func startInterop(t *testing.T, bin string, o interopOptions) *interop {
	t.Helper()
	in := launchInterop(t, bin, o)
	if err := in.charon.WaitEstablished(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitForPeer(t, in.ep, 10*time.Second, "rampart installs the CHILD_SA", func(p PeerStatus) bool {
		return len(p.SAs) > 0 && len(p.IKE) > 0 && p.IKE[0].State == "established"
	})
	return in
}

// launchInterop starts charon and `rampart tunnel run`.
func launchInterop(t *testing.T, bin string, o interopOptions) *interop {
	t.Helper()
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	in := &interop{sites: sites, dir: t.TempDir()}
	a, b := sites.A, sites.B
	so := strongswan.Options{Dir: filepath.Join(in.dir, "charon"), NS: b.Host,
		Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(),
		Proposals: o.ike, ESPProposals: o.esp, Initiate: o.initiator == "strongswan",
		RekeyTime: o.ssRekey, ChildRekeyTime: o.ssChildRekey,
		LocalTS: []netip.Prefix{b.Subnet4()}, RemoteTS: []netip.Prefix{a.Subnet4()}}
	if !o.ssNoDPD {
		// strongSwan checks every second that we are alive (when it heard
		// nothing), so every case also checks that we answer.
		so.DPDDelay = time.Second
	}
	e := ikeEnd{name: "a", dev: "rpi0", local: a.UnderlayAddr4.Addr(), remote: b.UnderlayAddr4.Addr(),
		localNets: []netip.Prefix{a.Subnet4()}, remoteNets: []netip.Prefix{b.Subnet4()},
		initiate: o.initiator == "rampart", proposals: o.ike, espProposals: o.esp,
		rekeyTime: o.rekeyTime, childRekeyTime: o.childRekeyTime, dpdInterval: o.dpdInterval,
		retransmitTimeout: o.retransmitTimeout, retransmitTries: o.retransmitTries}
	switch o.auth {
	case "psk":
		e.pskFile, so.PSK = writePSK(t, in.dir)
	case "cert":
		ours, theirs := o.pki, o.pki
		switch o.untrusted {
		case "rampart":
			ours = o.rogue
		case "strongswan":
			theirs = o.rogue
		}
		so.LocalID, so.RemoteID = "b.example", "a.example"
		so.CertFile, so.KeyFile, so.CAFile = theirs.cert["b.example"], theirs.key["b.example"], o.pki.ca
		e.localID, e.remoteID = "a.example", "b.example"
		e.certFile, e.keyFile, e.caFile = ours.cert["a.example"], ours.key["a.example"], o.pki.ca
	default:
		t.Fatalf("auth %q", o.auth)
	}
	charon, err := strongswan.Start(so)
	if err != nil {
		t.Fatal(err)
	}
	in.charon = charon
	t.Cleanup(func() { charon.Stop() })
	config, socket := writeIKEConfig(t, in.dir, e)
	in.ep = startEndpoint(t, a.Host, bin, config, socket)
	t.Cleanup(func() {
		// Runs first (cleanups run last in, first out): both are still up.
		if t.Failed() {
			t.Logf("rampart:\n%s\nstrongSwan's SAs:\n%s\ncharon:\n%s", in.ep.log, charon.ListSAs(), charon.Log())
		}
	})
	return in
}

// testInterop runs one cell of the matrix.
func testInterop(t *testing.T, bin string, pki *testPKI, c interopCase) {
	o := interopOptions{initiator: c.initiator, auth: c.auth, ike: c.ike, esp: c.esp, pki: pki}
	// Our log says which side rekeyed.
	var want []string
	switch c.childRekey {
	case "rampart":
		o.childRekeyTime = ourChildRekey.String()
		want = append(want, `msg="CHILD_SA rekeyed"`)
	case "strongswan":
		o.ssChildRekey = theirChildRekey
		want = append(want, `msg="CHILD_SA rekeyed by the peer"`)
	}
	switch c.ikeRekey {
	case "rampart":
		o.rekeyTime = ikeRekey.String()
		want = append(want, `msg="IKE SA rekeyed"`)
	case "strongswan":
		o.ssRekey = ikeRekey
		want = append(want, `msg="IKE SA rekeyed by the peer"`)
	}
	in := startInterop(t, bin, o)
	a, b, ep, charon := in.sites.A, in.sites.B, in.ep, in.charon

	// The tunnel carries ping and TCP both ways.
	run(t, a.Pod, "ping", "-c", "3", "-i", "0.2", "-W", "2", b.PodAddr4.Addr().String())
	run(t, b.Pod, "ping", "-c", "3", "-i", "0.2", "-W", "2", a.PodAddr4.Addr().String())
	echoTCP(t, b.Pod, a.Pod, b.PodAddr4.Addr(), 2<<20)
	echoTCP(t, a.Pod, b.Pod, a.PodAddr4.Addr(), 2<<20)
	if st := ep.status(t); st.Peers[0].RxPackets == 0 || st.Peers[0].TxPackets == 0 {
		t.Errorf("rampart counted no traffic: %+v", st.Peers[0])
	}

	// Both rekeys under a TCP stream, which must lose nothing: they are
	// make-before-break on both sides.
	before := make([]int, len(want))
	for i, w := range want {
		before[i] = ep.log.Count(w)
	}
	rekeyed := func() bool {
		for i, w := range want {
			if ep.log.Count(w) <= before[i] {
				return false
			}
		}
		return true
	}
	sent, held := streamTCP(t, b.Pod, a.Pod, b.PodAddr4.Addr(), rekeyed, 20*time.Second)
	if !held {
		for i, w := range want {
			if ep.log.Count(w) <= before[i] {
				t.Errorf("no %s in rampart's log during a 20 s TCP stream", w)
			}
		}
	}
	t.Logf("%d bytes each way across the rekeys; rampart's drops: %v", sent, ep.status(t).Peers[0].Drops)
	// The SAs that were replaced are gone (between two rekeys: they recur).
	waitForPeer(t, ep, 5*time.Second, "rampart keeps one IKE SA with one CHILD_SA", func(p PeerStatus) bool {
		return len(p.IKE) == 1 && p.IKE[0].State == "established" && p.IKE[0].ChildSAs == 1 && len(p.SAs) == 2
	})
	run(t, b.Pod, "ping", "-c", "1", "-W", "2", a.PodAddr4.Addr().String())

	// The IKE SA shows in `rampart tunnel status`.
	if out, err := exec.Command(bin, "tunnel", "status", "--socket", ep.socket).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "IKE SA") || !strings.Contains(string(out), "established") {
		t.Errorf("rampart tunnel status: %v\n%s", err, out)
	}

	// strongSwan's DELETE of the CHILD_SA is honoured: our SAs go.
	if out, err := charon.Swanctl("--terminate", "--child", "rampart"); err != nil {
		t.Fatalf("swanctl --terminate --child: %v\n%s", err, out)
	}
	waitForPeer(t, ep, 5*time.Second, "rampart removes the CHILD_SA strongSwan deleted", func(p PeerStatus) bool {
		return len(p.SAs) == 0 && len(p.IKE) == 1 && p.IKE[0].ChildSAs == 0
	})
	waitFor(t, 2*time.Second, "rampart logs strongSwan's DELETE", func() bool {
		return strings.Contains(ep.log.String(), `msg="CHILD_SA deleted by the peer"`)
	})

	// Ours is honoured too: stopping rampart deletes the IKE SA, and
	// strongSwan drops it at once.
	ep.stop(t)
	waitFor(t, 5*time.Second, "strongSwan drops the IKE SA rampart deleted", func() bool {
		return !strings.Contains(charon.ListSAs(), "ESTABLISHED")
	})
	waitFor(t, 2*time.Second, "strongSwan logs our DELETE", func() bool {
		return strings.Contains(charon.Log(), "received DELETE for IKE_SA rampart")
	})
	for _, line := range strings.Split(ep.log.String(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Logf("rampart: %s", line)
		}
	}
}

// charon's log of an empty INFORMATIONAL exchange, a liveness check (dead
// peer detection, RFC 7296 §1.4): one of ours it received, and the answer
// to one of its own.
var (
	livenessRequest  = regexp.MustCompile(`parsed INFORMATIONAL request \d+ \[ \]`)
	livenessResponse = regexp.MustCompile(`parsed INFORMATIONAL response \d+ \[ \]`)
)

// testInteropStrongSwanKilled: our dead peer detection (every second,
// retransmitted after 200 ms, 3 tries) notices that charon is gone and
// removes the IKE SA and the CHILD_SA, saying why. strongSwan's own is
// off: its checks would keep ours from being needed.
func testInteropStrongSwanKilled(t *testing.T, bin string) {
	gcm := interopProposals[0]
	in := startInterop(t, bin, interopOptions{initiator: "strongswan", auth: "psk", ike: gcm.ike, esp: gcm.esp,
		dpdInterval: "1s", retransmitTimeout: "200ms", retransmitTries: 3, ssNoDPD: true})
	// While charon lives, it answers our checks and the SAs stay.
	waitFor(t, 5*time.Second, "charon answers our liveness check", func() bool {
		return livenessRequest.MatchString(in.charon.Log())
	})
	if p := in.ep.status(t).Peers[0]; len(p.IKE) != 1 || len(p.SAs) == 0 {
		t.Fatalf("rampart lost its SAs to a live peer: %+v", p)
	}
	if err := in.charon.Kill(); err != nil {
		t.Fatal(err)
	}
	// 1 s without a word, then 0.2 + 0.4 + 0.8 s of retransmissions.
	waitForPeer(t, in.ep, 10*time.Second, "rampart's dead peer detection removes the SAs", func(p PeerStatus) bool {
		return len(p.IKE) == 0 && len(p.SAs) == 0
	})
	// The SAs go just before the line that says why.
	why := "no answer from " + netip.AddrPortFrom(in.sites.B.UnderlayAddr4.Addr(), 4500).String() + " after 3 tries"
	waitFor(t, 2*time.Second, "rampart logs that the peer stopped answering", func() bool {
		log := in.ep.log.String()
		return strings.Contains(log, `msg="IKE SA failed"`) && strings.Contains(log, why)
	})
	if out, err := exec.Command(bin, "tunnel", "status", "--socket", in.ep.socket).CombinedOutput(); err != nil || strings.Contains(string(out), "IKE SA") {
		t.Errorf("rampart tunnel status after the peer died: %v\n%s", err, out)
	}
}

// testInteropRampartKilled: strongSwan's dead peer detection (dpd_delay
// 1s, dpd_action clear) notices that rampart is gone and clears its SAs.
func testInteropRampartKilled(t *testing.T, bin string) {
	gcm := interopProposals[0]
	in := startInterop(t, bin, interopOptions{initiator: "rampart", auth: "psk", ike: gcm.ike, esp: gcm.esp})
	// While rampart lives, it answers strongSwan's checks.
	waitFor(t, 5*time.Second, "rampart answers strongSwan's liveness check", func() bool {
		return livenessResponse.MatchString(in.charon.Log())
	})
	if err := in.charon.WaitEstablished(time.Second); err != nil {
		t.Fatalf("strongSwan lost its SAs to a live peer: %v", err)
	}
	in.ep.kill(t)
	// 1 s without a word, then strongSwan's retransmissions: 1, 1.4, 2.0
	// and 2.7 s.
	waitFor(t, 15*time.Second, "strongSwan's dead peer detection clears the SAs", func() bool {
		sas := in.charon.ListSAs()
		return !strings.Contains(sas, "ESTABLISHED") && !strings.Contains(sas, "INSTALLED")
	})
	waitFor(t, 2*time.Second, "strongSwan logs that we stopped answering", func() bool {
		return strings.Contains(in.charon.Log(), "giving up after 3 retransmits")
	})
}

// testInteropUntrusted: a certificate from a CA the peer does not trust
// fails IKE_AUTH, and both ends say so: ours in rampart's log, theirs in
// charon's. Neither keeps an SA.
func testInteropUntrusted(t *testing.T, bin string, o interopOptions, ours, theirs string) {
	o.ike, o.esp = interopProposals[0].ike, interopProposals[0].esp
	in := launchInterop(t, bin, o)
	waitFor(t, 10*time.Second, "rampart says why IKE_AUTH failed", func() bool { return strings.Contains(in.ep.log.String(), ours) })
	waitFor(t, 10*time.Second, "strongSwan says why IKE_AUTH failed", func() bool { return strings.Contains(in.charon.Log(), theirs) })
	if p := in.ep.status(t).Peers[0]; len(p.SAs) != 0 || len(p.IKE) != 0 {
		t.Errorf("rampart keeps SAs: %+v", p)
	}
	if sas := in.charon.ListSAs(); strings.Contains(sas, "ESTABLISHED") {
		t.Errorf("strongSwan keeps an IKE SA:\n%s", sas)
	}
}
