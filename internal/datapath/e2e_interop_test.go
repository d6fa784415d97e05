//go:build e2e

package datapath

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/strongswan"
)

// TestPrivilegedInteropStrongSwan: `rampart tunnel run` keyed by IKEv2
// (PSK) initiates to a stock strongSwan charon (kernel-libipsec) on the
// other host; ping and a TCP transfer between the pods pass both ways
// through the negotiated CHILD_SA.
func TestPrivilegedInteropStrongSwan(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := rampartBin(t)
	for _, c := range []struct {
		ike, esp  string
		initiator string // who starts: rampart or strongswan
		rekey     string // who rekeys the CHILD_SA under traffic: "", rampart or strongswan
	}{
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16", "rampart", ""},
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519", "rampart", "strongswan"},
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519", "strongswan", "rampart"},
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16", "rampart", "strongswan-ike"},
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16", "strongswan", "rampart-ike"},
		{"aes256-sha256-prfsha256-ecp256", "aes256-sha256", "rampart", ""},
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16", "strongswan", ""},
		{"aes256-sha256-prfsha256-ecp256", "aes256-sha256", "strongswan", ""},
	} {
		name := c.esp + "/" + c.initiator + "-initiates"
		if c.rekey != "" {
			name += "/" + c.rekey + "-rekeys"
		}
		t.Run(name, func(t *testing.T) {
			childRekey, ikeRekey, ourRekey, ourIKERekey := time.Duration(0), time.Duration(0), "1h", "4h"
			switch c.rekey {
			case "strongswan":
				childRekey = 3 * time.Second
			case "strongswan-ike":
				ikeRekey = 3 * time.Second
			case "rampart-ike":
				ourIKERekey = "3s"
			case "rampart":
				ourRekey = "3s"
			}
			sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
			dir := t.TempDir()
			a, b := sites.A, sites.B
			psk := "interop-psk-" + fmt.Sprint(time.Now().UnixNano())
			charon, err := strongswan.Start(strongswan.Options{Dir: filepath.Join(dir, "charon"), NS: b.Host,
				Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(), PSK: psk,
				Proposals: c.ike, ESPProposals: c.esp, Initiate: c.initiator == "strongswan", DPDDelay: time.Second, ChildRekeyTime: childRekey, RekeyTime: ikeRekey,
				LocalTS: []netip.Prefix{b.Subnet4()}, RemoteTS: []netip.Prefix{a.Subnet4()}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { charon.Stop() })
			if err := os.WriteFile(filepath.Join(dir, "psk"), []byte(psk+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := fmt.Sprintf(`apiVersion: rampart.dev/v1alpha1
kind: Tunnel
metadata: {name: a}
spec:
  device: {name: rpi0}
  localAddress: %s
  controlSocket: %s
  peers:
  - name: charon
    endpoint: %s
    localSubnets: [%s]
    remoteSubnets: [%s]
    ike:
      pskFile: psk
      initiate: %v
      childRekeyTime: %s
      rekeyTime: %s
      proposals: [%s]
      espProposals: [%s]
`, a.UnderlayAddr4.Addr(), filepath.Join(dir, "a.sock"), b.UnderlayAddr4.Addr(), a.Subnet4(), b.Subnet4(), c.initiator == "rampart", ourRekey, ourIKERekey, c.ike, c.esp)
			path := filepath.Join(dir, "a.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ep := startEndpoint(t, a.Host, bin, path, filepath.Join(dir, "a.sock"))
			if err := charon.WaitEstablished(15 * time.Second); err != nil {
				t.Fatalf("%v\nrampart:\n%s", err, ep.log)
			}
			deadline := time.Now().Add(10 * time.Second)
			for len(ep.status(t).Peers[0].SAs) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("rampart installed no CHILD_SA\n%s", ep.log)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if c.rekey != "" {
				// 6 s of pings across a rekey at 3 s (with PFS, x25519):
				// make-before-break loses none.
				out := run(t, a.Pod, "ping", "-c", "60", "-i", "0.1", "-W", "1", b.PodAddr4.Addr().String())
				if !strings.Contains(out, " 0% packet loss") {
					t.Errorf("pings lost across the rekey:\n%s\nrampart:\n%s\ncharon:\n%s", out, ep.log, charon.Log())
				}
				want := `msg="CHILD_SA rekeyed by the peer"`
				switch c.rekey {
				case "rampart":
					want = `msg="CHILD_SA rekeyed"`
				case "strongswan-ike":
					want = `msg="IKE SA rekeyed by the peer"`
				case "rampart-ike":
					want = `msg="IKE SA rekeyed"`
				}
				if !strings.Contains(ep.log.String(), want) {
					t.Errorf("no CHILD_SA rekey happened:\nrampart:\n%s\ncharon:\n%s\n%s", ep.log, charon.ListSAs(), charon.Log())
				}
				if n := strings.Count(fmt.Sprint(ep.status(t).Peers[0].SAs), "inbound"); n < 1 {
					t.Errorf("rampart has no inbound SA after the rekey")
				}
			}
			run(t, a.Pod, "ping", "-c", "3", "-i", "0.2", "-W", "2", b.PodAddr4.Addr().String())
			run(t, b.Pod, "ping", "-c", "3", "-i", "0.2", "-W", "2", a.PodAddr4.Addr().String())
			echoTCP(t, b.Pod, a.Pod, b.PodAddr4.Addr(), 2<<20)
			echoTCP(t, a.Pod, b.Pod, a.PodAddr4.Addr(), 2<<20)
			if st := ep.status(t); st.Peers[0].RxPackets == 0 || st.Peers[0].TxPackets == 0 {
				t.Errorf("rampart counted no traffic: %+v", st.Peers[0])
			}
			// The IKE SA shows in `rampart tunnel status`.
			if out, err := exec.Command(bin, "tunnel", "status", "--socket", filepath.Join(dir, "a.sock")).CombinedOutput(); err != nil ||
				!strings.Contains(string(out), "IKE SA") || !strings.Contains(string(out), "established") {
				t.Errorf("rampart tunnel status: %v\n%s", err, out)
			}
			// Dead peer detection: strongSwan checks every second and
			// clears the SAs of a peer that does not answer; we answer.
			time.Sleep(3 * time.Second)
			if err := charon.WaitEstablished(time.Second); err != nil {
				t.Fatalf("after 3 s of dead peer detection: %v\nrampart:\n%s", err, ep.log)
			}
			if !strings.Contains(charon.Log(), "parsed INFORMATIONAL response") {
				t.Fatalf("strongSwan got no answer to its liveness checks:\n%s", charon.Log())
			}
			// A DELETE of the CHILD_SA from strongSwan is honoured.
			if out, err := charon.Swanctl("--terminate", "--child", "rampart"); err != nil {
				t.Fatalf("swanctl --terminate: %v\n%s", err, out)
			}
			deadline = time.Now().Add(5 * time.Second)
			defer func() {
				// Stopping rampart deletes the IKE SA at strongSwan too.
				ep.stop(t)
				if sas := charon.ListSAs(); strings.Contains(sas, "ESTABLISHED") {
					t.Errorf("strongSwan still has the IKE SA after rampart stopped:\n%s", sas)
				}
			}()
			for len(ep.status(t).Peers[0].SAs) != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("rampart kept the CHILD_SA strongSwan deleted: %+v\n%s", ep.status(t).Peers[0].SAs, ep.log)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
