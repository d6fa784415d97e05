package ike_test

import (
	"fmt"
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

// TestPrivilegedStrongSwanResponder: our daemon initiates to a stock
// strongSwan charon over UDP 4500 between two network namespaces; both
// must end with an established IKE SA and an installed CHILD_SA. (Traffic
// through the CHILD_SA is the datapath's test; this one checks the wire
// protocol, the key derivation and AUTH against an independent IKEv2.)
func TestPrivilegedStrongSwanResponder(t *testing.T) {
	for _, c := range []struct{ ike, esp string }{
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16"},
		{"aes256-sha256-prfsha256-ecp256", "aes256-sha256"},
	} {
		t.Run(c.ike, func(t *testing.T) { testStrongSwanResponder(t, c.ike, c.esp, interopFault{}) })
	}
	// Each failure must be clear on both ends.
	for _, f := range []interopFault{
		{name: "wrong psk", psk: "not-the-secret", ours: "AUTHENTICATION_FAILED", theirs: "IKE_AUTH response 1 [ N(AUTH_FAILED) ]"},
		{name: "no common proposal", ike: "aes128-sha256-prfsha256-ecp384", ours: "NO_PROPOSAL_CHOSEN", theirs: "received proposals unacceptable"},
		{name: "selectors outside", ts: "198.19.9.0/24", ours: "TS_UNACCEPTABLE", theirs: "198.19.9.0/24 unacceptable"},
	} {
		t.Run(f.name, func(t *testing.T) {
			testStrongSwanResponder(t, "aes256gcm16-prfsha256-x25519", "aes256gcm16", f)
		})
	}
}

// interopFault is a mistake on our side and what each end must say.
type interopFault struct {
	name, psk, ike, ts string
	ours, theirs       string
}

func testStrongSwanResponder(t *testing.T, ikeProps, espProps string, fault interopFault) {
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	a, b := sites.A, sites.B
	psk := "interop-secret-0123456789"
	charon, err := strongswan.Start(strongswan.Options{Dir: filepath.Join(t.TempDir(), "b"), NS: b.Host,
		Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(), PSK: psk,
		Proposals: ikeProps, ESPProposals: espProps,
		LocalTS: []netip.Prefix{b.Subnet4()}, RemoteTS: []netip.Prefix{a.Subnet4()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { charon.Stop() })

	d, table, result := udpDaemon(t, a.Host, a.UnderlayAddr4.Addr())
	ourPSK, ourIKE, ourTS := psk, ikeProps, a.Subnet4()
	if fault.psk != "" {
		ourPSK = fault.psk
	}
	if fault.ike != "" {
		ourIKE = fault.ike
	}
	if fault.ts != "" {
		ourTS = netip.MustParsePrefix(fault.ts)
	}
	ikeP, err := ikecrypto.ParseIKEProposals(ourIKE)
	if err != nil {
		t.Fatal(err)
	}
	espP, err := ikecrypto.ParseESPProposals(espProps)
	if err != nil {
		t.Fatal(err)
	}
	localID, _ := ikecrypto.ParseIdentity(a.UnderlayAddr4.Addr().String())
	remoteID, _ := ikecrypto.ParseIdentity(b.UnderlayAddr4.Addr().String())
	if err := d.AddPeer(ike.Config{Name: "b", Remote: netip.AddrPortFrom(b.UnderlayAddr4.Addr(), 4500),
		LocalID: localID, RemoteID: remoteID, PSK: []byte(ourPSK), IKEProposals: ikeP, ESPProposals: espP,
		LocalTS: []netip.Prefix{ourTS}, RemoteTS: []netip.Prefix{b.Subnet4()}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Initiate("b"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if fault.ours != "" {
			if err == nil || !strings.Contains(err.Error(), fault.ours) {
				t.Errorf("rampart: %v, want an error with %q", err, fault.ours)
			}
			if !charon.LogContains(fault.theirs, 3*time.Second) {
				t.Errorf("strongSwan's log does not say %q:\n%s", fault.theirs, charon.Log())
			}
			if e := table.Current("b"); e != nil {
				t.Errorf("a CHILD_SA was installed: %v", e)
			}
			return
		}
		if err != nil {
			t.Fatalf("rampart: %v\ncharon:\n%s", err, charon.Log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no result in 15 s\ncharon:\n%s", charon.Log())
	}
	if err := charon.WaitEstablished(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	e := table.Current("b")
	sas := charon.ListSAs()
	if e == nil || !strings.Contains(sas, strings.TrimPrefix(spiHex(e.Out.SPI()), "0x")) {
		t.Fatalf("our outbound SPI %s is not strongSwan's inbound one:\n%s", spiHex(e.Out.SPI()), sas)
	}
	t.Logf("strongSwan:\n%s", sas)
}

func spiHex(spi uint32) string { return fmt.Sprintf("0x%08x", spi) }

// udpDaemon runs an IKE daemon on UDP 4500 at local in ns (the non-ESP
// marker added and removed as the datapath does), with its own SADB and a
// channel of OnEstablished results.
func udpDaemon(t *testing.T, ns *netns.NS, local netip.Addr) (*ike.Daemon, *esp.Table, chan error) {
	t.Helper()
	return udpDaemonOpts(t, ns, netip.AddrPortFrom(local, 4500), ike.Options{})
}

// udpDaemonOpts is udpDaemon at any port, with options. On port 4500 it
// also answers on 500 (without the marker), where initiators start.
func udpDaemonOpts(t *testing.T, ns *netns.NS, local netip.AddrPort, opts ike.Options) (*ike.Daemon, *esp.Table, chan error) {
	t.Helper()
	listen := func(at netip.AddrPort) *net.UDPConn {
		var conn *net.UDPConn
		if err := ns.Do(func() (err error) {
			conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	conn, conn500 := listen(local), (*net.UDPConn)(nil)
	if local.Port() == 4500 {
		conn500 = listen(netip.AddrPortFrom(local.Addr(), 500))
	}
	table := esp.NewTable(esp.TableOptions{})
	t.Cleanup(table.Close)
	result := make(chan error, 2)
	opts.OnEstablished = func(_ string, err error) {
		select {
		case result <- err:
		default:
		}
	}
	d := ike.New(table, func(msg []byte, to netip.AddrPort) error {
		if to.Port() == 500 && conn500 != nil {
			_, err := conn500.WriteToUDPAddrPort(msg, to)
			return err
		}
		_, err := conn.WriteToUDPAddrPort(append(make([]byte, esp.NonESPMarkerLen), msg...), to)
		return err
	}, opts)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if esp.ClassifyUDP(buf[:n]) == esp.UDPIKE {
				d.Handle(append([]byte(nil), buf[esp.NonESPMarkerLen:n]...), from)
			}
		}
	}()
	if conn500 != nil {
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := conn500.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				d.Handle(append([]byte(nil), buf[:n]...), from)
			}
		}()
	}
	return d, table, result
}
