package main

import (
	"fmt"

	"github.com/rampartnet/rampart/internal/analyze"
	"github.com/spf13/cobra"
)

func newAnalyzeCmd() *cobra.Command {
	var (
		in          inputFlags
		probes      []string
		compromised string
		output      string
		failOn      string
	)
	cmd := &cobra.Command{
		Use:   "analyze [PATH...]",
		Short: "Find segmentation gaps and the blast radius of a compromised pod",
		Long: `analyze reads manifests and reports, for every pod and workload, whether its
ingress and egress are isolated; reachability by class of workloads; and
findings: namespaces with no default deny, workloads reachable from every
namespace, egress open to the internet, egress default deny that also blocks
DNS, policies that select nothing and peers that match nothing,
NetworkPolicy rules that an admin-tier Deny makes dead, and domain names in
cluster-wide policies (not enforced). With
--compromised ns/name it adds the blast radius: everything reachable from
that pod, transitively, with the path.

Without --probe, the ports are those the containers declare; a workload
reaches another when a port the destination declares is allowed.

Exit status 1 when a finding is at or above --fail-on (default high).` + sourceHelp + exitCodesHelp,
		Example: `  rampart analyze examples/wordpress/open --compromised web/wordpress
  rampart analyze examples/wordpress/hardened -o json
  rampart analyze examples/wordpress/hardened -o dot | dot -Tsvg > graph.svg`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, paths []string) error {
			if err := outputFormat(output, "text", "json", "dot"); err != nil {
				return err
			}
			threshold, ok := severityRank[failOn]
			if !ok {
				return fmt.Errorf("--fail-on %s: want high, medium, low, info or none", failOn)
			}
			prs, err := parseProbes(probes)
			if err != nil {
				return err
			}
			m, err := in.load(cmd.Context(), paths, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			r, err := analyze.Analyze(m, analyze.Options{Probes: prs, Compromised: compromised})
			if err != nil {
				return err
			}
			switch output {
			case "json":
				err = r.WriteJSON(cmd.OutOrStdout())
			case "dot":
				err = r.WriteDOT(cmd.OutOrStdout())
			default:
				err = r.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			n := 0
			for _, f := range r.Findings {
				// The blast radius is the report the user asked for, not a
				// defect of the manifests.
				if f.Kind == analyze.KindBlastRadius {
					continue
				}
				if severityRank[string(f.Severity)] >= threshold {
					n++
				}
			}
			if n > 0 {
				return findings("%d finding(s) at or above %s", n, failOn)
			}
			return nil
		},
	}
	in.register(cmd)
	cmd.Flags().StringArrayVar(&probes, "probe", nil, "PORT/PROTOCOL to consider (repeatable); default: the ports containers declare")
	cmd.Flags().StringVar(&compromised, "compromised", "", "namespace/name of a pod or workload to compute the blast radius of")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or dot")
	cmd.Flags().StringVar(&failOn, "fail-on", "high", "exit 1 on findings of this severity or above: high, medium, low, info, none")
	return cmd
}

// severityRank orders severities; "none" is above all, so nothing fails.
var severityRank = map[string]int{"info": 1, "low": 2, "medium": 3, "high": 4, "none": 5}
