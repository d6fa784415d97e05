package ike

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
)

// testPKI is a CA and the certificates it signs, for the tests.
type testPKI struct {
	ca  *x509.Certificate
	key crypto.Signer
}

func newKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "ecdsa":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	key := newKey(t, "ecdsa")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &testPKI{ca: ca, key: key}
}

func (p *testPKI) issue(t *testing.T, dns, kind string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := newKey(t, kind)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dns},
		DNSNames: []string{dns}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestCertificates(t *testing.T) {
	for _, c := range []struct {
		name           string
		keyA, keyB     string
		untrusted      bool // B's certificate from another CA
		wrongName      bool // B's certificate names another host
		initiatorError string
	}{
		{name: "ecdsa", keyA: "ecdsa", keyB: "ecdsa"},
		{name: "rsa-pss and ed25519", keyA: "rsa", keyB: "ed25519"},
		{name: "untrusted CA", keyA: "ecdsa", keyB: "ecdsa", untrusted: true, initiatorError: "authentication failed"},
		{name: "certificate for another name", keyA: "ecdsa", keyB: "ecdsa", wrongName: true, initiatorError: "authentication failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pki := newPKI(t, "Rampart test CA")
			certA, keyA := pki.issue(t, "a.example", c.keyA)
			issuer, nameB := pki, "b.example"
			if c.untrusted {
				issuer = newPKI(t, "Someone else's CA")
			}
			if c.wrongName {
				nameB = "c.example"
			}
			certB, keyB := issuer.issue(t, nameB, c.keyB)
			a := side{psk: "", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
			b := side{psk: "", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
			na, nb, _ := newPairWith(t, a, b, func(cfg *Config) {
				cfg.CAs = []*x509.Certificate{pki.ca}
				if strings.HasPrefix(cfg.LocalID.String(), "a.") {
					cfg.Certs, cfg.Key = []*x509.Certificate{certA}, keyA
				} else {
					cfg.Certs, cfg.Key = []*x509.Certificate{certB}, keyB
				}
			}, esp.TableOptions{})
			if c.initiatorError == "" {
				establish(t, na, nb)
				return
			}
			if err := na.d.Initiate("peer"); err != nil {
				t.Fatal(err)
			}
			if err := wait(t, na); err == nil || !strings.Contains(err.Error(), c.initiatorError) {
				t.Fatalf("initiator: %v, want %q", err, c.initiatorError)
			}
			if e := na.table.Current("peer"); e != nil {
				t.Errorf("a CHILD_SA was installed with an unverified peer: %v", e)
			}
			// The responder had established the IKE SA; the initiator's
			// N(AUTHENTICATION_FAILED) takes it down there too.
			if err := wait(t, nb); err != nil {
				t.Fatalf("responder: %v before the refusal", err)
			}
			if err := wait(t, nb); err == nil || !strings.Contains(err.Error(), "AUTHENTICATION_FAILED") {
				t.Errorf("responder: %v, want the peer's AUTHENTICATION_FAILED", err)
			}
			if e := nb.table.Current("peer"); e != nil || len(nb.d.Status()) != 0 {
				t.Errorf("the responder kept its SAs: %v %+v", e, nb.d.Status())
			}
		})
	}
}
