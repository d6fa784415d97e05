package cni

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The address store of one network: a directory with one file per
// allocated address, named by the address, and two of its own:
//
//	<dataDir>/<network>/198.19.1.2      "<containerID>\n<ifname>\n"
//	<dataDir>/<network>/198.19.1.3      ...
//	<dataDir>/<network>/last_reserved   "198.19.1.3      \n" (padded to 15)
//	<dataDir>/<network>/lock            (empty; flock(2) target)
//
// Everything is on disk, so a new plugin process (one per CNI command) sees
// what earlier ones allocated. Every operation holds an exclusive flock on
// the lock file, which serializes plugin processes and goroutines alike
// (each operation opens the lock file anew, so each has a lock of its own).
// An address file is created with O_CREATE|O_EXCL, so even a writer that
// bypassed the lock could not take an address twice.
const (
	lockFile = "lock"
	lastFile = "last_reserved"
)

// Errors callers branch on.
var (
	// ErrExhausted: every address of the pod CIDR is taken.
	ErrExhausted = errors.New("no free address")
	// ErrAllocated: the owner already holds an address (an ADD without
	// the DEL of the previous one).
	ErrAllocated = errors.New("already holds an address")
)

// Owner is who holds an address: one interface of one container, the pair
// that identifies a CNI attachment.
type Owner struct {
	ContainerID string
	IfName      string
}

func (o Owner) String() string { return o.ContainerID + "/" + o.IfName }

// valid reports whether the owner can be written into its file and read
// back: a line each, neither empty.
func (o Owner) valid() bool {
	return o.ContainerID != "" && o.IfName != "" && !strings.ContainsAny(o.ContainerID+o.IfName, "\n\r")
}

func (o Owner) encode() []byte { return []byte(o.ContainerID + "\n" + o.IfName + "\n") }

// decodeOwner reads an address file. A file that does not hold two lines
// (a crash between its creation and its write) decodes as the zero Owner:
// its address stays taken, by nobody that Release can name.
func decodeOwner(b []byte) Owner {
	lines := strings.Split(string(b), "\n")
	if len(lines) != 3 || lines[2] != "" || lines[0] == "" || lines[1] == "" {
		return Owner{}
	}
	return Owner{ContainerID: lines[0], IfName: lines[1]}
}

// Store hands out the addresses of one IPv4 pod CIDR, never the same one
// twice until it is released. Its methods are safe for concurrent use, also
// with other Stores on the same directory in this or other processes.
type Store struct {
	dir    string
	prefix netip.Prefix
}

// NewStore opens the store in dir (making the directory if needed) for the
// pod CIDR prefix, an IPv4 network of /30 or shorter.
func NewStore(dir string, prefix netip.Prefix) (*Store, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() || prefix.Masked() != prefix || prefix.Bits() > maxPrefixBits {
		return nil, fmt.Errorf("ipam: pod CIDR %s: want an IPv4 network of /%d or shorter", prefix, maxPrefixBits)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	return &Store{dir: dir, prefix: prefix}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Prefix is the pod CIDR that the store hands out addresses of.
func (s *Store) Prefix() netip.Prefix { return s.prefix }

// first and last are the bounds of the addresses handed out: the network
// address is not an address, the first one after it is the node's (the
// customary gateway address, kept for the node agent), and the last one is
// the broadcast address.
func (s *Store) first() netip.Addr { return s.prefix.Addr().Next().Next() }

func (s *Store) last() netip.Addr {
	a := s.prefix.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-s.prefix.Bits()) - 1 // broadcast
	v--
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// usable reports whether a is one of the addresses the store hands out.
func (s *Store) usable(a netip.Addr) bool {
	return a.Is4() && s.first().Compare(a) <= 0 && a.Compare(s.last()) <= 0
}

// Allocate gives owner the next free address after the last one handed out
// (wrapping around), so a just released address is the last to be reused:
// a packet or a conntrack entry still meant for the old pod does not reach
// a new one at once. It fails with ErrAllocated if owner already holds an
// address, and with ErrExhausted if none is free.
func (s *Store) Allocate(owner Owner) (addr netip.Addr, err error) {
	if !owner.valid() {
		return netip.Addr{}, fmt.Errorf("ipam: invalid owner %q", owner)
	}
	err = s.locked(func() error {
		held, err := s.list()
		if err != nil {
			return err
		}
		for a, o := range held {
			if o == owner {
				return fmt.Errorf("%s %w: %s", owner, ErrAllocated, a)
			}
		}
		start := s.first()
		if prev, ok := s.readLast(); ok && prev != s.last() {
			start = prev.Next()
		}
		for a := start; ; {
			if _, taken := held[a]; !taken {
				switch err := s.create(a, owner); {
				case err == nil:
					addr = a
					return s.writeLast(a)
				case !errors.Is(err, fs.ErrExist):
					return err
				}
			}
			if a = a.Next(); !s.usable(a) {
				a = s.first()
			}
			if a == start {
				return fmt.Errorf("%w in %s: all %d taken", ErrExhausted, s.prefix, len(held))
			}
		}
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ipam: allocate for %s: %w", owner, err)
	}
	return addr, nil
}

// create writes a's file, failing with fs.ErrExist if a is taken.
func (s *Store) create(a netip.Addr, owner Owner) error {
	path := filepath.Join(s.dir, a.String())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(owner.encode())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A half-written file would hold the address for nobody.
		os.Remove(path)
		return err
	}
	return nil
}

// Release frees every address that owner holds (normally one) and returns
// them. Releasing an owner that holds nothing is not an error: DEL is
// idempotent.
func (s *Store) Release(owner Owner) ([]netip.Addr, error) {
	var freed []netip.Addr
	err := s.locked(func() error {
		held, err := s.list()
		if err != nil {
			return err
		}
		for a, o := range held {
			if o != owner {
				continue
			}
			if err := os.Remove(filepath.Join(s.dir, a.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			freed = append(freed, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ipam: release %s: %w", owner, err)
	}
	return freed, nil
}

// ReleaseAddr frees a if owner still holds it, and does nothing otherwise:
// the undo of one Allocate, which must not free an address that another
// attachment holds.
func (s *Store) ReleaseAddr(a netip.Addr, owner Owner) error {
	err := s.locked(func() error {
		path := filepath.Join(s.dir, a.String())
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if decodeOwner(b) != owner {
			return nil
		}
		return os.Remove(path)
	})
	if err != nil {
		return fmt.Errorf("ipam: release %s of %s: %w", a, owner, err)
	}
	return nil
}

// Lookup returns the address that owner holds, if any.
func (s *Store) Lookup(owner Owner) (netip.Addr, bool, error) {
	held, err := s.List()
	if err != nil {
		return netip.Addr{}, false, err
	}
	for a, o := range held {
		if o == owner {
			return a, true, nil
		}
	}
	return netip.Addr{}, false, nil
}

// List returns every allocated address and its owner (the zero Owner for a
// file that could not be read back).
func (s *Store) List() (map[netip.Addr]Owner, error) {
	var held map[netip.Addr]Owner
	err := s.locked(func() error {
		var err error
		held, err = s.list()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ipam: list %s: %w", s.dir, err)
	}
	return held, nil
}

// list reads the directory; the caller holds the lock. Files whose names
// are not addresses of the pod CIDR are not the store's (or belong to a
// former pod CIDR of the network) and are skipped.
func (s *Store) list() (map[netip.Addr]Owner, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	held := make(map[netip.Addr]Owner, len(ents))
	for _, e := range ents {
		a, err := netip.ParseAddr(e.Name())
		if err != nil || !s.prefix.Contains(a) || !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		held[a] = decodeOwner(b)
	}
	return held, nil
}

// readLast returns the last address handed out, if it is recorded and
// still one of the pod CIDR's.
func (s *Store) readLast() (netip.Addr, bool) {
	b, err := os.ReadFile(filepath.Join(s.dir, lastFile))
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil || !s.usable(a) {
		return netip.Addr{}, false
	}
	return a, true
}

// writeLast records a as the last address handed out. A lost or torn
// record only moves where the next scan starts, so it is overwritten in
// place, padded to a fixed width: no fsync, and neither a rename nor a
// truncation, on which ext4 (auto_da_alloc) flushes the data to disk,
// milliseconds that every ADD would wait for.
func (s *Store) writeLast(a netip.Addr) error {
	f, err := os.OpenFile(filepath.Join(s.dir, lastFile), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%-15s\n", a)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// locked runs fn holding the store's exclusive lock.
func (s *Store) locked(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// Closing the descriptor drops the lock, also when fn panics.
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return fn()
}
