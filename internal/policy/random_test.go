package policy_test

import (
	"fmt"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
)

// The class matrix must agree with the verdict engine, which decides one
// query at a time by walking the policies: random clusters, every pair,
// every probe (a differential test against the slow reference, as
// wireguard-go tests its allowed-IPs trie).
func TestMatrixAgreesWithVerdict(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 5
	}
	probes := append(policytest.Probes(), "serve-81-udp/UDP", "http-alt/TCP", "9999/TCP")
	var allowed, denied int
	var tiers [3]int // with cluster-wide policies, decisions by the admin tier, the baseline tier, the rest
	for seed := int64(1); seed <= int64(seeds); seed++ {
		for _, c := range []struct {
			ips bool
			cps int // cluster-wide policies
		}{{false, 0}, {true, 0}, {false, 6}, {true, 6}} {
			ips := c.ips
			snap := policytest.Generate(seed, policytest.Options{Namespaces: 4, Workloads: 24, Policies: 12, PodIPs: ips,
				ClusterPolicies: c.cps})
			m, diags := policy.NewModel(snap)
			if len(diags) > 0 {
				t.Fatalf("seed %d: %v", seed, diags)
			}
			// The generator writes what the API server accepts.
			for _, d := range policy.Validate(snap) {
				if d.Severity == cluster.Error {
					t.Fatalf("seed %d: generated input is invalid: %s", seed, d)
				}
			}
			for _, ps := range probes {
				pr, err := policy.ParseProbe(ps)
				if err != nil {
					t.Fatal(err)
				}
				mx := m.Matrix(pr)
				for _, s := range m.Endpoints {
					for _, d := range m.Endpoints {
						v := m.Verdict(pr.Query(policy.Party{Endpoint: s}, policy.Party{Endpoint: d}))
						if v.Allowed {
							allowed++
						} else {
							denied++
						}
						for _, dec := range []policy.Decision{v.Egress, v.Ingress} {
							if c.cps == 0 {
								continue
							}
							switch dec.By {
							case "admin":
								tiers[0]++
							case "baseline":
								tiers[1]++
							default:
								tiers[2]++
							}
						}
						if got := mx.Allowed(s, d); got != v.Allowed {
							t.Fatalf("seed %d ips %v probe %s: %s -> %s: matrix %v, verdict %v\negress: %s\ningress: %s",
								seed, ips, pr, s.Ref(), d.Ref(), got, v.Allowed, v.Egress.Reason, v.Ingress.Reason)
						}
					}
				}
			}
		}
	}
	// The generator must produce both answers often, or this test proves little.
	if allowed < denied/10 || denied < allowed/10 {
		t.Errorf("lopsided: %d allowed, %d denied", allowed, denied)
	}
	// And the tiers must decide often enough to be tested.
	if tiers[0] < tiers[2]/50 || tiers[1] < tiers[2]/50 {
		t.Errorf("the tiers rarely decide: admin %d, baseline %d, others %d", tiers[0], tiers[1], tiers[2])
	}
	t.Logf("%d allowed, %d denied; decided by admin %d, baseline %d, others %d", allowed, denied, tiers[0], tiers[1], tiers[2])
}

func ExampleModel_Verdict() {
	snap := policytest.Generate(7, policytest.Options{Namespaces: 2, Workloads: 4, Policies: 3})
	m, _ := policy.NewModel(snap)
	pr, _ := policy.ParseProbe("80/TCP")
	from, _ := m.Party("ns0/w0")
	to, _ := m.Party("ns1/w1")
	r := m.Verdict(pr.Query(from, to))
	fmt.Println(r.Allowed, r.Egress.By, r.Ingress.By)
	// Output: false default network-policy
}
