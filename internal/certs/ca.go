package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// CA is the signer's certificate authority, as a kubernetes.io/tls Secret
// holds it:
//
//	tls.crt  the signing certificate, then (optionally) its chain up to
//	         the root
//	tls.key  its private key (PKCS#8, SEC 1 EC or PKCS#1 RSA PEM)
//	ca.crt   optional: the trust anchors nodes verify each other against;
//	         default: the last certificate of tls.crt (the CA itself when
//	         it is self-signed)
type CA struct {
	// Cert signs; Intermediates are the certificates of tls.crt between it
	// and the anchors, appended to every issued certificate so that a
	// peer holding only the anchors can build the chain.
	Cert          *x509.Certificate
	Intermediates []*x509.Certificate
	// Anchors are published in the ClusterTrustBundle of SignerName.
	Anchors []*x509.Certificate
	key     crypto.Signer
}

// caCertKey is the trust anchors' key in a kubernetes.io/tls Secret (as
// cert-manager writes it).
const caCertKey = "ca.crt"

// notBeforeSkew backdates issued certificates: a peer whose clock is a
// little behind the signer's must not find a fresh certificate "not yet
// valid".
const notBeforeSkew = 5 * time.Minute

// LoadCA reads the CA from the Secret namespace/name. The key's bytes in
// the object are wiped once parsed.
func LoadCA(ctx context.Context, client kubernetes.Interface, namespace, name string) (*CA, error) {
	s, err := client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("certs: CA secret %s/%s: %w", namespace, name, err)
	}
	defer clear(s.Data[corev1.TLSPrivateKeyKey])
	ca, err := ParseCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[caCertKey])
	if err != nil {
		return nil, fmt.Errorf("certs: CA secret %s/%s: %w", namespace, name, err)
	}
	return ca, nil
}

// ParseCA reads a CA from the PEM of a kubernetes.io/tls Secret's tls.crt,
// tls.key and (may be empty) ca.crt, and checks that it can sign node
// certificates now: the first certificate is a CA allowed to sign
// certificates, valid now, matching the key, and chaining to the anchors.
// ParseCA does not modify keyPEM; the caller wipes it.
func ParseCA(certPEM, keyPEM, anchorsPEM []byte) (*CA, error) {
	chain, err := ikecrypto.ParseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corev1.TLSCertKey, err)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", corev1.TLSCertKey)
	}
	key, err := ikecrypto.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", corev1.TLSPrivateKeyKey, err)
	}
	ca := &CA{Cert: chain[0], key: key}
	if len(anchorsPEM) > 0 {
		if ca.Anchors, err = ikecrypto.ParseCertificates(anchorsPEM); err != nil {
			return nil, fmt.Errorf("%s: %w", caCertKey, err)
		}
	}
	if len(ca.Anchors) == 0 {
		ca.Anchors = chain[len(chain)-1:]
	}
	// The signing certificate too, when it is an intermediate CA.
	for _, c := range chain {
		if !slices.ContainsFunc(ca.Anchors, c.Equal) {
			ca.Intermediates = append(ca.Intermediates, c)
		}
	}

	c := ca.Cert
	now := time.Now()
	var errs []error
	if !c.BasicConstraintsValid || !c.IsCA {
		errs = append(errs, fmt.Errorf("%q is not a CA certificate (basic constraints)", c.Subject))
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		errs = append(errs, fmt.Errorf("%q: its key usage does not allow signing certificates (keyCertSign)", c.Subject))
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		errs = append(errs, fmt.Errorf("%q is valid from %s to %s, not now", c.Subject, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339)))
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.PublicKey) {
		errs = append(errs, fmt.Errorf("%s is not the key of %q in %s", corev1.TLSPrivateKeyKey, c.Subject, corev1.TLSCertKey))
	}
	for _, a := range ca.Anchors {
		if !a.IsCA {
			errs = append(errs, fmt.Errorf("anchor %q is not a CA certificate", a.Subject))
		}
	}
	if len(errs) == 0 {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		for _, a := range ca.Anchors {
			roots.AddCert(a)
		}
		for _, i := range ca.Intermediates {
			inter.AddCert(i)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			errs = append(errs, fmt.Errorf("%q does not chain to the trust anchors: %w", c.Subject, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ca, nil
}

// Issue signs a node certificate for an approved request: subject CN and
// the single DNS SAN the node name, the request's key, Key Usage digital
// signature (and key encipherment when asked), no Extended Key Usage (RFC
// 4945 §5.1.3.12: IKE peers should not require one), valid from a little
// before now for lifetime, but never past the CA's own expiry. It returns
// the PEM for status.certificate: the certificate, then the
// intermediates, never the anchors (the API: "subsequent blocks should be
// treated as intermediate certificates").
func (ca *CA) Issue(req *x509.CertificateRequest, node string, usages []certv1.KeyUsage, now time.Time, lifetime time.Duration) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: serial number: %w", err)
	}
	ku := x509.KeyUsageDigitalSignature
	if slices.Contains(usages, certv1.UsageKeyEncipherment) {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: node},
		DNSNames:              []string{node},
		NotBefore:             now.Add(-notBeforeSkew),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              ku,
		BasicConstraintsValid: true, // and IsCA false: a node signs nothing
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	if tmpl.NotBefore.Before(ca.Cert.NotBefore) {
		tmpl.NotBefore = ca.Cert.NotBefore
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign certificate for node %s: %w", node, err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	b.Write(ikecrypto.EncodeCertificates(ca.Intermediates))
	return b.Bytes(), nil
}

// TrustBundleName is the ClusterTrustBundle the signer keeps: the API
// requires a signer's bundles to be named "<signer, / as :>:<suffix>".
const TrustBundleName = "rampart.dev:ipsec:ca"

// AnchorsPEM is the content of the trust bundle.
func (ca *CA) AnchorsPEM() string {
	return string(ikecrypto.EncodeCertificates(ca.Anchors))
}
