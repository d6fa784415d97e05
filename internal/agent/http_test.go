package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/cluster"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testAgent is an agent that never ran: its state is what the test sets.
func testAgent(encrypt bool, nodes int) *Agent {
	cfg := &Config{NodeName: "node-1", Encrypt: encrypt}
	for i := range nodes {
		cfg.Nodes = append(cfg.Nodes, Node{Name: "node-" + string(rune('2'+i))})
	}
	return New(cfg, quietLog())
}

func TestReadiness(t *testing.T) {
	applied := PolicyStatus{Generation: 1, Applied: time.Now()}
	for _, tc := range []struct {
		name         string
		st           PolicyStatus
		needDatapath bool
		datapathUp   bool
		want         bool
		why          string
	}{
		{"nothing yet", PolicyStatus{}, false, false, false, "no policy applied yet"},
		{"waiting for the API server", PolicyStatus{Error: "waiting for the API server kube (https://198.18.0.1:6443)"}, false, false, false,
			"no policy applied yet: waiting for the API server"},
		{"first change refused", PolicyStatus{Error: "invalid manifests:\nbad.yaml:7: ..."}, false, false, false, "no policy applied yet: invalid manifests"},
		{"applied, no datapath needed", applied, false, false, true, "ok"},
		{"applied, datapath down", applied, true, false, false, "the IPsec datapath is not running"},
		{"applied, datapath up", applied, true, true, true, "ok"},
		// The rules in force stay, and are the last valid ones: the node
		// still enforces (the refusal shows in /metrics).
		{"later change refused", PolicyStatus{Generation: 3, Error: "invalid manifests"}, true, true, true, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := readiness(tc.st, tc.needDatapath, tc.datapathUp)
			if ok != tc.want || !strings.HasPrefix(why, tc.why) {
				t.Errorf("readiness = %v, %q; want %v, %q…", ok, why, tc.want, tc.why)
			}
		})
	}
}

func TestHandlerProbes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		agent      func() *Agent
		path       string
		method     string
		wantCode   int
		wantInBody string
	}{
		{"healthz before anything", func() *Agent { return testAgent(true, 2) }, "/healthz", "GET", 200, "ok"},
		{"readyz before the first apply", func() *Agent { return testAgent(false, 0) }, "/readyz", "GET", 503, "no policy applied yet"},
		{"readyz says why", func() *Agent {
			a := testAgent(false, 0)
			a.status.Error = "waiting for the API server"
			return a
		}, "/readyz", "GET", 503, "waiting for the API server"},
		{"readyz applied, encryption off", func() *Agent {
			a := testAgent(false, 2)
			a.status.Generation = 1
			return a
		}, "/readyz", "GET", 200, "ok"},
		{"readyz applied, alone in the cluster", func() *Agent {
			a := testAgent(true, 0)
			a.status.Generation = 1
			return a
		}, "/readyz", "GET", 200, "ok"},
		{"readyz applied, datapath not running", func() *Agent {
			a := testAgent(true, 2)
			a.status.Generation = 1
			return a
		}, "/readyz", "GET", 503, "datapath is not running"},
		{"readyz applied, datapath running", func() *Agent {
			a := testAgent(true, 2)
			a.status.Generation = 1
			a.datapathUp.Store(true)
			return a
		}, "/readyz", "GET", 200, "ok"},
		{"probes are read-only", func() *Agent { return testAgent(false, 0) }, "/healthz", "POST", 405, ""},
		{"unknown path", func() *Agent { return testAgent(false, 0) }, "/debug/pprof/", "GET", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.agent().Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantInBody) {
				t.Errorf("%s %s: %d %q; want %d with %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.wantCode, tc.wantInBody)
			}
		})
	}
}

func TestHandlerMetrics(t *testing.T) {
	a := testAgent(true, 2)
	applied := time.Unix(1_700_000_000, 500_000_000)
	a.status = PolicyStatus{Applied: applied, Generation: 4, LocalPods: 12, Policies: 7, Error: "invalid manifests"}
	a.stats = applyStats{applied: 4, refused: 2, lastDuration: 1500 * time.Millisecond, elements: 345, rules: 21}
	a.datapathUp.Store(true)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`rampart_agent_policy_applies_total{result="applied"} 4`,
		`rampart_agent_policy_applies_total{result="refused"} 2`,
		`rampart_agent_policy_apply_duration_seconds 1.5`,
		`rampart_agent_policy_last_applied_timestamp_seconds 1.7000000005e+09`,
		`rampart_agent_policy_refused 1`,
		`rampart_agent_policy_elements 345`,
		`rampart_agent_policy_rules 21`,
		`rampart_agent_local_pods 12`,
		`rampart_agent_policies 7`,
		`rampart_agent_ready 1`,
		"# TYPE rampart_agent_policy_applies_total counter",
		"# TYPE rampart_agent_policy_refused gauge",
		// The runtime's and the process's, which every Go exporter has.
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// A counted apply: the attempt's result and duration reach the stats.
// Only refusals are possible here (a valid set would be applied to this
// process's network namespace).
func TestApplyCountsRefusals(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := New(&Config{NodeName: "node-1", PolicyPaths: []string{dir}}, quietLog())
	for range 2 {
		if err := a.apply(); err == nil {
			t.Fatal("a broken manifest was applied")
		}
	}
	if a.stats.refused != 2 || a.stats.applied != 0 || a.stats.lastDuration <= 0 {
		t.Errorf("stats %+v; want 2 refused, a duration", a.stats)
	}
}

// serveHTTP answers on its listener until its context ends, then returns
// nil; a port in use is an error at listen time naming the field.
func TestServeHTTP(t *testing.T) {
	a := testAgent(false, 0)
	a.cfg.MetricsAddress = "127.0.0.1:0"
	l, err := a.listenHTTP()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serveHTTP(ctx, l) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: %s", resp.Status)
	}

	b := testAgent(false, 0)
	b.cfg.MetricsAddress = l.Addr().String()
	if l2, err := b.listenHTTP(); err == nil {
		l2.Close()
		t.Errorf("a second listener on %s", l.Addr())
	} else if !strings.Contains(err.Error(), "spec.metricsAddress "+l.Addr().String()) {
		t.Errorf("error %q does not name the field and address", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serveHTTP: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveHTTP did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("still listening after the context ended")
	}
}

// spec.metricsAddress and the node name given on the command line, as the
// DaemonSet uses them.
func TestLoadConfigDeployOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		metrics  string // spec.metricsAddress, "" for none
		nodeName string // LoadOptions.NodeName
		want     string // in an error, "" for none
		check    func(*testing.T, *Config)
	}{
		{name: "no server by default", check: func(t *testing.T, c *Config) {
			if c.MetricsAddress != "" || c.NodeName != "node-1" {
				t.Errorf("metrics %q node %q", c.MetricsAddress, c.NodeName)
			}
		}},
		{name: "every address", metrics: `":9464"`, check: func(t *testing.T, c *Config) {
			if c.MetricsAddress != ":9464" {
				t.Errorf("metrics %q", c.MetricsAddress)
			}
		}},
		{name: "one address", metrics: "127.0.0.1:9464"},
		{name: "IPv6", metrics: `"[::1]:9464"`},
		{name: "no port", metrics: "127.0.0.1", want: `spec.metricsAddress: "127.0.0.1" is not host:port`},
		{name: "named port", metrics: `":metrics"`, want: "the port must be a number from 1 to 65535"},
		{name: "port 0", metrics: `":0"`, want: "the port must be a number from 1 to 65535"},
		{name: "port too large", metrics: `":65536"`, want: "the port must be a number from 1 to 65535"},
		{name: "host name", metrics: "localhost:9464", want: "the host must be empty (every address) or an IP address"},
		// The certificate names node-1 only: the override is validated
		// as the file's name would be, so a certificate of another node
		// is refused.
		{name: "node name from the command line", nodeName: "node-1", check: func(t *testing.T, c *Config) {
			if c.NodeName != "node-1" {
				t.Errorf("node %q", c.NodeName)
			}
		}},
		{name: "node name over a certificate of another node", nodeName: "node-9", want: "not this node (node-9)"},
		{name: "invalid node name from the command line", nodeName: "Node_1", want: `spec.nodeName: "Node_1", given on the command line (--node-name or $RAMPART_NODE_NAME), is not a node name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeCreds(t, "node-1")
			text := validAgent
			if tc.metrics != "" {
				text += "  metricsAddress: " + tc.metrics + "\n"
			}
			if tc.nodeName != "" {
				// The file's own name must not matter.
				text = strings.Replace(text, "  nodeName: node-1\n", "  nodeName: placeholder\n", 1)
			}
			path := filepath.Join(dir, "agent.yaml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, ds := LoadConfigWith(path, LoadOptions{NodeName: tc.nodeName})
			if tc.want == "" {
				if cfg == nil || cluster.HasErrors(ds) {
					t.Fatalf("errors: %v", ds)
				}
				if tc.check != nil {
					tc.check(t, cfg)
				}
				return
			}
			if cfg != nil {
				t.Fatal("an invalid config was accepted")
			}
			for _, d := range ds {
				if strings.Contains(d.String(), tc.want) {
					return
				}
			}
			t.Errorf("no error with %q in %v", tc.want, ds)
		})
	}
}
