package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
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

// nodeNameEnv names this node when --node-name does not: a DaemonSet sets
// it from the downward API (spec.nodeName).
const nodeNameEnv = "RAMPART_NODE_NAME"

// agentFlags are the flags of every agent verb that reads the config.
type agentFlags struct {
	config, nodeName string
}

func (f *agentFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "Agent config file")
	cmd.Flags().StringVar(&f.nodeName, "node-name", "", "this node's name, over the file's spec.nodeName (default $"+nodeNameEnv+", then the file's)")
}

// loadAgentConfig reads --config with --node-name (or $RAMPART_NODE_NAME)
// over its spec.nodeName, printing its diagnostics.
func loadAgentConfig(cmd *cobra.Command, f agentFlags) (*agent.Config, error) {
	path := f.config
	if path == "" {
		return nil, errors.New("--config is required")
	}
	if f.nodeName == "" {
		f.nodeName = os.Getenv(nodeNameEnv)
	}
	cfg, diags := agent.LoadConfigWith(path, agent.LoadOptions{NodeName: f.nodeName})
	printDiagnostics(cmd.ErrOrStderr(), diags, false)
	if cfg == nil {
		return nil, findings("%s: invalid Agent config", path)
	}
	return cfg, nil
}

func newAgentRunCmd() *cobra.Command {
	var (
		flags   agentFlags
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "run --config FILE [--node-name NODE]",
		Short: "Run the agent in the foreground until SIGINT or SIGTERM",
		Long: `run installs the guard (enforce mode), starts the IPsec datapath
towards the other nodes, and applies the policy of the manifests for the
node's pods, again whenever they change. An invalid change is reported and
the rules in force stay. When it stops, the rules stay in force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadAgentConfig(cmd, flags)
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
			if cfg, err = agent.ResolveEncryption(ctx, cfg); err != nil {
				return err
			}
			if cfg, err = agent.ResolveCredentials(ctx, cfg, log); err != nil {
				return err
			}
			return agent.New(cfg, log).Run(ctx)
		},
	}
	flags.add(cmd)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	return cmd
}

func newAgentInstallCmd() *cobra.Command {
	var (
		flags             agentFlags
		binDir, pluginSrc string
	)
	cmd := &cobra.Command{
		Use:   "install --config FILE [--node-name NODE] [--cni-bin-dir DIR]",
		Short: "Prepare the node before the agent first runs (guard rules, CNI configuration)",
		Long: `install is the CNI install step: in enforce mode it installs the guard
table (inet rampart_guard), which drops pod traffic between nodes that does
not go through the tunnel, so that nothing leaves in clear even before the
agent runs or while it is down; and it writes the CNI network configuration
(spec.cniConfDir/10-rampart.conflist) for rampart-cni. With --cni-bin-dir
it first copies the rampart-cni binary there (as a DaemonSet's init
container does into the host's /opt/cni/bin), so that the plugin is in
place before the configuration that names it. It is idempotent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadAgentConfig(cmd, flags)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if binDir != "" {
				if err := installPlugin(pluginSrc, binDir); err != nil {
					return err
				}
			}
			if cfg, err = agent.ResolveNodes(ctx, cfg, nil); err != nil {
				return err
			}
			if cfg, err = agent.ResolveEncryption(ctx, cfg); err != nil {
				return err
			}
			return agent.Install(cfg)
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVar(&binDir, "cni-bin-dir", "", "copy the rampart-cni plugin into this directory (e.g. /opt/cni/bin) first")
	cmd.Flags().StringVar(&pluginSrc, "cni-plugin", "", "the rampart-cni binary that --cni-bin-dir copies (default: rampart-cni beside this executable)")
	return cmd
}

// installPlugin copies the rampart-cni binary src (default: beside this
// executable) into dir. It writes a temporary file there and renames it
// over the old plugin, so that a container runtime that runs the plugin
// meanwhile gets the old binary or the new one, never part of one (and a
// binary being executed cannot be opened for writing: ETXTBSY).
func installPlugin(src, dir string) (err error) {
	if src == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--cni-bin-dir: finding rampart-cni beside this executable: %w (give --cni-plugin)", err)
		}
		src = filepath.Join(filepath.Dir(exe), cniPluginName)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("--cni-bin-dir: the plugin to copy: %w", err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("--cni-bin-dir: the plugin %s is not a regular file", src)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--cni-bin-dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+cniPluginName+".tmp-*")
	if err != nil {
		return fmt.Errorf("--cni-bin-dir: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return fmt.Errorf("--cni-bin-dir: copying %s: %w", src, err)
	}
	// Synced before the rename: after a crash the plugin is whole or
	// absent, never empty.
	if err = tmp.Chmod(0o755); err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, cniPluginName))
	}
	if err != nil {
		return fmt.Errorf("--cni-bin-dir: installing %s into %s: %w", src, dir, err)
	}
	return nil
}

// cniPluginName is the plugin's binary, the "type" of the CNI network
// configuration that `agent install` writes.
const cniPluginName = "rampart-cni"
