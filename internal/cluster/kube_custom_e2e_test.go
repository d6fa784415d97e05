package cluster_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/internal/policy"
)

// TestKubeCustomResources: with their CRDs installed (network-policy-api's
// own, a stand-in for Istio's, Rampart's), the live source reads
// ClusterNetworkPolicies, AuthorizationPolicies, the EncryptionConfig and
// IPsecPeers; examples/guardrails created through the API gives the same
// reach matrix and findings as its files. Without the CRDs the source
// starts all the same (TestKubeSource).
func TestKubeCustomResources(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/network-policy-api").Output()
	if err != nil {
		t.Fatalf("go list sigs.k8s.io/network-policy-api: %v", err)
	}
	npa := filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard", "policy.networking.k8s.io_clusternetworkpolicies.yaml")
	if err := c.InstallCRDs(ctx, npa, "testdata/crds/security.istio.io_authorizationpolicies.yaml",
		"../../deploy/crds/rampart.dev_encryptionconfigs.yaml", "../../deploy/crds/rampart.dev_ipsecpeers.yaml"); err != nil {
		t.Fatal(err)
	}
	files, err := cluster.Load("../../examples/guardrails")
	if err != nil {
		t.Fatal(err)
	}
	if len(files.ClusterNetworkPolicies) == 0 {
		t.Fatal("examples/guardrails has no ClusterNetworkPolicy")
	}
	create(ctx, t, c.Client, files)
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(gvr schema.GroupVersionResource, ns string, obj any, gvk schema.GroupVersionKind) {
		t.Helper()
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetGroupVersionKind(gvk)
		u.SetResourceVersion("")
		var res dynamic.ResourceInterface = dyn.Resource(gvr)
		if ns != "" {
			res = dyn.Resource(gvr).Namespace(ns)
		}
		if _, err := res.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, u.GetName(), err)
		}
	}
	for _, p := range files.ClusterNetworkPolicies {
		apply(schema.GroupVersionResource{Group: "policy.networking.k8s.io", Version: "v1alpha2", Resource: "clusternetworkpolicies"}, "",
			&p.ClusterNetworkPolicy, schema.GroupVersionKind{Group: "policy.networking.k8s.io", Version: "v1alpha2", Kind: "ClusterNetworkPolicy"})
	}
	extra := &cluster.Snapshot{}
	cluster.LoadBytes("extra.yaml", []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: search-post, namespace: blog}
spec:
  selector: {matchLabels: {app: wordpress}}
  rules: [{from: [{source: {principals: [cluster.local/ns/blog/sa/api]}}], to: [{operation: {methods: [POST]}}]}]
---
apiVersion: rampart.dev/v1alpha1
kind: EncryptionConfig
metadata: {name: default}
spec: {mode: ipsec, replayWindow: 2048}
---
apiVersion: rampart.dev/v1alpha1
kind: IPsecPeer
metadata: {name: branch}
spec: {nodeName: node-1, address: 203.0.113.10, localSubnets: [198.19.0.0/16], remoteSubnets: [198.51.100.0/24], auth: {psk: {name: branch-psk, key: psk}}}
`), extra)
	extra.Finish()
	if len(extra.Diagnostics) > 0 {
		t.Fatal(extra.Diagnostics)
	}
	ap := extra.AuthorizationPolicies[0]
	apply(schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}, ap.Namespace,
		&ap.AuthorizationPolicy, schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"})
	apply(schema.GroupVersionResource{Group: "rampart.dev", Version: "v1alpha1", Resource: "encryptionconfigs"}, "",
		&extra.EncryptionConfigs[0].EncryptionConfig, schema.GroupVersionKind{Group: "rampart.dev", Version: "v1alpha1", Kind: "EncryptionConfig"})
	apply(schema.GroupVersionResource{Group: "rampart.dev", Version: "v1alpha1", Resource: "ipsecpeers"}, "",
		&extra.IPsecPeers[0].IPsecPeer, schema.GroupVersionKind{Group: "rampart.dev", Version: "v1alpha1", Kind: "IPsecPeer"})

	live, err := cluster.LoadKube(ctx, cluster.KubeConfig{Path: c.Kubeconfig}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(live.ClusterNetworkPolicies) != len(files.ClusterNetworkPolicies) || len(live.AuthorizationPolicies) != 1 ||
		len(live.EncryptionConfigs) != 1 || live.EncryptionConfigs[0].Spec.ReplayWindow != 2048 ||
		len(live.IPsecPeers) != 1 || live.IPsecPeers[0].Spec.NodeName != "node-1" {
		t.Fatalf("live: %d ClusterNetworkPolicies (want %d), %d AuthorizationPolicies, %d EncryptionConfigs, %d IPsecPeers; %v",
			len(live.ClusterNetworkPolicies), len(files.ClusterNetworkPolicies), len(live.AuthorizationPolicies),
			len(live.EncryptionConfigs), len(live.IPsecPeers), live.Diagnostics)
	}
	if got := live.AuthorizationPolicies[0].Spec.Rules[0].To[0].Operation.Methods; len(got) != 1 || got[0] != "POST" {
		t.Errorf("AuthorizationPolicy as read: methods %v", got)
	}
	probes := []policy.Probe{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}, {Port: 3306, Protocol: "TCP"}}
	want, wantFindings := views(t, files, probes)
	got, gotFindings := views(t, live, probes)
	if got != want {
		t.Errorf("reach on the live cluster differs from the files:\n--- files\n%s\n--- live\n%s", want, got)
	}
	if gotFindings != wantFindings {
		t.Errorf("findings on the live cluster differ from the files:\n--- files\n%s\n--- live\n%s", wantFindings, gotFindings)
	}
}
