//go:build e2e

package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	"github.com/rampartnet/rampart/internal/testbin"
)

// TestPrivilegedLabClusterTiers runs the network-policy-api conformance
// suite (ClusterNetworkPolicy, AdminNetworkPolicy and
// BaselineAdminNetworkPolicy: every case, every step's policies) on the
// lab's kernels: three nodes, the suite's pods (host-network ones
// included), each step applied with `lab apply` and the ports it probes
// probed from every pod to every pod. What the agents' nftables let
// through must be what the verdict engine says, as for NetworkPolicy.
// (The engine's agreement with upstream's answers is
// internal/policy's TestConformance; here the addresses are the lab's.)
func TestPrivilegedLabClusterTiers(t *testing.T) {
	netns.RequirePrivileged(t)
	bin, cni := testbin.Path(t, "rampart"), testbin.Path(t, "rampart-cni")
	name := fmt.Sprintf("t%d", os.Getpid()%100000)
	dir := filepath.Join(t.TempDir(), "lab")
	in := t.TempDir()
	base, err := policytest.ConformanceCluster()
	if err != nil {
		t.Fatal(err)
	}
	clusterFile := filepath.Join(in, "cluster.yaml")
	if err := os.WriteFile(clusterFile, base, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	l, err := Up(ctx, Options{Name: name, StateDir: dir, Nodes: 3, Binary: bin, CNIBinary: cni, Log: testLog{t}}, []string{clusterFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(dir); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	t.Logf("up in %v with %d pods", time.Since(start).Round(time.Millisecond), len(l.State().Pods))
	begin, steps, probes := time.Now(), 0, 0
	for i, c := range policytest.ConformanceCases {
		t.Run(c.Name, func(t *testing.T) {
			snap, err := c.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			for j, step := range c.Steps {
				for _, mut := range step.Mutate {
					if err := mut(snap); err != nil {
						t.Fatalf("step %s: %v", step.Name, err)
					}
				}
				b, err := policiesManifest(policiesOf(snap), i*100+j)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(in, fmt.Sprintf("case-%02d-%d.yaml", i, j))
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Apply(ctx, []string{path}); err != nil {
					t.Fatalf("step %s: apply: %v", step.Name, err)
				}
				var prs []policy.Probe
				for _, p := range step.Probes {
					pr := policy.Probe{Port: p.Port, Protocol: corev1.Protocol(p.Protocol)}
					if !slices.Contains(prs, pr) {
						prs = append(prs, pr)
					}
				}
				res, err := l.Probe(ctx, ProbeOptions{Probes: prs})
				if err != nil {
					t.Fatal(err)
				}
				steps++
				probes += len(res.Rows)
				var bad []string
				for k, r := range res.Rows {
					// Probes from and to the host-network pods (the
					// centaurs) are left to the engine's tests: in the
					// lab they share their node's namespace with the
					// agent, and no responder answers them there for
					// every port.
					if st := l.State(); st.pod(r.From).HostNetwork || st.pod(r.To).HostNetwork {
						continue
					}
					if r.Differs() {
						bad = append(bad, fmt.Sprintf("%s -> %s %d/%s: engine %v, observed %v %s (%s)", r.From, r.To, r.Port, r.Protocol,
							r.Allowed, r.Observed != nil && *r.Observed, r.Error, res.Why[k]))
					}
				}
				if len(bad) > 0 {
					t.Errorf("step %s: %d of %d probes differ:\n%s", step.Name, len(bad), len(res.Rows), strings.Join(bad, "\n"))
				}
			}
		})
	}
	t.Logf("%d conformance cases, %d steps, %d probes on the kernel in %v", len(policytest.ConformanceCases), steps, probes, time.Since(begin).Round(time.Millisecond))
}
