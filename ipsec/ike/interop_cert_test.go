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
// test CA; we initiate.
func TestPrivilegedStrongSwanCertificates(t *testing.T) {
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{})
	a, b := sites.A, sites.B
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Rampart interop CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k
	}
	certA, keyA := issue("a.example")
	certB, keyB := issue("b.example")
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(keyB)
	charon, err := strongswan.Start(strongswan.Options{Dir: filepath.Join(dir, "b"), NS: b.Host,
		Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(), LocalID: "b.example", RemoteID: "a.example",
		CertFile: writePEM("b.pem", "CERTIFICATE", certB.Raw), KeyFile: writePEM("b.key", "PRIVATE KEY", keyDER),
		CAFile:  writePEM("ca.pem", "CERTIFICATE", ca.Raw),
		LocalTS: []netip.Prefix{b.Subnet4()}, RemoteTS: []netip.Prefix{a.Subnet4()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { charon.Stop() })

	d, _, result := udpDaemon(t, a.Host, a.UnderlayAddr4.Addr())
	localID, _ := ikecrypto.ParseIdentity("a.example")
	remoteID, _ := ikecrypto.ParseIdentity("b.example")
	if err := d.AddPeer(ike.Config{Name: "b", Remote: netip.AddrPortFrom(b.UnderlayAddr4.Addr(), 4500),
		LocalID: localID, RemoteID: remoteID, Certs: []*x509.Certificate{certA}, Key: keyA, CAs: []*x509.Certificate{ca},
		LocalTS: []netip.Prefix{a.Subnet4()}, RemoteTS: []netip.Prefix{b.Subnet4()}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Initiate("b"); err != nil {
		t.Fatal(err)
	}
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
