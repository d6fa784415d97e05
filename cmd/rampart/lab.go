package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/lab"
	"github.com/rampartnet/rampart/internal/policy"
)

// labFlags are the flags every lab verb shares: which lab.
type labFlags struct {
	name, state string
}

func (f *labFlags) dir() string {
	if f.state != "" {
		return f.state
	}
	return lab.DefaultStateDir(f.name)
}

func newLabCmd() *cobra.Command {
	f := &labFlags{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a local cluster of network namespaces: real agents, real pods, real packets",
		Long: `lab makes a cluster on this machine out of network namespaces (root only):
nodes on an underlay bridge (198.18.0.0/24), each running "rampart agent"
(NetworkPolicy in nftables, pod traffic to the other nodes in IPsec keyed
by IKEv2 with a lab CA's certificates), and one pod per Pod or workload of
the manifests, wired by the CNI plugin (pod CIDRs 198.19.<node>.0/24),
each answering TCP, UDP and SCTP on every port. Then it probes every pod
from every pod for real and sets what it sees beside what the verdict
engine ("rampart reach") says.

  lab up PATH...       make the lab from manifests (as reach reads them)
  lab apply PATH...    replace the policies live (the input's NetworkPolicies)
  lab probe            connect every pod to every pod; exit 1 on any difference
  lab status           nodes, agents, tunnels, pods
  lab restart-agent N  SIGKILL a node's agent and start it again
  lab http FROM TO     an HTTP request from one pod to another (L7 policy)
  lab down             remove everything the lab made, also after a crash
  lab demo DIR         up, probe, down in one command

Several labs can run at once under different --name values.` + exitCodesHelp,
		Example: `  sudo rampart lab demo examples/wordpress/open
  sudo rampart lab up examples/netpol-e2e --nodes 3
  sudo rampart lab probe --probe 80/TCP --probe 81/SCTP
  sudo rampart lab apply examples/wordpress/hardened
  sudo rampart lab down`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() != "serve" && os.Geteuid() != 0 {
				return errors.New("rampart lab makes network namespaces and needs root: run it with sudo")
			}
			return lab.CheckName(f.name)
		},
	}
	cmd.PersistentFlags().StringVar(&f.name, "name", "lab", "the lab's name, the prefix of its namespaces")
	cmd.PersistentFlags().StringVar(&f.state, "state", "", "the lab's state directory (default /run/rampart/lab/NAME)")
	cmd.AddCommand(newLabUpCmd(f), newLabApplyCmd(f), newLabProbeCmd(f), newLabStatusCmd(f), newLabDownCmd(f),
		newLabDemoCmd(f), newLabRestartAgentCmd(f), newLabHTTPCmd(f), newLabServeCmd())
	return cmd
}

// labError turns the lab's refusals of input into exit status 1, with
// every diagnostic on stderr.
func labError(cmd *cobra.Command, err error) error {
	var inv *lab.InvalidError
	var pe *lab.PlanError
	switch {
	case errors.As(err, &inv):
		printDiagnostics(cmd.ErrOrStderr(), inv.Diagnostics, false)
		return findings("the input has %d error(s); nothing was changed", countSeverity(inv.Diagnostics, cluster.Error))
	case errors.As(err, &pe):
		printDiagnostics(cmd.ErrOrStderr(), pe.Diagnostics, false)
		return findings("the lab cannot lay out these manifests")
	}
	return err
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

type upFlags struct {
	nodes     int
	cniBin    string
	apiserver bool
	kubeBin   string
}

func (u *upFlags) register(cmd *cobra.Command) {
	cmd.Flags().IntVar(&u.nodes, "nodes", 0, fmt.Sprintf("number of nodes (default: as many as the manifests name, at least %d)", lab.DefaultNodes))
	cmd.Flags().StringVar(&u.cniBin, "cni-bin", "", "the rampart-cni plugin (default: rampart-cni beside this binary)")
	cmd.Flags().BoolVar(&u.apiserver, "apiserver", false,
		"run a real kube-apiserver (and etcd) on the lab's underlay, 198.18.0.1; the lab writes its cluster there and the agents read it through client-go")
	cmd.Flags().StringVar(&u.kubeBin, "kube-bin", os.Getenv("RAMPART_KUBE_BIN"), "directory of kube-apiserver and etcd for --apiserver (make kube-bins; default: bin/kube of the source tree)")
}

func (u *upFlags) options(f *labFlags, log io.Writer) lab.Options {
	return lab.Options{Name: f.name, StateDir: f.state, Nodes: u.nodes, CNIBinary: u.cniBin, Log: log,
		APIServer: u.apiserver, KubeBin: u.kubeBin}
}

func newLabUpCmd(f *labFlags) *cobra.Command {
	u := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up PATH...",
		Short: "Make a lab from manifests: nodes, agents, pods, policies",
		Long: `up reads manifests as "rampart reach" does (Namespaces, Pods, workloads,
Nodes, NetworkPolicies; files or directories) and makes the lab: --nodes
nodes (named after the manifests' Node objects or spec.nodeName, else
node-1, node-2, ...), one pod per Pod or workload on its spec.nodeName or
spread over the nodes, the agents, and the policies applied. Addresses in
status.podIP are ignored: the lab's own are what the agents and the
expected matrix use. hostNetwork pods share their node's namespace.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, paths []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			l, err := lab.Up(ctx, u.options(f, cmd.ErrOrStderr()), paths)
			if err != nil {
				return labError(cmd, err)
			}
			writePods(cmd.OutOrStdout(), l.Status())
			return nil
		},
	}
	u.register(cmd)
	return cmd
}

func newLabApplyCmd(f *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "apply PATH...",
		Short: "Replace the lab's policies with the NetworkPolicies of the manifests, live",
		Long: `apply takes the NetworkPolicies of the manifests (other objects are ignored:
the lab's namespaces and pods come from up), checks them as the API server
would, writes them as the lab's policy set, and waits until every agent
has applied them. Input with errors is refused with file:line and nothing
changes; a set that an agent refuses is withdrawn, and the previous rules
stay in force.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, paths []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			l, err := lab.Open(f.dir())
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := l.Apply(ctx, paths)
			if res != nil {
				printDiagnostics(cmd.ErrOrStderr(), res.Diagnostics, true)
			}
			if err != nil {
				return labError(cmd, err)
			}
			ignored := ""
			if res.Ignored > 0 {
				ignored = fmt.Sprintf("; %d other objects ignored", res.Ignored)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy set %d: %d NetworkPolicies in force on every node (%v%s)\n",
				res.Generation, res.Policies, time.Since(start).Round(time.Millisecond), ignored)
			return nil
		},
	}
}

type probeFlags struct {
	probes   []string
	from, to string
	output   string
	timeout  time.Duration
	parallel int
}

func (p *probeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&p.probes, "probe", nil, "PORT/PROTOCOL to probe (repeatable), e.g. 80/TCP, 53/UDP, 81/SCTP, serve-80-tcp/TCP (default: the ports the containers declare)")
	cmd.Flags().StringVar(&p.from, "from", "", "only sources matching namespace/name, with * wildcards")
	cmd.Flags().StringVar(&p.to, "to", "", "only destinations matching namespace/name, with * wildcards")
	cmd.Flags().StringVarP(&p.output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&p.timeout, "timeout", lab.DefaultProbeTimeout, "how long a probe waits for an answer")
	cmd.Flags().IntVar(&p.parallel, "parallel", lab.DefaultProbeParallel, "probes at once")
}

func (p *probeFlags) options() (lab.ProbeOptions, error) {
	if err := outputFormat(p.output, "table", "json"); err != nil {
		return lab.ProbeOptions{}, err
	}
	prs, err := lab.ParseProbes(p.probes)
	return lab.ProbeOptions{Probes: prs, From: p.from, To: p.to, Timeout: p.timeout, Parallel: p.parallel}, err
}

// runProbe probes and prints; differences make it exit 1.
func runProbe(ctx context.Context, cmd *cobra.Command, l *lab.Lab, p *probeFlags, o lab.ProbeOptions) error {
	res, err := l.Probe(ctx, o)
	if err != nil {
		return err
	}
	if p.output == "json" {
		err = res.WriteJSON(cmd.OutOrStdout())
	} else {
		err = res.WriteTable(cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	if d := res.Differences(); d > 0 {
		return findings("%d of %d probes differ from the verdict engine", d, len(res.Rows))
	}
	return nil
}

func newLabProbeCmd(f *labFlags) *cobra.Command {
	p := &probeFlags{}
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Connect every pod to every pod for real and compare with the verdict engine",
		Long: `probe connects from each pod (inside its namespace) to each pod, on every
--probe, concurrently, with a short timeout and a fresh source port each
time: TCP connect, UDP request and answer, SCTP INIT and INIT-ACK. It prints
the observed matrix beside the expected one ("rampart reach" on the lab's
cluster, with its real addresses): "." reached, "X" blocked, "!" a
difference. -o json prints reach's objects, each with "observed".
Exit status 1 when anything differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := p.options()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			l, err := lab.Open(f.dir())
			if err != nil {
				return err
			}
			return runProbe(ctx, cmd, l, p, o)
		},
	}
	p.register(cmd)
	return cmd
}

func newLabStatusCmd(f *labFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the lab's nodes, agents, tunnels and pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFormat(output, "table", "json"); err != nil {
				return err
			}
			l, err := lab.Open(f.dir())
			if err != nil {
				return err
			}
			s := l.Status()
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "lab %s (state %s): policy set %d", s.Name, s.StateDir, s.Generation)
			if len(s.Sources) > 0 {
				fmt.Fprintf(w, " from %s", strings.Join(s.Sources, " "))
			}
			fmt.Fprintln(w)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDRESS\tPOD CIDR\tAGENT\tPOLICY\tTUNNELS")
			for _, n := range s.Nodes {
				agent := fmt.Sprintf("pid %d", n.AgentPID)
				if !n.AgentAlive {
					agent = "DOWN"
				}
				pol := fmt.Sprintf("gen %d, %d pods, %d policies", n.Policy.Generation, n.Policy.LocalPods, n.Policy.Policies)
				switch {
				case n.Policy.Error != "":
					pol = "REFUSED: " + firstLine(n.Policy.Error)
				case !n.Current:
					pol += " (not current)"
				}
				var tunnels []string
				for _, p := range n.Peers {
					tunnels = append(tunnels, fmt.Sprintf("%s %d/%d SA %d/%d pkts", p.Name, p.IKESAs, p.ChildSAs, p.TxPackets, p.RxPackets))
				}
				if n.Error != "" {
					tunnels = append(tunnels, n.Error)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Address, n.PodCIDR, agent, pol, strings.Join(tunnels, ", "))
			}
			tw.Flush()
			fmt.Fprintln(w, "(tunnels: peer IKE/CHILD SAs, packets sent/received)")
			fmt.Fprintln(w)
			writePods(w, s)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func writePods(w io.Writer, s lab.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tNODE\tADDRESS\tNAMESPACE\tRESPONDER")
	for _, p := range s.Pods {
		ns := p.Netns
		if p.HostNetwork {
			ns += " (host network)"
		}
		resp := "up"
		if !p.ServerAlive {
			resp = "DOWN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Ref, p.Node, p.Address, ns, resp)
	}
	tw.Flush()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func newLabDownCmd(f *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, process, rule and file the lab made",
		Long: `down stops the lab's agents and responders (by the PIDs its state file
recorded), deletes its namespaces (their links, nftables rules and
conntrack entries go with them) and its state directory. It works from the
state file alone, also after a crash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.Down(f.dir()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the lab in %s is down\n", f.dir())
			return nil
		},
	}
}

func newLabRestartAgentCmd(f *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "restart-agent NODE",
		Short: "SIGKILL a node's agent, as a crash would, and start it again",
		Long: `restart-agent kills a node's agent with SIGKILL (its nftables rules and guard
stay in the kernel: while it is down, that node's pods reach no other node,
and nothing leaves in clear), then starts it again and waits until its
rules are current and its tunnels are up.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signalContext(cmd)
			defer stop()
			l, err := lab.Open(f.dir())
			if err != nil {
				return err
			}
			start := time.Now()
			if err := l.RestartAgent(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent of %s restarted; rules current and tunnels up in %v\n", args[0], time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func newLabDemoCmd(f *labFlags) *cobra.Command {
	u := &upFlags{}
	p := &probeFlags{}
	cmd := &cobra.Command{
		Use:   "demo DIR",
		Short: "Make a lab from DIR, probe it, print the matrices, and remove it",
		Long: `demo is up, probe and down in one command: the probes are the ports the
containers declare (or --probe). The lab is removed at the end, also when a
step fails or on Ctrl-C. Exit status 1 when anything differs from the
verdict engine.`,
		Example: `  sudo rampart lab demo examples/wordpress/open --from web/wordpress
  sudo rampart lab demo examples/wordpress/hardened --from web/wordpress`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, paths []string) (err error) {
			o, err := p.options()
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			l, err := lab.Up(ctx, u.options(f, cmd.ErrOrStderr()), paths)
			if err != nil {
				return labError(cmd, err)
			}
			defer func() {
				if derr := lab.Down(l.State().Dir); derr != nil {
					err = errors.Join(err, derr)
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "lab %q is down\n", f.name)
				}
			}()
			writePods(cmd.ErrOrStderr(), l.Status())
			fmt.Fprintln(cmd.ErrOrStderr())
			return runProbe(ctx, cmd, l, p, o)
		},
	}
	u.register(cmd)
	p.register(cmd)
	return cmd
}

func newLabHTTPCmd(lf *labFlags) *cobra.Command {
	var (
		method, path string
		port         int
		timeout      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "http FROM TO [--method POST] [--path /api] [--port 80]",
		Short: "Send an HTTP request from one lab pod to another, as the pod would",
		Long: `http sends one HTTP/1.1 request from pod FROM (namespace/name) to pod
TO's address, from inside FROM's network namespace, and prints the status,
the L7 proxy's reason when it denied the request (x-rampart-denied), and
the caller's address as TO saw it. Exit code 1 when the answer is not 2xx.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := lab.Open(lf.dir())
			if err != nil {
				return err
			}
			res, err := l.HTTP(cmd.Context(), args[0], args[1], port, method, path, timeout)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s %s from %s: %d %s\n", method, res.URL, res.From, res.Status, http.StatusText(res.Status))
			if res.Denied != "" {
				fmt.Fprintf(w, "denied: %s\n", res.Denied)
			}
			if res.SeenFrom != "" {
				fmt.Fprintf(w, "the server saw the caller as %s\n", res.SeenFrom)
			}
			if res.Status/100 != 2 {
				return findings("%s %s: %d", method, res.URL, res.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&method, "method", "X", "GET", "HTTP method")
	cmd.Flags().StringVar(&path, "path", "/", "request path")
	cmd.Flags().IntVar(&port, "port", 80, "TO's port")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

func newLabServeCmd() *cobra.Command {
	var (
		o     lab.ServeOptions
		addr  string
		ports []string
	)
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Answer probes in a pod's namespace (run by lab up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := parseAddr(addr)
			if err != nil {
				return err
			}
			o.Address = a
			prs, err := lab.ParseProbes(ports)
			if err != nil {
				return err
			}
			for _, pr := range prs {
				o.Ports = append(o.Ports, policy.ContainerPort{Port: pr.Port, Protocol: pr.Protocol})
			}
			o.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ctx, stop := signalContext(cmd)
			defer stop()
			return lab.Serve(ctx, o)
		},
	}
	cmd.Flags().StringArrayVar(&o.Refs, "pod", nil, "the pod answered for (repeatable)")
	cmd.Flags().StringVar(&addr, "address", "", "the pod's address")
	cmd.Flags().BoolVar(&o.Redirect, "redirect", false, "answer every TCP and UDP port (an nftables redirect in this namespace)")
	cmd.Flags().StringArrayVar(&ports, "port", nil, "PORT/PROTOCOL to listen on without --redirect (repeatable)")
	cmd.Flags().StringVar(&o.Ready, "ready", "", "file to write once listening")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("--address %q: %w", s, err)
	}
	return a, nil
}
