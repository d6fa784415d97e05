package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// ErrDenied wraps the error of a request the signer denied, or could not
// sign (condition Failed). Such a CSR stays as it is: ask again with a new
// key (the CSR's name follows the key).
var ErrDenied = errors.New("certs: certificate request refused")

// MinLifetime is the shortest lifetime a request may ask for: the API
// refuses spec.expirationSeconds below 600.
const MinLifetime = 10 * time.Minute

// Request obtains a certificate for node's key through a CSR of
// SignerName, and returns its chain, leaf first (then any intermediates;
// the trust anchors come from TrustAnchors). lifetime is asked for in
// spec.expirationSeconds (0: the signer's maximum); the signer may issue
// less.
//
// The CSR is named after the node and the key (CSRName), so a retry with
// the same key, after a crash or a timeout, finds the CSR already made and
// waits for it, or returns the certificate already issued. Request waits
// until the certificate is issued, the CSR is denied or failed (an error
// wrapping ErrDenied with the signer's reason and message), or ctx ends.
//
// client must authenticate with the agent pod's own projected token: the
// signer approves only requests bound to a pod on the node they name.
func Request(ctx context.Context, client kubernetes.Interface, node string, key crypto.Signer, lifetime time.Duration) ([]*x509.Certificate, error) {
	if msgs := validation.IsDNS1123Subdomain(node); len(msgs) > 0 {
		return nil, fmt.Errorf("certs: node name %q: %s", node, strings.Join(msgs, "; "))
	}
	if lifetime != 0 && lifetime < MinLifetime {
		return nil, fmt.Errorf("certs: lifetime %v: at least %v (or 0 for the signer's maximum)", lifetime, MinLifetime)
	}
	name, err := CSRName(node, key.Public())
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: node},
		DNSNames: []string{node},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("certs: certificate request for node %s: %w", node, err)
	}
	csr := &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"rampart.dev/node": labelValue(node)}},
		Spec: certv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: SignerName,
			Usages:     []certv1.KeyUsage{certv1.UsageDigitalSignature},
		},
	}
	if lifetime > 0 {
		secs := int32(min(lifetime/time.Second, 1<<31-1))
		csr.Spec.ExpirationSeconds = &secs
	}
	api := client.CertificatesV1().CertificateSigningRequests()
	if _, err := api.Create(ctx, csr, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		// A retry: the name says node and key; check it before waiting.
		old, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("certs: CSR %s exists, but: %w", name, err)
		}
		if err := sameRequest(old, node, key.Public()); err != nil {
			return nil, fmt.Errorf("certs: CSR %s exists and is not ours: %w", name, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("certs: create CSR %s: %w", name, err)
	}

	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return api.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return api.Watch(ctx, o)
		},
	}
	var issued []byte
	_, err = watchtools.UntilWithSync(ctx, lw, &certv1.CertificateSigningRequest{}, nil, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return false, fmt.Errorf("certs: CSR %s was deleted before it was signed", name)
		case watch.Added, watch.Modified:
		default:
			return false, nil
		}
		c, ok := ev.Object.(*certv1.CertificateSigningRequest)
		if !ok {
			return false, nil
		}
		for _, cond := range c.Status.Conditions {
			if (cond.Type == certv1.CertificateDenied || cond.Type == certv1.CertificateFailed) && cond.Status != corev1.ConditionFalse {
				return false, fmt.Errorf("%w: CSR %s %s: %s: %s", ErrDenied, name, strings.ToLower(string(cond.Type)), cond.Reason, cond.Message)
			}
		}
		if len(c.Status.Certificate) > 0 {
			issued = c.Status.Certificate
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("certs: waiting for CSR %s to be signed: %w", name, ctx.Err())
		}
		return nil, err
	}
	chain, err := ikecrypto.ParseCertificates(issued)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("certs: CSR %s: status.certificate holds no certificate (%v)", name, err)
	}
	if err := checkIssued(chain[0], node, key.Public()); err != nil {
		return nil, fmt.Errorf("certs: CSR %s: %w", name, err)
	}
	return chain, nil
}

// CSRName is the name of the CSR for node's public key: rampart-ipsec-,
// the node name, and 16 hex digits of the SHA-256 of the key's
// SubjectPublicKeyInfo. A name never holds two requests for one key, and
// a new key (each renewal) gets a new name.
func CSRName(node string, pub crypto.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("certs: public key: %w", err)
	}
	sum := sha256.Sum256(spki)
	const prefix = "rampart-ipsec-"
	// An object name is at most 253 characters: a node name near that
	// long is cut, the hash still tells keys apart.
	if limit := validation.DNS1123SubdomainMaxLength - len(prefix) - 17; len(node) > limit {
		node = strings.TrimRight(node[:limit], ".-")
	}
	return prefix + node + "-" + hex.EncodeToString(sum[:8]), nil
}

// labelValue is node as a label value (at most 63 characters), for
// kubectl get csr -l rampart.dev/node=<node>.
func labelValue(node string) string {
	if len(node) > validation.LabelValueMaxLength {
		node = strings.TrimRight(node[:validation.LabelValueMaxLength], ".-")
	}
	return node
}

// sameRequest checks that an existing CSR asks for what we would.
func sameRequest(old *certv1.CertificateSigningRequest, node string, pub crypto.PublicKey) error {
	if old.Spec.SignerName != SignerName {
		return fmt.Errorf("its signer is %q", old.Spec.SignerName)
	}
	block, _ := pem.Decode(old.Spec.Request)
	if block == nil {
		return errors.New("its spec.request is not PEM")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return fmt.Errorf("its spec.request: %w", err)
	}
	if !ikecrypto.PublicKeysEqual(pub, req.PublicKey) || req.Subject.CommonName != node {
		return fmt.Errorf("it asks for %q with another key", req.Subject.CommonName)
	}
	return nil
}

// checkIssued checks the certificate the signer wrote is the one asked
// for: our key, our node, usable now.
func checkIssued(leaf *x509.Certificate, node string, pub crypto.PublicKey) error {
	switch {
	case !ikecrypto.PublicKeysEqual(pub, leaf.PublicKey):
		return errors.New("the issued certificate is not for our key")
	case len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != node:
		return fmt.Errorf("the issued certificate names %q, not [%q]", leaf.DNSNames, node)
	case time.Now().After(leaf.NotAfter):
		return fmt.Errorf("the issued certificate expired at %s (a CSR for this key was signed long ago: use a new key)", leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// TrustAnchors returns the CA certificates of SignerName's
// ClusterTrustBundles (the Signer keeps TrustBundleName): what every
// node's certificate chains to, the CAs of the agent's IKE peers. A pod
// can also mount them, without API access, through a projected volume
// source clusterTrustBundle with signerName rampart.dev/ipsec.
func TrustAnchors(ctx context.Context, client kubernetes.Interface) ([]*x509.Certificate, error) {
	list, err := client.CertificatesV1().ClusterTrustBundles().List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signerName", SignerName).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("certs: list ClusterTrustBundles of %s: %w", SignerName, err)
	}
	var out []*x509.Certificate
	for _, b := range list.Items {
		certs, err := ikecrypto.ParseCertificates([]byte(b.Spec.TrustBundle))
		if err != nil {
			return nil, fmt.Errorf("certs: ClusterTrustBundle %s: %w", b.Name, err)
		}
		for _, c := range certs {
			if !containsCert(out, c) {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("certs: no ClusterTrustBundle of %s holds a certificate: is the controller running?", SignerName)
	}
	return out, nil
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if bytes.Equal(x.Raw, c.Raw) {
			return true
		}
	}
	return false
}
