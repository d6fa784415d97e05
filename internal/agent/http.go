package agent

// The agent's HTTP server, on spec.metricsAddress, for the kubelet's probes
// and for Prometheus:
//
//	/healthz  200 while the process answers: liveness. A failing agent
//	          exits (Run returns its error) and is restarted; this only
//	          catches one that hangs. The rules in force stay meanwhile.
//	/readyz   200 once the node enforces what the cluster says: its first
//	          policy applied and, with encryption towards other nodes, the
//	          datapath running; 503 with the reason before. A later change
//	          that is refused leaves the agent ready (the rules in force
//	          stay, and are the last valid ones), and shows in /metrics.
//	/metrics  Prometheus text: the policy applies, the datapath's
//	          counters (internal/datapath), the Go runtime and process.
//
// The values are read from the agent's state at request time, as the
// datapath's are, so nothing on the apply path waits for a scrape.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// applyStats counts the agent's attempts to apply the policy (under
// Agent.mu).
type applyStats struct {
	applied, refused uint64
	// lastDuration is how long the last attempt took: reading the source,
	// compiling and committing the table.
	lastDuration time.Duration
	// elements and rules are the table's last applied ruleset's.
	elements, rules int
}

// Policy apply results, the values of the label "result".
const (
	resultApplied = "applied"
	resultRefused = "refused"
)

// apply is applyPolicy, counted and timed for /metrics.
func (a *Agent) apply() error {
	start := time.Now()
	err := a.applyPolicy()
	a.mu.Lock()
	a.stats.lastDuration = time.Since(start)
	if err != nil {
		a.stats.refused++
	} else {
		a.stats.applied++
	}
	a.mu.Unlock()
	return err
}

// needsDatapath says whether the node carries pod traffic through its own
// datapath: with encryption and at least one other node (Run's condition).
func (a *Agent) needsDatapath() bool { return a.cfg.Encrypt && len(a.cfg.Nodes) > 0 }

// Ready says whether the node enforces what the cluster says, and if not,
// why.
func (a *Agent) Ready() (bool, string) {
	return readiness(a.Status(), a.needsDatapath(), a.datapathUp.Load())
}

func readiness(st PolicyStatus, needDatapath, datapathUp bool) (bool, string) {
	if st.Generation == 0 {
		if st.Error != "" {
			return false, "no policy applied yet: " + st.Error
		}
		return false, "no policy applied yet"
	}
	if needDatapath && !datapathUp {
		return false, "the IPsec datapath is not running"
	}
	return true, "ok"
}

var (
	descApplies = prometheus.NewDesc("rampart_agent_policy_applies_total",
		"Attempts to apply the cluster's policy to the node, by result (applied, or refused with the rules in force kept).", []string{"result"}, nil)
	descApplyDuration = prometheus.NewDesc("rampart_agent_policy_apply_duration_seconds",
		"How long the last attempt took: reading the source, compiling, committing the nftables table.", nil, nil)
	descApplied = prometheus.NewDesc("rampart_agent_policy_last_applied_timestamp_seconds",
		"When the rules in force were applied (Unix time; 0 before the first).", nil, nil)
	descRefused = prometheus.NewDesc("rampart_agent_policy_refused",
		"1 when the last change of the source was not applied (invalid, or not readable yet) and older rules are in force.", nil, nil)
	descElements = prometheus.NewDesc("rampart_agent_policy_elements",
		"Elements of the nftables sets of the rules in force.", nil, nil)
	descRules = prometheus.NewDesc("rampart_agent_policy_rules",
		"Rules of the nftables table in force.", nil, nil)
	descLocalPods = prometheus.NewDesc("rampart_agent_local_pods",
		"Pods of this node that the rules in force cover.", nil, nil)
	descPolicies = prometheus.NewDesc("rampart_agent_policies",
		"NetworkPolicies of the cluster that the rules in force implement.", nil, nil)
	descReady = prometheus.NewDesc("rampart_agent_ready",
		"1 when /readyz answers 200.", nil, nil)
)

// agentCollector reads the agent's state at scrape time.
type agentCollector struct{ a *Agent }

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplies, descApplyDuration, descApplied, descRefused, descElements, descRules, descLocalPods, descPolicies, descReady} {
		ch <- d
	}
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	a.mu.Lock()
	st, stats := a.status, a.stats
	a.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	ch <- prometheus.MustNewConstMetric(descApplies, prometheus.CounterValue, float64(stats.applied), resultApplied)
	ch <- prometheus.MustNewConstMetric(descApplies, prometheus.CounterValue, float64(stats.refused), resultRefused)
	gauge(descApplyDuration, stats.lastDuration.Seconds())
	applied := 0.0
	if !st.Applied.IsZero() {
		applied = float64(st.Applied.UnixNano()) / 1e9
	}
	gauge(descApplied, applied)
	gauge(descRefused, b2f(st.Error != ""))
	gauge(descElements, float64(stats.elements))
	gauge(descRules, float64(stats.rules))
	gauge(descLocalPods, float64(st.LocalPods))
	gauge(descPolicies, float64(st.Policies))
	ready, _ := readiness(st, a.needsDatapath(), a.datapathUp.Load())
	gauge(descReady, b2f(ready))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves /healthz, /readyz and /metrics. A registry of its own,
// not Prometheus's global one, so that two agents in one process (tests)
// do not collide, and the page holds only what this agent registered.
func (a *Agent) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(agentCollector{a}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.dev != nil {
		reg.MustRegister(a.dev.Collector())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, why := a.Ready()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{a}}))
	return mux
}

// slogPrinter hands promhttp's errors to the agent's log.
type slogPrinter struct{ a *Agent }

func (p slogPrinter) Println(v ...any) { p.a.log.Warn("metrics: " + fmt.Sprint(v...)) }

// listenHTTP binds spec.metricsAddress, so that a port in use stops the
// agent at start with the reason rather than later in a goroutine.
func (a *Agent) listenHTTP() (net.Listener, error) {
	l, err := net.Listen("tcp", a.cfg.MetricsAddress)
	if err != nil {
		return nil, fmt.Errorf("agent: spec.metricsAddress %s: %w", a.cfg.MetricsAddress, err)
	}
	return l, nil
}

// serveHTTP serves Handler on l until ctx ends.
func (a *Agent) serveHTTP(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	a.log.Info("serving probes and metrics", "address", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("agent: HTTP server on %s: %w", l.Addr(), err)
	}
	return nil
}
