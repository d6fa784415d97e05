package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStatusPath(t *testing.T) {
	for in, want := range map[string]string{
		"/run/rampart/agent.sock": "/run/rampart/agent.status.json",
		"dir/node-a.sock":         "dir/node-a.status.json",
		"/run/control":            "/run/control.status.json",
	} {
		if got := StatusPath(in); got != want {
			t.Errorf("StatusPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// A refused change is reported in the status file with the fingerprint of
// the manifests it is about, and a fixed file changes the fingerprint.
// Only invalid manifests are used: a valid set would be applied to this
// process's own network namespace.
func TestStatusFileReportsRefusal(t *testing.T) {
	dir := t.TempDir()
	manifests := filepath.Join(dir, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(manifests, "bad.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: 80, protocol: ICMP}]
`)
	cfg := &Config{NodeName: "node-1", PolicyPaths: []string{manifests}, ControlSocket: filepath.Join(dir, "node-1.sock")}
	a := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.syncPolicy(ctx) }()
	defer func() { cancel(); <-done }()

	wait := func(what string, ok func(PolicyStatus) bool) PolicyStatus {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := ReadStatus(filepath.Join(dir, "node-1.status.json"))
			if err == nil && ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v, %v", what, st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fp1, err := Fingerprint(cfg.PolicyPaths)
	if err != nil {
		t.Fatal(err)
	}
	st := wait("first refusal", func(st PolicyStatus) bool { return st.Fingerprint == fp1 })
	if !strings.Contains(st.Error, "bad.yaml:7") || st.Generation != 0 {
		t.Errorf("status %+v: want the refusal with file:line and nothing applied", st)
	}

	// Another broken version: a new fingerprint, a new error.
	write("kind: [\n")
	later := time.Now().Add(time.Second)
	os.Chtimes(bad, later, later) // a distinct mtime even within one clock tick
	fp2, _ := Fingerprint(cfg.PolicyPaths)
	if fp2 == fp1 {
		t.Fatal("the fingerprint did not change with the file")
	}
	st = wait("second refusal", func(st PolicyStatus) bool { return st.Fingerprint == fp2 })
	if !strings.Contains(st.Error, "bad.yaml") || st.Generation != 0 {
		t.Errorf("status %+v", st)
	}
}
