package kubetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// files are what kube-apiserver reads at start, under Options.Dir/pki.
type files struct {
	serverCert, serverKey string // its serving certificate, signed by the CA
	saKey                 string // the service-account token signing key
	tokens                string // --token-auth-file
}

// certValidity covers a lab cluster left up for a long while, not only a
// test.
const certValidity = 365 * 24 * time.Hour

// writeFiles makes the CA (c.CAFile, c.CAKeyFile), the serving certificate
// for the API server's address, the service-account key and the token file.
func writeFiles(opts Options, c *Cluster) (files, error) {
	dir := filepath.Join(opts.Dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return files{}, fmt.Errorf("kubetest: %w", err)
	}
	f := files{
		serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey:  filepath.Join(dir, "apiserver.key"),
		saKey:      filepath.Join(dir, "service-account.key"),
		tokens:     filepath.Join(dir, "tokens.csv"),
	}
	c.CAFile, c.CAKeyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")

	now := time.Now().Add(-time.Hour) // tolerate a clock a little behind
	caKey, err := writeKey(c.CAKeyFile)
	if err != nil {
		return files{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "rampart-kubetest-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return files{}, fmt.Errorf("kubetest: CA certificate: %w", err)
	}
	c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(c.CAFile, c.caPEM, 0o644); err != nil {
		return files{}, fmt.Errorf("kubetest: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return files{}, fmt.Errorf("kubetest: CA certificate: %w", err)
	}

	// The serving certificate names every address a client may dial: the
	// bind address, loopback, and the in-cluster names and Service address
	// of a real API server, so code that assumes those verifies too.
	srvKey, err := writeKey(f.serverKey)
	if err != nil {
		return files{}, err
	}
	var ips []net.IP
	for _, a := range []netip.Addr{opts.Address, netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback(), opts.ServiceCIDR.Masked().Addr().Next()} {
		if a.IsValid() && !slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.Equal(a.AsSlice()) }) {
			ips = append(ips, a.AsSlice())
		}
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return files{}, fmt.Errorf("kubetest: serving certificate: %w", err)
	}
	if err := os.WriteFile(f.serverCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644); err != nil {
		return files{}, fmt.Errorf("kubetest: %w", err)
	}

	// One ECDSA key both signs service-account tokens and verifies them.
	if _, err := writeKey(f.saKey); err != nil {
		return files{}, err
	}

	if err := os.WriteFile(f.tokens, []byte(tokenFile(c.tokens[AdminUser], opts.Users)), 0o600); err != nil {
		return files{}, fmt.Errorf("kubetest: %w", err)
	}
	return f, nil
}

// tokenFile is the --token-auth-file text: one line per user,
// token,user,uid,"group1,group2" (Options.defaults has refused values with
// a comma or a quote).
func tokenFile(adminToken string, users []User) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s,%s,uid-%s,\"system:masters\"\n", adminToken, AdminUser, AdminUser)
	for _, u := range users {
		fmt.Fprintf(&b, "%s,%s,%s,\"%s\"\n", u.Token, u.Name, u.UID, strings.Join(u.Groups, ","))
	}
	return b.String()
}

// writeKey makes a P-256 key and writes it in SEC1 PEM ("EC PRIVATE KEY"),
// which every key flag of kube-apiserver reads.
func writeKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kubetest: key %s: %w", path, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("kubetest: key %s: %w", path, err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	return key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeKubeconfig writes c.Kubeconfig: one cluster, one user and context
// per token, the admin's context current.
func writeKubeconfig(c *Cluster, users []User) error {
	cfg := clientcmdv1.Config{
		Kind:           "Config",
		APIVersion:     "v1",
		CurrentContext: AdminUser,
		Clusters: []clientcmdv1.NamedCluster{{
			Name:    "kubetest",
			Cluster: clientcmdv1.Cluster{Server: c.URL, CertificateAuthorityData: c.caPEM},
		}},
	}
	names := []string{AdminUser}
	for _, u := range users {
		names = append(names, u.Name)
	}
	for _, n := range names {
		cfg.AuthInfos = append(cfg.AuthInfos, clientcmdv1.NamedAuthInfo{Name: n, AuthInfo: clientcmdv1.AuthInfo{Token: c.tokens[n]}})
		cfg.Contexts = append(cfg.Contexts, clientcmdv1.NamedContext{Name: n, Context: clientcmdv1.Context{Cluster: "kubetest", AuthInfo: n}})
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	return writeConfig(c.Kubeconfig, cfg)
}

// WriteKubeconfig writes a kubeconfig file at path that presents token
// (for example a service account's, bound to a pod by the TokenRequest
// API, as a DaemonSet's agent has it) to the cluster.
func (c *Cluster) WriteKubeconfig(path, token string) error {
	return writeConfig(path, clientcmdv1.Config{
		Kind:           "Config",
		APIVersion:     "v1",
		CurrentContext: "token",
		Clusters:       []clientcmdv1.NamedCluster{{Name: "kubetest", Cluster: clientcmdv1.Cluster{Server: c.URL, CertificateAuthorityData: c.caPEM}}},
		AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: "token", AuthInfo: clientcmdv1.AuthInfo{Token: token}}},
		Contexts:       []clientcmdv1.NamedContext{{Name: "token", Context: clientcmdv1.Context{Cluster: "kubetest", AuthInfo: "token"}}},
	})
}

func writeConfig(path string, cfg clientcmdv1.Config) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("kubetest: kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	return nil
}
