package ikecrypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadPEMFiles(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node-1"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certs, err := ReadCertificates(write("cert.pem", "CERTIFICATE", der, 0o644))
	if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "node-1" {
		t.Fatalf("certificates: %v %v", certs, err)
	}
	signer, err := ReadPrivateKey(write("key.pem", "PRIVATE KEY", keyDER, 0o600))
	if err != nil || !signer.Public().(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatalf("key: %v", err)
	}
	for _, c := range []struct {
		name string
		err  func() error
		want string
	}{
		{"key readable by others", func() error { _, err := ReadPrivateKey(write("open.pem", "PRIVATE KEY", keyDER, 0o644)); return err }, "chmod 600"},
		{"a certificate as the key", func() error { _, err := ReadPrivateKey(write("c.pem", "CERTIFICATE", der, 0o600)); return err }, "not a private key"},
		{"no certificate", func() error { _, err := ReadCertificates(write("k.pem", "PRIVATE KEY", keyDER, 0o600)); return err }, "no PEM certificate"},
		{"missing", func() error { _, err := ReadCertificates(filepath.Join(dir, "none")); return err }, "no such file"},
	} {
		if err := c.err(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
