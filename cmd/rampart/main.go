// Command rampart is Rampart's command line: it analyzes Kubernetes
// network policies from manifest files today, and runs the node datapath
// in later releases. This package only parses flags and prints; the logic
// lives in internal/.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every verb.
const (
	exitOK       = 0 // the verb ran and found nothing to report
	exitFindings = 1 // the verb ran and reports errors in the input, or findings
	exitFailed   = 2 // the verb could not run (bad flags, unreadable paths)
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// findings makes a verb exit 1 with a message.
func findings(format string, args ...any) error {
	return &exitError{code: exitFindings, err: fmt.Errorf(format, args...)}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "rampart:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "rampart:", err)
	return exitFailed
}

const exitCodesHelp = `
Exit status: 0 when the verb ran and has nothing to report, 1 when it ran
and reports errors in the input or findings, 2 when it could not run.`

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "rampart",
		Short: "Network segmentation and encryption for Kubernetes pod networks",
		Long: `Rampart enforces Kubernetes NetworkPolicy and encrypts pod traffic between
nodes. Before anything is deployed, it reads manifests and tells exactly who
can reach whom, why, and where the policies leave gaps.

Start with:
  rampart analyze examples/wordpress/open --compromised web/wordpress
  rampart reach examples/netpol-e2e --probe 80/TCP
  rampart explain examples/wordpress/hardened --from web/wordpress --to data/mysql --probe 3306/TCP
  rampart lint examples/
` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newVersionCmd(), newReachCmd(), newExplainCmd(), newAnalyzeCmd(), newLintCmd(), newTunnelCmd(), newAgentCmd(), newLabCmd(), newControllerCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Rampart's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "rampart %s\n", version)
			return nil
		},
	}
}
