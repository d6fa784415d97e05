package certs

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeLookup serves pods and nodes from maps; err, when set, is what
// every lookup fails with (a transient API error).
type fakeLookup struct {
	pods  map[string]*corev1.Pod // namespace/name
	nodes map[string]*corev1.Node
	err   error
}

func (f *fakeLookup) Pod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if f.err != nil {
		return nil, f.err
	}
	if p, ok := f.pods[ns+"/"+name]; ok {
		return p, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
}

func (f *fakeLookup) Node(_ context.Context, name string) (*corev1.Node, error) {
	if f.err != nil {
		return nil, f.err
	}
	if n, ok := f.nodes[name]; ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
}

var testPolicy = Policy{
	AgentNamespace: "rampart-system", AgentServiceAccount: "rampart-agent",
	AgentPods:   labels.SelectorFromSet(labels.Set{"app.kubernetes.io/name": "rampart-agent"}),
	MaxLifetime: 24 * time.Hour,
}

// world is the cluster the requests of TestReview come from: an agent pod
// on node-1, and node-1 and node-2.
func world() *fakeLookup {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "rampart-system", Name: "agent-abcde", UID: "pod-uid-1",
			Labels: map[string]string{"app.kubernetes.io/name": "rampart-agent"}},
		Spec:   corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "rampart-agent"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	return &fakeLookup{
		pods: map[string]*corev1.Pod{"rampart-system/agent-abcde": pod},
		nodes: map[string]*corev1.Node{
			"node-1": {ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "node-uid-1"}},
			"node-2": {ObjectMeta: metav1.ObjectMeta{Name: "node-2", UID: "node-uid-2"}},
		},
	}
}

// agentCSR is what the API server stores when the agent pod on node-1
// asks for node's certificate with its projected token.
func agentCSR(t testing.TB, key string, node string, change func(*x509.CertificateRequest)) *certv1.CertificateSigningRequest {
	t.Helper()
	return &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr"},
		Spec: certv1.CertificateSigningRequestSpec{
			Request:    requestPEM(t, newKey(t, key), node, change),
			SignerName: SignerName,
			Usages:     []certv1.KeyUsage{certv1.UsageDigitalSignature},
			Username:   "system:serviceaccount:rampart-system:rampart-agent",
			UID:        "sa-uid",
			Groups:     []string{"system:serviceaccounts", "system:serviceaccounts:rampart-system", "system:authenticated"},
			Extra: map[string]certv1.ExtraValue{
				ExtraPodName:  {"agent-abcde"},
				ExtraPodUID:   {"pod-uid-1"},
				ExtraNodeName: {"node-1"},
				ExtraNodeUID:  {"node-uid-1"},
				"authentication.kubernetes.io/credential-id": {"JTI=0a1b"},
			},
		},
	}
}

func TestReview(t *testing.T) {
	for _, c := range []struct {
		name   string
		key    string                                  // default p256
		node   string                                  // the node the request names; default node-1
		req    func(*x509.CertificateRequest)          // change the x509 request
		csr    func(*certv1.CertificateSigningRequest) // change the object
		world  func(*fakeLookup)                       // change the cluster
		reason string                                  // "" approve; else the denial's reason
		msg    string                                  // in the message
	}{
		{name: "agent on its node, P-256"},
		{name: "P-384", key: "p384"},
		{name: "Ed25519", key: "ed25519"},
		{name: "RSA 2048 with key encipherment", key: "rsa2048", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Usages = append(c.Spec.Usages, certv1.UsageKeyEncipherment)
		}},
		{name: "no node uid in the token (the Node did not exist at issue)", csr: func(c *certv1.CertificateSigningRequest) {
			delete(c.Spec.Extra, ExtraNodeUID)
		}},
		{name: "agent pod without labels", world: func(w *fakeLookup) {
			w.pods["rampart-system/agent-abcde"].Labels = nil
		}, reason: ReasonAgentPod, msg: "not an agent pod"},

		// (a) the requester.
		{name: "another service account", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Username = "system:serviceaccount:rampart-system:default"
		}, reason: ReasonNotAgent, msg: `requested by "system:serviceaccount:rampart-system:default"`},
		{name: "same name in another namespace", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Username = "system:serviceaccount:evil:rampart-agent"
		}, reason: ReasonNotAgent, msg: "rampart-system/rampart-agent"},
		{name: "a node's own identity", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Username = "system:node:node-1"
		}, reason: ReasonNotAgent},
		{name: "wrong signer", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.SignerName = "kubernetes.io/kube-apiserver-client"
		}, reason: ReasonInvalidRequest, msg: "spec.signerName"},

		// (b) the binding to a pod on a node.
		{name: "token not bound to a pod", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Extra = nil
		}, reason: ReasonNotBound, msg: "projected service-account token"},
		{name: "pod-bound token without the node", csr: func(c *certv1.CertificateSigningRequest) {
			delete(c.Spec.Extra, ExtraNodeName)
		}, reason: ReasonNotBound, msg: ExtraNodeName},
		{name: "no pod uid", csr: func(c *certv1.CertificateSigningRequest) {
			delete(c.Spec.Extra, ExtraPodUID)
		}, reason: ReasonNotBound, msg: ExtraPodUID},
		{name: "two node names", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Extra[ExtraNodeName] = certv1.ExtraValue{"node-1", "node-2"}
		}, reason: ReasonNotBound, msg: "has 2 values"},
		{name: "asks for another node", node: "node-2",
			reason: ReasonNodeMismatch, msg: `names node "node-2" but the requester's pod rampart-system/agent-abcde runs on node "node-1"`},
		{name: "pod gone", world: func(w *fakeLookup) { delete(w.pods, "rampart-system/agent-abcde") },
			reason: ReasonAgentPod, msg: "does not exist"},
		{name: "pod replaced under the same name", world: func(w *fakeLookup) { w.pods["rampart-system/agent-abcde"].UID = "pod-uid-2" },
			reason: ReasonAgentPod, msg: "was replaced"},
		{name: "pod terminating", world: func(w *fakeLookup) {
			now := metav1.Now()
			w.pods["rampart-system/agent-abcde"].DeletionTimestamp = &now
		}, reason: ReasonAgentPod, msg: "terminating"},
		{name: "pod ended", world: func(w *fakeLookup) { w.pods["rampart-system/agent-abcde"].Status.Phase = corev1.PodFailed },
			reason: ReasonAgentPod, msg: "has ended"},
		{name: "pod now elsewhere", world: func(w *fakeLookup) { w.pods["rampart-system/agent-abcde"].Spec.NodeName = "node-2" },
			reason: ReasonAgentPod, msg: `runs on node "node-2"`},
		{name: "pod of another service account", world: func(w *fakeLookup) {
			w.pods["rampart-system/agent-abcde"].Spec.ServiceAccountName = "default"
		}, reason: ReasonAgentPod, msg: `service account "default"`},
		{name: "not an agent pod", world: func(w *fakeLookup) {
			w.pods["rampart-system/agent-abcde"].Labels = map[string]string{"app": "debug"}
		}, reason: ReasonAgentPod, msg: "app.kubernetes.io/name=rampart-agent"},
		{name: "node gone", world: func(w *fakeLookup) { delete(w.nodes, "node-1") },
			reason: ReasonNodeUnknown, msg: `node "node-1" does not exist`},
		{name: "node made again", world: func(w *fakeLookup) { w.nodes["node-1"].UID = "node-uid-9" },
			reason: ReasonNodeUnknown, msg: "node-uid-1"},

		// (c) what the request names.
		{name: "extra DNS SAN", req: func(r *x509.CertificateRequest) { r.DNSNames = append(r.DNSNames, "node-2") },
			reason: ReasonInvalidRequest, msg: `DNS SANs ["node-1" "node-2"]`},
		{name: "no DNS SAN", req: func(r *x509.CertificateRequest) { r.DNSNames = nil },
			reason: ReasonInvalidRequest, msg: "DNS SANs"},
		{name: "DNS SAN differs from CN", req: func(r *x509.CertificateRequest) { r.DNSNames = []string{"node-2"} },
			reason: ReasonInvalidRequest, msg: "DNS SANs"},
		{name: "IP SAN", req: func(r *x509.CertificateRequest) { r.IPAddresses = []net.IP{net.ParseIP("198.18.0.1")} },
			reason: ReasonInvalidRequest, msg: "IP address SANs"},
		{name: "e-mail SAN", req: func(r *x509.CertificateRequest) { r.EmailAddresses = []string{"root@node-1"} },
			reason: ReasonInvalidRequest, msg: "e-mail SANs"},
		{name: "URI SAN", req: func(r *x509.CertificateRequest) { r.URIs = []*url.URL{mustURL("spiffe://cluster/node-1")} },
			reason: ReasonInvalidRequest, msg: "URI SANs"},
		{name: "organization in the subject", req: func(r *x509.CertificateRequest) { r.Subject.Organization = []string{"system:masters"} },
			reason: ReasonInvalidRequest, msg: "attributes besides CN"},
		{name: "extra subject attribute", req: func(r *x509.CertificateRequest) {
			r.Subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: "1"}}
		}, reason: ReasonInvalidRequest, msg: "attributes besides CN"},
		{name: "CN not a node name", node: "Node_1",
			reason: ReasonInvalidRequest, msg: "not a node name"},
		{name: "RSA 1024", key: "rsa1024", reason: ReasonInvalidRequest, msg: "RSA of 1024 bits"},
		{name: "P-521", key: "p521", reason: ReasonInvalidRequest, msg: "P-521"},
		{name: "client auth usage", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Usages = append(c.Spec.Usages, certv1.UsageClientAuth)
		}, reason: ReasonInvalidRequest, msg: `"client auth"`},
		{name: "no digital signature", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Usages = []certv1.KeyUsage{certv1.UsageKeyEncipherment}
		}, reason: ReasonInvalidRequest, msg: "lacks"},
		{name: "not PEM", csr: func(c *certv1.CertificateSigningRequest) { c.Spec.Request = []byte("hello") },
			reason: ReasonInvalidRequest, msg: "not a PEM CERTIFICATE REQUEST"},
		{name: "two requests", csr: func(c *certv1.CertificateSigningRequest) {
			c.Spec.Request = append(c.Spec.Request, c.Spec.Request...)
		}, reason: ReasonInvalidRequest, msg: "more than one PEM block"},
		{name: "signature broken", csr: func(c *certv1.CertificateSigningRequest) {
			// Swap in another key's public key: the signature no longer
			// verifies.
			other := agentCSR(t, "p256", "node-1", nil)
			c.Spec.Request = spliceKey(t, c.Spec.Request, other.Spec.Request)
		}, reason: ReasonInvalidRequest, msg: "signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, node := c.key, c.node
			if key == "" {
				key = "p256"
			}
			if node == "" {
				node = "node-1"
			}
			csr := agentCSR(t, key, node, c.req)
			if c.csr != nil {
				c.csr(csr)
			}
			w := world()
			if c.world != nil {
				c.world(w)
			}
			p := testPolicy
			a, err := p.Review(context.Background(), csr, w)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				if a.Node != "node-1" || !strings.Contains(a.Message, "agent-abcde") || !strings.Contains(a.Message, "node-1") {
					t.Errorf("approval %+v: want node-1 and the pod in the message", a)
				}
				return
			}
			var d *Denial
			if !errors.As(err, &d) {
				t.Fatalf("got %v, %v; want a denial %s", a, err, c.reason)
			}
			if d.Reason != c.reason || !strings.Contains(d.Message, c.msg) {
				t.Errorf("denial %s: %s\nwant %s with %q", d.Reason, d.Message, c.reason, c.msg)
			}
		})
	}
}

// spliceKey puts the SubjectPublicKeyInfo of donor's request into req,
// keeping req's signature.
func spliceKey(t *testing.T, req, donor []byte) []byte {
	t.Helper()
	parse := func(b []byte) *x509.CertificateRequest {
		block, _ := pem.Decode(b)
		r, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r, d := parse(req), parse(donor)
	raw := strings.Replace(string(r.Raw), string(r.RawSubjectPublicKeyInfo), string(d.RawSubjectPublicKeyInfo), 1)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte(raw)})
}

func TestReviewNilSelector(t *testing.T) {
	p := testPolicy
	p.AgentPods = nil
	w := world()
	w.pods["rampart-system/agent-abcde"].Labels = nil
	if _, err := p.Review(context.Background(), agentCSR(t, "p256", "node-1", nil), w); err != nil {
		t.Fatalf("nil selector: %v, want approval", err)
	}
}

// TestReviewTransient: an API error is not a denial; the CSR is reviewed
// again.
func TestReviewTransient(t *testing.T) {
	w := world()
	w.err = apierrors.NewServiceUnavailable("etcd is away")
	p := testPolicy
	_, err := p.Review(context.Background(), agentCSR(t, "p256", "node-1", nil), w)
	var d *Denial
	if err == nil || errors.As(err, &d) {
		t.Fatalf("got %v, want a transient error", err)
	}
	if !strings.Contains(err.Error(), "rampart-system/agent-abcde") {
		t.Errorf("error %q does not say which object", err)
	}
}

func TestLifetime(t *testing.T) {
	p := testPolicy
	secs := func(s int32) *int32 { return &s }
	for _, c := range []struct {
		exp  *int32
		want time.Duration
	}{
		{nil, 24 * time.Hour},
		{secs(3600), time.Hour},
		{secs(600), 10 * time.Minute},
		{secs(7 * 86400), 24 * time.Hour},
	} {
		if got := p.Lifetime(&certv1.CertificateSigningRequestSpec{ExpirationSeconds: c.exp}); got != c.want {
			t.Errorf("expirationSeconds %v: %v, want %v", c.exp, got, c.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := testPolicy.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Policy{AgentNamespace: "Bad_NS", AgentServiceAccount: "", MaxLifetime: time.Minute}
	err := bad.Validate()
	for _, want := range []string{`agent namespace "Bad_NS"`, "agent service account", "max lifetime 1m0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %q", err, want)
		}
	}
}
