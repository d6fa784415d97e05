//go:build e2e

package agent

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/datapath"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/strongswan"
	"github.com/rampartnet/rampart/internal/testbin"
)

// TestPrivilegedAgentGateway: an IPsecPeer created through a real API
// server makes the agent of the node it names key an IKE SA with a
// strongSwan gateway outside the cluster, with the pre-shared key of its
// Secret, and carry the node's pod traffic to the gateway's subnet
// through it; the agent writes the SA's state and counters into the
// object's status. An IPsecPeer whose Secret is missing gets an error in
// its status and changes nothing else; a deleted IPsecPeer takes its SAs
// with it, and the traffic is then dropped, not sent in clear.
func TestPrivilegedAgentGateway(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := testbin.Path(t, "rampart")
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{Prefix: "rg"})
	a, b := &sites.A, &sites.B
	dir := t.TempDir()
	// The API server inside node A's namespace, on its 127.0.0.1.
	c := kubetest.Start(t, kubetest.Options{NetNS: a.Host})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.InstallCRDs(ctx, "../../deploy/crds/rampart.dev_ipsecpeers.yaml"); err != nil {
		t.Fatal(err)
	}
	o := metav1.CreateOptions{}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.DefaultSecretNamespace}}, o); err != nil {
		t.Fatal(err)
	}
	const psk = "a pre-shared key of the branch office, 40 bytes"
	if _, err := c.Client.CoreV1().Secrets(v1alpha1.DefaultSecretNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "branch-psk"}, Data: map[string][]byte{"psk": []byte(psk + "\n")}}, o); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	// The gateway: strongSwan on site B, answering for B's pod subnet.
	charon, err := strongswan.Start(strongswan.Options{Dir: filepath.Join(dir, "charon"), NS: b.Host,
		Local: b.UnderlayAddr4.Addr(), Remote: a.UnderlayAddr4.Addr(), PSK: psk, DPDDelay: time.Second,
		LocalTS: []netip.Prefix{b.Subnet4()}, RemoteTS: []netip.Prefix{a.Subnet4()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { charon.Stop() })

	// Node A's agent reads the API server; no other node.
	pki := newTestCA(t, dir)
	pki.issue(t, "node-a")
	cfg := filepath.Join(dir, "node-a.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: rampart.dev/v1alpha1
kind: Agent
metadata: {name: node-a}
spec:
  nodeName: node-a
  underlayAddress: %s
  podCIDR: %s
  clusterCIDR: 198.19.0.0/16
  controlSocket: node-a.sock
  cniConfDir: node-a-cni
  encryption: {caFile: ca.pem, certFile: node-a.pem, keyFile: node-a.key, enforce: false}
  policy: {kubeconfig: %s}
`, a.UnderlayAddr4.Addr(), a.Subnet4(), c.Kubeconfig), 0o644)
	ag := startAgent(t, a.Host, bin, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent:\n%s\nstrongSwan's SAs:\n%s\ncharon:\n%s", ag.log, charon.ListSAs(), charon.Log())
		}
	})

	peer := func(name, secret string) *unstructured.Unstructured {
		p := &v1alpha1.IPsecPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPsecPeerSpec{
			NodeName: "node-a", Address: b.UnderlayAddr4.Addr().String(),
			TrafficSpec: v1alpha1.TrafficSpec{LocalSubnets: []string{a.Subnet4().String()}, RemoteSubnets: []string{b.Subnet4().String()}},
			Auth:        v1alpha1.PeerAuth{PSK: &v1alpha1.SecretKeyReference{SecretReference: v1alpha1.SecretReference{Name: secret}, Key: "psk"}},
			Initiate:    true,
			TimersSpec:  v1alpha1.TimersSpec{DPDInterval: "2s"},
		}}
		p.SetGroupVersionKind(v1alpha1.SchemeGroupVersion.WithKind("IPsecPeer"))
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: m}
	}
	status := func(name string) v1alpha1.IPsecPeerStatus {
		u, err := dyn.Resource(ipsecPeers).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var p v1alpha1.IPsecPeer
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			t.Fatal(err)
		}
		return p.Status
	}
	waitStatus := func(name, what string, within time.Duration, ok func(v1alpha1.IPsecPeerStatus) bool) v1alpha1.IPsecPeerStatus {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			s := status(name)
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("IPsecPeer %s: %s: status %+v", name, what, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Before any IPsecPeer: pod A does not reach the gateway's subnet.
	if ping(a.Pod, b.PodAddr4.Addr().String()) {
		t.Fatal("pod A reached site B's pod before any IPsecPeer")
	}
	if _, err := dyn.Resource(ipsecPeers).Create(ctx, peer("branch", "branch-psk"), o); err != nil {
		t.Fatal(err)
	}
	if err := charon.WaitEstablished(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !pingRetry(a.Pod, b.PodAddr4.Addr().String(), 10*time.Second) || !pingRetry(b.Pod, a.PodAddr4.Addr().String(), 5*time.Second) {
		t.Fatal("no traffic through the IKE SA with the gateway")
	}
	s := waitStatus("branch", "established", 15*time.Second, func(s v1alpha1.IPsecPeerStatus) bool {
		return s.IKEState == "established" && s.ChildSAState == "installed"
	})
	if s.Node != "node-a" || s.Suite == "" || s.EstablishedTime == nil || s.ObservedGeneration != 1 ||
		len(s.Conditions) != 1 || s.Conditions[0].Status != metav1.ConditionTrue {
		t.Errorf("status %+v", s)
	}
	// The counters follow within countersEvery.
	waitStatus("branch", "counters", countersEvery+10*time.Second, func(s v1alpha1.IPsecPeerStatus) bool {
		return s.Counters.TxPackets > 0 && s.Counters.RxPackets > 0
	})
	st, err := datapath.ReadStatus(filepath.Join(dir, "node-a.sock"))
	if err != nil || len(st.Peers) != 1 || st.Peers[0].Name != gatewayPrefix+"branch" {
		t.Fatalf("datapath peers: %v %+v", err, st.Peers)
	}
	spi := st.Peers[0].SAs[0].SPI

	// A second IPsecPeer whose Secret does not exist: its status says
	// so, and the first keeps its SAs.
	bad := peer("other", "no-such-secret")
	unstructured.SetNestedField(bad.Object, "203.0.113.10", "spec", "address")
	if _, err := dyn.Resource(ipsecPeers).Create(ctx, bad, o); err != nil {
		t.Fatal(err)
	}
	s = waitStatus("other", "an error", 15*time.Second, func(s v1alpha1.IPsecPeerStatus) bool { return s.LastError != "" })
	if !strings.Contains(s.LastError, "spec.auth.psk: Secret rampart-secrets/no-such-secret") || s.Conditions[0].Reason != "InvalidSpec" {
		t.Errorf("status of the IPsecPeer without its Secret: %+v", s)
	}
	st, err = datapath.ReadStatus(filepath.Join(dir, "node-a.sock"))
	if err != nil || len(st.Peers) != 1 || st.Peers[0].SAs[0].SPI != spi {
		t.Errorf("the good IPsecPeer's SAs changed: %v %+v", err, st.Peers)
	}
	if !ping(a.Pod, b.PodAddr4.Addr().String()) {
		t.Error("traffic to the gateway stopped")
	}

	// Deleted: the IKE SA goes on both sides; the traffic is dropped.
	if err := dyn.Resource(ipsecPeers).Delete(ctx, "branch", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for strings.Contains(charon.ListSAs(), "ESTABLISHED") {
		if time.Now().After(deadline) {
			t.Fatalf("strongSwan still has the IKE SA after the IPsecPeer was deleted:\n%s", charon.ListSAs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ping(a.Pod, b.PodAddr4.Addr().String()) {
		t.Error("pod A reached site B's pod after the IPsecPeer was deleted")
	}
}
