package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/internal/certs"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// With spec.encryption.credentials: csr the node's IKE credentials come
// from the cluster (internal/certs): the agent makes a key, asks for its
// certificate through a CertificateSigningRequest that `rampart controller`
// approves (after checking that the requester's pod runs on the node the
// request names) and signs, and trusts the CA that the controller
// publishes as a ClusterTrustBundle. The key never leaves the node. Key,
// certificate and trust anchors are kept in CredentialsDir, so that an
// agent restarted while the API server is away still has its credentials;
// at about 2/3 of the lifetime a new key and certificate replace them, for
// the IKE SAs made from then on (those up stay: they do not authenticate
// again).

// The files of CredentialsDir.
const (
	credKeyFile  = "node.key"
	credCertFile = "node.crt"
	credCAFile   = "ca.crt"
)

// credentials is one node's certificate, its key and the trust anchors.
type credentials struct {
	Chain []*x509.Certificate // leaf first
	Key   crypto.Signer
	CAs   []*x509.Certificate
}

// csrSource obtains and keeps a node's credentials.
type csrSource struct {
	node     string
	dir      string
	lifetime time.Duration
	client   kubernetes.Interface
	log      *slog.Logger
}

// ResolveCredentials completes c with this node's certificate, key and
// trust anchors when they come from the CSR API (credentials csr): those
// kept in CredentialsDir while they are valid, or else new ones, asked for
// again with back-off until they come or ctx ends. Other configs are
// returned as they are.
func ResolveCredentials(ctx context.Context, c *Config, log *slog.Logger) (*Config, error) {
	if !c.Encrypt || !c.CSR {
		return c, nil
	}
	if log == nil {
		log = slog.Default()
	}
	src, err := c.csrSource(log)
	if err != nil {
		return nil, err
	}
	cr, err := src.stored(time.Now())
	if err != nil {
		log.Info("requesting a node certificate", "signer", certs.SignerName, "because", err)
		if cr, err = src.obtainRetrying(ctx); err != nil {
			return nil, err
		}
	} else {
		log.Info("node certificate from "+src.dir, "serial", cr.Chain[0].SerialNumber, "notAfter", cr.Chain[0].NotAfter)
	}
	nc := *c
	nc.Certs, nc.Key, nc.CAs = cr.Chain, cr.Key, cr.CAs
	return &nc, nil
}

func (c *Config) csrSource(log *slog.Logger) (*csrSource, error) {
	client, err := c.kubeClient()
	if err != nil {
		return nil, err
	}
	return &csrSource{node: c.NodeName, dir: c.CredentialsDir, lifetime: c.CertLifetime, client: client, log: log}, nil
}

// stored returns the credentials kept in the directory, if they are whole
// and usable at now: a key readable by its owner only, a certificate of
// that key naming this node, valid at now and chaining to the kept trust
// anchors.
func (s *csrSource) stored(now time.Time) (*credentials, error) {
	key, err := ikecrypto.ReadPrivateKey(filepath.Join(s.dir, credKeyFile))
	if err != nil {
		return nil, err
	}
	chain, err := ikecrypto.ReadCertificates(filepath.Join(s.dir, credCertFile))
	if err != nil {
		return nil, err
	}
	cas, err := ikecrypto.ReadCertificates(filepath.Join(s.dir, credCAFile))
	if err != nil {
		return nil, err
	}
	cr := &credentials{Chain: chain, Key: key, CAs: cas}
	if err := cr.check(s.node, now); err != nil {
		return nil, fmt.Errorf("%s: %w", s.dir, err)
	}
	return cr, nil
}

// check is what makes credentials usable by node at now.
func (cr *credentials) check(node string, now time.Time) error {
	leaf := cr.Chain[0]
	if !ikecrypto.PublicKeysEqual(leaf.PublicKey, cr.Key.Public()) {
		return errors.New("the certificate is not of the key")
	}
	if !slices.Contains(leaf.DNSNames, node) {
		return fmt.Errorf("the certificate names %v, not this node (%s)", leaf.DNSNames, node)
	}
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return fmt.Errorf("the certificate is valid from %v to %v, not now", leaf.NotBefore, leaf.NotAfter)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, ca := range cr.CAs {
		roots.AddCert(ca)
	}
	for _, c := range cr.Chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the certificate does not chain to the trust anchors: %w", err)
	}
	return nil
}

// obtain makes a new key, has its certificate signed through the CSR API,
// reads the trust anchors, and keeps all three in the directory.
func (s *csrSource) obtain(ctx context.Context) (*credentials, error) {
	// ECDSA P-256: what the signer accepts and every IKEv2 peer verifies
	// (RFC 7427 with SHA-256), and cheap to sign with at each IKE_AUTH.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	chain, err := certs.Request(ctx, s.client, s.node, key, s.lifetime)
	if err != nil {
		return nil, err
	}
	cas, err := certs.TrustAnchors(ctx, s.client)
	if err != nil {
		return nil, err
	}
	cr := &credentials{Chain: chain, Key: key, CAs: cas}
	if err := cr.check(s.node, time.Now()); err != nil {
		return nil, fmt.Errorf("agent: the certificate the signer issued: %w", err)
	}
	if err := s.save(cr); err != nil {
		return nil, err
	}
	s.log.Info("node certificate issued", "serial", chain[0].SerialNumber, "notAfter", chain[0].NotAfter)
	return cr, nil
}

// obtainRetrying is obtain until it succeeds or ctx ends, the pause after
// a failure doubling from 1 s to 1 minute: the API server or the
// controller may not be up yet when a node starts.
func (s *csrSource) obtainRetrying(ctx context.Context) (*credentials, error) {
	pause := time.Second
	for {
		cr, err := s.obtain(ctx)
		if err == nil {
			return cr, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("agent: no node certificate: %w", err)
		}
		s.log.Error("node certificate not issued; asking again", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent: no node certificate: %w", err)
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

// save writes the credentials into the directory (made owner-only), each
// file through a rename: a crash leaves old and new files mixed at worst,
// which stored refuses (the key is not the certificate's), and the agent
// then asks again.
func (s *csrSource) save(cr *credentials) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("agent: credentials directory: %w", err)
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return fmt.Errorf("agent: credentials directory: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cr.Key)
	if err != nil {
		return fmt.Errorf("agent: node key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	defer clear(keyPEM)
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{credKeyFile, keyPEM, 0o600},
		{credCertFile, ikecrypto.EncodeCertificates(cr.Chain), 0o644},
		{credCAFile, ikecrypto.EncodeCertificates(cr.CAs), 0o644},
	} {
		if err := writeFileAtomic(filepath.Join(s.dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("agent: credentials: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes data to path with mode through a temporary file
// in the same directory, synced, then renamed over path.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err = f.Chmod(mode); err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return err
}

// renewCredentials keeps the node's certificate fresh while the agent
// runs: at about 2/3 of its lifetime, a new key and certificate (and the
// trust anchors as they are then) replace those of every node peer in the
// IKE daemon, and are kept for the next start.
func (a *Agent) renewCredentials(ctx context.Context, src *csrSource) error {
	r := &certs.Renewer{Logger: a.log, Renew: func(ctx context.Context) (*x509.Certificate, error) { return a.renew(ctx, src) }}
	return r.Run(ctx, a.cfg.Certs[0])
}

// renew is one renewal: new credentials from src, in force for the IKE
// SAs from now on, and in the status.
func (a *Agent) renew(ctx context.Context, src *csrSource) (*x509.Certificate, error) {
	cr, err := src.obtain(ctx)
	if err == nil {
		err = a.setCredentials(cr)
	}
	if err != nil {
		a.setCertificate(nil, err)
		return nil, err
	}
	a.setCertificate(cr.Chain[0], nil)
	return cr.Chain[0], nil
}

// setCredentials makes cr the node's credentials: for the IKE SAs of
// every node peer from now on, and of the peers added later.
func (a *Agent) setCredentials(cr *credentials) error {
	a.peersMu.Lock()
	defer a.peersMu.Unlock()
	a.creds = cr
	if a.dev == nil {
		return nil
	}
	for _, n := range a.nodes {
		if err := a.dev.SetCertificates(n.Name, cr.Chain, cr.Key, cr.CAs); err != nil {
			return fmt.Errorf("agent: new certificate for the IKE SAs with %s: %w", n.Name, err)
		}
	}
	return nil
}

// CertificateStatus is the node certificate in force (credentials csr).
type CertificateStatus struct {
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// Renewals counts the certificates that replaced the first one since
	// the agent started; Error is why the last renewal failed (it is
	// retried), empty after a success.
	Renewals int    `json:"renewals"`
	Error    string `json:"error,omitempty"`
}

// setCertificate records a renewal (leaf) or its failure (err) in the
// status.
func (a *Agent) setCertificate(leaf *x509.Certificate, err error) {
	a.updateStatus(func(s *PolicyStatus) {
		if s.Certificate == nil {
			s.Certificate = &CertificateStatus{}
		}
		c := s.Certificate
		if err != nil {
			c.Error = err.Error()
			return
		}
		if c.Serial != "" {
			c.Renewals++
		}
		c.Serial, c.NotBefore, c.NotAfter, c.Error = leaf.SerialNumber.Text(16), leaf.NotBefore, leaf.NotAfter, ""
	})
}
