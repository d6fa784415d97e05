package main

import (
	"encoding/json"
	"errors"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/spf13/cobra"
)

func newLintCmd() *cobra.Command {
	var (
		output string
		strict bool
		quiet  bool
		source sourceFlags
	)
	cmd := &cobra.Command{
		Use:   "lint [PATH...]",
		Short: "Check manifests as the API server would, plus Rampart's warnings",
		Long: `lint reads manifests and prints every error (what the API server would
refuse: bad selectors, CIDRs, ports, protocols, unknown fields, a policy with
the wrong apiVersion or kind; for ClusterNetworkPolicy, AdminNetworkPolicy and
BaselineAdminNetworkPolicy what their CRDs check: tiers, priorities, one field
per peer and port, port ranges, networks, domain names in Accept rules only)
and every warning (policies that select nothing, peers that match nothing,
rules that policyTypes makes dead, cluster-wide policies of one tier with the
same priority, whose order upstream leaves undefined, domain names, which
Rampart does not enforce), each with file:line, the field path, and how to
fix it.

Exit status 1 when there is an error (with --strict, also a warning).` + sourceHelp + exitCodesHelp,
		Example: `  rampart lint examples/
  rampart lint deploy/ -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, paths []string) error {
			if err := outputFormat(output, "text", "json"); err != nil {
				return err
			}
			snap, err := source.snapshot(cmd.Context(), paths)
			if err != nil {
				return err
			}
			_, diags, err := policy.FromSnapshot(snap, false)
			if err != nil && !errors.Is(err, policy.ErrInvalid) {
				return err
			}
			_, ads := authzDiagnostics(snap, source.mesh)
			diags = append(diags, ads...)
			cluster.SortDiagnostics(diags)
			if output == "json" {
				if diags == nil {
					diags = []cluster.Diagnostic{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(diags); err != nil {
					return err
				}
			} else {
				printDiagnostics(cmd.OutOrStdout(), diags, quiet)
			}
			errs, warns := countSeverity(diags, cluster.Error), countSeverity(diags, cluster.Warning)
			switch {
			case errs > 0:
				return findings("%d error(s), %d warning(s)", errs, warns)
			case strict && warns > 0:
				return findings("%d warning(s) (--strict)", warns)
			}
			return nil
		},
	}
	source.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 on warnings too")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only errors")
	return cmd
}
