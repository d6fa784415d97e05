package ike_test

import (
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/strongswan"
	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// TestPrivilegedStrongSwanCookies: COOKIEs (RFC 7296 §2.6) both ways.
// strongSwan initiates to a Rampart responder that always asks for one;
// and Rampart initiates to a strongSwan that asks for one because another
// initiator left an IKE SA half open there (cookie_threshold 1).
func TestPrivilegedStrongSwanCookies(t *testing.T) {
	psk := "interop-cookie-secret"
	ikeP, espP := "aes256gcm16-prfsha256-x25519", "aes256gcm16"
	setup := func(t *testing.T, theyInitiate bool, threshold int) (*netns.Sites, *strongswan.Charon, *ike.Daemon, chan error) {
		sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
		a, b := sites.A, sites.B
		charon, err := strongswan.Start(strongswan.Options{Dir: filepath.Join(t.TempDir(), "b"), NS: b.Host,
			Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(), PSK: psk, Proposals: ikeP, ESPProposals: espP,
			Initiate: theyInitiate, CookieThreshold: threshold,
			LocalTS: []netip.Prefix{b.Subnet4()}, RemoteTS: []netip.Prefix{a.Subnet4()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { charon.Stop() })
		opts := ike.Options{}
		if theyInitiate {
			opts.CookieThreshold = -1
		}
		d, _, result := udpDaemonOpts(t, a.Host, netip.AddrPortFrom(a.UnderlayAddr4.Addr(), 4500), opts)
		addPeer(t, d, "b", a.UnderlayAddr4.Addr(), b.UnderlayAddr4.Addr(), psk, ikeP, espP, a.Subnet4(), b.Subnet4())
		return sites, charon, d, result
	}
	t.Run("strongswan initiates", func(t *testing.T) {
		_, charon, _, result := setup(t, true, 0)
		waitEstablished(t, result, charon)
		if !charon.LogContains("N(COOKIE)", 3*time.Second) {
			t.Errorf("charon was not asked for a cookie:\n%s", charon.Log())
		}
	})

	t.Run("rampart initiates", func(t *testing.T) {
		sites, charon, d, result := setup(t, false, 1)
		a, b := sites.A, sites.B
		// Another initiator at A's address sends an IKE_SA_INIT and
		// nothing more: strongSwan holds one half-open IKE SA.
		first := make(chan []byte, 8)
		half := ike.New(esp.NewTable(esp.TableOptions{}), func(msg []byte, _ netip.AddrPort) error {
			first <- append(make([]byte, esp.NonESPMarkerLen), msg...)
			return nil
		}, ike.Options{Retransmit: time.Hour})
		addPeer(t, half, "b", a.UnderlayAddr4.Addr(), b.UnderlayAddr4.Addr(), "another key", ikeP, espP, a.Subnet4(), b.Subnet4())
		if err := half.Initiate("b"); err != nil {
			t.Fatal(err)
		}
		var conn *net.UDPConn
		if err := a.Host.Do(func() (err error) {
			conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.UnderlayAddr4.Addr(), 14500)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.WriteToUDPAddrPort(<-first, netip.AddrPortFrom(b.UnderlayAddr4.Addr(), 4500)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(charon.Log(), "CONNECTING") && !strings.Contains(charon.ListSAs(), "CONNECTING") {
			if time.Now().After(deadline) {
				t.Fatalf("no half-open IKE SA at strongSwan:\n%s\n%s", charon.ListSAs(), charon.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := d.Initiate("b"); err != nil {
			t.Fatal(err)
		}
		waitEstablished(t, result, charon)
		if !charon.LogContains("N(COOKIE)", 3*time.Second) {
			t.Errorf("charon did not ask for a cookie:\n%s", charon.Log())
		}
	})
}

func addPeer(t *testing.T, d *ike.Daemon, name string, local, remote netip.Addr, psk, ikeProps, espProps string, localTS, remoteTS netip.Prefix) {
	t.Helper()
	ikeP, err := ikecrypto.ParseIKEProposals(ikeProps)
	if err != nil {
		t.Fatal(err)
	}
	espP, err := ikecrypto.ParseESPProposals(espProps)
	if err != nil {
		t.Fatal(err)
	}
	localID, _ := ikecrypto.ParseIdentity(local.String())
	remoteID, _ := ikecrypto.ParseIdentity(remote.String())
	if err := d.AddPeer(ike.Config{Name: name, Remote: netip.AddrPortFrom(remote, 4500), LocalID: localID, RemoteID: remoteID,
		PSK: []byte(psk), IKEProposals: ikeP, ESPProposals: espP, LocalTS: []netip.Prefix{localTS}, RemoteTS: []netip.Prefix{remoteTS}}); err != nil {
		t.Fatal(err)
	}
}

// waitEstablished waits for our daemon's result, which must be success,
// then for strongSwan's SAs.
func waitEstablished(t *testing.T, result chan error, charon *strongswan.Charon) {
	t.Helper()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("rampart: %v\ncharon:\n%s", err, charon.Log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no result in 15 s\ncharon:\n%s", charon.Log())
	}
	if err := charon.WaitEstablished(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}
