//go:build e2e

package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/datapath"
	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/nft"
	"github.com/rampartnet/rampart/internal/testbin"
)

// TestPrivilegedAgentTunnel: two nodes' agents (`rampart agent run`) key
// the tunnel between them with IKEv2 and their certificates; pods and the
// nodes themselves reach the other node's pods through it. When an agent
// is killed (SIGKILL), its pod's traffic to the other node is dropped, not
// sent in clear, and it flows again once the agent is back. A node whose
// agent claims another pod CIDR than the one the cluster gives it gets no
// CHILD_SA.
func TestPrivilegedAgentTunnel(t *testing.T) {
	netns.RequirePrivileged(t)
	bin := testbin.Path(t, "rampart")
	sites := netns.TwoSitesT(t, netns.TwoSitesOptions{Prefix: "ra"})
	a, b := &sites.A, &sites.B
	dir := t.TempDir()
	pki := newTestCA(t, dir)
	manifests := filepath.Join(dir, "manifests")
	writeFile(t, filepath.Join(manifests, "pods.yaml"), fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Pod
metadata: {name: pod-a, namespace: default}
spec: {nodeName: node-a, containers: [{name: c, image: x}]}
status: {podIP: %s}
---
apiVersion: v1
kind: Pod
metadata: {name: pod-b, namespace: default}
spec: {nodeName: node-b, containers: [{name: c, image: x}]}
status: {podIP: %s}
`, a.PodAddr4.Addr(), b.PodAddr4.Addr()), 0o644)
	agentConfig := func(self, other *netns.Site, name, otherName, podCIDR string) string {
		pki.issue(t, name)
		path := filepath.Join(dir, name+".yaml")
		writeFile(t, path, fmt.Sprintf(`apiVersion: rampart.dev/v1alpha1
kind: Agent
metadata: {name: %[1]s}
spec:
  nodeName: %[1]s
  underlayAddress: %[2]s
  podCIDR: %[3]s
  clusterCIDR: 198.19.0.0/16
  controlSocket: %[1]s.sock
  cniConfDir: %[1]s-cni
  nodes: [{name: %[4]s, address: %[5]s, podCIDR: %[6]s}]
  encryption: {caFile: ca.pem, certFile: %[1]s.pem, keyFile: %[1]s.key, dpdInterval: 2s}
  policy: {paths: [manifests]}
`, name, self.UnderlayAddr4.Addr(), podCIDR, otherName, other.UnderlayAddr4.Addr(), other.Subnet4()), 0o644)
		return path
	}
	cfgA := agentConfig(a, b, "node-a", "node-b", a.Subnet4().String())
	cfgB := agentConfig(b, a, "node-b", "node-a", b.Subnet4().String())
	for _, c := range []struct {
		ns  *netns.NS
		cfg string
	}{{a.Host, cfgA}, {b.Host, cfgB}} {
		if out, err := c.ns.Command(context.Background(), bin, "agent", "install", "--config", c.cfg).CombinedOutput(); err != nil {
			t.Fatalf("agent install: %v\n%s", err, out)
		}
	}
	t.Cleanup(func() {
		for _, ns := range []*netns.NS{a.Host, b.Host} {
			ns.Do(nft.RemoveGuard)
		}
	})
	// Installed, agents not running yet: the guard already drops.
	if ping(a.Pod, b.PodAddr4.Addr().String()) {
		t.Fatal("pod A reached pod B before any agent ran")
	}
	agA := startAgent(t, a.Host, bin, cfgA)
	agB := startAgent(t, b.Host, bin, cfgB)
	waitSA(t, filepath.Join(dir, "node-a.sock"), agA, agB)
	for _, p := range []struct {
		from *netns.NS
		to   string
	}{{a.Pod, b.PodAddr4.Addr().String()}, {b.Pod, a.PodAddr4.Addr().String()}, {a.Host, b.PodAddr4.Addr().String()}, {b.Host, a.PodAddr4.Addr().String()}} {
		if !pingRetry(p.from, p.to, 10*time.Second) {
			t.Fatalf("%s: no answer from %s through the tunnel\nA:\n%s\nB:\n%s", p.from.Name, p.to, agA.log, agB.log)
		}
	}
	st, err := datapath.ReadStatus(filepath.Join(dir, "node-a.sock"))
	if err != nil || st.Peers[0].TxPackets == 0 || st.Peers[0].RxPackets == 0 {
		t.Fatalf("agent A's tunnel carried nothing: %v %+v", err, st)
	}

	// SIGKILL agent A: its TUN device goes, the guard stays.
	agA.kill(t)
	if ping(a.Pod, b.PodAddr4.Addr().String()) || ping(b.Pod, a.PodAddr4.Addr().String()) {
		t.Fatal("pods reached each other with agent A dead")
	}
	agA = startAgent(t, a.Host, bin, cfgA)
	if !pingRetry(a.Pod, b.PodAddr4.Addr().String(), 20*time.Second) {
		t.Fatalf("no recovery after agent A restarted\nA:\n%s\nB:\n%s", agA.log, agB.log)
	}

	// Node B claims a pod CIDR the cluster does not give it.
	agB.stop(t)
	cfgBad := agentConfig(b, a, "node-b", "node-a", "198.19.3.0/24")
	agBad := startAgent(t, b.Host, bin, cfgBad)
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(agA.log.String(), "TS_UNACCEPTABLE") || strings.Contains(agBad.log.String(), "TS_UNACCEPTABLE") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(agA.log.String()+agBad.log.String(), "TS_UNACCEPTABLE") {
		t.Errorf("the claim was not refused\nA:\n%s\nB:\n%s", agA.log, agBad.log)
	}
	if st, err := datapath.ReadStatus(filepath.Join(dir, "node-a.sock")); err == nil && len(st.Peers[0].SAs) > 0 {
		t.Errorf("node A installed a CHILD_SA with the node claiming 198.19.3.0/24: %+v", st.Peers[0].SAs)
	}
}

type agentProc struct {
	*netns.Proc
	log *netns.Log
}

func startAgent(t *testing.T, ns *netns.NS, bin, cfg string) *agentProc {
	t.Helper()
	p, err := ns.Start(bin, "agent", "run", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{Proc: p, log: p.Log}
	t.Cleanup(func() { a.stop(t) })
	return a
}

func (a *agentProc) stop(t *testing.T) {
	if err := a.Stop(10 * time.Second); err != nil {
		t.Errorf("%v\n%s", err, a.log)
	}
}

func (a *agentProc) kill(t *testing.T) {
	if err := a.Kill(); err != nil {
		t.Fatalf("kill the agent: %v", err)
	}
}

func waitSA(t *testing.T, socket string, agents ...*agentProc) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, err := datapath.ReadStatus(socket); err == nil && len(st.Peers) > 0 && len(st.Peers[0].SAs) > 0 {
			return
		}
		if time.Now().After(deadline) {
			var logs []string
			for _, a := range agents {
				logs = append(logs, a.log.String())
			}
			t.Fatalf("no CHILD_SA in 15 s\n%s", strings.Join(logs, "\n----\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ping(ns *netns.NS, to string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return ns.Command(ctx, "ping", "-c", "1", "-W", "1", to).Run() == nil
}

func pingRetry(ns *netns.NS, to string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if ping(ns, to) {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
