package deploy_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/kubetest"
)

// applyOrder is kustomize's: what others refer to first.
var applyOrder = []string{"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "Role",
	"ClusterRoleBinding", "RoleBinding", "ConfigMap", "DaemonSet", "Deployment"}

// warnings collects the API server's warnings (deprecated APIs, Pod
// Security violations of a workload's template): the manifests must cause
// none.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

// TestKubeDeployManifests builds deploy/ as `kubectl apply -k` does and
// applies it to a real kube-apiserver: every object must pass server-side
// validation (strict: no unknown field) without a warning, the agent's and
// the controller's pods must be admitted in rampart-system (Pod Security,
// priority classes) and the agent's refused where Pod Security is
// "restricted", the stored DaemonSet and Deployment must grant no more
// privilege than docs/deploy.md says, and each identity must be allowed
// exactly what the RBAC table of docs/deploy.md says (SubjectAccessReview,
// evaluated by the API server's own RBAC authorizer).
func TestKubeDeployManifests(t *testing.T) {
	objs, top, _ := build(t)
	gw, _, _ := buildAt(t, gatewaysDir)
	objs = append(objs, gw...)
	c := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	warn := &warnings{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = warn
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	slices.SortStableFunc(objs, func(a, b object) int {
		return slices.Index(applyOrder, a.GetKind()) - slices.Index(applyOrder, b.GetKind())
	})
	for _, o := range objs {
		if !slices.Contains(applyOrder, o.GetKind()) {
			t.Fatalf("%s: add its kind to applyOrder", o)
		}
		k := kindOf(t, o)
		var res dynamic.ResourceInterface = dyn.Resource(k.gvr)
		if k.namespaced {
			res = dyn.Resource(k.gvr).Namespace(o.GetNamespace())
		}
		if _, err := res.Create(ctx, o.Unstructured, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}); err != nil {
			t.Errorf("%s: the API server refused it: %v", o, err)
			continue
		}
		for _, w := range warn.take() {
			t.Errorf("%s: the API server warns: %s", o, w)
		}
		if o.GetKind() == "CustomResourceDefinition" {
			waitEstablished(ctx, t, dyn, o)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d objects applied", len(objs))

	t.Run("stored workloads", func(t *testing.T) {
		ds, err := client.AppsV1().DaemonSets(top.Namespace).Get(ctx, agentName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range checkDaemonSet(ds) {
			t.Error("DaemonSet as stored: " + p)
		}
		dep, err := client.AppsV1().Deployments(top.Namespace).Get(ctx, ctrlName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range checkDeployment(dep, top.Namespace) {
			t.Error("Deployment as stored: " + p)
		}
	})

	t.Run("pod admission", func(t *testing.T) {
		ds, err := client.AppsV1().DaemonSets(top.Namespace).Get(ctx, agentName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dep, err := client.AppsV1().Deployments(top.Namespace).Get(ctx, ctrlName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The pods the controllers would make (there are none here), as
		// a dry run: admission runs in full, nothing is stored.
		agentPod := podOf(ds.Spec.Template, "rampart-agent-test", top.Namespace)
		agentPod.Spec.NodeName = "node-1" // as the DaemonSet controller pins it
		for _, p := range []*corev1.Pod{agentPod, podOf(dep.Spec.Template, "rampart-controller-test", top.Namespace)} {
			got, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{
				DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
			if err != nil {
				t.Errorf("pod %s refused: %v", p.Name, err)
				continue
			}
			if got.Spec.Priority == nil || *got.Spec.Priority < 2_000_000_000 {
				t.Errorf("pod %s: priority %v; want a system-critical class's", p.Name, got.Spec.Priority)
			}
			for _, w := range warn.take() {
				t.Errorf("pod %s: the API server warns: %s", p.Name, w)
			}
		}

		// Pod Security is what admits the agent: where it is
		// "restricted", the same pod is refused. (Also shows that the
		// admission above was checked, not skipped.)
		const strict = "rampart-psa-restricted"
		_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: strict,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := agentPod.DeepCopy()
		p.Namespace = strict
		_, err = client.CoreV1().Pods(strict).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Errorf("agent pod in a restricted namespace: %v; want refused by Pod Security", err)
		}
		warn.take()
	})

	t.Run("RBAC", func(t *testing.T) {
		agentSA := "system:serviceaccount:" + top.Namespace + ":" + agentName
		ctrlSA := "system:serviceaccount:" + top.Namespace + ":" + ctrlName
		ns := top.Namespace
		for _, tc := range rbacCases(agentSA, ctrlSA, ns) {
			t.Run(tc.String(), func(t *testing.T) {
				sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
					User:   tc.user,
					Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
					ResourceAttributes: &authzv1.ResourceAttributes{Namespace: tc.ns, Verb: tc.verb, Group: tc.group,
						Resource: tc.resource, Subresource: tc.sub, Name: tc.name},
				}}
				got, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got.Status.Allowed != tc.allowed {
					t.Errorf("allowed %v (%s), want %v", got.Status.Allowed, got.Status.Reason, tc.allowed)
				}
			})
		}
	})
}

// rbacCase is one question for the API server's authorizer.
type rbacCase struct {
	user, verb, group, resource, sub, ns, name string
	allowed                                    bool
}

func (c rbacCase) String() string {
	who := c.user[strings.LastIndex(c.user, ":")+1:]
	what := c.resource
	if c.group != "" {
		what += "." + c.group
	}
	if c.sub != "" {
		what += "/" + c.sub
	}
	if c.name != "" {
		what += " " + c.name
	}
	where := "cluster"
	if c.ns != "" {
		where = c.ns
	}
	may := "may"
	if !c.allowed {
		may = "may not"
	}
	return who + " " + may + " " + c.verb + " " + what + " in " + where
}

// rbacCases is docs/deploy.md's RBAC table, and what each identity must
// not do although a careless role would let it.
func rbacCases(agentSA, ctrlSA, ns string) []rbacCase {
	const (
		certs = "certificates.k8s.io"
		netw  = "networking.k8s.io"
		rd    = "rampart.dev"
		coord = "coordination.k8s.io"
	)
	allow := func(user, verb, group, resource, sub, ns, name string) rbacCase {
		return rbacCase{user, verb, group, resource, sub, ns, name, true}
	}
	deny := func(user, verb, group, resource, sub, ns, name string) rbacCase {
		return rbacCase{user, verb, group, resource, sub, ns, name, false}
	}
	var cs []rbacCase
	// The agent reads the cluster, cluster-wide.
	for _, r := range []struct{ group, resource string }{
		{"", "pods"}, {"", "namespaces"}, {"", "nodes"}, {"", "services"}, {netw, "networkpolicies"},
		{rd, "encryptionconfigs"}, {rd, "ipsecpeers"},
		{"policy.networking.k8s.io", "clusternetworkpolicies"}, {"policy.networking.k8s.io", "adminnetworkpolicies"},
		{"policy.networking.k8s.io", "baselineadminnetworkpolicies"}, {"security.istio.io", "authorizationpolicies"},
	} {
		for _, verb := range []string{"get", "list", "watch"} {
			cs = append(cs, allow(agentSA, verb, r.group, r.resource, "", "", ""))
		}
	}
	for _, verb := range []string{"get", "list", "watch"} {
		cs = append(cs,
			allow(agentSA, verb, certs, "certificatesigningrequests", "", "", ""),
			allow(agentSA, verb, certs, "clustertrustbundles", "", "", ""),
			allow(ctrlSA, verb, certs, "certificatesigningrequests", "", "", ""))
	}
	cs = append(cs,
		allow(agentSA, "list", "", "pods", "", "default", ""),
		allow(agentSA, "update", rd, "ipsecpeers", "status", "", "branch-office"),
		allow(agentSA, "create", certs, "certificatesigningrequests", "", "", ""),
		allow(agentSA, "get", certs, "certificatesigningrequests", "", "", "rampart-ipsec-node-1-0123456789abcdef"),
		deny(agentSA, "create", certs, "clustertrustbundles", "", "", ""),
		// The IPsecPeers' Secrets, where deploy/gateways keeps them...
		allow(agentSA, "get", "", "secrets", "", v1alpha1.DefaultSecretNamespace, "branch-office-psk"),
		allow(agentSA, "list", "", "secrets", "", v1alpha1.DefaultSecretNamespace, ""),
		deny(agentSA, "update", "", "secrets", "", v1alpha1.DefaultSecretNamespace, "branch-office-psk"),
		// ... and changes nothing of the cluster, and reads no other Secret.
		deny(agentSA, "get", "", "secrets", "", ns, "rampart-ipsec-ca"),
		deny(agentSA, "get", "", "secrets", "", "default", "any"),
		deny(agentSA, "list", "", "secrets", "", "", ""),
		deny(agentSA, "delete", "", "pods", "", "default", "web-0"),
		deny(agentSA, "create", "", "pods", "", ns, ""),
		deny(agentSA, "patch", "", "pods", "", "default", "web-0"),
		deny(agentSA, "update", "", "pods", "status", "default", "web-0"),
		deny(agentSA, "update", netw, "networkpolicies", "", "default", "allow-web"),
		deny(agentSA, "create", netw, "networkpolicies", "", "default", ""),
		deny(agentSA, "delete", netw, "networkpolicies", "", "default", "allow-web"),
		deny(agentSA, "update", "", "nodes", "", "", "node-1"),
		deny(agentSA, "update", rd, "ipsecpeers", "", "", "branch-office"),
		deny(agentSA, "update", rd, "encryptionconfigs", "", "", "default"),
		deny(agentSA, "update", certs, "certificatesigningrequests", "approval", "", "rampart-ipsec-node-1-0123456789abcdef"),
		deny(agentSA, "approve", certs, "signers", "", "", "rampart.dev/ipsec"),
		deny(agentSA, "sign", certs, "signers", "", "", "rampart.dev/ipsec"),
		deny(agentSA, "attest", certs, "signers", "", "", "rampart.dev/ipsec"),
		deny(agentSA, "delete", certs, "certificatesigningrequests", "", "", "rampart-ipsec-node-2-0123456789abcdef"),
		deny(agentSA, "create", "", "serviceaccounts", "token", ns, agentName),

		// The controller: its Lease in its namespace, by name.
		allow(ctrlSA, "update", coord, "leases", "", ns, "rampart-controller"),
		allow(ctrlSA, "get", coord, "leases", "", ns, "rampart-controller"),
		allow(ctrlSA, "create", coord, "leases", "", ns, ""),
		deny(ctrlSA, "update", coord, "leases", "", ns, "another-controller"),
		deny(ctrlSA, "update", coord, "leases", "", "kube-system", "kube-controller-manager"),
		deny(ctrlSA, "delete", coord, "leases", "", ns, "rampart-controller"),
		// Its CSR work (docs/security.md, Node certificates).
		allow(ctrlSA, "update", certs, "certificatesigningrequests", "approval", "", "x"),
		allow(ctrlSA, "update", certs, "certificatesigningrequests", "status", "", "x"),
		allow(ctrlSA, "approve", certs, "signers", "", "", "rampart.dev/ipsec"),
		allow(ctrlSA, "sign", certs, "signers", "", "", "rampart.dev/ipsec"),
		allow(ctrlSA, "attest", certs, "signers", "", "", "rampart.dev/ipsec"),
		allow(ctrlSA, "create", certs, "clustertrustbundles", "", "", ""),
		allow(ctrlSA, "get", certs, "clustertrustbundles", "", "", "rampart.dev:ipsec:ca"),
		allow(ctrlSA, "update", certs, "clustertrustbundles", "", "", "rampart.dev:ipsec:ca"),
		deny(ctrlSA, "update", certs, "clustertrustbundles", "", "", "kubernetes.io:kube-apiserver-serving:ca"),
		deny(ctrlSA, "delete", certs, "clustertrustbundles", "", "", "rampart.dev:ipsec:ca"),
		deny(ctrlSA, "attest", certs, "signers", "", "", "kubernetes.io/kube-apiserver-client"),
		deny(ctrlSA, "approve", certs, "signers", "", "", "kubernetes.io/kube-apiserver-client"),
		deny(ctrlSA, "sign", certs, "signers", "", "", "kubernetes.io/kubelet-serving"),
		deny(ctrlSA, "delete", certs, "certificatesigningrequests", "", "", "x"),
		allow(ctrlSA, "get", "", "nodes", "", "", "node-1"),
		deny(ctrlSA, "list", "", "nodes", "", "", ""),
		// The requester's pod, by name, in the agents' namespace only.
		allow(ctrlSA, "get", "", "pods", "", ns, "rampart-agent-abcde"),
		deny(ctrlSA, "list", "", "pods", "", ns, ""),
		deny(ctrlSA, "list", "", "pods", "", "", ""),
		deny(ctrlSA, "get", "", "pods", "", "default", "web-0"),
		// The CA and no other Secret.
		allow(ctrlSA, "get", "", "secrets", "", ns, caSecretName),
		deny(ctrlSA, "get", "", "secrets", "", ns, "other"),
		deny(ctrlSA, "list", "", "secrets", "", ns, ""),
		deny(ctrlSA, "update", "", "secrets", "", ns, caSecretName),
	)
	return cs
}

// podOf is the pod a workload controller would make from template.
func podOf(template corev1.PodTemplateSpec, name, ns string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: template.Labels},
		Spec: *template.Spec.DeepCopy()}
}

// waitEstablished waits until the API server serves the CRD o.
func waitEstablished(ctx context.Context, t *testing.T, dyn dynamic.Interface, o object) {
	t.Helper()
	gvr := kindOf(t, o).gvr
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, err := dyn.Resource(gvr).Get(ctx, o.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		established := slices.ContainsFunc(conds, func(c any) bool {
			m, _ := c.(map[string]any)
			return m["type"] == "Established" && m["status"] == "True"
		})
		if established {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not established after 30s: %v", o, u.Object["status"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
