package agent

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/internal/certs"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// TestKubeAgentCredentials is credentials csr against a real API server
// and the signer of `rampart controller`: the agent, with its pod's bound
// token and the RBAC of deploy/agent, gets a certificate naming its node,
// keeps it (key owner-only) and reuses it when it starts again, asks
// again when what it kept is unusable, and a renewal brings a new key and
// certificate into force and into the status.
func TestKubeAgentCredentials(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := c.Client
	const ns, sa, node = "rampart-system", "rampart-agent", "node-1"
	must := func(what string, _ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	o := metav1.CreateOptions{}
	r, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, o)
	must("namespace", r, err)
	sao, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, o)
	must("service account", sao, err)
	n, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, o)
	must("node", n, err)
	// The RBAC the DaemonSet's agents get for their certificates.
	b, err := os.ReadFile("../../deploy/agent/rbac-certificates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")
	var role rbacv1.ClusterRole
	var binding rbacv1.ClusterRoleBinding
	if len(docs) != 2 || yaml.UnmarshalStrict([]byte(docs[0]), &role) != nil || yaml.UnmarshalStrict([]byte(docs[1]), &binding) != nil {
		t.Fatalf("deploy/agent/rbac-certificates.yaml: want a ClusterRole and its binding")
	}
	cr, err := admin.RbacV1().ClusterRoles().Create(ctx, &role, o)
	must("cluster role", cr, err)
	crb, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &binding, o)
	must("binding", crb, err)

	// The controller's CA, and its signer in this process.
	ca := newTestCA(t, t.TempDir())
	keyDER, _ := x509.MarshalPKCS8PrivateKey(ca.key)
	sec, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "rampart-ipsec-ca"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		}}, o)
	must("CA secret", sec, err)
	agentLabels := map[string]string{"app.kubernetes.io/name": "rampart-agent"}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctrlDone := make(chan error, 1)
	ctrlCtx, stopCtrl := context.WithCancel(ctx)
	defer func() { stopCtrl(); <-ctrlDone }()
	go func() {
		ctrlDone <- certs.RunController(ctrlCtx, admin, certs.ControllerConfig{CASecretNamespace: ns, CASecretName: "rampart-ipsec-ca",
			Policy: certs.Policy{AgentNamespace: ns, AgentServiceAccount: sa, AgentPods: labels.SelectorFromSet(agentLabels), MaxLifetime: time.Hour},
			Logger: quiet})
	}()

	// The agent's pod on the node, and the token the kubelet would
	// project into it.
	pod, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "rampart-agent-x1", Labels: agentLabels},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: sa, HostNetwork: true,
			Containers: []corev1.Container{{Name: "agent", Image: "registry.invalid/rampart:test"}}},
	}, o)
	must("agent pod", pod, err)
	exp := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		ExpirationSeconds: &exp, BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}}, o)
	must("token", tr, err)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig, tr.Status.Token); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(validAgent, "paths: [manifests]", "kubeconfig: "+kubeconfig, 1)
	text = strings.Replace(text, "{caFile: ca.pem, certFile: cert.pem, keyFile: key.pem,", "{credentials: csr, credentialsDir: pki, certificateLifetime: 30m,", 1)
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds := LoadConfig(path)
	if cfg == nil {
		t.Fatal(ds)
	}
	pki := filepath.Join(dir, "pki")
	csrs := func() int {
		l, err := admin.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}

	// First start: a certificate through a CSR, kept owner-only.
	got, err := ResolveCredentials(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	leaf := got.Certs[0]
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != node || !ikecrypto.PublicKeysEqual(got.Key.Public(), leaf.PublicKey) ||
		len(got.CAs) != 1 || !got.CAs[0].Equal(ca.cert) {
		t.Fatalf("certificate names %v; %d trust anchors", leaf.DNSNames, len(got.CAs))
	}
	// (NotBefore is backdated for clock skew: count from now.)
	if life := time.Until(leaf.NotAfter); life > 31*time.Minute || life < 29*time.Minute {
		t.Errorf("valid for %v more, asked for 30m", life)
	}
	if err := leaf.CheckSignatureFrom(ca.cert); err != nil {
		t.Error(err)
	}
	for name, want := range map[string]os.FileMode{"": 0o700 | os.ModeDir, credKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(pki, name))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s/%s: %v, mode %v; want %v", pki, name, err, fi.Mode(), want)
		}
	}
	if n := csrs(); n != 1 {
		t.Errorf("%d CSRs after the first start", n)
	}

	// Started again: what it kept, no new CSR.
	again, err := ResolveCredentials(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Certs[0].Equal(leaf) || csrs() != 1 {
		t.Errorf("second start: serial %v (first %v), %d CSRs", again.Certs[0].SerialNumber, leaf.SerialNumber, csrs())
	}

	// A key that does not match what is kept (a crash between the
	// renames): unusable, so a new request.
	if err := os.Rename(filepath.Join(pki, credCertFile), filepath.Join(dir, "old.crt")); err != nil {
		t.Fatal(err)
	}
	src, err := cfg.csrSource(quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.stored(time.Now()); err == nil {
		t.Error("credentials without a certificate file are usable")
	}
	third, err := ResolveCredentials(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if third.Certs[0].Equal(leaf) || csrs() != 2 {
		t.Errorf("after losing the certificate: same serial or %d CSRs", csrs())
	}
	// Expired credentials are not used either.
	if _, err := src.stored(third.Certs[0].NotAfter.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "not now") {
		t.Errorf("expired credentials: %v", err)
	}

	// A renewal while the agent runs (its schedule is certs.RenewAt's,
	// tested there): a new key and certificate, in the status, kept.
	a := New(third, quiet)
	a.setCertificate(third.Certs[0], nil)
	renewed, err := a.renew(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	st := a.Status().Certificate
	if renewed.Equal(third.Certs[0]) || a.creds.Chain[0] != renewed || st == nil || st.Renewals != 1 || st.Serial != renewed.SerialNumber.Text(16) || st.Error != "" {
		t.Errorf("after renewal: status %+v", st)
	}
	if ikecrypto.PublicKeysEqual(a.creds.Key.Public(), third.Key.Public()) {
		t.Error("a renewal kept the old key")
	}
	kept, err := src.stored(time.Now())
	if err != nil || !kept.Chain[0].Equal(renewed) {
		t.Errorf("kept after renewal: %v", err)
	}

	// The signer refuses a node the pod does not run on: the status says
	// why, and the credentials in force stay.
	other := *src
	other.node = "node-2"
	if _, err := a.renew(ctx, &other); err == nil {
		t.Fatal("a certificate for another node was issued")
	}
	if st := a.Status().Certificate; st.Error == "" || !strings.Contains(st.Error, "node-2") || a.creds.Chain[0] != renewed {
		t.Errorf("refused renewal: status %+v", st)
	}
}
