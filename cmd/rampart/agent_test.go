package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// One config file for every node: the node's name comes from --node-name,
// else $RAMPART_NODE_NAME (the DaemonSet's downward API), else the file.
func TestAgentNodeName(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.yaml")
	// Encryption off: no certificates, which would have to name the node.
	if err := os.WriteFile(path, []byte(`apiVersion: rampart.dev/v1alpha1
kind: Agent
metadata: {name: every-node}
spec:
  nodeName: from-file
  underlayAddress: 198.18.0.11
  podCIDR: 198.19.1.0/24
  clusterCIDR: 198.19.0.0/16
  controlSocket: agent.sock
  encryption: {mode: "off"}
  policy: {paths: [manifests]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, flag, env string
		want            string // the node, or in the error
		wantErr         bool
	}{
		{name: "the file's", want: "from-file"},
		{name: "the environment's", env: "from-env", want: "from-env"},
		{name: "the flag over the environment", flag: "from-flag", env: "from-env", want: "from-flag"},
		{name: "an invalid name", flag: "Node_1", wantErr: true,
			want: `spec.nodeName: "Node_1", given on the command line (--node-name or $RAMPART_NODE_NAME), is not a node name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(nodeNameEnv, tc.env)
			var stderr bytes.Buffer
			cmd := &cobra.Command{}
			cmd.SetErr(&stderr)
			cfg, err := loadAgentConfig(cmd, agentFlags{config: path, nodeName: tc.flag})
			if tc.wantErr {
				if err == nil || !strings.Contains(stderr.String(), tc.want) {
					t.Errorf("err %v, stderr %q; want a refusal with %q", err, stderr.String(), tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if cfg.NodeName != tc.want {
				t.Errorf("node %q, want %q", cfg.NodeName, tc.want)
			}
		})
	}
}

func TestInstallPlugin(t *testing.T) {
	src := filepath.Join(t.TempDir(), cniPluginName)
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(src, []byte(content), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "opt", "cni", "bin")
	check := func(want string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dst, cniPluginName))
		if err != nil || string(b) != want {
			t.Fatalf("installed plugin: %q, %v; want %q", b, err, want)
		}
		fi, _ := os.Stat(filepath.Join(dst, cniPluginName))
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("mode %v, want 0755 (the runtime runs it as any user)", fi.Mode())
		}
		entries, _ := os.ReadDir(dst)
		if len(entries) != 1 {
			t.Errorf("%d files in %s, want the plugin alone (no temporary left)", len(entries), dst)
		}
	}

	write("v1")
	if err := installPlugin(src, dst); err != nil {
		t.Fatal(err)
	}
	check("v1")
	// Again, over the old one: renamed over it, not written into it
	// (which a running plugin would refuse with ETXTBSY).
	old, err := os.Open(filepath.Join(dst, cniPluginName))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	write("v2")
	if err := installPlugin(src, dst); err != nil {
		t.Fatal(err)
	}
	check("v2")
	b := make([]byte, 2)
	if n, _ := old.Read(b); string(b[:n]) != "v1" {
		t.Errorf("the old plugin's inode holds %q: written to, not replaced", b[:n])
	}

	for _, tc := range []struct{ name, src, want string }{
		{"missing", filepath.Join(t.TempDir(), "nope"), "the plugin to copy"},
		{"a directory", t.TempDir(), "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := installPlugin(tc.src, dst); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
