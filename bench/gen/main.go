// Command gen writes a generated cluster (namespaces, workloads and
// NetworkPolicies) as manifests, for benchmarks and comparisons:
//
//	go run ./bench/gen -namespaces 500 -workloads 10000 -policies 2000 -out /tmp/cluster
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rampartnet/rampart/internal/policy/policytest"
)

func main() {
	var (
		seed       = flag.Int64("seed", 1, "random seed")
		namespaces = flag.Int("namespaces", 500, "namespaces")
		workloads  = flag.Int("workloads", 10000, "workloads (Deployments), spread over the namespaces")
		policies   = flag.Int("policies", 2000, "NetworkPolicies")
		out        = flag.String("out", "", "directory to write cluster.yaml into (created)")
	)
	flag.Parse()
	if *out == "" || *namespaces < 1 {
		fmt.Fprintln(os.Stderr, "gen: -out and -namespaces >= 1 are required")
		os.Exit(2)
	}
	if err := write(*seed, *namespaces, *workloads, *policies, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func write(seed int64, namespaces, workloads, policies int, dir string) error {
	snap := policytest.Generate(seed, policytest.Options{Namespaces: namespaces, Workloads: workloads, Policies: policies})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "cluster.yaml"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := policytest.WriteYAML(w, snap); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
