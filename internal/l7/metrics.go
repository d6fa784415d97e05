package l7

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are the proxy's hot-path counters; the Prometheus metrics read
// them at scrape time, as internal/datapath's do, so a request pays an
// atomic add and nothing more.
type counters struct {
	allowed, denied, rejected, upstreamErrors, refused atomic.Uint64
}

// Stats is a snapshot of the proxy's counters.
type Stats struct {
	// Allowed and Denied count the Decider's verdicts; Rejected the
	// requests the proxy refused before asking it (CONNECT, a path with
	// dot segments).
	Allowed, Denied, Rejected uint64
	// UpstreamErrors counts allowed requests answered 502.
	UpstreamErrors uint64
	// Refused counts connections closed without an HTTP request: bytes
	// that are not HTTP, silence until the header timeout, or no usable
	// original destination.
	Refused uint64
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Allowed:        p.stats.allowed.Load(),
		Denied:         p.stats.denied.Load(),
		Rejected:       p.stats.rejected.Load(),
		UpstreamErrors: p.stats.upstreamErrors.Load(),
		Refused:        p.stats.refused.Load(),
	}
}

var (
	descRequests       = prometheus.NewDesc("rampart_l7_requests_total", "HTTP requests through the L7 proxy, by verdict: allowed and denied by the authorization policy, rejected by the proxy itself (CONNECT, dot segments in the path).", []string{"verdict"}, nil)
	descUpstreamErrors = prometheus.NewDesc("rampart_l7_upstream_errors_total", "Allowed requests answered 502 because the destination could not be reached or failed before its response.", nil, nil)
	descRefused        = prometheus.NewDesc("rampart_l7_refused_connections_total", "Connections to L7 ports closed without an HTTP request (not HTTP, silent, or unusable addresses).", nil, nil)
)

type collector struct{ p *Proxy }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descUpstreamErrors, descRefused} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descRequests, st.Allowed, "allowed")
	counter(descRequests, st.Denied, "denied")
	counter(descRequests, st.Rejected, "rejected")
	counter(descUpstreamErrors, st.UpstreamErrors)
	counter(descRefused, st.Refused)
}

// Collector is the proxy's metrics, for the agent's metrics server to
// register.
func (p *Proxy) Collector() prometheus.Collector { return collector{p} }
