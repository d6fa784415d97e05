package kubetest_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/internal/kubetest"
)

// TestKubeAPIServer runs the real etcd and kube-apiserver and does through
// client-go what Rampart's agents and tests will: a Namespace, a Pod whose
// address is set through the status subresource (there is no kubelet), a
// NetworkPolicy validated by the server, list and watch, and RBAC that
// keeps a second identity out until a RoleBinding lets it in.
func TestKubeAPIServer(t *testing.T) {
	start := time.Now()
	c := kubetest.Start(t, kubetest.Options{
		Users: []kubetest.User{{Name: "agent-n1", Groups: []string{"rampart:agents"}}},
	})
	t.Logf("cluster ready in %v at %s", c.Ready.Round(time.Millisecond), c.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k := c.Client

	v, err := k.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != kubetest.KubeVersion {
		t.Errorf("server reports %q, want %q (kube-bins.sh ldflags)", v.GitVersion, kubetest.KubeVersion)
	}

	const ns = "kubetest"
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}

	// Watch from the namespace's empty pod list, so the watch sees the
	// creation and the status update in order.
	list, err := k.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	w, err := k.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	defer w.Stop()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName: "n1",
			// Never pulled: nothing runs Pods here.
			Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}},
		},
	}
	pod, err = k.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if pod.Status.Phase != corev1.PodPending || pod.Status.PodIP != "" {
		t.Errorf("new pod: phase %q, IP %q; want Pending with no IP", pod.Status.Phase, pod.Status.PodIP)
	}
	const podIP = "198.19.1.10"
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = podIP
	pod.Status.PodIPs = []corev1.PodIP{{IP: podIP}}
	if _, err := k.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pod status: %v", err)
	}
	got, err := k.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if got.Status.PodIP != podIP || got.Status.Phase != corev1.PodRunning {
		t.Errorf("pod after status update: phase %q, IP %q; want Running, %s", got.Status.Phase, got.Status.PodIP, podIP)
	}

	wantEvents := []struct {
		typ watch.EventType
		ip  string
	}{{watch.Added, ""}, {watch.Modified, podIP}}
	for i, want := range wantEvents {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d events", i)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if ev.Type != want.typ || !isPod || p.Status.PodIP != want.ip {
				t.Fatalf("watch event %d: %s %T %+v; want %s of the pod with IP %q", i, ev.Type, ev.Object, ev.Object, want.typ, want.ip)
			}
		case <-ctx.Done():
			t.Fatalf("watch event %d (%s): %v", i, want.typ, ctx.Err())
		}
	}

	// A NetworkPolicy as Rampart reads them, round-tripped through the
	// server's validation and defaulting.
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(80)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web-from-frontend"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
			}},
		},
	}
	if _, err := k.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create networkpolicy: %v", err)
	}
	nps, err := k.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list networkpolicies: %v", err)
	}
	if len(nps.Items) != 1 {
		t.Fatalf("listed %d networkpolicies, want 1", len(nps.Items))
	}
	gotNP := nps.Items[0]
	// The server defaults policyTypes to [Ingress] for a policy with only
	// ingress rules.
	if len(gotNP.Spec.PolicyTypes) != 1 || gotNP.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policyTypes %v, want [Ingress] (server defaulting)", gotNP.Spec.PolicyTypes)
	}
	if r := gotNP.Spec.Ingress; len(r) != 1 || len(r[0].Ports) != 1 || r[0].Ports[0].Port.IntVal != 80 {
		t.Errorf("ingress rules %+v, want one rule to TCP 80", r)
	}
	// The server validates: a port outside 1-65535 is refused.
	bad := np.DeepCopy()
	bad.Name = "bad-port"
	badPort := intstr.FromInt32(70000)
	bad.Spec.Ingress[0].Ports[0].Port = &badPort
	if _, err := k.NetworkingV1().NetworkPolicies(ns).Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("networkpolicy with port 70000: err %v, want Invalid", err)
	}

	// RBAC: the second identity authenticates (with its groups) but may
	// not list pods, until a Role and RoleBinding allow it.
	agent, err := c.ClientAs("agent-n1")
	if err != nil {
		t.Fatal(err)
	}
	review, err := agent.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review as agent-n1: %v", err)
	}
	if u := review.Status.UserInfo; u.Username != "agent-n1" || !contains(u.Groups, "rampart:agents") || !contains(u.Groups, "system:authenticated") {
		t.Errorf("agent-n1 authenticates as %+v, want user agent-n1 in rampart:agents and system:authenticated", u)
	}
	if _, err := agent.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("agent-n1 lists pods: err %v, want Forbidden", err)
	}
	if _, err := k.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := k.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "agents-read-pods"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "rampart:agents"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding: %v", err)
	}
	// The RBAC authorizer reads bindings from an informer: allow a moment.
	var pods *corev1.PodList
	for {
		pods, err = agent.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil || !apierrors.IsForbidden(err) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("agent-n1 lists pods after the rolebinding: %v", err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Status.PodIP != podIP {
		t.Errorf("agent-n1 sees %d pods, want web-0 with IP %s", len(pods.Items), podIP)
	}
	// Still only in that namespace, and still not allowed to write.
	if _, err := agent.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("agent-n1 lists pods in default: err %v, want Forbidden", err)
	}
	if err := agent.CoreV1().Pods(ns).Delete(ctx, "web-0", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("agent-n1 deletes a pod: err %v, want Forbidden", err)
	}
	if _, err := c.ClientAs("nobody"); err == nil {
		t.Error("ClientAs of an unknown user: no error")
	}

	// The kubeconfig names the server, its CA and every user.
	b, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var kc clientcmdv1.Config
	if err := yaml.Unmarshal(b, &kc); err != nil {
		t.Fatalf("kubeconfig %s: %v", c.Kubeconfig, err)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != c.URL || len(kc.Clusters[0].Cluster.CertificateAuthorityData) == 0 ||
		len(kc.AuthInfos) != 2 || kc.CurrentContext != kubetest.AdminUser {
		t.Errorf("kubeconfig %s:\n%s", c.Kubeconfig, b)
	}
	t.Logf("test body done %v after start", time.Since(start).Round(time.Millisecond))
}

// TestKubeRunAddress uses Run as `rampart lab` will, outside package
// testing's helpers: on another address (127.0.0.2, still loopback, as a
// stand-in for a bridge address), in a directory Run makes and its stop
// removes.
func TestKubeRunAddress(t *testing.T) {
	bins := kubetest.RequireBinaries(t)
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, stop, err := kubetest.Run(ctx, kubetest.Options{
		BinDir:  bins,
		Address: netip.MustParseAddr("127.0.0.2"),
		Log:     &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if !strings.HasPrefix(c.URL, "https://127.0.0.2:") {
		t.Errorf("URL %s, want https://127.0.0.2:<port>", c.URL)
	}
	// The serving certificate must name the address: client-go verifies it.
	if _, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list namespaces on %s: %v", c.URL, err)
	}
	if !strings.Contains(log.String(), "ready in") {
		t.Errorf("progress log %q lacks the ready line", log.String())
	}
	stopped = true
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s after stop: %v, want it removed", c.Dir, err)
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestFindBinariesMissing needs no binaries: the skip message must say how
// to get them.
func TestFindBinariesMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := kubetest.FindBinaries(dir)
	if err == nil {
		t.Fatal("no error for an empty directory")
	}
	for _, want := range []string{filepath.Join(dir, "kube-apiserver"), filepath.Join(dir, "etcd"), "make kube-bins", kubetest.BinDirEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestRunRefusesBadUsers needs no binaries: options are checked first.
func TestRunRefusesBadUsers(t *testing.T) {
	for _, users := range [][]kubetest.User{
		{{Name: ""}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: kubetest.AdminUser}},
		{{Name: "a", Groups: []string{"x,y"}}},
		{{Name: "a", Token: `t"`}},
	} {
		_, _, err := kubetest.Run(context.Background(), kubetest.Options{BinDir: t.TempDir(), Users: users})
		if err == nil || strings.Contains(err.Error(), "not found") {
			t.Errorf("users %+v: err %v, want it refused before looking for binaries", users, err)
		}
	}
}
