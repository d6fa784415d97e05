package cluster

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestLiveSnapshot: the fake clientset's objects become a finished
// Snapshot, ended pods left out, origins naming the live objects. (The
// real API server is in internal/kubetest's tests, e2e-kube.)
func TestLiveSnapshot(t *testing.T) {
	ns := func(name string, l map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	pod := func(ns, name, ip string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
			Spec:   corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Phase: phase, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
	}
	client := fake.NewClientset(
		ns("alpha", map[string]string{"team": "a"}),
		pod("alpha", "web", "198.19.0.2", corev1.PodRunning),
		pod("alpha", "job", "198.19.0.3", corev1.PodSucceeded),
		pod("beta", "db", "198.19.0.4", corev1.PodPending),
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "deny"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDR: "198.19.0.0/24"}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k := NewKube(client, KubeOptions{Name: "test", Events: 16})
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s := k.Snapshot()
	var pods []string
	for _, p := range s.Pods {
		pods = append(pods, p.Namespace+"/"+p.Name)
	}
	if len(pods) != 2 || pods[0] != "alpha/web" || pods[1] != "beta/db" {
		t.Errorf("pods %v, want alpha/web and beta/db (the ended job left out)", pods)
	}
	// beta is referred to, not declared: it gets the automatic label.
	if len(s.Namespaces) != 2 || s.Namespaces[1].Name != "beta" || s.Namespaces[1].Declared ||
		s.Namespaces[0].Labels[corev1.LabelMetadataName] != "alpha" || s.Namespaces[0].Labels["team"] != "a" {
		t.Errorf("namespaces %+v", s.Namespaces)
	}
	if len(s.NetworkPolicies) != 1 || len(s.Nodes) != 1 {
		t.Errorf("%d policies, %d nodes", len(s.NetworkPolicies), len(s.Nodes))
	}
	if got := s.Pods[0].Origin.Pos("spec"); got != "test: Pod alpha/web" {
		t.Errorf("origin %q", got)
	}
	// Copies: changing the snapshot does not change the cache.
	s.Pods[0].Labels["app"] = "changed"
	if k.Snapshot().Pods[0].Labels["app"] != "web" {
		t.Error("the snapshot shares objects with the informer cache")
	}
	// Events and changes: TestKubeSource, against a real API server (the
	// fake clientset can lose events between its list and its watch).
}
