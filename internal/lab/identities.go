package lab

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rampartnet/rampart/deploy"
)

// With --apiserver the lab stands its agents up as the DaemonSet of
// deploy/ does, with the same identities: the ServiceAccounts and RBAC of
// deploy/agent and deploy/controller, `rampart controller` signing the
// nodes' certificates through the CSR API with the lab's CA (kept in a
// Secret, as docs/security.md says), and per node an agent Pod whose bound
// token the node's agent presents, as the kubelet would project it. Each
// agent makes its key and gets its certificate (credentials csr), and
// reads the cluster with no more rights than a real one has.

// The installation's names, as deploy/ has them.
const (
	systemNS      = "rampart-system"
	agentSA       = "rampart-agent"
	controllerSA  = "rampart-controller"
	caSecretName  = "rampart-ipsec-ca"
	agentAppLabel = "rampart-agent"
	// tokenLifetime is asked of the TokenRequest API for the lab's
	// tokens: longer than a lab lives (the API server may extend or cap
	// it; kubelet would refresh it, the lab does not).
	tokenLifetime = 30 * 24 * time.Hour
)

// setupIdentities creates the installation's identities, the CA Secret,
// starts the controller in the underlay namespace, and writes a
// kubeconfig per node with its agent pod's token.
func (l *Lab) setupIdentities(ctx context.Context, ca *labCA) error {
	st := l.st
	client, closeNS, err := l.KubeClient()
	if err != nil {
		return err
	}
	defer closeNS()
	o := metav1.CreateOptions{}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}}, o); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("lab: namespace %s: %w", systemNS, err)
	}
	objs, err := deploy.Identities()
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if err := createIdentity(ctx, client, obj); err != nil {
			return err
		}
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	clear(keyDER)
	_, err = client.CoreV1().Secrets(systemNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: caSecretName}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), corev1.TLSPrivateKeyKey: keyPEM}}, o)
	clear(keyPEM)
	if err != nil {
		return fmt.Errorf("lab: CA secret: %w", err)
	}

	// The controller, with its ServiceAccount's token.
	ctrlConfig := filepath.Join(st.Dir, "kube", "controller.kubeconfig")
	token, err := serviceAccountToken(ctx, client, controllerSA, nil)
	if err != nil {
		return err
	}
	if err := writeTokenKubeconfig(st.APIServer.Kubeconfig, ctrlConfig, token); err != nil {
		return err
	}
	p, err := l.startProc(st.Underlay, "controller", "controller", "--kubeconfig", ctrlConfig, "--leader-elect=false",
		"--ca-secret", systemNS+"/"+caSecretName, "--agent-service-account", systemNS+"/"+agentSA,
		"--agent-pod-selector", "app.kubernetes.io/name="+agentAppLabel)
	if err != nil {
		return err
	}
	st.APIServer.Controller = p
	if err := st.save(); err != nil {
		return err
	}

	// Per node, the agent pod the DaemonSet would run there, and its
	// bound token.
	for _, n := range st.Nodes {
		pod, err := client.CoreV1().Pods(systemNS).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: agentAppLabel + "-" + n.Name, Labels: map[string]string{"app.kubernetes.io/name": agentAppLabel}},
			Spec: corev1.PodSpec{NodeName: n.Name, ServiceAccountName: agentSA, HostNetwork: true,
				Containers: []corev1.Container{{Name: "agent", Image: "lab.invalid/rampart"}}},
		}, o)
		if err != nil {
			return fmt.Errorf("lab: agent pod of %s: %w", n.Name, err)
		}
		token, err := serviceAccountToken(ctx, client, agentSA, &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID})
		if err != nil {
			return err
		}
		if err := writeTokenKubeconfig(st.APIServer.Kubeconfig, agentKubeconfig(st, n.Name), token); err != nil {
			return err
		}
	}
	return nil
}

// agentKubeconfig is where a node's agent finds its kubeconfig.
func agentKubeconfig(st *State, node string) string {
	return filepath.Join(st.nodeDir(node), "kubeconfig")
}

// createIdentity creates one ServiceAccount or RBAC object.
func createIdentity(ctx context.Context, client kubernetes.Interface, obj any) error {
	o := metav1.CreateOptions{}
	var err error
	var what string
	switch x := obj.(type) {
	case *corev1.ServiceAccount:
		what = "ServiceAccount " + x.Name
		_, err = client.CoreV1().ServiceAccounts(x.Namespace).Create(ctx, x, o)
	case *rbacv1.ClusterRole:
		what = "ClusterRole " + x.Name
		_, err = client.RbacV1().ClusterRoles().Create(ctx, x, o)
	case *rbacv1.ClusterRoleBinding:
		what = "ClusterRoleBinding " + x.Name
		_, err = client.RbacV1().ClusterRoleBindings().Create(ctx, x, o)
	case *rbacv1.Role:
		what = "Role " + x.Name
		_, err = client.RbacV1().Roles(x.Namespace).Create(ctx, x, o)
	case *rbacv1.RoleBinding:
		what = "RoleBinding " + x.Name
		_, err = client.RbacV1().RoleBindings(x.Namespace).Create(ctx, x, o)
	default:
		return fmt.Errorf("lab: identity of type %T", obj)
	}
	if err != nil {
		return fmt.Errorf("lab: %s: %w", what, err)
	}
	return nil
}

// serviceAccountToken mints a token of systemNS/sa, bound to obj when it
// is set.
func serviceAccountToken(ctx context.Context, client kubernetes.Interface, sa string, obj *authnv1.BoundObjectReference) (string, error) {
	exp := int64(tokenLifetime / time.Second)
	tr, err := client.CoreV1().ServiceAccounts(systemNS).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp, BoundObjectRef: obj}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("lab: token of %s/%s: %w", systemNS, sa, err)
	}
	return tr.Status.Token, nil
}

// writeTokenKubeconfig writes at path the kubeconfig at admin with its
// user's credentials replaced by token.
func writeTokenKubeconfig(admin, path, token string) error {
	cfg, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		return err
	}
	for _, u := range cfg.AuthInfos {
		u.Token, u.ClientCertificateData, u.ClientKeyData, u.ClientCertificate, u.ClientKey = token, nil, nil, "", ""
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}
