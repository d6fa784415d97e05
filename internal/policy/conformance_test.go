package policy_test

import (
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
	corev1 "k8s.io/api/core/v1"
)

// TestConformance runs the conformance suite of sigs.k8s.io/network-policy-api
// v0.2.0, ported as data (policytest.ConformanceCases), on the verdict
// engine, and on the class matrix for the probes between pods: every probe
// must get upstream's answer.
func TestConformance(t *testing.T) {
	probes := 0
	for _, c := range policytest.ConformanceCases {
		t.Run(c.Name, func(t *testing.T) {
			snap, err := c.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range c.Steps {
				for _, mut := range step.Mutate {
					if err := mut(snap); err != nil {
						t.Fatalf("%s: %v", step.Name, err)
					}
				}
				m, diags, err := policy.FromSnapshot(snap, false)
				if err != nil {
					t.Fatalf("%s: %v: %v", step.Name, err, diags)
				}
				for _, p := range step.Probes {
					probes++
					from := m.Endpoint(policytest.ConformanceRef(p.From))
					server := m.Endpoint(policytest.ConformanceRef(p.To))
					if from == nil || server == nil || len(server.IPs) == 0 {
						t.Fatalf("%s: no pod %s or %s with an address", step.Name, p.From, p.To)
					}
					// Upstream pokes the server's address: a pod's resolves
					// to the pod, a hostNetwork pod's to its node.
					to, err := m.Party(server.IPs[0].String())
					if err != nil {
						t.Fatal(err)
					}
					pr := policy.Probe{Port: p.Port, Protocol: corev1.Protocol(p.Protocol)}
					v := m.Verdict(pr.Query(policy.Party{Endpoint: from}, to))
					if v.Allowed != p.Want {
						t.Errorf("%s:\n  %s -> %s %s: allowed %v, upstream says %v\n  egress (%s): %s\n  ingress (%s): %s",
							step.Name, p.From, p.To, pr, v.Allowed, p.Want, v.Egress.By, v.Egress.Reason, v.Ingress.By, v.Ingress.Reason)
					}
					if to.Endpoint != nil {
						if got := m.Matrix(pr).Allowed(from, to.Endpoint); got != p.Want {
							t.Errorf("%s: %s -> %s %s: the class matrix says %v, upstream %v", step.Name, p.From, p.To, pr, got, p.Want)
						}
					}
				}
			}
		})
	}
	if probes < 289 {
		t.Errorf("%d probes run, the suite has 289", probes)
	}
}

// The suite's manifests are valid for Validate too: no errors, and the
// warnings it gives are the ones expected of them.
func TestConformanceManifestsValidate(t *testing.T) {
	for _, c := range policytest.ConformanceCases {
		snap, err := c.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range policy.Validate(snap) {
			if d.Severity == cluster.Error {
				t.Errorf("%s: %s", c.Name, d)
			}
			// The CIDR tests deny ::/0 too, an IPv6 network nothing
			// here has; nothing else may warn.
			if d.Severity == cluster.Warning && !strings.Contains(d.Message, "selects no pod") {
				t.Errorf("%s: unexpected warning %s", c.Name, d)
			}
		}
	}
}
