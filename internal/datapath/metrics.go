package datapath

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The Prometheus metrics are read from the same counters as Status at
// scrape time, so the hot path pays nothing for them.
var (
	descPackets = prometheus.NewDesc("rampart_tunnel_packets_total", "Inner packets carried, by peer and direction.", []string{"peer", "direction"}, nil)
	descBytes   = prometheus.NewDesc("rampart_tunnel_bytes_total", "Inner bytes carried, by peer and direction.", []string{"peer", "direction"}, nil)
	descDrops   = prometheus.NewDesc("rampart_tunnel_drops_total", "Packets dropped, by peer (empty when unknown) and reason.", []string{"peer", "reason"}, nil)
	descSA      = prometheus.NewDesc("rampart_tunnel_sa_packets_total", "Packets through each SA.", []string{"peer", "direction", "spi"}, nil)
	descSAAuth  = prometheus.NewDesc("rampart_tunnel_sa_auth_failures_total", "Packets whose ICV did not verify, per inbound SA.", []string{"peer", "spi"}, nil)
	descSARepl  = prometheus.NewDesc("rampart_tunnel_sa_replays_total", "Replayed packets, per inbound SA.", []string{"peer", "spi"}, nil)
)

type collector struct{ d *Device }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descBytes, descDrops, descSA, descSAAuth, descSARepl} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.Status()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for reason, v := range st.Drops {
		counter(descDrops, v, "", reason)
	}
	for _, p := range st.Peers {
		counter(descPackets, p.TxPackets, p.Name, "out")
		counter(descPackets, p.RxPackets, p.Name, "in")
		counter(descBytes, p.TxBytes, p.Name, "out")
		counter(descBytes, p.RxBytes, p.Name, "in")
		for reason, v := range p.Drops {
			counter(descDrops, v, p.Name, reason)
		}
		for _, sa := range p.SAs {
			counter(descSA, sa.Stats.Packets, p.Name, sa.Direction, sa.SPI)
			if sa.Direction == "inbound" {
				counter(descSAAuth, sa.Stats.AuthFailures, p.Name, sa.SPI)
				counter(descSARepl, sa.Stats.Replays, p.Name, sa.SPI)
			}
		}
	}
}

// Collector is the device's metrics, for a server of its own to register
// (the agent serves them beside its policy metrics and probes).
func (d *Device) Collector() prometheus.Collector { return collector{d} }

// ServeMetrics serves /metrics on addr until ctx ends.
func (d *Device) ServeMetrics(ctx context.Context, addr string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{d})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
