package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
	"github.com/spf13/cobra"
)

// inputFlags are the flags of every verb that reads manifests.
type inputFlags struct {
	skipInvalid bool
	quiet       bool
}

func (f *inputFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.skipInvalid, "skip-invalid", false,
		"leave out objects with errors (as the API server would refuse them) instead of refusing to run")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print only errors, not warnings and notes")
}

// load reads the paths and builds the model. Errors in the input refuse
// the verb (exit 1) unless --skip-invalid; diagnostics go to stderr.
func (f *inputFlags) load(paths []string, stderr io.Writer) (*policy.Model, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no manifest path given")
	}
	snap, err := cluster.Load(paths...)
	if err != nil {
		return nil, err
	}
	m, diags, err := policy.FromSnapshot(snap, f.skipInvalid)
	printDiagnostics(stderr, diags, f.quiet)
	if errors.Is(err, policy.ErrInvalid) {
		return nil, findings("the input has %d error(s); fix them, or pass --skip-invalid to leave those objects out",
			countSeverity(diags, cluster.Error))
	}
	return m, err
}

func printDiagnostics(w io.Writer, diags []cluster.Diagnostic, quiet bool) {
	for _, d := range diags {
		if quiet && d.Severity != cluster.Error {
			continue
		}
		fmt.Fprintln(w, d)
	}
}

func countSeverity(diags []cluster.Diagnostic, s cluster.Severity) int {
	n := 0
	for _, d := range diags {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// parseProbes reads --probe flags.
func parseProbes(specs []string) ([]policy.Probe, error) {
	var out []policy.Probe
	for _, s := range specs {
		p, err := policy.ParseProbe(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// outputFormat checks -o against the formats a verb supports.
func outputFormat(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return fmt.Errorf("-o %s: want one of %v", got, allowed)
}
