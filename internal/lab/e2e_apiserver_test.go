//go:build e2e

package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rampartnet/rampart/internal/agent"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/testbin"
)

// TestPrivilegedLabAPIServer is `lab up --apiserver`: a real kube-apiserver
// on the lab's underlay, the agents reading it through client-go. The e2e
// model's policies, written there by the lab, are enforced; a
// NetworkPolicy created through the API changes what `lab probe` observes
// within 2 seconds; while the API server is stopped the rules in force
// stay; `lab apply` goes through the API server; `lab down` stops the API
// server and leaves nothing.
func TestPrivilegedLabAPIServer(t *testing.T) {
	netns.RequirePrivileged(t)
	kubetest.RequireBinaries(t)
	bin, cni := testbin.Path(t, "rampart"), testbin.Path(t, "rampart-cni")
	name := fmt.Sprintf("k%d", os.Getpid()%100000)
	dir := filepath.Join(t.TempDir(), "lab")
	ctx := context.Background()
	start := time.Now()
	l, err := Up(ctx, Options{Name: name, StateDir: dir, Nodes: 2, Binary: bin, CNIBinary: cni, Log: testLog{t}, APIServer: true},
		[]string{"../../examples/netpol-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			if err := Down(dir); err != nil {
				t.Errorf("down: %v", err)
			}
		}
	})
	st := l.State()
	if st.APIServer == nil {
		t.Fatal("no API server in the state")
	}
	t.Logf("up with the API server %s in %v", st.APIServer.URL, time.Since(start).Round(time.Millisecond))
	tcp80 := ProbeOptions{Probes: []policy.Probe{{Port: 80, Protocol: "TCP"}}}
	probeEqual := func(what string) *ProbeResult {
		t.Helper()
		res, err := l.Probe(ctx, tcp80)
		if err != nil {
			t.Fatal(err)
		}
		if d := res.Differences(); d != 0 {
			t.Errorf("%s: %d of %d probes differ", what, d, len(res.Rows))
		}
		return res
	}
	before := probeEqual("the lab's policies")

	// The tunnels are keyed with certificates the agents got through the
	// CSR API, signed by the controller, with the deploy/ identities.
	for _, n := range st.Nodes {
		as, err := agent.ReadStatus(agent.StatusPath(n.ControlSocket))
		if err != nil || as.Certificate == nil || as.Certificate.Serial == "" || as.Certificate.Error != "" {
			t.Errorf("node %s: the agent reports no certificate through the CSR API: %v %+v", n.Name, err, as.Certificate)
		}
		if _, err := os.Stat(filepath.Join(l.st.nodeDir(n.Name), "cert.pem")); err == nil {
			t.Errorf("node %s: the lab issued a certificate file although the agent asks for its own", n.Name)
		}
	}
	if !st.APIServer.Controller.alive() {
		t.Error("the controller does not run")
	}

	// A policy through the API, as kubectl would create it: z's pods take
	// nothing from outside z.
	client, closeNS, err := l.KubeClient()
	if err != nil {
		t.Fatal(err)
	}
	defer closeNS()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "z-only", Namespace: "z"},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
		}}
	if before, err = l.Probe(ctx, ProbeOptions{Probes: tcp80.Probes, To: "z/*", Timeout: 250 * time.Millisecond}); err != nil || before.Differences() != 0 {
		t.Fatalf("probes to z before the change: %v", err)
	}
	created := time.Now()
	if _, err := client.NetworkingV1().NetworkPolicies("z").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Only what the policy changes (to z's pods), with short timeouts: a
	// blocked probe waits its whole timeout, and the loop's granularity
	// is one round of probes.
	toZ := ProbeOptions{Probes: tcp80.Probes, To: "z/*", Timeout: 250 * time.Millisecond}
	var res *ProbeResult
	for {
		if res, err = l.Probe(ctx, toZ); err != nil {
			t.Fatal(err)
		}
		if res.Differences() == 0 && allowedCount(res) < allowedCount(before) {
			break
		}
		if time.Since(created) > 10*time.Second {
			t.Fatalf("10 s after the policy was created: %d differences, %d allowed (before: %d)", res.Differences(), allowedCount(res), allowedCount(before))
		}
	}
	took := time.Since(created)
	t.Logf("policy created through the API: observed and expected agree %v later (%d allowed before, %d after)",
		took.Round(time.Millisecond), allowedCount(before), allowedCount(res))
	if took > 2*time.Second {
		t.Errorf("the probe saw the new policy after %v, more than 2 s", took)
	}

	// The API server away (stopped, not killed): the agents keep the
	// rules in force, and traffic keeps following them.
	m, err := l.Model()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.APIServer.Server.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the informers' watches time out and retry meanwhile
	away, err := l.Probe(ctx, ProbeOptions{Probes: tcp80.Probes, Expected: m})
	if cerr := syscall.Kill(st.APIServer.Server.PID, syscall.SIGCONT); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if d := away.Differences(); d != 0 || allowedCount(away) == len(away.Rows) {
		t.Errorf("with the API server stopped: %d of %d probes differ, %d allowed", d, len(away.Rows), allowedCount(away))
	}
	for _, n := range st.Nodes {
		if !n.Agent.alive() {
			t.Errorf("the agent of %s ended while the API server was away", n.Name)
		}
	}

	// lab apply writes through the API server: no policy at all.
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "none.yaml"), []byte("# no policies\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Apply(ctx, []string{empty}); err != nil {
		t.Fatal(err)
	}
	list, err := client.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("after applying no policies the API server holds %d (%v)", len(list.Items), err)
	}
	if after := probeEqual("no policies"); allowedCount(after) != len(after.Rows) {
		t.Errorf("no policies, yet %d of %d probes blocked", len(after.Rows)-allowedCount(after), len(after.Rows))
	}

	downed = true
	if err := Down(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Proc{st.APIServer.Controller, st.APIServer.Server, st.APIServer.Etcd} {
		if syscall.Kill(p.PID, 0) == nil {
			if _, running := procStart(p.PID); running {
				t.Errorf("process %d (%s) still runs after down", p.PID, p.Log)
			}
		}
	}
	if left := labNamespaces(name); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

func allowedCount(r *ProbeResult) int {
	n := 0
	for _, row := range r.Rows {
		if row.Observed != nil && *row.Observed {
			n++
		}
	}
	return n
}
