package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := &State{Name: "lab", Dir: dir, Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Binary: "/bin/rampart",
		CNIBinary: "/bin/rampart-cni", Underlay: "lab-ul", Generation: 2, Sources: []string{"p.yaml"},
		Nodes: []NodeState{{Name: "node-1", Netns: "lab-n1", Address: NodeAddress(1), PodCIDR: NodePodCIDR(1),
			Config: dir + "/nodes/node-1/agent.yaml", ControlSocket: dir + "/nodes/node-1/control.sock", Agent: Proc{PID: 42, Start: 7, Log: "l"}}},
		Pods: []PodState{{Ref: "x/a", Node: "node-1", Netns: "lab-p1", Address: netip.MustParseAddr("198.19.1.2"), ContainerID: "lab-p1"},
			{Ref: "x/h", Node: "node-1", Netns: "lab-n1", Address: NodeAddress(1), HostNetwork: true}},
		Servers: []ServerState{{Netns: "lab-p1", Refs: []string{"x/a"}, Proc: Proc{PID: 43, Start: 8}}},
	}
	// Recorded before made, once each.
	for _, ns := range []string{"lab-ul", "lab-n1", "lab-p1", "lab-n1"} {
		if err := st.addNamespace(ns); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, st)
	}
	if want := []string{"lab-ul", "lab-n1", "lab-p1"}; !reflect.DeepEqual(got.Namespaces, want) {
		t.Errorf("namespaces %v, want %v", got.Namespaces, want)
	}
	if got.pod("x/a") == nil || got.pod("x/z") != nil || got.node("node-1") == nil || got.node("node-9") != nil {
		t.Error("lookups")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != stateFile {
		t.Errorf("state dir holds %v: a temporary file was left", entries)
	}
	if fi, _ := os.Stat(filepath.Join(dir, stateFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state.json mode %v", fi.Mode())
	}
	if _, err := readState(t.TempDir()); err == nil {
		t.Error("a directory without state.json read as a lab")
	}
	if DefaultStateDir("abc") != "/run/rampart/lab/abc" {
		t.Error(DefaultStateDir("abc"))
	}
}

// A PID is signalled only while it is the process the lab started.
func TestProcIdentity(t *testing.T) {
	start, running := procStart(os.Getpid())
	if !running || start == 0 {
		t.Fatalf("procStart(self) = %d, %v", start, running)
	}
	if !(Proc{PID: os.Getpid(), Start: start}).alive() {
		t.Error("this process is not alive")
	}
	if (Proc{PID: os.Getpid(), Start: start + 1}).alive() {
		t.Error("a PID with another start time counts as the same process")
	}
	if (Proc{}).alive() {
		t.Error("PID 0 is alive")
	}
	// signal refuses a process that is not the recorded one.
	if err := (Proc{PID: os.Getpid(), Start: start + 1}).signal(9); err != nil {
		t.Error(err)
	}
}

func TestLockExcludes(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u, err := lock(dir)
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second lock while the first is held")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the second lock never came")
	}
}
