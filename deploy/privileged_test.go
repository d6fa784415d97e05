//go:build e2e

package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/agent"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/kubetest"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/testbin"
)

// TestPrivilegedDeployAgentCapabilities runs `rampart agent install` and
// `rampart agent run` as the DaemonSet does, with the capabilities its
// manifest gives each container and no other (setpriv drops the rest from
// the bounding set and sets no_new_privs, as the container runtime does
// for root with capabilities.drop [ALL] and allowPrivilegeEscalation
// false), in a node's network namespace: the agent must become ready
// (/readyz: its policy applied, the datapath running). Then, for each
// capability of the agent, it runs without that one: the agent must fail,
// so none is granted for nothing.
//
// The config is the ConfigMap's, with what needs a cluster replaced: the
// node list and the policy come from files, the credentials from a test
// CA. What a container adds beyond capabilities (the device cgroup, the
// read-only root filesystem, seccomp) is not emulated.
func TestPrivilegedDeployAgentCapabilities(t *testing.T) {
	netns.RequirePrivileged(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to run the agent with the manifest's capabilities")
	}
	objs, _, _ := build(t)
	ds := typed[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", agentName))
	spec := ds.Spec.Template.Spec
	installC, agentC := spec.InitContainers[0].SecurityContext.Capabilities.Add, spec.Containers[0].SecurityContext.Capabilities.Add
	cm := typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", agentName+"-config"))

	bin := testbin.Path(t, "rampart")
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{Prefix: "rd"})
	a, b := &sites.A, &sites.B
	dir := t.TempDir()
	writeNodeCredentials(t, dir, "node-a")
	writeFileT(t, filepath.Join(dir, "manifests", "pods.yaml"), fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Pod
metadata: {name: pod-a, namespace: default}
spec: {nodeName: node-a, containers: [{name: c, image: x}]}
status: {podIP: %s}
`, a.PodAddr4.Addr()))

	var cfg v1alpha1.Agent
	if _, ds := cluster.DecodeObject(agentConfig, []byte(cm.Data[agentConfig]), v1alpha1.APIVersion, "Agent", &cfg); len(ds) > 0 {
		t.Fatal(ds)
	}
	s := &cfg.Spec
	s.NodesFrom, s.Policy = "", v1alpha1.PolicySourceSpec{Paths: []string{filepath.Join(dir, "manifests")}}
	s.UnderlayAddress, s.PodCIDR, s.ClusterCIDR = a.UnderlayAddr4.Addr().String(), a.Subnet4().String(), "198.19.0.0/16"
	s.Nodes = []v1alpha1.NodeSpec{{Name: "node-b", Address: b.UnderlayAddr4.Addr().String(), PodCIDR: b.Subnet4().String()}}
	s.ControlSocket = filepath.Join(dir, "agent.sock")
	s.CNIConfDir = filepath.Join(dir, "net.d")
	s.Encryption.Credentials, s.Encryption.CredentialsDir, s.Encryption.CertificateLifetime = agent.CredentialsFiles, "", ""
	s.Encryption.CAFile, s.Encryption.CertFile, s.Encryption.KeyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key")
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, agentConfig)
	writeFileT(t, cfgPath, string(text))
	plugin := filepath.Join(dir, "rampart-cni")
	writeFileT(t, plugin, "#!/bin/false\n")

	// setpriv runs the command as root with only caps (lowercase names).
	withCaps := func(caps []corev1.Capability, args ...string) []string {
		set := "-all"
		for _, c := range caps {
			set += ",+" + strings.ToLower(string(c))
		}
		return append([]string{"--bounding-set", set, "--inh-caps", "-all", "--no-new-privs", "--", bin}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := a.Host.Command(ctx, "setpriv", withCaps(installC, "agent", "install", "--config", cfgPath, "--node-name", "node-a",
		"--cni-bin-dir", filepath.Join(dir, "bin"), "--cni-plugin", plugin)...).CombinedOutput()
	if err != nil {
		t.Fatalf("agent install with %v: %v\n%s", installC, err, out)
	}

	// The agent's HTTP server, reached from inside the node's namespace.
	get := func(path string) (int, string) {
		hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: kubetest.DialIn(a.Host)}}
		resp, err := hc.Get("http://127.0.0.1" + s.MetricsAddress + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	readyz := func() (int, string) { return get("/readyz") }
	run := func(caps []corev1.Capability) (*netns.Proc, bool) {
		p, err := a.Host.Start("setpriv", withCaps(caps, "agent", "run", "--config", cfgPath, "--node-name", "node-a")...)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if code, _ := readyz(); code == http.StatusOK {
				return p, true
			}
			select {
			case <-p.Exited():
				return p, false
			case <-time.After(200 * time.Millisecond):
			}
		}
		return p, false
	}

	p, ready := run(agentC)
	code, why := readyz()
	_, metrics := get("/metrics")
	if err := p.Stop(10 * time.Second); err != nil {
		t.Error(err)
	}
	// The agent's own metrics, and the datapath's beside them.
	for _, want := range []string{`rampart_agent_policy_applies_total{result="applied"} 1`, "rampart_agent_ready 1",
		"rampart_agent_policy_refused 0", `rampart_tunnel_packets_total{direction="out",peer="node-b"}`} {
		if ready && !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	if !ready {
		t.Fatalf("the agent with the manifest's capabilities %v is not ready (%d %s):\n%s", agentC, code, why, p.Log)
	}
	t.Logf("ready with %v", agentC)

	for i, c := range agentC {
		fewer := append(append([]corev1.Capability{}, agentC[:i]...), agentC[i+1:]...)
		t.Run("without "+string(c), func(t *testing.T) {
			p, ready := run(fewer)
			if err := p.Stop(10 * time.Second); err != nil {
				t.Error(err)
			}
			if ready {
				t.Errorf("the agent is ready without %s: the manifest grants it for nothing", c)
				return
			}
			t.Logf("as expected, not ready with %v only:\n%s", fewer, lastLines(p.Log.String(), 3))
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func writeFileT(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
