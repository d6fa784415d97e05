package certs

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

func TestParseCA(t *testing.T) {
	root := newTestCA(t, "root", nil)
	inter := newTestCA(t, "intermediate", root)
	other := newTestCA(t, "other", nil)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

	// A certificate that is not a CA, with a key that matches it.
	leafKey := newKey(t, "p256")
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, root.cert, leafKey.Public(), root.key)
	leafKeyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	leafKeyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKeyDER})

	for _, c := range []struct {
		name                  string
		crt, key, anchors     []byte
		err                   string
		wantInter, wantAnchor []string // subjects' CNs
	}{
		{name: "self-signed", crt: root.certPEM, key: root.keyPEM, wantAnchor: []string{"root"}},
		{name: "intermediate, root in ca.crt", crt: inter.certPEM, key: inter.keyPEM, anchors: root.certPEM,
			wantInter: []string{"intermediate"}, wantAnchor: []string{"root"}},
		{name: "intermediate and root in tls.crt", crt: cat(inter.certPEM, root.certPEM), key: inter.keyPEM,
			wantInter: []string{"intermediate"}, wantAnchor: []string{"root"}},
		{name: "intermediate as its own anchor", crt: inter.certPEM, key: inter.keyPEM, wantAnchor: []string{"intermediate"}},
		{name: "key of another CA", crt: root.certPEM, key: other.keyPEM, err: "tls.key is not the key"},
		{name: "not a CA", crt: leafPEM, key: leafKeyPEM, err: "not a CA certificate"},
		{name: "does not chain to ca.crt", crt: inter.certPEM, key: inter.keyPEM, anchors: other.certPEM, err: "does not chain"},
		{name: "no certificate", crt: []byte("nothing"), key: root.keyPEM, err: "tls.crt: no PEM certificate"},
		{name: "no key", crt: root.certPEM, key: nil, err: "tls.key: no PEM private key"},
		{name: "a certificate as the key", crt: root.certPEM, key: root.certPEM, err: `a "CERTIFICATE" PEM block`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca, err := ParseCA(c.crt, c.key, c.anchors)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cns := func(cs []*x509.Certificate) (out []string) {
				for _, c := range cs {
					out = append(out, c.Subject.CommonName)
				}
				return out
			}
			if got := cns(ca.Intermediates); strings.Join(got, ",") != strings.Join(c.wantInter, ",") {
				t.Errorf("intermediates %v, want %v", got, c.wantInter)
			}
			if got := cns(ca.Anchors); strings.Join(got, ",") != strings.Join(c.wantAnchor, ",") {
				t.Errorf("anchors %v, want %v", got, c.wantAnchor)
			}
		})
	}
}

// TestIssue: what a node certificate says, and that it verifies for IKE
// as the node (through an intermediate, to show the chain is complete).
func TestIssue(t *testing.T) {
	root := newTestCA(t, "root", nil)
	inter := newTestCA(t, "intermediate", root)
	ca, err := ParseCA(inter.certPEM, inter.keyPEM, root.certPEM)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t, "ed25519")
	block, _ := pem.Decode(requestPEM(t, key, "node-1", nil))
	req, _ := x509.ParseCertificateRequest(block.Bytes)
	now := time.Now()

	out, err := ca.Issue(req, "node-1", []certv1.KeyUsage{certv1.UsageDigitalSignature}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ikecrypto.ParseCertificates(out)
	if err != nil || len(chain) != 2 {
		t.Fatalf("chain of %d certificates (%v), want the leaf and the intermediate", len(chain), err)
	}
	leaf := chain[0]
	switch {
	case leaf.Subject.String() != "CN=node-1" || strings.Join(leaf.DNSNames, ",") != "node-1":
		t.Errorf("names: subject %q, DNS %q", leaf.Subject, leaf.DNSNames)
	case leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 0:
		t.Errorf("key usage %v, ext %v; want digital signature only", leaf.KeyUsage, leaf.ExtKeyUsage)
	case leaf.IsCA || !leaf.BasicConstraintsValid:
		t.Error("a node certificate must say it is no CA")
	case !leaf.NotBefore.Before(now.Add(-time.Minute)):
		t.Errorf("NotBefore %v: want backdated", leaf.NotBefore)
	case leaf.NotAfter.Sub(now) > time.Hour || leaf.NotAfter.Sub(now) < time.Hour-time.Second:
		t.Errorf("NotAfter %v: want an hour from now", leaf.NotAfter)
	case !ikecrypto.PublicKeysEqual(key.Public(), leaf.PublicKey):
		t.Error("not the request's key")
	case !chain[1].Equal(inter.cert):
		t.Error("second block is not the intermediate")
	}

	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	ders := [][]byte{chain[0].Raw, chain[1].Raw}
	got, err := ikecrypto.VerifyPeerCertificate(ders, roots, time.Now())
	if err != nil {
		t.Fatalf("IKE verification: %v", err)
	}
	if err := ikecrypto.MatchIdentity(got, ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte("node-1")}); err != nil {
		t.Errorf("identity FQDN node-1: %v", err)
	}
	if err := ikecrypto.MatchIdentity(got, ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte("node-2")}); err == nil {
		t.Error("the certificate of node-1 also matches node-2")
	}

	// Key encipherment when asked; never past the CA's own end.
	out, err = ca.Issue(req, "node-1", []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment}, now, 1000*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ = ikecrypto.ParseCertificates(out)
	if chain[0].KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("key usage %v, want digital signature and key encipherment", chain[0].KeyUsage)
	}
	if !chain[0].NotAfter.Equal(inter.cert.NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", chain[0].NotAfter, inter.cert.NotAfter)
	}
}

func TestAnchorsPEM(t *testing.T) {
	root := newTestCA(t, "root", nil)
	ca, err := ParseCA(root.certPEM, root.keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ca.AnchorsPEM() != string(root.certPEM) {
		t.Errorf("AnchorsPEM:\n%s\nwant\n%s", ca.AnchorsPEM(), root.certPEM)
	}
	if strings.Contains(ca.AnchorsPEM(), "PRIVATE") {
		t.Error("the trust bundle holds a key")
	}
}
