package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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
	for {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			nc, werr := c.WithNodes(list.Items)
			if werr == nil {
				return nc, nil
			}
			err = werr
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

// nodeSet is what the datapath was built from: a change needs a restart.
func nodeSet(c *Config) []Node {
	ns := append([]Node{{Name: c.NodeName, Address: c.Address, PodCIDR: c.PodCIDR}}, c.Nodes...)
	slices.SortFunc(ns, func(a, b Node) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return ns
}

// watchNodes returns when the API server's nodes differ from those c was
// resolved with, so that the agent restarts with the new set (its datapath
// has its peers fixed; the guard and the persistent TUN device keep pod
// traffic from leaking meanwhile).
func (a *Agent) watchNodes(ctx context.Context) error {
	client, err := a.cfg.kubeClient()
	if err != nil {
		return err
	}
	want := nodeSet(a.cfg)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			continue // the API server away: keep going with what we have
		}
		nc, err := a.cfg.WithNodes(list.Items)
		if err != nil {
			a.log.Warn("the API server's nodes are not usable; keeping the current ones", "err", err)
			continue
		}
		if got := nodeSet(nc); !slices.Equal(got, want) {
			return fmt.Errorf("agent: the cluster's nodes changed (%d before, %d now): restarting to take them", len(want), len(got))
		}
	}
}
