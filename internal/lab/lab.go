// Package lab is `rampart lab`: a local cluster made of network namespaces,
// to see NetworkPolicy and the encryption between nodes at work on real
// packets, and to hold them to what the verdict engine says.
//
//	underlay netns <name>-ul: bridge br0 198.18.0.1/24 (every node's gateway)
//	   │ veth n<i> ─ ul0 198.18.0.(10+i)/24
//	node netns <name>-n<i>: `rampart agent run` (IKEv2 to every other node,
//	   │ TUN rampart0, the guard and policy tables), pod CIDR 198.19.i.0/24
//	   │ veth rmp… ─ eth0 (rampart-cni: a routed /32 per pod)
//	pod netns <name>-p<k>: `rampart lab serve` (answers TCP, UDP and SCTP)
//
// Up makes all of it from manifests, as `rampart reach` reads them: one pod
// per Pod or workload, on its spec.nodeName or spread over the nodes. The
// agents read the lab's own manifests directory (manifests.go), which holds
// the pods with the addresses the CNI plugin gave them, so the agents'
// rules and the expected matrix (probe.go) come from the same cluster.
// Apply replaces the policies there; Probe connects every pod to every pod
// and compares with the verdict engine; Down removes everything the lab
// made, from state.json alone (state.go).
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rampartnet/rampart/internal/agent"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/datapath"
	"github.com/rampartnet/rampart/internal/policy"
)

// Options configure Up.
type Options struct {
	// Name prefixes the lab's namespaces (default "lab").
	Name string
	// StateDir holds the lab's state (default DefaultStateDir(Name)).
	StateDir string
	// Nodes is the number of nodes (0: as many as the manifests name, at
	// least DefaultNodes).
	Nodes int
	// Binary is the rampart binary the agents and responders run
	// (default: this executable); CNIBinary the CNI plugin (default:
	// rampart-cni beside Binary).
	Binary, CNIBinary string
	// Log receives progress lines (nil: none).
	Log io.Writer
	// APIServer runs a real etcd and kube-apiserver on the underlay, which
	// the agents read instead of manifest files (apiserver.go); KubeBin
	// holds their binaries (default: kubetest.BinDir(), bin/kube).
	APIServer bool
	KubeBin   string
}

// Lab is a lab that is up.
type Lab struct {
	st  *State
	log io.Writer
}

// Timeouts of the steps that wait for processes.
const (
	readyTimeout  = 15 * time.Second // responders listening
	applyTimeout  = 30 * time.Second // every agent reports a change applied
	tunnelTimeout = 30 * time.Second // every node pair has a CHILD_SA
)

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = "lab"
	}
	if err := CheckName(o.Name); err != nil {
		return err
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir(o.Name)
	}
	var err error
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return err
	}
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("lab: the rampart binary: %w", err)
		}
	}
	if o.Binary, err = filepath.Abs(o.Binary); err != nil {
		return err
	}
	if o.CNIBinary == "" {
		o.CNIBinary = filepath.Join(filepath.Dir(o.Binary), "rampart-cni")
	}
	if o.CNIBinary, err = filepath.Abs(o.CNIBinary); err != nil {
		return err
	}
	for _, b := range []struct{ what, path, hint string }{
		{"rampart binary", o.Binary, ""},
		{"CNI plugin", o.CNIBinary, " (make build puts bin/rampart-cni beside bin/rampart; or pass --cni-bin)"},
	} {
		if fi, err := os.Stat(b.path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("lab: %s %s is not an executable file%s", b.what, b.path, b.hint)
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// Up makes a lab from manifests. Warnings about the input go to o.Log; an
// input with errors is refused (*InvalidError, *PlanError) before anything
// is made. If a later step fails, everything made so far is removed.
func Up(ctx context.Context, o Options, paths []string) (_ *Lab, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	snap, diags, err := loadInput(paths)
	if err != nil {
		return nil, err
	}
	for _, d := range diags {
		if d.Severity == cluster.Warning {
			fmt.Fprintln(o.Log, d)
		}
	}
	plan, err := MakePlan(snap, o.Nodes)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.StateDir); err == nil {
		return nil, fmt.Errorf("lab: %s exists: a lab is up there (rampart lab down --state %s), or pick another --name or --state", o.StateDir, o.StateDir)
	}
	if nsExists(o.Name + "-ul") {
		return nil, fmt.Errorf("lab: namespace %s-ul exists: another lab called %q is up (with another --state), pick another --name", o.Name, o.Name)
	}
	st := &State{Name: o.Name, Dir: o.StateDir, Created: time.Now().UTC(), Binary: o.Binary, CNIBinary: o.CNIBinary,
		Underlay: o.Name + "-ul"}
	for dir := filepath.Dir(o.StateDir); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil || dir == "/" {
			break
		}
		st.Made = append(st.Made, dir)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	unlock, err := lock(o.StateDir)
	if err != nil {
		os.RemoveAll(o.StateDir)
		return nil, err
	}
	defer unlock()
	if err := st.save(); err != nil {
		os.RemoveAll(o.StateDir)
		return nil, err
	}
	l := &Lab{st: st, log: o.Log}
	defer func() {
		if err != nil {
			fmt.Fprintf(o.Log, "lab up failed; removing what it made\n")
			if derr := down(st); derr != nil {
				err = errors.Join(err, fmt.Errorf("and removing it: %w", derr))
			}
		}
	}()
	start := time.Now()
	if err := l.makeNodes(ctx, plan, o); err != nil {
		return nil, err
	}
	if err := l.wirePods(ctx, plan); err != nil {
		return nil, err
	}
	if err := l.writeManifests(snap); err != nil {
		return nil, err
	}
	if err := l.startServers(snap); err != nil {
		return nil, err
	}
	if st.APIServer != nil {
		if _, err = l.syncAPI(ctx, true); err != nil {
			return nil, err
		}
	}
	for i := range st.Nodes {
		if err := l.startAgent(&st.Nodes[i]); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(o.Log, "waiting for the responders, the agents' rules and the tunnels\n")
	if err := l.waitServers(ctx); err != nil {
		return nil, err
	}
	if err := l.waitApplied(ctx, st.Nodes); err != nil {
		return nil, err
	}
	if err := l.waitTunnels(ctx, st.Nodes); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "lab %q is up in %v: %d nodes, %d pods, %d policies (state: %s)\n", st.Name,
		time.Since(start).Round(100*time.Millisecond), len(st.Nodes), len(st.Pods), len(snap.NetworkPolicies), st.Dir)
	return l, nil
}

// Open finds the lab whose state is in dir.
func Open(dir string) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	return &Lab{st: st, log: io.Discard}, nil
}

// SetLog sends progress lines to w.
func (l *Lab) SetLog(w io.Writer) { l.log = w }

// State is a copy of the lab's state.
func (l *Lab) State() State { return *l.st }

// reload reads state.json again: another command may have changed it
// since this Lab was opened. Callers that change the state hold the lock.
func (l *Lab) reload() error {
	st, err := readState(l.st.Dir)
	if err != nil {
		return err
	}
	*l.st = *st
	return nil
}

// Model is the lab's cluster as the verdict engine sees it: its pods with
// their lab addresses, and the policies in force.
func (l *Lab) Model() (*policy.Model, error) {
	if l.st.APIServer != nil {
		return l.apiModel(context.Background())
	}
	return loadLabModel(l.st)
}

// makeNodes makes the underlay and the nodes, their credentials and agent
// configurations, and runs `agent install` on each (guard table, CNI
// configuration).
func (l *Lab) makeNodes(ctx context.Context, plan *Plan, o Options) error {
	st := l.st
	if err := l.newNamespace(st.Underlay); err != nil {
		return err
	}
	if err := makeUnderlay(st.Underlay); err != nil {
		return err
	}
	if o.APIServer {
		if err := l.startAPIServer(ctx, o.KubeBin); err != nil {
			return err
		}
	}
	for _, dir := range []string{"pki", "logs", "servers", "manifests"} {
		if err := os.MkdirAll(filepath.Join(st.Dir, dir), 0o700); err != nil {
			return err
		}
	}
	ca, err := newLabCA(st.Name)
	if err != nil {
		return err
	}
	caFile := filepath.Join(st.Dir, "pki", "ca.pem")
	if err := ca.writeCert(caFile); err != nil {
		return err
	}
	for _, pn := range plan.Nodes {
		dir := st.nodeDir(pn.Name)
		n := NodeState{Name: pn.Name, Netns: fmt.Sprintf("%s-n%d", st.Name, pn.Index), Address: pn.Address, PodCIDR: pn.PodCIDR,
			Config: filepath.Join(dir, "agent.yaml"), ControlSocket: filepath.Join(dir, "control.sock")}
		st.Nodes = append(st.Nodes, n)
		if err := l.newNamespace(n.Netns); err != nil {
			return err
		}
		if err := attachNode(st.Underlay, n, pn.Index); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if st.APIServer != nil {
			continue // the agent asks for its certificate (identities.go)
		}
		if err := ca.issue(n.Name, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
			return err
		}
	}
	if st.APIServer != nil {
		if err := l.createNodes(ctx); err != nil {
			return err
		}
		if err := l.setupIdentities(ctx, ca); err != nil {
			return err
		}
	}
	for i, pn := range plan.Nodes {
		n := &st.Nodes[i]
		if err := os.WriteFile(n.Config, agentConfig(st, n, caFile), 0o600); err != nil {
			return err
		}
		if err := waitLinkUp(n.Netns, nodeUplink, 5*time.Second); err != nil {
			return err
		}
		out, err := nsCommand(context.Background(), n.Netns, st.Binary, "agent", "install", "--config", n.Config).CombinedOutput()
		if err != nil {
			return fmt.Errorf("lab: agent install on %s: %v\n%s", pn.Name, err, out)
		}
	}
	fmt.Fprintf(l.log, "nodes: %d, underlay %s, pod CIDRs in %s\n", len(st.Nodes), UnderlayPrefix, ClusterCIDR)
	return st.save()
}

// newNamespace records a namespace in the state, then makes it. One that
// exists already is someone else's: it is neither recorded nor touched.
func (l *Lab) newNamespace(name string) error {
	if nsExists(name) {
		return fmt.Errorf("lab: namespace %s exists already (another lab with the name %q?)", name, l.st.Name)
	}
	if err := l.st.addNamespace(name); err != nil {
		return err
	}
	return nsCreate(name)
}

// agentConfig is a node's Agent file. Paths are absolute: the agent
// resolves them against the file's directory otherwise, and the lab
// computes the manifests' fingerprint from the same string.
func agentConfig(st *State, n *NodeState, caFile string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by rampart lab up.
apiVersion: rampart.dev/v1alpha1
kind: Agent
metadata: {name: %[1]s}
spec:
  nodeName: %[1]s
  underlayAddress: %[2]s
  podCIDR: %[3]s
  clusterCIDR: %[4]s
  controlSocket: %[5]s
  cniConfDir: %[6]s
  cniDataDir: %[7]s
  encryption:
    caFile: %[8]s
    certFile: %[9]s
    keyFile: %[10]s
    dpdInterval: 10s
  policy:
    %[11]s
  nodes:
`, n.Name, n.Address, n.PodCIDR, ClusterCIDR, n.ControlSocket, filepath.Join(st.nodeDir(n.Name), "net.d"),
		filepath.Join(st.nodeDir(n.Name), "cni"), caFile, filepath.Join(st.nodeDir(n.Name), "cert.pem"),
		filepath.Join(st.nodeDir(n.Name), "key.pem"), policySource(st, n.Name))
	if st.APIServer != nil {
		// The other nodes are the API server's Node objects, and the
		// certificate comes through the CSR API, as in a DaemonSet.
		text := strings.Replace(b.String(), "  nodes:\n", "  nodesFrom: apiserver\n", 1)
		files := fmt.Sprintf("    caFile: %s\n    certFile: %s\n    keyFile: %s\n", caFile,
			filepath.Join(st.nodeDir(n.Name), "cert.pem"), filepath.Join(st.nodeDir(n.Name), "key.pem"))
		csr := fmt.Sprintf("    credentials: csr\n    credentialsDir: %s\n", filepath.Join(st.nodeDir(n.Name), "pki"))
		return []byte(strings.Replace(text, files, csr, 1))
	}
	for _, o := range st.Nodes {
		if o.Name != n.Name {
			fmt.Fprintf(&b, "  - {name: %s, address: %s, podCIDR: %s}\n", o.Name, o.Address, o.PodCIDR)
		}
	}
	return []byte(b.String())
}

// policySource is the agents' spec.policy: the lab's API server, or its
// manifests directory.
func policySource(st *State, node string) string {
	if st.APIServer != nil {
		return "kubeconfig: " + agentKubeconfig(st, node)
	}
	return "paths: [" + st.manifestsDir() + "]"
}

// writeManifests writes the lab's manifests directory: the cluster as
// laid out, and the input's policies as set 1.
func (l *Lab) writeManifests(snap *cluster.Snapshot) error {
	st := l.st
	b, err := clusterManifest(snap, st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(st.clusterFile(), b, 0o644); err != nil {
		return err
	}
	st.Generation = 1
	p, err := policiesManifest(policiesOf(snap), st.Generation)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(st.policiesFile(), p, 0o644); err != nil {
		return err
	}
	if _, err := loadLabModel(st); err != nil {
		return err
	}
	return st.save()
}

// startProc starts bin with args in a namespace, in a session of its own
// (it outlives the command that started it), output to a log file in the
// state directory.
func (l *Lab) startProc(netns, logName string, args ...string) (Proc, error) {
	path := l.st.logFile(logName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer f.Close()
	fmt.Fprintf(f, "---- %s: %s %s\n", time.Now().Format(time.RFC3339), l.st.Binary, strings.Join(args, " "))
	cmd := nsCommand(context.Background(), netns, l.st.Binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("lab: start %s: %w", logName, err)
	}
	start, _ := procStart(cmd.Process.Pid)
	// Reap it when it exits while this process lives; after, init does.
	go cmd.Wait()
	return Proc{PID: cmd.Process.Pid, Start: start, Log: path}, nil
}

// startAgent runs a node's agent. The status file of an agent that ran
// before goes first: it must not be mistaken for the new agent's.
func (l *Lab) startAgent(n *NodeState) error {
	if err := os.Remove(agent.StatusPath(n.ControlSocket)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	p, err := l.startProc(n.Netns, "agent-"+n.Name, "agent", "run", "--config", n.Config)
	if err != nil {
		return err
	}
	n.Agent = p
	return l.st.save()
}

// KillAgent SIGKILLs a node's agent, as a crash would: its rules and the
// guard stay in the kernel, its TUN device and IKE SAs go.
func (l *Lab) KillAgent(node string) error {
	n, unlock, err := l.lockedNode(node)
	if err != nil {
		return err
	}
	defer unlock()
	return n.Agent.stop(syscall.SIGKILL, 5*time.Second)
}

// lockedNode takes the lab's lock, reads its state again and finds a node;
// the caller releases the lock with unlock unless err is set.
func (l *Lab) lockedNode(node string) (_ *NodeState, unlock func(), err error) {
	if unlock, err = lock(l.st.Dir); err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	if err := l.reload(); err != nil {
		return nil, nil, err
	}
	n := l.st.node(node)
	if n == nil {
		return nil, nil, fmt.Errorf("lab: no node %q", node)
	}
	return n, unlock, nil
}

// StartAgent starts a node's agent again (after KillAgent, or a crash) and
// waits until it has applied the policies and has its tunnels up.
func (l *Lab) StartAgent(ctx context.Context, node string) error {
	n, unlock, err := l.lockedNode(node)
	if err != nil {
		return err
	}
	defer unlock()
	if n.Agent.alive() {
		return fmt.Errorf("lab: the agent of %s is running (PID %d)", node, n.Agent.PID)
	}
	if err := l.startAgent(n); err != nil {
		return err
	}
	if err := l.waitApplied(ctx, []NodeState{*n}); err != nil {
		return err
	}
	return l.waitTunnels(ctx, []NodeState{*n})
}

// RestartAgent is KillAgent then StartAgent.
func (l *Lab) RestartAgent(ctx context.Context, node string) error {
	if err := l.KillAgent(node); err != nil {
		return err
	}
	return l.StartAgent(ctx, node)
}

// waitApplied waits until every agent of nodes reports the current
// manifests applied (the status file beside its control socket), and fails
// with the agent's error if one refused them.
func (l *Lab) waitApplied(ctx context.Context, nodes []NodeState) error {
	if l.st.APIServer != nil {
		// A fresh write, so that its version is newer than everything
		// the lab wrote before.
		client, closeNS, err := l.KubeClient()
		if err != nil {
			return err
		}
		version, err := bumpGeneration(ctx, client, l.st.Generation)
		closeNS()
		if err != nil {
			return err
		}
		errs, err := l.waitVersion(ctx, nodes, version)
		if err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	fp, err := agent.Fingerprint([]string{l.st.manifestsDir()})
	if err != nil {
		return err
	}
	errs, err := l.waitFingerprint(ctx, nodes, fp)
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// waitFingerprint waits until every agent reports fp, and returns the
// errors of those that refused it.
func (l *Lab) waitFingerprint(ctx context.Context, nodes []NodeState, fp string) ([]error, error) {
	return l.waitAgents(ctx, nodes, "the change", func(s agent.PolicyStatus) bool { return s.Fingerprint == fp })
}

// waitAgents waits until the status of every agent of nodes has reached
// (what the lab wrote: a manifests fingerprint, an API resourceVersion),
// and returns the errors of those that refused it.
func (l *Lab) waitAgents(ctx context.Context, nodes []NodeState, what string, reached func(agent.PolicyStatus) bool) ([]error, error) {
	ctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	pending := slices.Clone(nodes)
	var refused []error
	for {
		var still []NodeState
		for _, n := range pending {
			s, err := agent.ReadStatus(agent.StatusPath(n.ControlSocket))
			switch {
			case err == nil && reached(s) && s.Error != "":
				refused = append(refused, fmt.Errorf("node %s refused the change (its rules in force stay): %s", n.Name, s.Error))
			case err == nil && reached(s):
			case !n.Agent.alive():
				return nil, fmt.Errorf("lab: the agent of %s is not running; its log %s ends:\n%s", n.Name, n.Agent.Log, logTail(n.Agent.Log))
			default:
				still = append(still, n)
			}
		}
		if pending = still; len(pending) == 0 {
			return refused, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lab: the agent of %s did not report %s within %v; its log %s ends:\n%s",
				pending[0].Name, what, applyTimeout, pending[0].Agent.Log, logTail(pending[0].Agent.Log))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitTunnels waits until every node of nodes has a CHILD_SA with every
// other node.
func (l *Lab) waitTunnels(ctx context.Context, nodes []NodeState) error {
	if len(l.st.Nodes) < 2 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, tunnelTimeout)
	defer cancel()
	for _, n := range nodes {
		for {
			st, err := datapath.ReadStatus(n.ControlSocket)
			if err == nil && tunnelsUp(st) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("lab: %s has no CHILD_SA with every other node after %v (%v); its log %s ends:\n%s",
					n.Name, tunnelTimeout, err, n.Agent.Log, logTail(n.Agent.Log))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func tunnelsUp(st *datapath.Status) bool {
	for _, p := range st.Peers {
		in, out := false, false
		for _, sa := range p.SAs {
			in = in || sa.Direction == "inbound"
			out = out || sa.Direction == "outbound"
		}
		if !in || !out {
			return false
		}
	}
	return len(st.Peers) > 0
}

// logTail is the end of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// Down removes the lab whose state is in dir: it stops its processes
// (SIGTERM, then SIGKILL), and any other process left in its namespaces,
// deletes the namespaces (their links, rules and conntrack entries go with
// them) and the state directory. It works from state.json alone, after a
// crash too, and skips what is already gone.
func Down(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := readState(dir)
	if err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return fmt.Errorf("%w; remove %s by hand if nothing else is in it", err, dir)
		}
		return err
	}
	if st.Dir != dir {
		return fmt.Errorf("lab: %s holds the state of %s; refusing to remove either", dir, st.Dir)
	}
	if unlock, err := lock(dir); err == nil {
		defer unlock()
	}
	return down(st)
}

func down(st *State) error {
	var errs []error
	var procs []Proc
	for _, n := range st.Nodes {
		procs = append(procs, n.Agent)
	}
	for _, s := range st.Servers {
		procs = append(procs, s.Proc)
	}
	if a := st.APIServer; a != nil {
		procs = append(procs, a.Controller, a.Server, a.Etcd)
	}
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if err := p.stop(syscall.SIGTERM, 3*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	// Anything the lab started but had not recorded when it crashed.
	for _, pid := range processesIn(st.Namespaces) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for i := len(st.Namespaces) - 1; i >= 0; i-- {
		if err := nsDelete(st.Namespaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(st.Dir); err != nil {
		errs = append(errs, err)
	}
	for _, d := range st.Made {
		os.Remove(d) // only if empty
	}
	return errors.Join(errs...)
}

// Status is what `lab status` prints.
type Status struct {
	Name       string       `json:"name"`
	StateDir   string       `json:"stateDir"`
	Generation int          `json:"generation"`
	Sources    []string     `json:"sources,omitempty"`
	Nodes      []NodeStatus `json:"nodes"`
	Pods       []PodStatus  `json:"pods"`
}

// NodeStatus is a node, its agent and its tunnels.
type NodeStatus struct {
	Name       string             `json:"name"`
	Netns      string             `json:"netns"`
	Address    netip.Addr         `json:"address"`
	PodCIDR    netip.Prefix       `json:"podCIDR"`
	AgentPID   int                `json:"agentPID"`
	AgentAlive bool               `json:"agentAlive"`
	Policy     agent.PolicyStatus `json:"policy"`
	// Current: the agent's rules are those of the manifests now.
	Current bool         `json:"current"`
	Peers   []PeerStatus `json:"peers,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// PeerStatus is one node's tunnel to another.
type PeerStatus struct {
	Name      string `json:"name"`
	IKESAs    int    `json:"ikeSAs"`
	ChildSAs  int    `json:"childSAs"`
	TxPackets uint64 `json:"txPackets"`
	RxPackets uint64 `json:"rxPackets"`
}

// PodStatus is a pod.
type PodStatus struct {
	Ref         string     `json:"ref"`
	Node        string     `json:"node"`
	Address     netip.Addr `json:"address"`
	Netns       string     `json:"netns"`
	HostNetwork bool       `json:"hostNetwork,omitempty"`
	ServerAlive bool       `json:"serverAlive"`
}

// Status reads the state of every node, agent, tunnel and pod.
func (l *Lab) Status() Status {
	l.reload() // the last state this Lab saw, if the file is gone
	st := l.st
	s := Status{Name: st.Name, StateDir: st.Dir, Generation: st.Generation, Sources: st.Sources}
	fp, fpErr := agent.Fingerprint([]string{st.manifestsDir()})
	for _, n := range st.Nodes {
		ns := NodeStatus{Name: n.Name, Netns: n.Netns, Address: n.Address, PodCIDR: n.PodCIDR, AgentPID: n.Agent.PID, AgentAlive: n.Agent.alive()}
		if ps, err := agent.ReadStatus(agent.StatusPath(n.ControlSocket)); err == nil {
			ns.Policy = ps
			ns.Current = fpErr == nil && ps.Fingerprint == fp && ps.Error == ""
		}
		if ns.AgentAlive {
			ds, err := datapath.ReadStatus(n.ControlSocket)
			if err != nil {
				ns.Error = err.Error()
			} else {
				for _, p := range ds.Peers {
					ps := PeerStatus{Name: p.Name, IKESAs: len(p.IKE), TxPackets: p.TxPackets, RxPackets: p.RxPackets}
					for _, sa := range p.SAs {
						if sa.Direction == "outbound" && !sa.Retiring {
							ps.ChildSAs++
						}
					}
					ns.Peers = append(ns.Peers, ps)
				}
			}
		}
		s.Nodes = append(s.Nodes, ns)
	}
	serving := map[string]bool{}
	for _, sv := range st.Servers {
		for _, r := range sv.Refs {
			serving[r] = sv.Proc.alive()
		}
	}
	for _, p := range st.Pods {
		s.Pods = append(s.Pods, PodStatus{Ref: p.Ref, Node: p.Node, Address: p.Address, Netns: p.Netns, HostNetwork: p.HostNetwork, ServerAlive: serving[p.Ref]})
	}
	return s
}
