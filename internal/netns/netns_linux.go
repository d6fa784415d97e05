package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are bind-mounted, as by `ip netns add`
// (iproute2's NETNS_RUN_DIR), so `ip netns exec NAME` finds ours.
const RunDir = "/run/netns"

// NS is a named network namespace that this package made and owns: it
// exists until Delete.
type NS struct {
	// Name is the file name under RunDir, the name `ip netns exec` takes.
	Name string

	mu     sync.Mutex
	handle vnetns.NsHandle // open while the namespace exists; -1 after Delete
}

// runDirMu serializes the one-time upgrade of RunDir to a shared mount
// point between goroutines of this process (ip(8) does it per call too).
var runDirMu sync.Mutex

// New makes the network namespace name, bind-mounted at RunDir/name exactly
// as `ip netns add name` does, and brings its loopback up. It fails with an
// error wrapping fs.ErrExist if the name is taken.
func New(name string) (*NS, error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return nil, fmt.Errorf("netns: invalid namespace name %q: want a plain file name", name)
	}
	if err := prepareRunDir(); err != nil {
		return nil, err
	}
	path := filepath.Join(RunDir, name)
	// O_EXCL makes a name collision an error instead of silently sharing
	// (or unmounting) somebody else's namespace.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return nil, fmt.Errorf("netns: create %s: %w", path, err)
	}
	f.Close()

	// unshare(CLONE_NEWNET) moves the calling thread into the new
	// namespace. Do it on a throw-away goroutine whose locked thread is never
	// unlocked: the runtime terminates that thread when the goroutine
	// returns, so no other goroutine ever runs in the wrong namespace.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount %s on %s: %w", self, path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("netns: new %s: %w", name, err)
	}

	h, err := vnetns.GetFromPath(path)
	if err != nil {
		unmountAndRemove(path)
		return nil, fmt.Errorf("netns: open %s: %w", path, err)
	}
	n := &NS{Name: name, handle: h}
	if err := n.noDAD(); err != nil {
		n.Delete()
		return nil, err
	}
	if err := n.SetUp("lo"); err != nil {
		n.Delete()
		return nil, err
	}
	return n, nil
}

// noDAD turns IPv6 duplicate address detection off for every link made
// in the namespace from now on. Addresses here are unique by construction,
// and a tentative address (one to two seconds after it is added, link-local
// ones included) cannot be used as a source, the link-local one being what
// neighbor solicitations of forwarded packets are sent from.
func (n *NS) noDAD() error {
	err := n.Do(func() error {
		for _, p := range []string{"/proc/sys/net/ipv6/conf/all/accept_dad", "/proc/sys/net/ipv6/conf/default/accept_dad"} {
			if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netns: %s: turn off IPv6 DAD: %w", n.Name, err)
	}
	return nil
}

// prepareRunDir makes RunDir a shared mount point, as iproute2's
// netns_add does, so that unmounting a namespace file here also unmounts
// the copies that other mount namespaces (`ip netns exec` makes one per
// command) hold, and the namespace is freed as soon as it is deleted.
func prepareRunDir() error {
	runDirMu.Lock()
	defer runDirMu.Unlock()
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("netns: mount --make-rshared %s: %w", RunDir, err)
	}
	// EINVAL: not a mount point yet. Bind it onto itself (recursively, to
	// keep the namespaces already mounted there), then make it shared.
	if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("netns: mount --rbind %s %s: %w", RunDir, RunDir, err)
	}
	if err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("netns: mount --make-rshared %s: %w", RunDir, err)
	}
	return nil
}

// unmountAndRemove is `ip netns del`: a lazy unmount (the namespace lives
// on while a process or socket still uses it) and the file's removal.
func unmountAndRemove(path string) error {
	var errs []error
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("umount %s: %w", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Path is the namespace's file, RunDir/Name.
func (n *NS) Path() string { return filepath.Join(RunDir, n.Name) }

// Open returns the existing namespace name (one that New or `ip netns
// add` made), for Do and Command. Close it when done; it stays.
func Open(name string) (*NS, error) {
	if name == "" || filepath.Base(name) != name {
		return nil, fmt.Errorf("netns: invalid namespace name %q: want a plain file name", name)
	}
	h, err := vnetns.GetFromPath(filepath.Join(RunDir, name))
	if err != nil {
		return nil, fmt.Errorf("netns: open %s: %w", name, err)
	}
	return &NS{Name: name, handle: h}, nil
}

// Close releases the handle that Open (or New) holds, leaving the
// namespace as it is. Do fails afterwards.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle == -1 {
		return nil
	}
	err := n.handle.Close()
	n.handle = -1
	return err
}

// Delete removes the namespace as `ip netns del` does. The kernel destroys
// it, and every link in it (a veth's peer elsewhere goes with it), once no
// process, open file or socket refers to it any more. Delete is idempotent.
func (n *NS) Delete() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle == -1 {
		return nil
	}
	var errs []error
	if err := n.handle.Close(); err != nil {
		errs = append(errs, err)
	}
	n.handle = -1
	if err := unmountAndRemove(n.Path()); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netns: delete %s: %w", n.Name, err)
	}
	return nil
}

// fd returns the open namespace handle, or an error after Delete.
func (n *NS) fd() (vnetns.NsHandle, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handle == -1 {
		return -1, fmt.Errorf("netns: %s: namespace deleted", n.Name)
	}
	return n.handle, nil
}

// Do runs fn with the calling OS thread in the namespace, on a goroutine of
// its own with its OS thread locked (containernetworking/plugins pkg/ns).
// Goroutines that fn starts do not run in the namespace; sockets that fn
// opens stay in it. If moving the thread back fails the thread stays locked
// and the runtime discards it, so it never runs other goroutines.
func (n *NS) Do(fn func() error) error {
	target, err := n.fd()
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: get current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := vnetns.Set(target); err != nil {
			// setns failed, so the thread is still where it was.
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", n.Name, err)
			return
		}
		fnErr := fn()
		if err := vnetns.Set(orig); err != nil {
			// Keep the thread locked: it dies with this goroutine.
			errc <- errors.Join(fnErr, fmt.Errorf("netns: leave %s: %w", n.Name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// Command returns a command that runs name with args in the namespace,
// through `ip netns exec`, which also gives it a private mount namespace
// with /sys of this network namespace. The process is the command itself
// (ip execs it), so killing cmd.Process kills the command.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// netlink returns a netlink handle whose sockets live in the namespace;
// the caller closes it. The sockets are opened inside Do, so they belong
// to the namespace whatever thread later uses them.
func (n *NS) netlink() (*netlink.Handle, error) {
	var h *netlink.Handle
	err := n.Do(func() error {
		var err error
		// Only rtnetlink: links, addresses, routes. (The default set also
		// opens xfrm and netfilter sockets this package never uses.)
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: netlink in %s: %w", n.Name, err)
	}
	return h, nil
}

// withNetlink runs fn with a netlink handle in the namespace.
func (n *NS) withNetlink(fn func(h *netlink.Handle) error) error {
	h, err := n.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}
