package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// State is state.json: everything a lab made, so that `lab down` can undo
// it from this file alone, also after the process that made it crashed.
// A namespace, directory or file is recorded before it is made, a process
// as soon as it is started; `lab down` skips what is already gone.
type State struct {
	Name    string    `json:"name"`
	Dir     string    `json:"dir"`
	Created time.Time `json:"created"`
	// Binary runs the agents and the pods' servers; CNIBinary wires pods.
	Binary    string `json:"binary"`
	CNIBinary string `json:"cniBinary"`
	// Made lists the directories outside Dir that the lab created (the
	// parents of a default state directory), removed by down when empty.
	Made []string `json:"made,omitempty"`
	// Namespaces lists every network namespace made, in order.
	Namespaces []string `json:"namespaces"`
	// Underlay is the namespace that holds the bridge between the nodes.
	Underlay string      `json:"underlay"`
	Nodes    []NodeState `json:"nodes"`
	Pods     []PodState  `json:"pods"`
	// Servers are the processes that answer probes: one per pod
	// namespace, one per node for its hostNetwork pods.
	Servers []ServerState `json:"servers,omitempty"`
	// Generation counts the policy sets applied (1 after up); Sources
	// are the paths the current set came from.
	Generation int      `json:"generation"`
	Sources    []string `json:"sources,omitempty"`
	// APIServer is set when the lab runs one (--apiserver): the agents
	// read the cluster from it instead of the manifests directory.
	APIServer *APIServerState `json:"apiServer,omitempty"`
}

// NodeState is one node: a namespace with an agent.
type NodeState struct {
	Name    string       `json:"name"`
	Netns   string       `json:"netns"`
	Address netip.Addr   `json:"address"`
	PodCIDR netip.Prefix `json:"podCIDR"`
	// Config is the agent's config file; ControlSocket the datapath's
	// status socket (the policy status file lies beside it).
	Config        string `json:"config"`
	ControlSocket string `json:"controlSocket"`
	Agent         Proc   `json:"agent"`
}

// PodState is one pod: its own namespace wired by the CNI plugin, or its
// node's namespace for a hostNetwork pod.
type PodState struct {
	Ref         string     `json:"ref"`
	Node        string     `json:"node"`
	Netns       string     `json:"netns"`
	Address     netip.Addr `json:"address"`
	HostNetwork bool       `json:"hostNetwork,omitempty"`
	// ContainerID is what the CNI plugin was given (CNI_CONTAINERID).
	ContainerID string `json:"containerID,omitempty"`
}

// ServerState is one probe responder process.
type ServerState struct {
	Netns string   `json:"netns"`
	Refs  []string `json:"refs"`
	Proc  Proc     `json:"proc"`
}

// Proc is a process the lab started, identified by its PID and its start
// time (field 22 of /proc/PID/stat, in clock ticks since boot), so that a
// PID the kernel gave to another process since is never signalled.
type Proc struct {
	PID   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
	Log   string `json:"log,omitempty"`
}

const (
	stateFile = "state.json"
	lockFile  = "lock"
)

// DefaultStateDir is where a lab called name keeps its state.
func DefaultStateDir(name string) string { return filepath.Join("/run/rampart/lab", name) }

var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// CheckName refuses lab names that would not make short, unique namespace
// names ("<name>-n1", "<name>-p12").
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("lab name %q: want 1 to 12 lowercase letters and digits, starting with a letter", name)
	}
	return nil
}

// readState reads dir/state.json.
func readState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no lab in %s (no %s): is it up? (rampart lab up)", dir, stateFile)
		}
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

// save writes state.json in one rename, so a crash leaves the previous
// version or this one, never half of one.
func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.Dir, stateFile), append(b, '\n'), 0o600)
}

// addNamespace records a namespace about to be made.
func (s *State) addNamespace(name string) error {
	if !slices.Contains(s.Namespaces, name) {
		s.Namespaces = append(s.Namespaces, name)
	}
	return s.save()
}

func (s *State) node(name string) *NodeState {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

func (s *State) pod(ref string) *PodState {
	for i := range s.Pods {
		if s.Pods[i].Ref == ref {
			return &s.Pods[i]
		}
	}
	return nil
}

// Path helpers: everything lives under Dir.
func (s *State) manifestsDir() string       { return filepath.Join(s.Dir, "manifests") }
func (s *State) clusterFile() string        { return filepath.Join(s.manifestsDir(), "cluster.yaml") }
func (s *State) policiesFile() string       { return filepath.Join(s.manifestsDir(), "policies.yaml") }
func (s *State) nodeDir(node string) string { return filepath.Join(s.Dir, "nodes", node) }
func (s *State) logFile(what string) string { return filepath.Join(s.Dir, "logs", what+".log") }
func (s *State) readyFile(netns string) string {
	return filepath.Join(s.Dir, "servers", netns+".ready")
}

// writeFileAtomic writes a file through a temporary one in the same
// directory and a rename. The temporary name ends in ".tmp", which no
// manifest reader takes for a manifest.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// lock takes an exclusive lock on the lab, so that two commands never
// change it at once; unlock with the returned function.
func lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// procStart reads a process's start time, and whether it is still running
// (a zombie is not).
func procStart(pid int) (start uint64, running bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after the last ')' are space-separated, state first.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, false
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 of the whole line
	if err != nil {
		return 0, false
	}
	return start, f[0] != "Z" && f[0] != "X"
}

// alive reports whether p is still the process the lab started.
func (p Proc) alive() bool {
	if p.PID <= 0 {
		return false
	}
	start, running := procStart(p.PID)
	return running && start == p.Start
}

// signal sends sig to p if it is still the process the lab started.
func (p Proc) signal(sig syscall.Signal) error {
	if !p.alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %d: %w", p.PID, err)
	}
	return nil
}

// stop sends sig, and SIGKILL if p is still there after grace; it returns
// once p is gone.
func (p Proc) stop(sig syscall.Signal, grace time.Duration) error {
	if err := p.signal(sig); err != nil {
		return err
	}
	deadline := time.Now().Add(grace)
	for p.alive() {
		if time.Now().After(deadline) {
			if err := p.signal(syscall.SIGKILL); err != nil {
				return err
			}
			deadline = time.Now().Add(5 * time.Second)
			for p.alive() {
				if time.Now().After(deadline) {
					return fmt.Errorf("process %d survives SIGKILL", p.PID)
				}
				time.Sleep(10 * time.Millisecond)
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
