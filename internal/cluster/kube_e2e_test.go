package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rampartnet/rampart/internal/analyze"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/internal/policy"
)

// TestKubeSource runs the live source against a real kube-apiserver: the
// e2e model created through the API gives the same reach matrix and the
// same findings as its manifest files, and creates, updates and deletes
// arrive in order.
func TestKubeSource(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	files, err := cluster.Load("../../examples/netpol-e2e")
	if err != nil {
		t.Fatal(err)
	}
	create(ctx, t, c.Client, files)

	// Through a kubeconfig, as the CLI reads it (LoadKube), and through a
	// long-running source (the agent's).
	live, err := cluster.LoadKube(ctx, cluster.KubeConfig{Path: c.Kubeconfig}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	probes := []policy.Probe{{Port: 80, Protocol: "TCP"}, {Port: 81, Protocol: "UDP"}, {Port: 80, Protocol: "SCTP"}}
	want, wantFindings := views(t, files, probes)
	got, gotFindings := views(t, live, probes)
	if got != want {
		t.Errorf("reach on the live cluster differs from the files:\n--- files\n%s\n--- live\n%s", want, got)
	}
	if gotFindings != wantFindings {
		t.Errorf("findings on the live cluster differ from the files:\n--- files\n%s\n--- live\n%s", wantFindings, gotFindings)
	}

	// One namespace only (-n): the others' pods and policies are not read.
	ny, err := cluster.LoadKube(ctx, cluster.KubeConfig{Path: c.Kubeconfig, Namespace: "y"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ny.Pods {
		if p.Namespace != "y" {
			t.Errorf("-n y read pod %s/%s", p.Namespace, p.Name)
		}
	}

	k := cluster.NewKube(c.Client, cluster.KubeOptions{Name: "e2e", Events: 1024, Resync: time.Minute})
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	drain(k)
	pods := c.Client.CoreV1().Pods("x")
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "d", Labels: map[string]string{"pod": "d"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/c"}}}}
	if p, err = pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.Labels["pod"] = "e"
	if _, err = pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "d", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	// Deletion may first set deletionTimestamp (MODIFIED), then remove.
	var seen []cluster.EventType
	var versions []string
	for len(seen) == 0 || seen[len(seen)-1] != cluster.Deleted {
		select {
		case e := <-k.Events():
			if e.Kind == "Pod" && e.Namespace == "x" && e.Name == "d" {
				seen, versions = append(seen, e.Type), append(versions, e.Version)
			}
		case <-ctx.Done():
			t.Fatalf("events for x/d: %v", seen)
		}
	}
	if got := fmt.Sprint(seen); got != "[ADDED MODIFIED DELETED]" && got != "[ADDED MODIFIED MODIFIED DELETED]" {
		t.Errorf("events for x/d: %v, want ADDED MODIFIED (MODIFIED) DELETED", seen)
	}
	for i := 1; i < len(versions)-1; i++ { // etcd revisions: numbers that grow
		a, _ := strconv.ParseUint(versions[i-1], 10, 64)
		b, _ := strconv.ParseUint(versions[i], 10, 64)
		if a >= b {
			t.Errorf("resource versions out of order: %v", versions)
		}
	}
	for _, p := range k.Snapshot().Pods {
		if p.Namespace == "x" && p.Name == "d" {
			t.Error("the deleted pod is still in the snapshot")
		}
	}
	if k.Dropped() != 0 {
		t.Errorf("%d events dropped", k.Dropped())
	}

	// The kubeconfig's context is the name in the origins.
	raw, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if pos := live.Pods[0].Origin.Pos("spec"); !regexp.MustCompile("^" + regexp.QuoteMeta(raw.CurrentContext) + ": Pod x/a$").MatchString(pos) {
		t.Errorf("origin of a live pod: %q", pos)
	}
}

// create makes the snapshot's namespaces, pods (with their status: there
// is no kubelet) and policies through the API.
func create(ctx context.Context, t *testing.T, client kubernetes.Interface, s *cluster.Snapshot) {
	t.Helper()
	for _, n := range s.Namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels}}
		_, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// kube-system and default, which the API server makes: with
			// the manifest's labels.
			old, gerr := client.CoreV1().Namespaces().Get(ctx, n.Name, metav1.GetOptions{})
			if gerr != nil {
				t.Fatal(gerr)
			}
			old.Labels = n.Labels
			_, err = client.CoreV1().Namespaces().Update(ctx, old, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range s.Pods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels}, Spec: p.Spec}
		made, err := client.CoreV1().Pods(p.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		made.Status = p.Status
		made.Status.Phase = corev1.PodRunning
		if _, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, made, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, np := range s.NetworkPolicies {
		obj := np.NetworkPolicy.DeepCopy()
		obj.ResourceVersion = ""
		if _, err := client.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// views renders what the CLI shows of a snapshot: reach as JSON, and the
// findings of analyze without their positions (files have lines, live
// objects do not).
func views(t *testing.T, s *cluster.Snapshot, probes []policy.Probe) (reach, findings string) {
	t.Helper()
	m, diags, err := policy.FromSnapshot(s, false)
	if err != nil {
		t.Fatalf("%v: %v", err, diags)
	}
	tab, err := analyze.Reach(m, probes, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tab.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	r, err := analyze.Analyze(m, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var f bytes.Buffer
	for _, x := range r.Findings {
		fmt.Fprintf(&f, "%v %s %s %s %s\n", x.Severity, x.Kind, x.Subject, x.Message, x.Hint)
	}
	return b.String(), f.String()
}

func drain(k *cluster.Kube) {
	for {
		select {
		case <-k.Events():
		case <-k.Changed():
		default:
			return
		}
	}
}
