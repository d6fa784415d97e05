package cni

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newStore(t *testing.T, dir, prefix string) *Store {
	t.Helper()
	s, err := NewStore(dir, netip.MustParsePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func owner(i int) Owner { return Owner{ContainerID: fmt.Sprintf("c%d", i), IfName: "eth0"} }

func mustAllocate(t *testing.T, s *Store, o Owner) netip.Addr {
	t.Helper()
	a, err := s.Allocate(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// files lists the address files in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestNewStoreRejects(t *testing.T) {
	for _, p := range []netip.Prefix{{}, netip.MustParsePrefix("198.19.1.0/31"), netip.MustParsePrefix("198.19.1.1/24"), netip.MustParsePrefix("fd00::/64")} {
		if _, err := NewStore(t.TempDir(), p); err == nil {
			t.Errorf("NewStore(%s): no error", p)
		}
	}
}

// TestStoreOrder walks a /29 around twice: addresses come in order, never
// the network, first or broadcast address, a freed one is not reused at
// once, and the scan wraps around.
func TestStoreOrder(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, "198.19.1.0/29") // .2 to .6 are handed out
	var got []string
	for i := range 5 {
		got = append(got, mustAllocate(t, s, owner(i)).String())
	}
	if want := "[198.19.1.2 198.19.1.3 198.19.1.4 198.19.1.5 198.19.1.6]"; fmt.Sprint(got) != want {
		t.Fatalf("allocated %v, want %s", got, want)
	}
	if _, err := s.Allocate(owner(99)); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Allocate on a full store: %v, want ErrExhausted", err)
	}

	// Free .3 and .5: the scan resumes after .6, wraps, and takes .3 first.
	for _, i := range []int{1, 3} {
		if freed, err := s.Release(owner(i)); err != nil || len(freed) != 1 {
			t.Fatalf("Release(%v) = %v, %v", owner(i), freed, err)
		}
	}
	if a := mustAllocate(t, s, owner(10)); a.String() != "198.19.1.3" {
		t.Errorf("after wrapping: %s, want 198.19.1.3", a)
	}
	if a := mustAllocate(t, s, owner(11)); a.String() != "198.19.1.5" {
		t.Errorf("next: %s, want 198.19.1.5", a)
	}
}

func TestStoreNoImmediateReuse(t *testing.T) {
	s := newStore(t, t.TempDir(), "198.19.1.0/24")
	a := mustAllocate(t, s, owner(1))
	if _, err := s.Release(owner(1)); err != nil {
		t.Fatal(err)
	}
	if b := mustAllocate(t, s, owner(1)); b == a {
		t.Errorf("the address just freed, %s, was handed out again at once", a)
	}
}

func TestStoreSmallest(t *testing.T) {
	s := newStore(t, t.TempDir(), "198.19.1.0/30")
	if a := mustAllocate(t, s, owner(1)); a.String() != "198.19.1.2" {
		t.Errorf("/30: %s, want 198.19.1.2, its only pod address", a)
	}
	if _, err := s.Allocate(owner(2)); !errors.Is(err, ErrExhausted) {
		t.Errorf("/30, second: %v, want ErrExhausted", err)
	}
}

func TestStoreOwners(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, "198.19.1.0/24")
	a := mustAllocate(t, s, Owner{"c1", "eth0"})
	b := mustAllocate(t, s, Owner{"c1", "eth1"}) // a second interface of the same container
	if a == b {
		t.Fatalf("two interfaces share %s", a)
	}
	if _, err := s.Allocate(Owner{"c1", "eth0"}); !errors.Is(err, ErrAllocated) {
		t.Errorf("second Allocate for one owner: %v, want ErrAllocated", err)
	}
	for _, o := range []Owner{{"", "eth0"}, {"c", ""}, {"c\nx", "eth0"}} {
		if _, err := s.Allocate(o); err == nil {
			t.Errorf("Allocate(%q): no error", o)
		}
	}
	if got, ok, err := s.Lookup(Owner{"c1", "eth1"}); err != nil || !ok || got != b {
		t.Errorf("Lookup = %s, %v, %v; want %s", got, ok, err, b)
	}
	if _, ok, err := s.Lookup(Owner{"c2", "eth0"}); err != nil || ok {
		t.Errorf("Lookup of an unknown owner = %v, %v", ok, err)
	}
	content, err := os.ReadFile(filepath.Join(dir, a.String()))
	if err != nil || string(content) != "c1\neth0\n" {
		t.Errorf("file %s: %q, %v", a, content, err)
	}

	// ReleaseAddr frees only what its owner holds.
	if err := s.ReleaseAddr(a, Owner{"c9", "eth0"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Lookup(Owner{"c1", "eth0"}); !ok {
		t.Error("ReleaseAddr freed another owner's address")
	}
	if err := s.ReleaseAddr(a, Owner{"c1", "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseAddr(a, Owner{"c1", "eth0"}); err != nil {
		t.Errorf("ReleaseAddr twice: %v", err)
	}

	// Release is idempotent, and frees nothing of others.
	for range 2 {
		if _, err := s.Release(Owner{"c1", "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	if freed, err := s.Release(Owner{"nobody", "eth0"}); err != nil || len(freed) != 0 {
		t.Errorf("Release of an unknown owner = %v, %v", freed, err)
	}
	if got := files(t, dir); fmt.Sprint(got) != fmt.Sprintf("[%s]", b) {
		t.Errorf("files %v, want only %s", got, b)
	}
}

// TestStoreRestart: a new Store on the same directory (a new plugin
// process) sees every allocation and resumes after the last one.
func TestStoreRestart(t *testing.T) {
	dir := t.TempDir()
	s1 := newStore(t, dir, "198.19.1.0/24")
	a := mustAllocate(t, s1, owner(1))
	b := mustAllocate(t, s1, owner(2))
	if _, err := s1.Release(owner(2)); err != nil {
		t.Fatal(err)
	}

	s2 := newStore(t, dir, "198.19.1.0/24")
	held, err := s2.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[a] != owner(1) {
		t.Errorf("List after restart = %v, want %s: %v", held, a, owner(1))
	}
	if c := mustAllocate(t, s2, owner(3)); c == a || c == b || c != b.Next() {
		t.Errorf("after restart: %s, want %s (after the last handed out, %s)", c, b.Next(), b)
	}
}

// TestStoreDamage: files the store did not write (or a crash left half
// written) never make it hand out an address twice.
func TestStoreDamage(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, "198.19.1.0/29")
	for name, content := range map[string]string{
		"198.19.1.2":    "",          // created, never written
		"198.19.1.3":    "garbage",   // not two lines
		"198.19.9.9":    "c\neth0\n", // another pod CIDR's
		"last_reserved": "nonsense\n",
		"README":        "hello",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if a := mustAllocate(t, s, owner(1)); a.String() != "198.19.1.4" {
		t.Errorf("Allocate = %s, want 198.19.1.4, the first address without a file", a)
	}
	held, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 3 || held[netip.MustParseAddr("198.19.1.2")] != (Owner{}) {
		t.Errorf("List = %v", held)
	}
}

// TestStoreConcurrentGoroutines allocates from many goroutines at once,
// half through one shared Store and half each through a Store of its own
// on the same directory (so only the flock serializes them).
func TestStoreConcurrentGoroutines(t *testing.T) {
	dir := t.TempDir()
	shared := newStore(t, dir, "198.19.1.0/24")
	const n = 128
	addrs := make([]netip.Addr, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := shared
			if i%2 == 1 {
				var err error
				if s, err = NewStore(dir, shared.Prefix()); err != nil {
					errs[i] = err
					return
				}
			}
			addrs[i], errs[i] = s.Allocate(owner(i))
		})
	}
	wg.Wait()
	checkUnique(t, addrs, errs)
	if got := len(files(t, dir)); got != n {
		t.Errorf("%d address files, want %d", got, n)
	}

	// Release half and allocate again, concurrently.
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				_, errs[i] = shared.Release(owner(i))
				addrs[i] = netip.Addr{}
				return
			}
			_, errs[i] = shared.Allocate(owner(n + i))
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	held, err := shared.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != n {
		t.Errorf("%d held after releasing and allocating %d, want %d", len(held), n/2, n)
	}
}

// TestStoreLocks: while another process (here: another descriptor) holds
// the flock, Allocate waits.
func TestStoreLocks(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, "198.19.1.0/24")
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Allocate(owner(1)); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Allocate returned (%v) while the lock was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Allocate still waiting after the lock was released")
	}
}

// TestStoreConcurrentSameOwner: many Stores allocating for one owner at
// once give it exactly one address; the check for an existing address and
// the allocation happen under one lock.
func TestStoreConcurrentSameOwner(t *testing.T) {
	dir := t.TempDir()
	const n = 30
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := NewStore(dir, netip.MustParsePrefix("198.19.1.0/24"))
			if err == nil {
				_, err = s.Allocate(owner(1))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrAllocated):
			t.Errorf("Allocate: %v, want success or ErrAllocated", err)
		}
	}
	if ok != 1 || len(files(t, dir)) != 1 {
		t.Errorf("%d allocations succeeded, %d files; want 1 and 1", ok, len(files(t, dir)))
	}
}

func checkUnique(t *testing.T, addrs []netip.Addr, errs []error) {
	t.Helper()
	seen := map[netip.Addr]int{}
	for i, a := range addrs {
		if errs[i] != nil {
			t.Fatalf("allocation %d: %v", i, errs[i])
		}
		if j, dup := seen[a]; dup {
			t.Fatalf("%s handed out twice (allocations %d and %d)", a, j, i)
		}
		seen[a] = i
	}
}

// The helper process of TestStoreConcurrentProcesses: it allocates for
// owners p<id>-0 … p<id>-<count-1> and prints each address on a line.
const (
	helperEnvDir   = "RAMPART_CNI_TEST_IPAM_DIR"
	helperEnvID    = "RAMPART_CNI_TEST_IPAM_ID"
	helperEnvCount = "RAMPART_CNI_TEST_IPAM_COUNT"
)

func TestIPAMHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnvDir)
	if dir == "" {
		t.Skip("helper process of TestStoreConcurrentProcesses")
	}
	count, _ := strconv.Atoi(os.Getenv(helperEnvCount))
	s, err := NewStore(dir, netip.MustParsePrefix("198.19.1.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range count {
		a, err := s.Allocate(Owner{ContainerID: fmt.Sprintf("p%s-%d", os.Getenv(helperEnvID), i), IfName: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(a)
	}
}

// TestStoreConcurrentProcesses allocates from several processes at once
// (this test binary, run again) on one directory: the flock is all that
// keeps them apart.
func TestStoreConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	const procs, each = 5, 40
	outs := make([]bytes.Buffer, procs)
	cmds := make([]*exec.Cmd, procs)
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIPAMHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnvDir+"="+dir, helperEnvID+"="+strconv.Itoa(p), helperEnvCount+"="+strconv.Itoa(each))
		cmd.Stdout = &outs[p]
		cmd.Stderr = &outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
	}
	var addrs []netip.Addr
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", p, err, outs[p].String())
		}
		sc := bufio.NewScanner(&outs[p])
		for sc.Scan() {
			if a, err := netip.ParseAddr(sc.Text()); err == nil {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) != procs*each {
		t.Fatalf("%d addresses from the processes, want %d", len(addrs), procs*each)
	}
	checkUnique(t, addrs, make([]error, len(addrs)))
	if got := len(files(t, dir)); got != procs*each {
		t.Errorf("%d address files, want %d", got, procs*each)
	}
}
