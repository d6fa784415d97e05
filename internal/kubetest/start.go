package kubetest

import (
	"context"
	"os"
	"strings"
	"testing"
)

// Start runs a cluster for t (Run with opts, Dir set to t.TempDir() and
// KillWithParent) and stops it in t.Cleanup, also when t fails; the tail of
// both logs is printed then. Missing binaries skip t, or fail it when
// RAMPART_REQUIRE_PRIVILEGED=1.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.BinDir == "" {
		opts.BinDir = RequireBinaries(t)
	} else if _, err := FindBinaries(opts.BinDir); err != nil {
		skipOrFatal(t, err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.KillWithParent = true
	if opts.Log == nil {
		opts.Log = logWriter{t}
	}
	c, stop, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after t.TempDir(), so it runs before the directory goes.
	// The logs' tails are taken before the stop, whose shutdown lines
	// would otherwise bury what the servers said when the test failed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s\n%s", tailFile(c.EtcdLog, 30), tailFile(c.APIServerLog, 60))
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// RequireBinaries returns BinDir() if kube-apiserver and etcd are there;
// otherwise it skips t, or fails it when RAMPART_REQUIRE_PRIVILEGED=1. For
// tests that call Run themselves.
func RequireBinaries(t testing.TB) string {
	t.Helper()
	d, err := BinDir()
	if err == nil {
		_, err = FindBinaries(d)
	}
	if err != nil {
		skipOrFatal(t, err)
	}
	return d
}

func skipOrFatal(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(requirePrivilegedEnv) == "1" {
		t.Fatalf("%v; %s=1 forbids skipping", err, requirePrivilegedEnv)
	}
	t.Skip(err)
}

// logWriter sends Run's progress lines to t.Log (Options.logf calls t.Logf
// directly; Write serves any other writer of the lines).
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
