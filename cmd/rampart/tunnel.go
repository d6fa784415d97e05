package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartnet/rampart/internal/datapath"
)

func newTunnelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tunnel",
		Short: "Run an IPsec endpoint (ESP in UDP 4500, in user space) and read its state",
		Long: `tunnel runs one IPsec endpoint from a Tunnel config file
(apiVersion rampart.dev/v1alpha1, kind Tunnel): a TUN device that the routes
to the peers' subnets point at, ESP in UDP 4500 on the underlay, and the
security associations. It needs no ESP support in the kernel.

See examples/tunnel/ for a config.` + exitCodesHelp,
	}
	cmd.AddCommand(newTunnelRunCmd(), newTunnelStatusCmd())
	return cmd
}

func newTunnelRunCmd() *cobra.Command {
	var (
		config     string
		manualAEAD bool
		verbose    bool
		cpuProfile string
		workers    int
	)
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the endpoint in the foreground until SIGINT or SIGTERM",
		Long: `run creates the TUN device, routes the peers' subnets to it, installs the
SAs and carries packets until it receives SIGINT or SIGTERM; then it removes
everything it installed. It needs CAP_NET_ADMIN.

Exit status 1 when the config is invalid (every error is listed with
file:line and field path), 2 when the endpoint could not start or failed.`,
		Example: `  rampart tunnel run --config examples/tunnel/site-a.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return errors.New("--config is required")
			}
			cfg, diags := datapath.LoadConfig(config, datapath.LoadOptions{AllowManualAEAD: manualAEAD})
			printDiagnostics(cmd.ErrOrStderr(), diags, false)
			if cfg == nil {
				return findings("%s: invalid Tunnel config", config)
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			return runTunnel(cmd.Context(), cfg, datapath.Options{Logger: log, Workers: workers})
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "Tunnel config file")
	cmd.Flags().BoolVar(&manualAEAD, "insecure-manual-aead-keys", false,
		"accept manually keyed AES-GCM and ChaCha20-Poly1305 SAs (tests only: a restart reuses nonces, RFC 4106 §8.1)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log every dropped batch and I/O error")
	cmd.Flags().IntVar(&workers, "crypto-workers", 0, "goroutines that seal and open packets in parallel (0: one per core)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile to this file until the endpoint stops (for `go tool pprof`)")
	return cmd
}

func runTunnel(parent context.Context, cfg *datapath.Config, opts datapath.Options) error {
	log := opts.Logger
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := datapath.New(cfg, opts)
	if err != nil {
		return err
	}
	defer d.Close()
	errc := make(chan error, 3)
	go func() { errc <- d.ServeControl(ctx, cfg.ControlSocket) }()
	if cfg.MetricsAddress != "" {
		go func() { errc <- d.ServeMetrics(ctx, cfg.MetricsAddress) }()
	}
	go func() { errc <- d.Run(ctx) }()
	log.Info("tunnel up", "name", cfg.Name, "device", d.TUNName(), "local", cfg.LocalAddr, "port", cfg.Port, "peers", len(cfg.Peers))
	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case err := <-errc:
		if err != nil {
			return err
		}
		return nil
	}
}

func newTunnelStatusCmd() *cobra.Command {
	var (
		config, socket, output string
	)
	cmd := &cobra.Command{
		Use:   "status (--config FILE | --socket PATH)",
		Short: "Print a running endpoint's peers, SAs and counters",
		Long: `status asks a running endpoint through its control socket (the config's
spec.controlSocket) and prints its peers, SAs (never keys), traffic and
drops by reason.`,
		Example: `  rampart tunnel status --config examples/tunnel/site-a.yaml
  rampart tunnel status --socket /run/rampart/site-a.sock -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			if socket == "" {
				if config == "" {
					return errors.New("give --config or --socket")
				}
				cfg, diags := datapath.LoadConfig(config, datapath.LoadOptions{AllowManualAEAD: true})
				if cfg == nil {
					printDiagnostics(cmd.ErrOrStderr(), diags, false)
					return findings("%s: invalid Tunnel config", config)
				}
				socket = cfg.ControlSocket
			}
			st, err := datapath.ReadStatus(socket)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "Tunnel config file (its spec.controlSocket is read)")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printStatus(w io.Writer, st *datapath.Status) {
	fmt.Fprintf(w, "tunnel %s: device %s (MTU %d), %s port %d, up %s\n", st.Name, st.Device, st.MTU, st.LocalAddress, st.Port, st.Uptime)
	if len(st.Drops) > 0 {
		fmt.Fprintf(w, "  drops: %s\n", formatDrops(st.Drops))
	}
	for _, p := range st.Peers {
		fmt.Fprintf(w, "\npeer %s at %s, %s mode, inner MTU %d\n", p.Name, p.Endpoint, p.Mode, p.InnerMTU)
		fmt.Fprintf(w, "  %s <=> %s\n", strings.Join(p.LocalSubnets, ","), strings.Join(p.RemoteSubnets, ","))
		fmt.Fprintf(w, "  sent %d packets (%d bytes), received %d packets (%d bytes)\n", p.TxPackets, p.TxBytes, p.RxPackets, p.RxBytes)
		if len(p.Drops) > 0 {
			fmt.Fprintf(w, "  drops: %s\n", formatDrops(p.Drops))
		}
		for _, s := range p.IKE {
			age := ""
			if !s.Established.IsZero() {
				age = ", up " + time.Since(s.Established).Round(time.Second).String()
			}
			fmt.Fprintf(w, "  IKE SA %s_i %s_r: %s, %s%s, %s, %d CHILD_SA(s), peer at %s\n", s.SPIi, s.SPIr, s.Role, s.State, age, s.Suite, s.ChildSAs, s.Remote)
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SA\tSPI\tALGORITHM\tAGE\tPACKETS\tBYTES\tAUTH-FAILED\tREPLAYS")
		for _, sa := range p.SAs {
			dir := sa.Direction
			if sa.Retiring {
				dir += " (retiring)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", dir, sa.SPI, sa.Algorithm, time.Since(sa.Created).Round(time.Second),
				sa.Stats.Packets, sa.Stats.Bytes, sa.Stats.AuthFailures, sa.Stats.Replays)
		}
		tw.Flush()
	}
}

func formatDrops(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
