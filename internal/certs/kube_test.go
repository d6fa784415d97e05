package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/deploy"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

const kubeNS = "rampart-system"

// docsManifests are the ServiceAccounts and RBAC objects of
// docs/security.md ("RBAC, per identity and verb"), read from its yaml
// blocks: the test runs each identity with exactly these rules, so a rule
// the docs forget fails the test.
func docsManifests(t *testing.T) []any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for i, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		objs, err := deploy.IdentitiesIn(fmt.Sprintf("docs/security.md yaml block %d", i+1), []byte(block))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, objs...)
	}
	if len(out) < 8 {
		t.Fatalf("docs/security.md: %d RBAC objects, want the agents' and the controller's (8)", len(out))
	}
	return out
}

// kubeWorld is the cluster of TestKubeCSRIssuesNodeCertificate.
type kubeWorld struct {
	t     *testing.T
	c     *kubetest.Cluster
	admin kubernetes.Interface
	ca    *testCA
}

// must(what)(call()) fails the test when call fails.
func (w *kubeWorld) must(what string) func(any, error) {
	return func(_ any, err error) {
		w.t.Helper()
		if err != nil {
			w.t.Fatalf("%s: %v", what, err)
		}
	}
}

// setup makes the namespace, the nodes, the CA Secret, and the service
// accounts and RBAC of the docs.
func (w *kubeWorld) setup(ctx context.Context) {
	t, k := w.t, w.admin
	t.Helper()
	o := metav1.CreateOptions{}
	w.must("namespace")(k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kubeNS}}, o))
	for _, n := range []string{"node-1", "node-2"} {
		w.must("node " + n)(k.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, o))
	}
	// "other" is a workload of another ServiceAccount that may create
	// CSRs too: its denial must come from the signer, not from RBAC.
	w.must("service account other")(k.CoreV1().ServiceAccounts(kubeNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, o))
	w.must("CA secret")(k.CoreV1().Secrets(kubeNS).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "rampart-ipsec-ca"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: w.ca.certPEM, corev1.TLSPrivateKeyKey: w.ca.keyPEM},
	}, o))
	for _, obj := range docsManifests(t) {
		switch obj := obj.(type) {
		case *corev1.ServiceAccount:
			w.must("service account " + obj.Name)(k.CoreV1().ServiceAccounts(obj.Namespace).Create(ctx, obj, o))
		case *rbacv1.ClusterRole:
			w.must("cluster role " + obj.Name)(k.RbacV1().ClusterRoles().Create(ctx, obj, o))
		case *rbacv1.ClusterRoleBinding:
			w.must("cluster role binding " + obj.Name)(k.RbacV1().ClusterRoleBindings().Create(ctx, obj, o))
		case *rbacv1.Role:
			w.must("role " + obj.Name)(k.RbacV1().Roles(obj.Namespace).Create(ctx, obj, o))
		case *rbacv1.RoleBinding:
			w.must("role binding " + obj.Name)(k.RbacV1().RoleBindings(obj.Namespace).Create(ctx, obj, o))
		}
	}
	w.must("other's cluster role binding")(k.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "other-certificates"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "rampart-agent-certificates"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: kubeNS, Name: "other"}},
	}, o))
}

// pod makes a pod of service account sa on node (never run: there is no
// kubelet) and returns a client with a token bound to it, as the pod's
// projected service-account volume would hold.
func (w *kubeWorld) pod(ctx context.Context, name, sa, node string, podLabels map[string]string) kubernetes.Interface {
	t := w.t
	t.Helper()
	p, err := w.admin.CoreV1().Pods(kubeNS).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: sa,
			Containers: []corev1.Container{{Name: "agent", Image: "registry.invalid/rampart:test"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	return w.token(ctx, sa, &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID})
}

// token mints a token of sa through the TokenRequest API, bound to obj
// (nil: to nothing but its expiry), and returns a client that presents it.
func (w *kubeWorld) token(ctx context.Context, sa string, obj *authnv1.BoundObjectReference) kubernetes.Interface {
	t := w.t
	t.Helper()
	exp := int64(3600)
	tr, err := w.admin.CoreV1().ServiceAccounts(kubeNS).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp, BoundObjectRef: obj},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	client, err := kubernetes.NewForConfig(w.c.ConfigForToken(tr.Status.Token))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// waitAllowed waits until RBAC (which reads bindings from an informer)
// allows client each of attrs, asked as the client itself.
func waitAllowed(ctx context.Context, t *testing.T, who string, client kubernetes.Interface, attrs ...authzv1.ResourceAttributes) {
	t.Helper()
	for _, a := range attrs {
		for {
			r, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
				Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
			if err == nil && r.Status.Allowed {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s is not allowed %+v: %v", who, a, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestKubeCSRIssuesNodeCertificate is the CSR flow against a real API
// server: agents with their pods' bound tokens, the controller with its
// least-privilege RBAC under leader election. Issued certificates carry
// an IKE handshake between node-1 and node-2; the wrong node, the wrong
// service account, an unbound token and an extra SAN are denied.
func TestKubeCSRIssuesNodeCertificate(t *testing.T) {
	start := time.Now()
	c := kubetest.Start(t, kubetest.Options{})
	t.Logf("cluster ready in %v", c.Ready.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := &kubeWorld{t: t, c: c, admin: c.Client, ca: newTestCA(t, "Rampart IPsec test CA", nil)}
	w.setup(ctx)

	agentLabels := map[string]string{"app.kubernetes.io/name": "rampart-agent"}
	agent1 := w.pod(ctx, "agent-node-1", "rampart-agent", "node-1", agentLabels)
	agent2 := w.pod(ctx, "agent-node-2", "rampart-agent", "node-2", agentLabels)
	// Same labels, same node, another service account.
	other := w.pod(ctx, "other-node-1", "other", "node-1", agentLabels)
	unbound := w.token(ctx, "rampart-agent", nil)
	ctrl := w.token(ctx, "rampart-controller", nil)

	// What the signer relies on: the API server puts the node of a
	// pod-bound token into the user's extra (kube-apiserver v1.37.2, no
	// flag: ServiceAccountTokenPodNodeInfo is GA and locked on).
	review, err := agent1.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	u := review.Status.UserInfo
	t.Logf("agent-node-1 authenticates as %s, extra %v", u.Username, u.Extra)
	if got := u.Extra[ExtraNodeName]; len(got) != 1 || got[0] != "node-1" {
		t.Fatalf("extra %s = %v, want [node-1]", ExtraNodeName, got)
	}

	csrCreate := authzv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Verb: "create"}
	waitAllowed(ctx, t, "agent", agent1, csrCreate)
	waitAllowed(ctx, t, "other", other, csrCreate)
	waitAllowed(ctx, t, "controller", ctrl,
		authzv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "signers", Name: SignerName, Verb: "sign"},
		authzv1.ResourceAttributes{Namespace: kubeNS, Resource: "secrets", Name: "rampart-ipsec-ca", Verb: "get"},
		authzv1.ResourceAttributes{Namespace: kubeNS, Group: "coordination.k8s.io", Resource: "leases", Verb: "create"})
	// Least privilege: the agents may not approve, the controller may not
	// read other secrets.
	for _, chk := range []struct {
		who    string
		client kubernetes.Interface
		a      authzv1.ResourceAttributes
	}{
		{"agent", agent1, authzv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "signers", Name: SignerName, Verb: "approve"}},
		{"agent", agent1, authzv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval", Verb: "update"}},
		{"controller", ctrl, authzv1.ResourceAttributes{Namespace: kubeNS, Resource: "secrets", Name: "other", Verb: "get"}},
		{"controller", ctrl, authzv1.ResourceAttributes{Group: "certificates.k8s.io", Resource: "signers", Name: "kubernetes.io/kube-apiserver-client", Verb: "sign"}},
	} {
		r, err := chk.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &chk.a}}, metav1.CreateOptions{})
		if err != nil || r.Status.Allowed {
			t.Errorf("%s allowed %+v (err %v): want denied", chk.who, chk.a, err)
		}
	}

	// The controller, with its own token and only its RBAC, under leader
	// election: replica 1 leads; replica 2 waits until 1 stops.
	startReplica := func(id string) *replica {
		r := &replica{id: id, started: make(chan struct{}), done: make(chan error, 1)}
		var rctx context.Context
		rctx, r.stop = context.WithCancel(ctx)
		go func() {
			err := RunController(rctx, ctrl, ControllerConfig{
				CASecretNamespace: kubeNS, CASecretName: "rampart-ipsec-ca",
				Policy: Policy{AgentNamespace: kubeNS, AgentServiceAccount: "rampart-agent",
					AgentPods: labels.SelectorFromSet(agentLabels), MaxLifetime: 2 * time.Hour},
				LeaderElect: true, LeaseNamespace: kubeNS, Identity: id,
				LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
				Logger:  slog.New(slog.NewTextHandler(&r.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Started: func() { close(r.started) },
			})
			r.done <- err
		}()
		t.Cleanup(func() {
			r.halt()
			t.Logf("%s's log:\n%s", id, r.log.String())
		})
		return r
	}
	r1 := startReplica("test-replica_1")
	select {
	case <-r1.started:
	case err := <-r1.done:
		r1.stopped, r1.err = true, err
		t.Fatalf("controller stopped before leading: %v", err)
	case <-ctx.Done():
		t.Fatal("controller did not lead")
	}
	// The agents' requests end when replica 1 does: a controller that
	// fails (an RBAC rule missing) fails the test at once, with its
	// error, rather than after the requests' timeout.
	reqCtx, reqCancel := context.WithCancelCause(ctx)
	defer reqCancel(nil)
	go func() {
		select {
		case err := <-r1.done:
			r1.done <- err
			reqCancel(fmt.Errorf("the controller stopped: %v", err))
		case <-reqCtx.Done():
		}
	}()
	r2 := startReplica("test-replica_2")
	tLead := time.Now()

	// Node certificates for node-1 (P-256, one hour) and node-2 (Ed25519,
	// three hours asked, capped at the two-hour maximum).
	key1, key2 := newKey(t, "p256"), newKey(t, "ed25519")
	reqStart := time.Now()
	chain1, err := requestWithin(reqCtx, agent1, "node-1", key1, time.Hour)
	if err != nil {
		t.Fatalf("node-1: %v", err)
	}
	t.Logf("node-1's certificate issued %v after its request (%v after the controller led)", time.Since(reqStart).Round(time.Millisecond), time.Since(tLead).Round(time.Millisecond))
	chain2, err := requestWithin(reqCtx, agent2, "node-2", key2, 3*time.Hour)
	if err != nil {
		t.Fatalf("node-2: %v", err)
	}
	anchors, err := TrustAnchors(ctx, agent1)
	if err != nil {
		t.Fatal(err)
	}
	if len(anchors) != 1 || !anchors[0].Equal(w.ca.cert) {
		t.Fatalf("trust anchors %d, want the CA alone", len(anchors))
	}
	now := time.Now()
	for _, x := range []struct {
		node     string
		chain    []*x509.Certificate
		lifetime time.Duration
	}{{"node-1", chain1, time.Hour}, {"node-2", chain2, 2 * time.Hour}} {
		leaf := x.chain[0]
		if len(x.chain) != 1 || leaf.Subject.CommonName != x.node || strings.Join(leaf.DNSNames, ",") != x.node ||
			leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.IPAddresses)+len(leaf.EmailAddresses)+len(leaf.URIs) != 0 {
			t.Errorf("%s: chain of %d, subject %q, DNS %q, key usage %v", x.node, len(x.chain), leaf.Subject, leaf.DNSNames, leaf.KeyUsage)
		}
		if d := leaf.NotAfter.Sub(now); d > x.lifetime || d < x.lifetime-time.Minute {
			t.Errorf("%s: valid for %v more, want about %v", x.node, d.Round(time.Second), x.lifetime)
		}
		if !leaf.NotBefore.Before(now.Add(-time.Minute)) {
			t.Errorf("%s: NotBefore %v not backdated", x.node, leaf.NotBefore)
		}
		roots := x509.NewCertPool()
		roots.AddCert(anchors[0])
		if _, err := ikecrypto.VerifyPeerCertificate([][]byte{leaf.Raw}, roots, now); err != nil {
			t.Errorf("%s: IKE chain verification: %v", x.node, err)
		}
		if err := ikecrypto.MatchIdentity(leaf, ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(x.node)}); err != nil {
			t.Errorf("%s: %v", x.node, err)
		}
		r := RenewAt(leaf, 0.5)
		if want := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3); r.Sub(want).Abs() > time.Second {
			t.Errorf("%s: renew at %v, want %v", x.node, r, want)
		}
	}

	// What the API server recorded: the requester's pod and node, and
	// the approval's reason.
	name1, _ := CSRName("node-1", key1.Public())
	csr1, err := w.admin.CertificatesV1().CertificateSigningRequests().Get(ctx, name1, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CSR %s: username %s, extra %v", csr1.Name, csr1.Spec.Username, csr1.Spec.Extra)
	if e := csr1.Spec.Extra; len(e[ExtraNodeName]) != 1 || e[ExtraNodeName][0] != "node-1" || len(e[ExtraPodName]) != 1 || e[ExtraPodName][0] != "agent-node-1" || len(e[ExtraNodeUID]) != 1 {
		t.Errorf("spec.extra %v: want the pod agent-node-1, node-1 and its uid", e)
	}
	if cond := csr1.Status.Conditions; len(cond) != 1 || cond[0].Type != certv1.CertificateApproved || cond[0].Reason != ReasonApproved {
		t.Errorf("conditions %+v, want one Approved %s", cond, ReasonApproved)
	} else {
		t.Logf("approved: %s", cond[0].Message)
	}

	// A retry with the same key finds the CSR and its certificate.
	again, err := requestWithin(reqCtx, agent1, "node-1", key1, time.Hour)
	if err != nil || again[0].SerialNumber.Cmp(chain1[0].SerialNumber) != 0 {
		t.Errorf("second Request with the same key: %v; want the same certificate", err)
	}

	t.Run("IKE handshake with CSR-issued certificates", func(t *testing.T) {
		handshake(t, chain1, key1, chain2, key2, anchors)
	})

	// Refusals, each a Denied condition with the reason.
	for _, d := range []struct {
		name   string
		client kubernetes.Interface
		node   string
		reason string
		msg    string
	}{
		{"agent of node-1 asks for node-2", agent1, "node-2", ReasonNodeMismatch, `names node "node-2" but the requester's pod rampart-system/agent-node-1 runs on node "node-1"`},
		{"another service account", other, "node-1", ReasonNotAgent, `requested by "system:serviceaccount:rampart-system:other"`},
		{"agent token bound to no pod", unbound, "node-1", ReasonNotBound, ExtraPodName},
	} {
		t.Run(d.name, func(t *testing.T) {
			_, err := requestWithin(reqCtx, d.client, d.node, newKey(t, "p256"), 0)
			if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), d.reason) || !strings.Contains(err.Error(), d.msg) {
				t.Fatalf("got %v\nwant denied: %s with %q", err, d.reason, d.msg)
			}
			t.Logf("denied: %v", err)
		})
	}
	t.Run("extra SAN", func(t *testing.T) {
		csr, err := agent1.CertificatesV1().CertificateSigningRequests().Create(ctx, &certv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "node-1-two-names"},
			Spec: certv1.CertificateSigningRequestSpec{SignerName: SignerName, Usages: []certv1.KeyUsage{certv1.UsageDigitalSignature},
				Request: requestPEM(t, newKey(t, "p256"), "node-1", func(r *x509.CertificateRequest) { r.DNSNames = append(r.DNSNames, "node-2") })},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cond := waitDecided(reqCtx, t, agent1, csr.Name)
		if cond.Type != certv1.CertificateDenied || cond.Reason != ReasonInvalidRequest || !strings.Contains(cond.Message, `["node-1" "node-2"]`) {
			t.Fatalf("condition %+v, want Denied %s naming both SANs", cond, ReasonInvalidRequest)
		}
		t.Logf("denied: %s: %s", cond.Reason, cond.Message)
		// And the agent cannot overrule the signer.
		csr, _ = agent1.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		csr.Status.Conditions = []certv1.CertificateSigningRequestCondition{{Type: certv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Self"}}
		if _, err := agent1.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("the agent approves a CSR: %v, want Forbidden", err)
		}
	})

	select {
	case <-r2.started:
		t.Fatal("replica 2 leads while replica 1 holds the lease")
	default:
	}
	lease, err := w.admin.CoordinationV1().Leases(kubeNS).Get(ctx, DefaultLeaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "test-replica_1" {
		t.Errorf("lease %s/%s: %+v, %v; want held by test-replica_1", kubeNS, DefaultLeaseName, lease, err)
	}
	// A graceful stop releases the lease: replica 2 takes over within a
	// retry period, not a lease duration, and signs.
	reqCancel(nil)
	tStop := time.Now()
	if err := r1.halt(); err != nil {
		t.Errorf("replica 1: %v", err)
	}
	select {
	case <-r2.started:
		t.Logf("replica 2 leads %v after replica 1 was told to stop", time.Since(tStop).Round(time.Millisecond))
	case err := <-r2.done:
		r2.stopped, r2.err = true, err
		t.Fatalf("replica 2 stopped: %v", err)
	case <-time.After(3 * time.Second): // less than the 4 s lease duration
		t.Fatal("replica 2 does not lead 3 s after replica 1 released the lease")
	}
	if _, err := requestWithin(ctx, agent2, "node-2", newKey(t, "p384"), 0); err != nil {
		t.Errorf("request to replica 2: %v", err)
	}
	if err := r2.halt(); err != nil {
		t.Errorf("replica 2: %v", err)
	}
	lease, err = w.admin.CoordinationV1().Leases(kubeNS).Get(ctx, DefaultLeaseName, metav1.GetOptions{})
	if err != nil || (lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "") {
		t.Errorf("lease after stop: holder %v, %v; want released", lease.Spec.HolderIdentity, err)
	}
	for _, r := range []*replica{r1, r2} {
		if strings.Contains(r.log.String(), "PRIVATE") {
			t.Errorf("%s logged a key", r.id)
		}
	}
	t.Logf("test done %v after start", time.Since(start).Round(time.Millisecond))
}

// replica is one RunController of the test.
type replica struct {
	id      string
	started chan struct{}
	done    chan error
	stop    context.CancelFunc
	log     syncBuffer
	stopped bool
	err     error
}

// halt stops the replica and returns what RunController returned.
func (r *replica) halt() error {
	if !r.stopped {
		r.stop()
		r.err, r.stopped = <-r.done, true
	}
	return r.err
}
func requestWithin(ctx context.Context, client kubernetes.Interface, node string, key crypto.Signer, lifetime time.Duration) ([]*x509.Certificate, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	chain, err := Request(rctx, client, node, key, lifetime)
	if err != nil && context.Cause(ctx) != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	return chain, err
}

// waitDecided polls a CSR until it has an Approved, Denied or Failed
// condition.
func waitDecided(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) certv1.CertificateSigningRequestCondition {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		csr, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err == nil && len(csr.Status.Conditions) > 0 {
			return csr.Status.Conditions[0]
		}
		if ctx.Err() != nil {
			t.Fatalf("CSR %s undecided: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// handshake runs two IKE daemons in memory, node-1 and node-2 as the
// agent configures them (FQDN identities, certificates and the trust
// anchors, strict traffic selectors), and checks that node-1's initiation
// installs CHILD_SAs that carry a packet each way.
func handshake(t *testing.T, chain1 []*x509.Certificate, key1 crypto.Signer, chain2 []*x509.Certificate, key2 crypto.Signer, anchors []*x509.Certificate) {
	type side struct {
		name    string
		addr    netip.AddrPort
		pods    netip.Prefix
		chain   []*x509.Certificate
		key     crypto.Signer
		d       *ike.Daemon
		table   *esp.Table
		results chan error
	}
	a := &side{name: "node-1", addr: netip.MustParseAddrPort("198.18.0.1:4500"), pods: netip.MustParsePrefix("198.19.1.0/24"), chain: chain1, key: key1}
	b := &side{name: "node-2", addr: netip.MustParseAddrPort("198.18.0.2:4500"), pods: netip.MustParsePrefix("198.19.2.0/24"), chain: chain2, key: key2}
	byAddr := map[netip.AddrPort]*side{a.addr: a, b.addr: b}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range []*side{a, b} {
		s.table = esp.NewTable(esp.TableOptions{})
		t.Cleanup(s.table.Close)
		s.results = make(chan error, 4)
		from := s.addr
		s.d = ike.New(s.table, func(msg []byte, to netip.AddrPort) error {
			if dst := byAddr[to]; dst != nil {
				go dst.d.Handle(bytes.Clone(msg), from)
			}
			return nil
		}, ike.Options{Logger: quiet, Retransmit: 200 * time.Millisecond, Tries: 4,
			OnEstablished: func(_ string, err error) { s.results <- err }})
	}
	for _, p := range [][2]*side{{a, b}, {b, a}} {
		self, peer := p[0], p[1]
		err := self.d.AddPeer(ike.Config{
			Name: peer.name, Remote: peer.addr,
			LocalID:  ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(self.name)},
			RemoteID: ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(peer.name)},
			Certs:    self.chain, Key: self.key, CAs: anchors,
			LocalTS:  []netip.Prefix{self.pods, netip.PrefixFrom(self.addr.Addr(), 32)},
			RemoteTS: []netip.Prefix{peer.pods, netip.PrefixFrom(peer.addr.Addr(), 32)},
			StrictTS: true,
		})
		if err != nil {
			t.Fatalf("%s: add peer %s: %v", self.name, peer.name, err)
		}
	}
	t0 := time.Now()
	if err := a.d.Initiate("node-2"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*side{a, b} {
		select {
		case err := <-s.results:
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no IKE result in 10 s", s.name)
		}
	}
	t.Logf("IKE_SA_INIT + IKE_AUTH with the issued certificates: %v", time.Since(t0).Round(time.Millisecond))
	ea, eb := a.table.Current("node-2"), b.table.Current("node-1")
	if ea == nil || eb == nil || ea.Out == nil || eb.In == nil || ea.Out.SPI() != eb.In.SPI() || eb.Out.SPI() != ea.In.SPI() {
		t.Fatalf("CHILD_SAs not installed or not paired: %v %v", ea, eb)
	}
	pkt := make([]byte, 60)
	pkt[0], pkt[3] = 0x45, 60
	copy(pkt[12:], []byte{198, 19, 1, 2, 198, 19, 2, 2})
	for _, dir := range []struct{ out, in *esp.SA }{{ea.Out, eb.In}, {eb.Out, ea.In}} {
		sealed, err := dir.out.Seal(nil, pkt)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := dir.in.Open(nil, sealed, netip.Addr{}, netip.Addr{})
		if err != nil || !bytes.Equal(got, pkt) {
			t.Fatalf("a packet sealed by one node does not open on the other: %v", err)
		}
	}
}

// syncBuffer is a bytes.Buffer for a logger writing from goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
