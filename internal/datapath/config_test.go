package datapath

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

	"github.com/rampartnet/rampart/internal/cluster"
)

const goodTunnel = `apiVersion: rampart.dev/v1alpha1
kind: Tunnel
metadata:
  name: a
spec:
  device:
    name: rp0
  localAddress: 198.18.0.1
  controlSocket: /tmp/rp-a.sock
  peers:
  - name: b
    endpoint: 198.18.0.2
    localSubnets: [198.19.1.0/24]
    remoteSubnets: [198.19.2.0/24]
    sas:
      outbound: {spi: "0x1001", algorithm: %s, keyFile: k1%s}
      inbound: {spi: "0x2001", algorithm: %s, keyFile: k2%s}
`

// writeTunnel writes a config and its key files into a fresh directory.
func writeTunnel(t *testing.T, body string, keyMode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	for name, hexKey := range map[string]string{
		"k1": "0x" + strings.Repeat("11", 36), "k2": strings.Repeat("22", 36),
		"c1": strings.Repeat("33", 32), "c2": strings.Repeat("44", 32),
		"h1": strings.Repeat("55", 32), "h2": strings.Repeat("66", 32),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(hexKey+"\n"), keyMode); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "tunnel.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func aeadTunnel() string {
	return strings.NewReplacer("%s", "").Replace(strings.Replace(strings.Replace(goodTunnel, "algorithm: %s", "algorithm: aes-gcm-16", 2), "%s", "", -1))
}

func TestLoadConfig(t *testing.T) {
	path := writeTunnel(t, aeadTunnel(), 0o600)
	cfg, ds := LoadConfig(path, LoadOptions{AllowManualAEAD: true})
	if cfg == nil {
		t.Fatalf("refused: %v", ds)
	}
	if cfg.Port != DefaultPort || cfg.UnderlayMTU != DefaultUnderlayMTU {
		t.Errorf("defaults: port %d MTU %d", cfg.Port, cfg.UnderlayMTU)
	}
	p := cfg.Peers[0]
	if p.Endpoint.String() != "198.18.0.2:4500" || p.Out.SPI != 0x1001 || p.In.SPI != 0x2001 || len(p.Out.Key) != 36 || p.Out.Key[0] != 0x11 {
		t.Errorf("peer: %+v out %+v", p, p.Out)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cbc := strings.NewReplacer(
		"outbound: {spi: \"0x1001\", algorithm: %s, keyFile: k1%s}", "outbound: {spi: \"0x1001\", algorithm: aes-cbc-hmac-sha256, keyFile: c1, authKeyFile: h1}",
		"inbound: {spi: \"0x2001\", algorithm: %s, keyFile: k2%s}", "inbound: {spi: \"0x2001\", algorithm: aes-cbc-hmac-sha256, keyFile: c2, authKeyFile: h2}",
	).Replace(goodTunnel)
	cases := []struct {
		name    string
		body    string
		mode    os.FileMode
		opts    LoadOptions
		line    int
		path    string
		message string
	}{
		{"manual AEAD refused", aeadTunnel(), 0o600, LoadOptions{}, 16, "spec.peers[0].sas.outbound.algorithm", "may not be keyed by hand"},
		{"key readable by others", cbc, 0o644, LoadOptions{}, 16, "spec.peers[0].sas.outbound.keyFile", "readable or writable by group or others"},
		{"unknown field", strings.Replace(cbc, "localAddress:", "localAdress:", 1), 0o600, LoadOptions{}, 8, "spec.localAdress", "unknown field"},
		{"wrong kind", strings.Replace(cbc, "kind: Tunnel", "kind: Tunel", 1), 0o600, LoadOptions{}, 2, "kind", `expected "Tunnel"`},
		{"bad subnet", strings.Replace(cbc, "198.19.2.0/24", "198.19.2.1/24", 1), 0o600, LoadOptions{}, 14, "spec.peers[0].remoteSubnets[0]", "host bits"},
		{"reserved SPI", strings.Replace(cbc, `"0x2001"`, `"7"`, 1), 0o600, LoadOptions{}, 17, "spec.peers[0].sas.inbound.spi", "reserved"},
		{"bad endpoint", strings.Replace(cbc, "endpoint: 198.18.0.2", "endpoint: site-b", 1), 0o600, LoadOptions{}, 12, "spec.peers[0].endpoint", "not ADDRESS"},
		{"family mismatch", strings.Replace(cbc, "endpoint: 198.18.0.2", "endpoint: '[2001:db8::2]:4500'", 1), 0o600, LoadOptions{}, 12, "spec.peers[0].endpoint", "different IP families"},
		{"transport with subnets", strings.Replace(cbc, "    localSubnets:", "    mode: transport\n    localSubnets:", 1), 0o600, LoadOptions{}, 13, "spec.peers[0].mode", "subnets are for tunnel mode"},
		{"missing auth key", strings.Replace(cbc, ", authKeyFile: h1", "", 1), 0o600, LoadOptions{}, 16, "spec.peers[0].sas.outbound.authKeyFile", "needs an authentication key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTunnel(t, c.body, c.mode)
			cfg, ds := LoadConfig(path, c.opts)
			if cfg != nil {
				t.Fatalf("accepted; want an error at %s", c.path)
			}
			for _, d := range ds {
				if d.Severity == cluster.Error && d.Path == c.path && strings.Contains(d.Message, c.message) {
					if d.Line != c.line || d.File != path {
						t.Errorf("at %s:%d, want line %d", d.File, d.Line, c.line)
					}
					return
				}
			}
			t.Errorf("no error %q at %s in %v", c.message, c.path, ds)
		})
	}
}

func TestLoadExample(t *testing.T) {
	// The shipped example must be valid once its keys exist.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a-to-b", "b-to-a"} {
		os.WriteFile(filepath.Join(dir, "keys", k+".key"), []byte(strings.Repeat("ab", 32)), 0o600)
		os.WriteFile(filepath.Join(dir, "keys", k+".auth"), []byte(strings.Repeat("cd", 32)), 0o600)
	}
	os.WriteFile(filepath.Join(dir, "keys", "psk"), []byte("a pre-shared key\n"), 0o600)
	for _, f := range []string{"site-a.yaml", "site-b.yaml", "ike-site-a.yaml", "ike-site-b.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", "tunnel", f))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, f)
		os.WriteFile(path, data, 0o644)
		if cfg, ds := LoadConfig(path, LoadOptions{}); cfg == nil {
			t.Errorf("%s: %v", f, ds)
		}
	}
}

func TestLoadConfigCertificates(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "a.example"}, DNSNames: []string{"a.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	body := `apiVersion: rampart.dev/v1alpha1
kind: Tunnel
metadata: {name: a}
spec:
  device: {name: rp0}
  localAddress: 198.18.0.1
  controlSocket: /tmp/rp-a.sock
  peers:
  - name: b
    endpoint: 198.18.0.2
    localSubnets: [198.19.1.0/24]
    remoteSubnets: [198.19.2.0/24]
    ike: {localID: a.example, remoteID: b.example, certFile: cert.pem, keyFile: key.pem, caFile: cert.pem}
`
	path := filepath.Join(dir, "t.yaml")
	os.WriteFile(path, []byte(body), 0o644)
	cfg, ds := LoadConfig(path, LoadOptions{})
	if cfg == nil {
		t.Fatalf("refused: %v", ds)
	}
	if k := cfg.Peers[0].IKE; k.Key == nil || len(k.Certs) != 1 || len(k.CAs) != 1 || k.LocalID.String() != "a.example" {
		t.Errorf("IKE settings: %+v", k)
	}
	os.Chmod(filepath.Join(dir, "key.pem"), 0o640)
	if cfg, ds := LoadConfig(path, LoadOptions{}); cfg != nil || len(ds) == 0 || !strings.Contains(ds[0].Message, "chmod 600") {
		t.Errorf("a key file readable by the group was accepted: %v", ds)
	}
}

// ikeTunnel is a Tunnel with one peer keyed by IKE (PSK); extra goes into
// spec, before the peers.
func ikeTunnel(extra string) string {
	return `apiVersion: rampart.dev/v1alpha1
kind: Tunnel
metadata: {name: a}
spec:
  device: {name: rp0}
  localAddress: 198.18.0.1
  controlSocket: /tmp/rp-a.sock
` + extra + `  peers:
  - name: b
    endpoint: 198.18.0.2
    localSubnets: [198.19.1.0/24]
    remoteSubnets: [198.19.2.0/24]
    ike: {pskFile: psk, dpdInterval: 2s}
`
}

func TestLoadConfigIKEDaemon(t *testing.T) {
	for _, c := range []struct {
		name      string
		extra     string
		retrans   time.Duration
		tries     int
		line      int    // of the error, when path is set
		path, msg string // the error
	}{
		{name: "defaults", retrans: time.Second, tries: 5},
		{name: "set", extra: "  ike:\n    retransmitTimeout: 250ms\n    retransmitTries: 3\n", retrans: 250 * time.Millisecond, tries: 3},
		{name: "only tries", extra: "  ike: {retransmitTries: 8}\n", retrans: time.Second, tries: 8},
		{name: "not a duration", extra: "  ike:\n    retransmitTimeout: soon\n", line: 9, path: "spec.ike.retransmitTimeout", msg: `"soon" is not a duration from 100ms to 1m`},
		{name: "too short", extra: "  ike:\n    retransmitTimeout: 1ms\n", line: 9, path: "spec.ike.retransmitTimeout", msg: "from 100ms to 1m"},
		{name: "too long", extra: "  ike:\n    retransmitTimeout: 2m\n", line: 9, path: "spec.ike.retransmitTimeout", msg: "from 100ms to 1m"},
		{name: "no tries", extra: "  ike:\n    retransmitTimeout: 1s\n    retransmitTries: -1\n", line: 10, path: "spec.ike.retransmitTries", msg: "-1 is out of range (1 to 10"},
		{name: "too many tries", extra: "  ike:\n    retransmitTries: 11\n", line: 9, path: "spec.ike.retransmitTries", msg: "11 is out of range"},
		{name: "unknown field", extra: "  ike:\n    retransmitTimout: 1s\n", line: 9, path: "spec.ike.retransmitTimout", msg: "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "psk"), []byte("a pre-shared key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "t.yaml")
			if err := os.WriteFile(path, []byte(ikeTunnel(c.extra)), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, ds := LoadConfig(path, LoadOptions{})
			if c.path == "" {
				if cfg == nil {
					t.Fatalf("refused: %v", ds)
				}
				if cfg.IKE.Retransmit != c.retrans || cfg.IKE.Tries != c.tries {
					t.Errorf("IKE options %+v, want retransmit %v tries %d", cfg.IKE, c.retrans, c.tries)
				}
				if k := cfg.Peers[0].IKE; k.DPDInterval != 2*time.Second {
					t.Errorf("dpdInterval %v", k.DPDInterval)
				}
				return
			}
			if cfg != nil {
				t.Fatalf("accepted; want an error at %s", c.path)
			}
			for _, d := range ds {
				if d.Severity == cluster.Error && d.Path == c.path && strings.Contains(d.Message, c.msg) {
					if d.Line != c.line || d.File != path {
						t.Errorf("at %s:%d, want %s:%d", d.File, d.Line, path, c.line)
					}
					return
				}
			}
			t.Errorf("no error %q at %s in %v", c.msg, c.path, ds)
		})
	}
}

// TestLoadConfigIKEDaemonUnused: spec.ike without an IKE peer is valid but
// has no effect, which a warning says.
func TestLoadConfigIKEDaemonUnused(t *testing.T) {
	body := strings.Replace(aeadTunnel(), "  peers:\n", "  ike: {retransmitTries: 3}\n  peers:\n", 1)
	path := writeTunnel(t, body, 0o600)
	cfg, ds := LoadConfig(path, LoadOptions{AllowManualAEAD: true})
	if cfg == nil {
		t.Fatalf("refused: %v", ds)
	}
	if len(ds) != 1 || ds[0].Severity != cluster.Warning || ds[0].Path != "spec.ike" || ds[0].Line != 10 {
		t.Errorf("want one warning at spec.ike, line 10: %+v", ds)
	}
}
