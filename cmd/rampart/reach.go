package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rampartnet/rampart/internal/analyze"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
)

func newReachCmd() *cobra.Command {
	var (
		in       inputFlags
		probes   []string
		from, to string
		output   string
		httpReq  string
	)
	cmd := &cobra.Command{
		Use:   "reach [PATH...]",
		Short: "Print who can reach whom, for every pair of pods and workloads",
		Long: `reach reads manifests (files or directories, YAML or JSON) and prints, for
every ordered pair of pods and workloads (a workload such as a Deployment
counts as one endpoint named namespace/name) and every probe, whether the
policies allow the connection: the cluster-wide tiers (ClusterNetworkPolicy,
AdminNetworkPolicy, BaselineAdminNetworkPolicy) and NetworkPolicy, in
upstream's order. Rules about domain names are noted on stderr: they are
about traffic to those names, not between pods.

  -o table  one matrix per probe: sources down, destinations across,
            "." allowed, "X" blocked
  -o json   an array of {"from","to","port","protocol","allowed"} sorted by
            from, to, port, protocol
` + sourceHelp + exitCodesHelp,
		Example: `  rampart reach examples/netpol-e2e --probe 80/TCP
  rampart reach examples/netpol-e2e --probe 80/TCP --probe 81/UDP --from 'x/*' -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, paths []string) error {
			if err := outputFormat(output, "table", "json"); err != nil {
				return err
			}
			prs, err := parseProbes(probes)
			if err != nil {
				return err
			}
			req, err := parseHTTP(httpReq)
			if err != nil {
				return err
			}
			m, snap, err := in.loadAll(cmd.Context(), paths, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			view, ads := authzDiagnostics(snap, in.source.mesh)
			if cluster.HasErrors(ads) {
				printDiagnostics(cmd.ErrOrStderr(), ads, true)
				return findings("the input's AuthorizationPolicies have %d error(s)", countSeverity(ads, cluster.Error))
			}
			t, err := analyze.Reach(m, prs, from, to)
			if err != nil {
				return err
			}
			if req != nil {
				// L3/L4 first, then the destination's L7 proxy.
				t.Refine(func(pr policy.Probe, s, d *policy.Endpoint) bool {
					q := pr.Query(policy.Party{Endpoint: s}, policy.Party{Endpoint: d})
					port := pr.Port
					if port == 0 {
						// A named port: the verdict resolves it against
						// the destination's containers.
						port = m.Verdict(q).Port
					}
					l7d := view.decide(q, pr, port, req)
					return !l7d.Applies || l7d.Allowed
				})
			} else if len(snap.AuthorizationPolicies) > 0 {
				t.Notes = append(t.Notes, "the table is L3/L4 only: AuthorizationPolicies apply to some destinations; give --http METHOD:/path for a request's verdict through them")
			}
			// Notes go to stderr, so that stdout stays one table or one
			// JSON document.
			for _, n := range t.Notes {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
			}
			if output == "json" {
				return t.WriteJSON(cmd.OutOrStdout())
			}
			return t.WriteTable(cmd.OutOrStdout())
		},
	}
	in.register(cmd)
	cmd.Flags().StringArrayVar(&probes, "probe", []string{"80/TCP"}, "PORT/PROTOCOL to ask about (repeatable), e.g. 80/TCP, 53/UDP, http/TCP")
	cmd.Flags().StringVar(&from, "from", "", "only sources matching namespace/name, with * wildcards (e.g. 'web/*')")
	cmd.Flags().StringVar(&to, "to", "", "only destinations matching namespace/name, with * wildcards")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&httpReq, "http", "", "an HTTP request on each connection, METHOD:/path (e.g. POST:/api): the verdict through the AuthorizationPolicies too")
	return cmd
}
