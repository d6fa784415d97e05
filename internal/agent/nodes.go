package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/datapath"
)

// ResolveNodes completes a Config whose nodes come from the API server
// (spec.nodesFrom: apiserver; otherwise it returns c): it lists the Node
// objects until this node's has a pod CIDR and an InternalIP (a new node
// may get them a moment after it registers), then validates the set as a
// config file's. The API server's node list is trusted as much as the
// config file would be: it is what the cluster's operators wrote.
func ResolveNodes(ctx context.Context, c *Config, log *slog.Logger) (*Config, error) {
	if !c.NodesFromAPI {
		return c, nil
	}
	client, err := c.kubeClient()
	if err != nil {
		return nil, err
	}
	wait := 500 * time.Millisecond
	for try := 0; ; try++ {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		unreachable := apiUnreachable(err)
		if err == nil {
			nc, werr := c.WithNodes(list.Items)
			if werr == nil {
				if cerr := writeNodeCache(nodeCachePath(c.ControlSocket), list.Items); cerr != nil && log != nil {
					log.Warn("the nodes were not cached", "err", cerr)
				}
				return nc, nil
			}
			err = werr
		}
		// A restart while the API server is away must not leave the node
		// without tunnels: the nodes it last resolved will do until the
		// server is back (watchCluster then restarts it if they changed).
		// Not on a validation error: that is the cluster's answer.
		if try >= 2 && unreachable {
			if nodes, cerr := readNodeCache(nodeCachePath(c.ControlSocket)); cerr == nil {
				if nc, werr := c.WithNodes(nodes); werr == nil {
					if log != nil {
						log.Warn("the API server is unreachable: starting with the nodes it last gave", "err", err, "nodes", len(nodes))
					}
					return nc, nil
				}
			}
		}
		if log != nil {
			log.Warn("nodes from the API server not ready; retrying", "err", err, "in", wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent: nodes from the API server: %w (last: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// nodeCachePath is where the agent keeps the Node objects it last
// resolved, beside its control socket ("node.sock" → "node.nodes.json").
func nodeCachePath(controlSocket string) string {
	return strings.TrimSuffix(controlSocket, filepath.Ext(controlSocket)) + ".nodes.json"
}

// cachedNode is what the cache keeps of a Node: what WithNodes reads.
type cachedNode struct {
	Name      string   `json:"name"`
	PodCIDR   string   `json:"podCIDR"`
	Addresses []string `json:"internalIPs"`
}

func writeNodeCache(path string, nodes []corev1.Node) error {
	var out []cachedNode
	for _, n := range nodes {
		cn := cachedNode{Name: n.Name, PodCIDR: n.Spec.PodCIDR}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				cn.Addresses = append(cn.Addresses, a.Address)
			}
		}
		out = append(out, cn)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readNodeCache(path string) ([]corev1.Node, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in []cachedNode
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("agent: node cache %s: %w", path, err)
	}
	nodes := make([]corev1.Node, len(in))
	for i, cn := range in {
		nodes[i].Name, nodes[i].Spec.PodCIDR = cn.Name, cn.PodCIDR
		for _, a := range cn.Addresses {
			nodes[i].Status.Addresses = append(nodes[i].Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
		}
	}
	return nodes, nil
}

// apiUnreachable tells a failure to reach the API server (which the cache
// may stand in for) from an answer of it.
func apiUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var status apierrors.APIStatus
	return !errors.As(err, &status)
}

func (c *Config) kubeClient() (kubernetes.Interface, error) {
	rc, name, err := c.Kube.RESTConfig()
	if err != nil {
		return nil, fmt.Errorf("agent: spec.policy.kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("agent: API server %s: %w", name, err)
	}
	return client, nil
}

// nodeSet is the cluster's nodes, this one included, by name.
func nodeSet(c *Config) []Node {
	ns := append([]Node{{Name: c.NodeName, Address: c.Address, PodCIDR: c.PodCIDR}}, c.Nodes...)
	slices.SortFunc(ns, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return ns
}

// clusterPoll is how often the agent looks at the API server's nodes,
// EncryptionConfig and IPsecPeers.
const clusterPoll = 5 * time.Second

// watchCluster keeps the datapath's peers equal to the API server's other
// nodes (with nodesFrom: apiserver) and this node's IPsecPeers, peer by
// peer: the tunnels that did not change are not touched. It returns, so
// that the agent restarts, only when what every peer depends on changed:
// this node's own address or pod CIDR, or the EncryptionConfig (the
// guard and the persistent TUN device keep pod traffic from leaking
// meanwhile). A change that does not validate is reported and the
// running peers stay.
func (a *Agent) watchCluster(ctx context.Context) error {
	client, err := a.cfg.kubeClient()
	if err != nil {
		return err
	}
	rc, _, err := a.cfg.Kube.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	self := Node{Name: a.cfg.NodeName, Address: a.cfg.Address, PodCIDR: a.cfg.PodCIDR}
	encryption := a.cfg.Encryption
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(clusterPoll):
			}
		}
		nodes := a.currentNodes()
		if a.cfg.NodesFromAPI {
			list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				continue // the API server away: keep going with what we have
			}
			nc, err := a.cfg.WithNodes(list.Items)
			if err != nil {
				a.log.Warn("the API server's nodes are not usable; keeping the current ones", "err", err)
				continue
			}
			if now := (Node{Name: nc.NodeName, Address: nc.Address, PodCIDR: nc.PodCIDR}); now != self {
				return fmt.Errorf("agent: this node's address or pod CIDR changed (%s %s, now %s %s): restarting to take them",
					self.Address, self.PodCIDR, now.Address, now.PodCIDR)
			}
			nodes = nc.Nodes
		}
		ec, err := a.cfg.encryptionConfig(ctx)
		if err != nil {
			continue
		}
		now := ""
		if ec != nil {
			if _, err := a.cfg.WithEncryption(ec); err != nil {
				a.log.Warn("the EncryptionConfig is not usable; keeping the running settings", "err", err)
				continue
			}
			now = fmt.Sprintf("EncryptionConfig %s (generation %d)", ec.Name, ec.Generation)
		}
		if now != encryption {
			return fmt.Errorf("agent: the encryption settings changed (%q, now %q): restarting to take them", encryption, now)
		}
		if a.dev == nil {
			continue
		}
		gws, err := a.gateways(ctx, dyn, client)
		if err != nil {
			a.log.Warn("IPsecPeers not read; keeping the current ones", "err", err)
			continue
		}
		if err := a.setPeers(nodes, gws); err != nil {
			a.log.Error("peers not changed; the running ones stay", "err", err)
			for _, g := range gws {
				if g.err == nil {
					g.err = err
				}
			}
		}
		a.reportGateways(ctx, dyn, gws)
	}
}

// currentNodes is the nodes the datapath has as peers.
func (a *Agent) currentNodes() []Node {
	a.peersMu.Lock()
	defer a.peersMu.Unlock()
	return a.nodes
}

// setPeers makes the datapath's peers the nodes and the usable gateways,
// if they differ from those it has. It is one datapath change: all of it,
// or (on an error) none.
func (a *Agent) setPeers(nodes []Node, gws []*gateway) error {
	a.peersMu.Lock()
	defer a.peersMu.Unlock()
	var key strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&key, "node %s %s %s\n", n.Name, n.Address, n.PodCIDR)
	}
	var peers []datapath.Peer
	for _, n := range nodes {
		peers = append(peers, a.nodePeer(n))
	}
	for _, g := range gws {
		if g.err != nil {
			continue
		}
		fmt.Fprintf(&key, "gateway %s %s\n", g.obj.Name, g.key)
		peers = append(peers, g.peer)
	}
	if key.String() == a.peersKey {
		for _, p := range peers {
			if p.IKE != nil {
				clear(p.IKE.PSK)
			}
		}
		return nil
	}
	if err := a.dev.SetPeers(peers); err != nil {
		return err
	}
	if len(nodes) != len(a.nodes) {
		a.log.Info("the cluster's nodes changed", "before", len(a.nodes), "now", len(nodes))
	}
	a.nodes, a.peersKey = nodes, key.String()
	return nil
}

// encryptionConfigs is the resource of the cluster's EncryptionConfig.
var encryptionConfigs = v1alpha1.SchemeGroupVersion.WithResource("encryptionconfigs")

// ResolveEncryption applies the cluster's EncryptionConfig (the one named
// "default"), when the agent reads an API server and there is one, over
// the file's spec.encryption: mode, enforce, proposals, timers and the
// replay window. Credentials stay the file's. Without the resource (or its
// CRD) the file's settings stand.
func ResolveEncryption(ctx context.Context, c *Config) (*Config, error) {
	if c.Kube == nil {
		return c, nil
	}
	ec, err := c.encryptionConfig(ctx)
	if err != nil || ec == nil {
		return c, err
	}
	return c.WithEncryption(ec)
}

// encryptionConfig reads EncryptionConfig "default"; nil when there is none.
func (c *Config) encryptionConfig(ctx context.Context) (*v1alpha1.EncryptionConfig, error) {
	rc, _, err := c.Kube.RESTConfig()
	if err != nil {
		return nil, fmt.Errorf("agent: spec.policy.kubeconfig: %w", err)
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	u, err := dc.Resource(encryptionConfigs).Get(ctx, v1alpha1.EncryptionConfigName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil // no such object, or no such resource (CRD not installed)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: EncryptionConfig %s: %w", v1alpha1.EncryptionConfigName, err)
	}
	var ec v1alpha1.EncryptionConfig
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ec); err != nil {
		return nil, fmt.Errorf("agent: EncryptionConfig %s: %w", v1alpha1.EncryptionConfigName, err)
	}
	return &ec, nil
}
