package ike_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/strongswan"
	"github.com/rampartnet/rampart/ipsec/ike"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// TestPrivilegedStrongSwanCertificates: certificate authentication (ECDSA,
// RFC 7427 signatures) against strongSwan, both certificates issued by one
// test CA; we initiate. Then the same with a fragment size so small that
// both IKE_AUTH messages, with their certificates, go in SKF fragments
// (RFC 7383) each way.
func TestPrivilegedStrongSwanCertificates(t *testing.T) {
	for _, c := range []struct {
		name         string
		fragmentSize int
		theirLog     []string // what charon must have logged
	}{
		{"whole messages", 0, nil},
		{"fragmented", 576, []string{"splitting IKE message", "reassembled fragmented IKE message"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
			a, b := sites.A, sites.B
			dir := t.TempDir()
			pki := newInteropPKI(t, dir)
			certA, keyA := pki.issue("a.example")
			certB, keyB := pki.issue("b.example")
			keyDER, _ := x509.MarshalPKCS8PrivateKey(keyB)
			charon, err := strongswan.Start(strongswan.Options{Dir: filepath.Join(dir, "b"), NS: b.Host,
				Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(), LocalID: "b.example", RemoteID: "a.example",
				CertFile: pki.writePEM("b.pem", "CERTIFICATE", certB.Raw), KeyFile: pki.writePEM("b.key", "PRIVATE KEY", keyDER),
				CAFile:  pki.writePEM("ca.pem", "CERTIFICATE", pki.ca.Raw),
				LocalTS: []netip.Prefix{b.Subnet4()}, RemoteTS: []netip.Prefix{a.Subnet4()}, FragmentSize: c.fragmentSize})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { charon.Stop() })

			d, _, result := udpDaemonOpts(t, a.Host, netip.AddrPortFrom(a.UnderlayAddr4.Addr(), 4500), ike.Options{FragmentSize: c.fragmentSize})
			localID, _ := ikecrypto.ParseIdentity("a.example")
			remoteID, _ := ikecrypto.ParseIdentity("b.example")
			if err := d.AddPeer(ike.Config{Name: "b", Remote: netip.AddrPortFrom(b.UnderlayAddr4.Addr(), 4500),
				LocalID: localID, RemoteID: remoteID, Certs: []*x509.Certificate{certA}, Key: keyA, CAs: []*x509.Certificate{pki.ca},
				LocalTS: []netip.Prefix{a.Subnet4()}, RemoteTS: []netip.Prefix{b.Subnet4()}}); err != nil {
				t.Fatal(err)
			}
			if err := d.Initiate("b"); err != nil {
				t.Fatal(err)
			}
			waitEstablished(t, result, charon)
			for _, s := range c.theirLog {
				if !charon.LogContains(s, 3*time.Second) {
					t.Errorf("charon did not log %q:\n%s", s, charon.Log())
				}
			}
		})
	}
}

// interopPKI is a test CA that issues ECDSA P-256 certificates, with
// their files in dir.
type interopPKI struct {
	t   *testing.T
	dir string
	ca  *x509.Certificate
	key *ecdsa.PrivateKey
}

func newInteropPKI(t *testing.T, dir string) *interopPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Rampart interop CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &interopPKI{t: t, dir: dir, ca: ca, key: key}
}

func (p *interopPKI) issue(name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, k.Public(), p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func (p *interopPKI) writePEM(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}
