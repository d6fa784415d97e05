package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rampartnet/rampart/internal/agent"
	"github.com/rampartnet/rampart/internal/authz"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/internal/policy"
)

// wirePods gives every pod a namespace wired by the CNI plugin on its
// node, as a container runtime would (CNI_COMMAND=ADD in the node's
// namespace, the configuration `agent install` wrote on stdin); the
// address is the one the plugin returns. A hostNetwork pod has its node's
// namespace and address.
func (l *Lab) wirePods(ctx context.Context, plan *Plan) error {
	st := l.st
	k := 0
	for _, pp := range plan.Pods {
		node := st.node(pp.Node)
		p := PodState{Ref: pp.Ref, Node: pp.Node, HostNetwork: pp.HostNetwork}
		if pp.HostNetwork {
			p.Netns, p.Address = node.Netns, node.Address
			st.Pods = append(st.Pods, p)
			continue
		}
		k++
		p.Netns = fmt.Sprintf("%s-p%d", st.Name, k)
		p.ContainerID = p.Netns
		if err := l.newNamespace(p.Netns); err != nil {
			return err
		}
		addr, err := cniAdd(ctx, st, node, &p)
		if err != nil {
			return fmt.Errorf("lab: wire pod %s on %s: %w", p.Ref, node.Name, err)
		}
		p.Address = addr
		st.Pods = append(st.Pods, p)
		if err := st.save(); err != nil {
			return err
		}
	}
	fmt.Fprintf(l.log, "pods: %d wired by %s\n", k, filepath.Base(st.CNIBinary))
	return st.save()
}

// cniAdd runs the plugin's ADD for a pod and returns its address.
func cniAdd(ctx context.Context, st *State, node *NodeState, p *PodState) (netip.Addr, error) {
	conf, err := pluginConf(filepath.Join(st.nodeDir(node.Name), "net.d", agent.CNIConfFile))
	if err != nil {
		return netip.Addr{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := nsCommand(ctx, node.Netns, st.CNIBinary)
	cmd.Env = []string{
		"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + p.ContainerID, "CNI_NETNS=" + filepath.Join(netnsRunDir, p.Netns),
		"CNI_IFNAME=" + podInterface, "CNI_PATH=" + filepath.Dir(st.CNIBinary), "PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdin = bytes.NewReader(conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s ADD: %v: %s%s", filepath.Base(st.CNIBinary), err, out, stderr.Bytes())
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("ADD result %q: no address (%v)", out, err)
	}
	pfx, err := netip.ParsePrefix(res.IPs[0].Address)
	if err != nil || !node.PodCIDR.Contains(pfx.Addr()) {
		return netip.Addr{}, fmt.Errorf("ADD result address %q is not in %s", res.IPs[0].Address, node.PodCIDR)
	}
	return pfx.Addr(), nil
}

// pluginConf is the plugin's view of a one-plugin conflist: its entry,
// with the list's cniVersion and name (CNI spec, "Network configuration
// lists").
func pluginConf(conflist string) ([]byte, error) {
	b, err := os.ReadFile(conflist)
	if err != nil {
		return nil, err
	}
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &list); err != nil || len(list.Plugins) != 1 {
		return nil, fmt.Errorf("%s: want a conflist with one plugin (%v)", conflist, err)
	}
	conf := list.Plugins[0]
	conf["cniVersion"], conf["name"] = list.CNIVersion, list.Name
	return json.Marshal(conf)
}

// startServers starts the responders: one in each pod's namespace, and one
// per node for the node's hostNetwork pods, on their declared ports.
func (l *Lab) startServers(snap *cluster.Snapshot) error {
	st := l.st
	ports := map[string][]policy.ContainerPort{}
	m, err := loadLabModel(st)
	if err != nil {
		return err
	}
	for _, e := range m.Endpoints {
		ports[e.Ref()] = e.Ports
	}
	hostRefs := map[string][]string{} // node netns → hostNetwork pods
	for _, p := range st.Pods {
		if p.HostNetwork {
			hostRefs[p.Netns] = append(hostRefs[p.Netns], p.Ref)
			continue
		}
		if err := l.startServer(p.Netns, []string{p.Ref}, p.Address, true, nil); err != nil {
			return err
		}
	}
	for _, n := range st.Nodes {
		refs := hostRefs[n.Netns]
		if len(refs) == 0 {
			continue
		}
		var all []policy.ContainerPort
		for _, r := range refs {
			for _, p := range ports[r] {
				p.Name = ""
				if !slices.Contains(all, p) {
					all = append(all, p)
				}
			}
		}
		if err := l.startServer(n.Netns, refs, n.Address, false, all); err != nil {
			return err
		}
	}
	return st.save()
}

func (l *Lab) startServer(netns string, refs []string, addr netip.Addr, redirect bool, ports []policy.ContainerPort) error {
	args := []string{"lab", "serve", "--address", addr.String(), "--ready", l.st.readyFile(netns)}
	for _, r := range refs {
		args = append(args, "--pod", r)
	}
	if redirect {
		args = append(args, "--redirect")
	}
	for _, p := range ports {
		args = append(args, "--port", fmt.Sprintf("%d/%s", p.Port, p.Protocol))
	}
	p, err := l.startProc(netns, "serve-"+netns, args...)
	if err != nil {
		return err
	}
	l.st.Servers = append(l.st.Servers, ServerState{Netns: netns, Refs: refs, Proc: p})
	return l.st.save()
}

// waitServers waits until every responder has written its ready file.
func (l *Lab) waitServers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for _, s := range l.st.Servers {
		for {
			if _, err := os.Stat(l.st.readyFile(s.Netns)); err == nil {
				break
			}
			if !s.Proc.alive() {
				return fmt.Errorf("lab: the responder in %s exited; its log %s ends:\n%s", s.Netns, s.Proc.Log, logTail(s.Proc.Log))
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("lab: the responder in %s is not ready after %v; its log %s ends:\n%s", s.Netns, readyTimeout, s.Proc.Log, logTail(s.Proc.Log))
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	Generation int
	Policies   int
	// Ignored counts the input's other objects: the lab's namespaces and
	// pods come from up.
	Ignored int
	// Diagnostics are the input's warnings and notes.
	Diagnostics []cluster.Diagnostic
}

// Apply replaces the lab's policies with the NetworkPolicies of paths, and
// waits until every agent has applied them. Input with errors is refused
// with every diagnostic (file:line of the input) before anything changes;
// if an agent refuses the new set, the previous one is written back, so
// that the manifests say what is in force, and the error says why.
func (l *Lab) Apply(ctx context.Context, paths []string) (*ApplyResult, error) {
	st := l.st
	unlock, err := lock(st.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := l.reload(); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("no manifest path given")
	}
	in, err := cluster.Load(paths...)
	if err != nil {
		return nil, err
	}
	base, err := cluster.Load(st.clusterFile())
	if err != nil {
		return nil, err
	}
	// The input's policies, validated against the lab's cluster; reading
	// errors anywhere in the input refuse it too.
	cand := policiesOf(in)
	cand.Namespaces, cand.Pods, cand.Nodes = base.Namespaces, base.Pods, base.Nodes
	diags := append(slices.Clone(in.Diagnostics), policy.Validate(cand)...)
	_, ads := authz.Load(cand.AuthorizationPolicies, authz.Options{})
	diags = append(diags, ads...)
	cluster.SortDiagnostics(diags)
	res := &ApplyResult{Generation: st.Generation, Policies: len(in.NetworkPolicies) + len(in.ClusterNetworkPolicies) + len(in.AdminNetworkPolicies) + len(in.BaselineAdminNetworkPolicies) + len(in.AuthorizationPolicies),
		Ignored: declared(in.Namespaces) + len(in.Pods) + len(in.Nodes) + len(in.Services)}
	for _, d := range diags {
		if d.Severity != cluster.Error && !strings.HasPrefix(d.File, st.Dir) {
			res.Diagnostics = append(res.Diagnostics, d)
		}
	}
	if cluster.HasErrors(diags) {
		return res, &InvalidError{Diagnostics: diags}
	}
	prev, err := os.ReadFile(st.policiesFile())
	if err != nil {
		return nil, err
	}
	next, err := policiesManifest(policiesOf(in), st.Generation+1)
	if err != nil {
		return nil, err
	}
	if err := l.writePolicies(next); err != nil {
		return nil, err
	}
	restore := func(why error) error {
		if err := l.writePolicies(prev); err != nil {
			return errors.Join(why, fmt.Errorf("and writing the previous policies back: %w", err))
		}
		if st.APIServer != nil {
			if _, err := l.syncAPI(ctx, false); err != nil {
				return errors.Join(why, fmt.Errorf("and writing the previous policies back to the API server: %w", err))
			}
			l.waitApplied(ctx, st.Nodes)
		} else if fp, err := agent.Fingerprint([]string{st.manifestsDir()}); err == nil {
			l.waitFingerprint(ctx, st.Nodes, fp)
		}
		return why
	}
	if _, err := loadLabModel(st); err != nil {
		return nil, restore(err)
	}
	fmt.Fprintf(l.log, "policy set %d written; waiting for %d agents\n", st.Generation+1, len(st.Nodes))
	if st.APIServer != nil {
		// The API server takes the set; the agents read it from there.
		if _, err := l.syncAPI(ctx, false); err != nil {
			return nil, restore(err)
		}
	}
	if err := l.waitApplied(ctx, st.Nodes); err != nil {
		return nil, restore(fmt.Errorf("%w\nthe previous policies (set %d) stay in force", err, st.Generation))
	}
	st.Generation++
	st.Sources = paths
	res.Generation = st.Generation
	return res, st.save()
}

// writePolicies replaces policies.yaml. Its modification time is set past
// the previous one's: the agents notice a change by names, sizes and
// times, and two sets of one size written within one clock tick would
// otherwise look the same.
func (l *Lab) writePolicies(b []byte) error {
	path := l.st.policiesFile()
	mtime := time.Now()
	if fi, err := os.Stat(path); err == nil && !mtime.After(fi.ModTime()) {
		mtime = fi.ModTime().Add(time.Millisecond)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// declared counts the namespaces the input declares (not those its
// objects only refer to).
func declared(nss []*cluster.Namespace) int {
	n := 0
	for _, ns := range nss {
		if ns.Declared {
			n++
		}
	}
	return n
}
