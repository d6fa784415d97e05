package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestResolveNodesFromCache: an agent started while its API server is
// unreachable takes the nodes it last resolved, validated again; without
// them it keeps asking.
func TestResolveNodesFromCache(t *testing.T) {
	dir := writeCreds(t, "node-1")
	// Nothing listens on port 1 of loopback: every request fails at once.
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(validAgent, "paths: [manifests]", "kubeconfig: kubeconfig", 1)
	text = strings.Replace(text, "  - {name: node-2, address: 198.18.0.12, podCIDR: 198.19.2.0/24}\n", "", 1)
	text = strings.Replace(text, "  - {name: node-3, address: 198.18.0.13, podCIDR: 198.19.3.0/24}\n", "", 1)
	text = strings.Replace(text, "  nodes:\n", "  nodesFrom: apiserver\n", 1)
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds := LoadConfig(path)
	if cfg == nil {
		t.Fatal(ds)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if _, err := ResolveNodes(ctx, cfg, nil); err == nil {
		t.Fatal("resolved nodes with no API server and no cache")
	}

	node := func(name, addr, cidr string) corev1.Node {
		n := corev1.Node{Spec: corev1.NodeSpec{PodCIDR: cidr}}
		n.Name = name
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
		return n
	}
	cache := nodeCachePath(cfg.ControlSocket)
	if err := writeNodeCache(cache, []corev1.Node{node("node-1", "198.18.0.11", "198.19.1.0/24"), node("node-2", "198.18.0.12", "198.19.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := ResolveNodes(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nc.Nodes) != 1 || nc.Nodes[0].Name != "node-2" || nc.Nodes[0].PodCIDR.String() != "198.19.2.0/24" {
		t.Errorf("nodes from the cache: %+v", nc.Nodes)
	}

	// A cache that no longer validates (another node claims our pod CIDR)
	// is not used.
	if err := writeNodeCache(cache, []corev1.Node{node("node-1", "198.18.0.11", "198.19.1.0/24"), node("node-2", "198.18.0.12", "198.19.1.0/25")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if _, err := ResolveNodes(ctx, cfg, nil); err == nil {
		t.Error("an invalid cache was used")
	}
}
