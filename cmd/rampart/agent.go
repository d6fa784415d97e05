package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rampartnet/rampart/internal/agent"
)

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: NetworkPolicy in nftables, pod traffic between nodes in IPsec",
		Long: `agent runs on every node from an Agent config file (apiVersion
rampart.dev/v1alpha1, kind Agent). It keeps the node's nftables rules equal
to what the verdict engine says for the node's pods, and carries pod
traffic to the other nodes through IKEv2-keyed ESP (one IKE SA per node
pair, authenticated by the nodes' certificates). In enforce mode (the
default) pod traffic between nodes never crosses the underlay in clear,
also while the agent is down.

Run "agent install" once before the agent first starts (the CNI install
step): it installs the guard rules and the CNI network configuration.` + exitCodesHelp,
	}
	cmd.AddCommand(newAgentRunCmd(), newAgentInstallCmd())
	return cmd
}

// loadAgentConfig reads --config, printing its diagnostics.
func loadAgentConfig(cmd *cobra.Command, path string) (*agent.Config, error) {
	if path == "" {
		return nil, errors.New("--config is required")
	}
	cfg, diags := agent.LoadConfig(path)
	printDiagnostics(cmd.ErrOrStderr(), diags, false)
	if cfg == nil {
		return nil, findings("%s: invalid Agent config", path)
	}
	return cfg, nil
}

func newAgentRunCmd() *cobra.Command {
	var (
		config  string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the agent in the foreground until SIGINT or SIGTERM",
		Long: `run installs the guard (enforce mode), starts the IPsec datapath
towards the other nodes, and applies the policy of the manifests for the
node's pods, again whenever they change. An invalid change is reported and
the rules in force stay. When it stops, the rules stay in force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadAgentConfig(cmd, config)
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cfg, err = agent.ResolveNodes(ctx, cfg, log); err != nil {
				return err
			}
			return agent.New(cfg, log).Run(ctx)
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "Agent config file")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	return cmd
}

func newAgentInstallCmd() *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "install --config FILE",
		Short: "Prepare the node before the agent first runs (guard rules, CNI configuration)",
		Long: `install is the CNI install step: in enforce mode it installs the guard
table (inet rampart_guard), which drops pod traffic between nodes that does
not go through the tunnel, so that nothing leaves in clear even before the
agent runs or while it is down; and it writes the CNI network configuration
(spec.cniConfDir/10-rampart.conflist) for rampart-cni. It is idempotent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadAgentConfig(cmd, config)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cfg, err = agent.ResolveNodes(ctx, cfg, nil); err != nil {
				return err
			}
			return agent.Install(cfg)
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "Agent config file")
	return cmd
}
