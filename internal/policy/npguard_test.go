package policy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
)

// The differential test: thousands of random policies, decided by our
// engine and by np-guard's netpol-analyzer (an independent implementation,
// built by `make deps` into bin/npguard-oracle from tools/npguard-oracle),
// through its workload-level "all allowed connections" query. Every
// disagreement must be one of np-guard's known deviations, each checked by
// hand and listed in npguardKnown with the reason np-guard is wrong.
//
// The cases avoid what np-guard does not model by design: workloads are
// Deployments with no known address, so ipBlocks match no pod in either
// implementation (np-guard never matches pods by ipBlock).

const (
	diffSeeds     = 120 // cases
	diffPolicies  = 25  // per case: 3,000 policies in all
	diffWorkloads = 16
)

type oracleLine struct {
	Case    string            `json:"case"`
	Results []analyzeReachRow `json:"results"`
	Errors  []string          `json:"errors"`
}

type analyzeReachRow struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol"`
	Allowed  bool   `json:"allowed"`
}

// diffNoNamedPorts: np-guard refuses many cases with named ports (see
// below), so two cases in three use numeric ports only; named ports are
// covered by the e2e cases and the matrix-vs-verdict test.
func diffNoNamedPorts(seed int64) bool { return seed%3 != 0 }

// npguardKnown lists the disagreements checked by hand, by case and pair.
// Empty: every disagreement so far fell in a deviation class handled in
// explainDisagreement.
var npguardKnown = map[string]string{}

func TestDifferentialNPGuard(t *testing.T) {
	bin := os.Getenv("RAMPART_NPGUARD")
	if bin == "" {
		t.Skip("RAMPART_NPGUARD is not set; `make test` builds np-guard's analyzer and sets it")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("RAMPART_NPGUARD=%s: %v (run make deps)", bin, err)
	}
	probes := policytest.Probes()
	root := t.TempDir()
	var dirs []string
	snaps := map[string]*cluster.Snapshot{}
	for seed := int64(1); seed <= diffSeeds; seed++ {
		snap := policytest.Generate(seed, policytest.Options{Namespaces: 3, Workloads: diffWorkloads, Policies: diffPolicies, NoIPBlocks: true, NoNamedPorts: diffNoNamedPorts(seed)})
		dir := filepath.Join(root, fmt.Sprintf("case-%03d", seed))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := policytest.WriteYAML(&buf, snap); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		snaps[dir] = snap
	}

	cmd := exec.Command(bin, append([]string{"--probes", strings.Join(probes, ",")}, dirs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("np-guard oracle: %v\n%s", err, stderr.String())
	}
	oracle := map[string]oracleLine{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<20), 64<<20)
	for sc.Scan() {
		var l oracleLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("oracle output: %v", err)
		}
		oracle[l.Case] = l
	}

	var compared, agreed, explained, skipped int
	reasons := map[string]int{}
	for _, dir := range dirs {
		l, ok := oracle[dir]
		if !ok {
			t.Fatalf("%s: no answer from the oracle", dir)
		}
		if len(l.Errors) > 0 {
			// np-guard refuses a named port in an egress rule that may also
			// reach addresses ("cannot convert named port for an IP
			// destination") and then answers nothing for the case; upstream
			// lets such a port match only pods. Those cases are skipped.
			for _, e := range l.Errors {
				if !strings.Contains(e, "named port") && !strings.Contains(e, "port name") {
					t.Fatalf("%s: np-guard: %v", dir, e)
				}
			}
			skipped++
			continue
		}
		// Load the same files through our loader, as the CLI does.
		snap, err := cluster.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		m, diags, err := policy.FromSnapshot(snap, false)
		if err != nil {
			t.Fatalf("%s: %v: %v", dir, err, diags)
		}
		theirs := map[string]bool{}
		for _, r := range l.Results {
			theirs[fmt.Sprintf("%s %s %d/%s", r.From, r.To, r.Port, r.Protocol)] = r.Allowed
		}
		for _, ps := range probes {
			pr, _ := policy.ParseProbe(ps)
			mx := m.Matrix(pr)
			for _, s := range m.Endpoints {
				for _, d := range m.Endpoints {
					if s == d {
						continue // np-guard does not report a workload to itself
					}
					key := fmt.Sprintf("%s %s %s", s.Ref(), d.Ref(), pr)
					want, ok := theirs[key]
					if !ok {
						t.Fatalf("%s: np-guard has no answer for %s", dir, key)
					}
					compared++
					got := mx.Allowed(s, d)
					if got == want {
						agreed++
						continue
					}
					if reason, ok := npguardKnown[filepath.Base(dir)+" "+key]; ok {
						reasons[reason]++
						explained++
						continue
					}
					if reason := explainDisagreement(m, s, d, pr, want); reason != "" {
						reasons[reason]++
						explained++
						continue
					}
					v := m.Verdict(pr.Query(policy.Party{Endpoint: s}, policy.Party{Endpoint: d}))
					t.Errorf("%s: %s: rampart %v, np-guard %v\n  egress: %s\n  ingress: %s",
						filepath.Base(dir), key, got, want, v.Egress.Reason, v.Ingress.Reason)
				}
			}
		}
	}
	var rs []string
	for r, n := range reasons {
		rs = append(rs, fmt.Sprintf("%6d  %s", n, r))
	}
	sort.Strings(rs)
	t.Logf("%d cases (%d skipped: np-guard refused a named egress port), %d policies compared, %d verdicts: %d agree, %d explained deviations of np-guard\n%s",
		diffSeeds, skipped, (diffSeeds-skipped)*diffPolicies, compared, agreed, explained, strings.Join(rs, "\n"))
	if skipped > diffSeeds/3 {
		t.Errorf("np-guard refused %d of %d cases: too few compared", skipped, diffSeeds)
	}
	if compared == 0 || agreed < compared*9/10 {
		t.Errorf("too few agreements to trust the comparison: %d of %d", agreed, compared)
	}
}

// explainDisagreement returns the known np-guard deviation that accounts
// for a disagreement, or "" when none does (then it is a bug on one side).
//
// The one seen: when two or more policies select the same pod in the same
// direction, np-guard can merge their port sets into one range, so it
// allows a port between the lowest and highest port that any rule with a
// matching peer names (shared/ENVIRONMENT.md; checked by hand on case-119:
// ns2/p12 allows 80/SCTP and 81/UDP, ns2/p13 80-2338/SCTP and 81/TCP, and
// np-guard allows 8080/TCP from the pods both select).
func explainDisagreement(m *policy.Model, s, d *policy.Endpoint, pr policy.Probe, npguard bool) string {
	if !npguard {
		return ""
	}
	v := m.Verdict(pr.Query(policy.Party{Endpoint: s}, policy.Party{Endpoint: d}))
	for _, side := range []struct {
		dec     policy.Decision
		dir     policy.Direction
		subject *policy.Endpoint
		peer    *policy.Endpoint
	}{{v.Egress, policy.Egress, s, d}, {v.Ingress, policy.Ingress, d, s}} {
		if side.dec.Allowed || len(side.dec.IsolatedBy) < 2 {
			continue
		}
		lo, hi := int32(65536), int32(0)
		for _, ref := range side.dec.IsolatedBy {
			for _, p := range m.Policies {
				if p.Ref() != ref {
					continue
				}
				for _, r := range p.Rules(side.dir) {
					if !ruleHasPeer(p, r, side.peer) {
						continue
					}
					for _, port := range r.Ports {
						if port.Port == 0 {
							lo, hi = 1, 65535
							continue
						}
						end := port.EndPort
						if end == 0 {
							end = port.Port
						}
						lo, hi = min(lo, port.Port), max(hi, end)
					}
				}
			}
		}
		if pr.Port >= lo && pr.Port <= hi {
			return "np-guard merges the port sets of policies that select the same pod into one range"
		}
	}
	return ""
}

func ruleHasPeer(p *policy.Policy, r policy.Rule, e *policy.Endpoint) bool {
	if r.AllPeers {
		return true
	}
	for i := range r.Peers {
		if r.Peers[i].MatchesEndpoint(p.Namespace, e) {
			return true
		}
	}
	return false
}
