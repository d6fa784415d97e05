package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// testPKI is a root CA, an intermediate and an end-entity certificate for
// vpn.example.org, made fresh for the tests.
type testPKI struct {
	root, inter, leaf *x509.Certificate
	leafKey           crypto.Signer
	roots             *x509.CertPool
	now               time.Time
}

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newCert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func caTemplate(serial int64, cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"Example"}, CommonName: cn},
		NotBefore:             testNow.Add(-24 * time.Hour),
		NotAfter:              testNow.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func leafTemplate(serial int64) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:   big.NewInt(serial),
		Subject:        pkix.Name{Country: []string{"CH"}, Organization: []string{"Example"}, CommonName: "vpn.example.org"},
		NotBefore:      testNow.Add(-time.Hour),
		NotAfter:       testNow.Add(30 * 24 * time.Hour),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		DNSNames:       []string{"vpn.example.org", "gw.example.org"},
		IPAddresses:    []net.IP{net.ParseIP("198.51.100.7"), net.ParseIP("2001:db8::7")},
		EmailAddresses: []string{"vpn@example.org"},
		// An EKU IKE does not ask for: strongSwan accepts it, so do we.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func newPKI(t *testing.T) *testPKI {
	rootKey, interKey, leafKey := ecKey(t), ecKey(t), ecKey(t)
	p := &testPKI{now: testNow, leafKey: leafKey}
	rt := caTemplate(1, "Example Root CA")
	p.root = newCert(t, rt, rt, rootKey.Public(), rootKey)
	p.inter = newCert(t, caTemplate(2, "Example Intermediate CA"), p.root, interKey.Public(), rootKey)
	p.leaf = newCert(t, leafTemplate(3), p.inter, leafKey.Public(), interKey)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)
	return p
}

func TestVerifyPeerCertificate(t *testing.T) {
	p := newPKI(t)
	chain := [][]byte{p.leaf.Raw, p.inter.Raw}
	leaf, err := VerifyPeerCertificate(chain, p.roots, p.now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(leaf.Raw, p.leaf.Raw) {
		t.Error("did not return the end-entity certificate")
	}

	other := newPKI(t)
	cases := []struct {
		name  string
		chain [][]byte
		roots *x509.CertPool
		now   time.Time
		want  error
	}{
		{"another CA", chain, other.roots, p.now, ErrCertUntrusted},
		{"intermediate missing", [][]byte{p.leaf.Raw}, p.roots, p.now, ErrCertUntrusted},
		{"no CA configured", chain, nil, p.now, ErrCertUntrusted},
		{"expired", chain, p.roots, p.now.Add(60 * 24 * time.Hour), ErrCertExpired},
		{"not yet valid", chain, p.roots, p.now.Add(-48 * time.Hour), ErrCertExpired},
		{"garbage", [][]byte{{0x30, 0x03, 1, 2, 3}}, p.roots, p.now, ErrCertInvalid},
		{"nothing", nil, p.roots, p.now, ErrCertInvalid},
		{"leaf signed by the wrong key", [][]byte{other.leaf.Raw, p.inter.Raw}, p.roots, p.now, ErrCertUntrusted},
	}
	for _, c := range cases {
		_, err := VerifyPeerCertificate(c.chain, c.roots, c.now)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestVerifyKeyUsage(t *testing.T) {
	rootKey, leafKey := ecKey(t), ecKey(t)
	rt := caTemplate(1, "Root")
	root := newCert(t, rt, rt, rootKey.Public(), rootKey)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range []struct {
		usage x509.KeyUsage
		ok    bool
	}{
		{0, true}, // no Key Usage extension at all
		{x509.KeyUsageDigitalSignature, true},
		{x509.KeyUsageContentCommitment, true},
		{x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, true},
		{x509.KeyUsageKeyEncipherment, false},
		{x509.KeyUsageKeyAgreement, false},
	} {
		tmpl := leafTemplate(7)
		tmpl.KeyUsage = c.usage
		leaf := newCert(t, tmpl, root, leafKey.Public(), rootKey)
		_, err := VerifyPeerCertificate([][]byte{leaf.Raw}, roots, testNow)
		if c.ok && err != nil || !c.ok && !errors.Is(err, ErrCertUsage) {
			t.Errorf("key usage %b: %v", c.usage, err)
		}
	}
}

func mustID(t *testing.T, s string) Identity {
	t.Helper()
	id, err := ParseIdentity(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestMatchIdentity(t *testing.T) {
	leaf := newPKI(t).leaf
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"vpn.example.org", true},
		{"GW.Example.Org.", true},
		{"@vpn.example.org", true},
		{"other.example.org", false},
		{"*.example.org", false},
		{"198.51.100.7", true},
		{"::ffff:198.51.100.7", true},
		{"198.51.100.8", false},
		{"2001:db8::7", true},
		{"2001:db8::8", false},
		{"vpn@example.org", true},
		{"VPN@example.org", true},
		{"admin@example.org", false},
		{"C=CH, O=Example, CN=vpn.example.org", true},
		{"c=ch, o=example, cn=VPN.example.org", true},
		{"C=CH, O=Example, CN=other", false},
		{"O=Example, C=CH, CN=vpn.example.org", false},
		{"@#0102", false},
	} {
		err := MatchIdentity(leaf, mustID(t, c.id))
		if c.ok && err != nil || !c.ok && !errors.Is(err, ErrIdentityMismatch) {
			t.Errorf("%s: %v", c.id, err)
		}
	}
	// The DN as the certificate carries it, byte for byte.
	if err := MatchIdentity(leaf, Identity{Type: IDDERASN1DN, Data: leaf.RawSubject}); err != nil {
		t.Error(err)
	}
	if err := MatchIdentity(leaf, Identity{Type: IDIPv4Addr, Data: []byte{198, 51, 100}}); !errors.Is(err, ErrIdentityMismatch) {
		t.Errorf("3-octet IPv4: %v", err)
	}
}

func TestParseIdentity(t *testing.T) {
	for _, c := range []struct {
		in   string
		typ  IDType
		data []byte
		str  string
	}{
		{"vpn.example.org", IDFQDN, []byte("vpn.example.org"), "vpn.example.org"},
		{"@a.example", IDFQDN, []byte("a.example"), "a.example"},
		{"192.0.2.1", IDIPv4Addr, []byte{192, 0, 2, 1}, "192.0.2.1"},
		{"2001:db8::1", IDIPv6Addr, append([]byte{0x20, 0x01, 0x0d, 0xb8}, append(make([]byte, 11), 1)...), "2001:db8::1"},
		{"alice@example.org", IDRFC822Addr, []byte("alice@example.org"), "alice@example.org"},
		{"@#c0ffee", IDKeyID, []byte{0xc0, 0xff, 0xee}, "@#c0ffee"},
		{"C=CH, O=Example\\, Inc., CN=gw", IDDERASN1DN, nil, "C=CH, O=Example\\, Inc., CN=gw"},
	} {
		id, err := ParseIdentity(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if id.Type != c.typ || (c.data != nil && !bytes.Equal(id.Data, c.data)) {
			t.Errorf("%q: %s %x", c.in, id.Type, id.Data)
		}
		if id.String() != c.str {
			t.Errorf("%q: String %q, want %q", c.in, id.String(), c.str)
		}
		again, err := ParseIdentity(id.String())
		if err != nil || !again.Equal(id) {
			t.Errorf("%q: does not round-trip: %v %v", c.in, again, err)
		}
	}
	// The DN is a Name in the order written, readable by crypto/x509.
	id := mustID(t, "C=CH, O=Example, CN=gw.example.org")
	var rdn pkix.RDNSequence
	if _, err := asn1.Unmarshal(id.Data, &rdn); err != nil {
		t.Fatal(err)
	}
	var name pkix.Name
	name.FillFromRDNSequence(&rdn)
	if name.CommonName != "gw.example.org" || name.Country[0] != "CH" || rdn[0][0].Type.String() != "2.5.4.6" {
		t.Errorf("DN parsed as %+v", name)
	}
	for _, bad := range []string{"", "@", "@#zz", "C=CH, frob=1", "C=CH,=x", "CN="} {
		if _, err := ParseIdentity(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
