package certs

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// TestSignerHandle drives Handle on single CSRs through a fake clientset:
// which subresource each decision is written to, and what.
func TestSignerHandle(t *testing.T) {
	ca := newTestCA(t, "CA", nil)
	parsed, err := ParseCA(ca.certPEM, ca.keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	approvedBy := func(who string) func(*certv1.CertificateSigningRequest) {
		return func(c *certv1.CertificateSigningRequest) {
			c.Status.Conditions = []certv1.CertificateSigningRequestCondition{{Type: certv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: who}}
		}
	}
	for _, c := range []struct {
		name    string
		node    string
		req     func(*x509.CertificateRequest)
		csr     func(*certv1.CertificateSigningRequest)
		writes  []string // subresources written, in order
		cond    certv1.RequestConditionType
		reason  string
		certFor string // the issued certificate's node; "" none
	}{
		{name: "approve and sign", writes: []string{"approval", "status"},
			cond: certv1.CertificateApproved, reason: ReasonApproved, certFor: "node-1"},
		{name: "deny", node: "node-2", writes: []string{"approval"},
			cond: certv1.CertificateDenied, reason: ReasonNodeMismatch},
		// An administrator vouched for the requester: signed on the
		// request's own merits.
		{name: "approved by someone else", csr: func(c *certv1.CertificateSigningRequest) {
			approvedBy("KubectlApprove")(c)
			c.Spec.Username = "jane"
		}, writes: []string{"status"}, cond: certv1.CertificateApproved, reason: "KubectlApprove", certFor: "node-1"},
		{name: "approved by someone else, but names two nodes",
			req: func(r *x509.CertificateRequest) { r.DNSNames = append(r.DNSNames, "node-2") }, csr: approvedBy("KubectlApprove"),
			writes: []string{"status"}, cond: certv1.CertificateFailed, reason: ReasonInvalidRequest},
		{name: "already issued", csr: func(c *certv1.CertificateSigningRequest) {
			approvedBy(ReasonApproved)(c)
			c.Status.Certificate = ca.certPEM
		}},
		{name: "already denied", csr: func(c *certv1.CertificateSigningRequest) {
			c.Status.Conditions = []certv1.CertificateSigningRequestCondition{{Type: certv1.CertificateDenied, Status: corev1.ConditionTrue}}
		}},
		{name: "another signer", csr: func(c *certv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/other" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := c.node
			if node == "" {
				node = "node-1"
			}
			csr := agentCSR(t, "p256", node, c.req)
			csr.UID = types.UID("csr-uid-" + strings.ReplaceAll(c.name, " ", "-"))
			if c.csr != nil {
				c.csr(csr)
			}
			client := fake.NewClientset(csr.DeepCopy())
			s, err := NewSigner(client, SignerOptions{Policy: testPolicy, CA: parsed, Lookup: world(),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Handle(context.Background(), csr); err != nil {
				t.Fatal(err)
			}
			var writes []string
			for _, a := range client.Actions() {
				if u, ok := a.(k8stesting.UpdateAction); ok {
					writes = append(writes, u.GetSubresource())
				}
			}
			if strings.Join(writes, ",") != strings.Join(c.writes, ",") {
				t.Fatalf("wrote %q, want %q", writes, c.writes)
			}
			if len(c.writes) == 0 {
				return
			}
			got, _ := client.CertificatesV1().CertificateSigningRequests().Get(context.Background(), csr.Name, metav1.GetOptions{})
			last := got.Status.Conditions[len(got.Status.Conditions)-1]
			if last.Type != c.cond || last.Reason != c.reason || last.Status != corev1.ConditionTrue {
				t.Errorf("last condition %+v, want %s %s", last, c.cond, c.reason)
			}
			chain, _ := ikecrypto.ParseCertificates(got.Status.Certificate)
			switch {
			case c.certFor == "" && len(got.Status.Certificate) > 0:
				t.Errorf("a certificate was issued: %d bytes", len(got.Status.Certificate))
			case c.certFor != "" && (len(chain) != 1 || chain[0].Subject.CommonName != c.certFor):
				t.Errorf("issued %d certificates, want one for %s", len(chain), c.certFor)
			case c.certFor != "" && chain[0].NotAfter.Sub(time.Now()) > testPolicy.MaxLifetime:
				t.Errorf("issued until %v, beyond the maximum lifetime", chain[0].NotAfter)
			}

			// The informer's stale copy of the same CSR comes back: the
			// signer leaves it alone.
			client.ClearActions()
			if err := s.Handle(context.Background(), csr); err != nil || len(client.Actions()) != 0 {
				t.Errorf("second Handle of the same CSR: %v, %d API calls; want none", err, len(client.Actions()))
			}
		})
	}
}

// TestSignerPublishTrustBundle: created once, left alone when current,
// updated when the CA changes.
func TestSignerPublishTrustBundle(t *testing.T) {
	ca1, ca2 := newTestCA(t, "CA 1", nil), newTestCA(t, "CA 2", nil)
	client := fake.NewClientset()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i, ca := range []*testCA{ca1, ca1, ca2} {
		parsed, err := ParseCA(ca.certPEM, ca.keyPEM, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := NewSigner(client, SignerOptions{Policy: testPolicy, CA: parsed, Logger: quiet})
		client.ClearActions()
		if err := s.PublishTrustBundle(context.Background()); err != nil {
			t.Fatal(err)
		}
		var verbs []string
		for _, a := range client.Actions() {
			verbs = append(verbs, a.GetVerb())
		}
		want := []string{"get create", "get", "get update"}[i]
		if strings.Join(verbs, " ") != want {
			t.Errorf("round %d: %v, want %s", i, verbs, want)
		}
		b, err := client.CertificatesV1().ClusterTrustBundles().Get(context.Background(), TrustBundleName, metav1.GetOptions{})
		if err != nil || b.Spec.SignerName != SignerName || b.Spec.TrustBundle != string(ca.certPEM) {
			t.Errorf("round %d: bundle %+v, %v", i, b, err)
		}
	}
}
