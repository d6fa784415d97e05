package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rampartnet/rampart/internal/authz"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
)

// inputFlags are the flags of every verb that reads manifests or a cluster.
type inputFlags struct {
	source      sourceFlags
	skipInvalid bool
	quiet       bool
}

func (f *inputFlags) register(cmd *cobra.Command) {
	f.source.register(cmd)
	cmd.Flags().BoolVar(&f.skipInvalid, "skip-invalid", false,
		"leave out objects with errors (as the API server would refuse them) instead of refusing to run")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print only errors, not warnings and notes")
}

// sourceFlags say where the objects come from: manifest paths, or a live
// cluster, as kubectl finds it (--kubeconfig, else $KUBECONFIG, else
// ~/.kube/config; --context, else the current one; -n for one namespace).
type sourceFlags struct {
	kubeconfig, context, namespace string
	live                           bool
	timeout                        time.Duration
	// The mesh's settings for AuthorizationPolicies.
	mesh authz.Options
}

// sourceHelp goes into the help of the verbs that read a source.
const sourceHelp = `
Without PATH, or with --kubeconfig, --context or --live, the objects come
from a live cluster through its API server, found as kubectl finds it.`

func (f *sourceFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "read a live cluster through this kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	cmd.Flags().StringVar(&f.context, "context", "", "the kubeconfig context to use (default: the current one)")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "", "with a live cluster: read only this namespace's pods, services and policies")
	cmd.Flags().BoolVar(&f.live, "live", false, "read the live cluster of the current kubeconfig context")
	cmd.Flags().DurationVar(&f.timeout, "request-timeout", 30*time.Second, "with a live cluster: how long reading it may take")
	cmd.Flags().StringVar(&f.mesh.TrustDomain, "trust-domain", authz.DefaultTrustDomain, "the trust domain of AuthorizationPolicy principals (<trust domain>/ns/NS/sa/SA)")
	cmd.Flags().StringVar(&f.mesh.RootNamespace, "istio-root-namespace", authz.DefaultRootNamespace, "the namespace whose AuthorizationPolicies apply to every workload")
}

// snapshot reads the paths, or the live cluster.
func (f *sourceFlags) snapshot(ctx context.Context, paths []string) (*cluster.Snapshot, error) {
	live := f.live || f.kubeconfig != "" || f.context != "" || len(paths) == 0
	switch {
	case live && len(paths) > 0:
		return nil, fmt.Errorf("give manifest paths or a live cluster (--kubeconfig, --context, --live), not both")
	case !live && f.namespace != "":
		return nil, fmt.Errorf("-n reads one namespace of a live cluster; manifest paths are read whole")
	case live:
		snap, err := cluster.LoadKube(ctx, cluster.KubeConfig{Path: f.kubeconfig, Context: f.context, Namespace: f.namespace}, f.timeout)
		if clientcmd.IsEmptyConfig(errors.Unwrap(err)) && len(paths) == 0 && !f.live {
			return nil, fmt.Errorf("no manifest path given, and no kubeconfig found ($KUBECONFIG, ~/.kube/config): give PATH..., or a cluster with --kubeconfig")
		}
		return snap, err
	}
	return cluster.Load(paths...)
}

// load reads the paths (or the cluster) and builds the model. Errors in
// the input refuse the verb (exit 1) unless --skip-invalid; diagnostics go
// to stderr.
func (f *inputFlags) load(ctx context.Context, paths []string, stderr io.Writer) (*policy.Model, error) {
	m, _, err := f.loadAll(ctx, paths, stderr)
	return m, err
}

// loadAll is load, with the snapshot the model was built from.
func (f *inputFlags) loadAll(ctx context.Context, paths []string, stderr io.Writer) (*policy.Model, *cluster.Snapshot, error) {
	snap, err := f.source.snapshot(ctx, paths)
	if err != nil {
		return nil, nil, err
	}
	m, diags, err := policy.FromSnapshot(snap, f.skipInvalid)
	printDiagnostics(stderr, diags, f.quiet)
	if errors.Is(err, policy.ErrInvalid) {
		return nil, nil, findings("the input has %d error(s); fix them, or pass --skip-invalid to leave those objects out",
			countSeverity(diags, cluster.Error))
	}
	return m, snap, err
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
