// Command unredirect deletes the lab responder's redirect table (table ip
// rampart_lab, internal/lab/server.go) from the named network namespaces
// of `rampart lab` pods, so that iperf3 can listen in a pod: the redirect
// sends every TCP connection to the responder's port 7. It changes nothing
// that policy or the tunnel do (those live in the node's namespace); only
// `lab probe` no longer gets answers from those pods. `lab down` removes
// the namespaces as usual.
//
//	unredirect NETNS...
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/nftables"
	"github.com/rampartnet/rampart/internal/netns"
)

// table is internal/lab's redirectTable.
const table = "rampart_lab"

func main() { os.Exit(run(os.Args[1:])) }

func run(names []string) int {
	if len(names) == 0 {
		fmt.Fprintln(os.Stderr, "usage: unredirect NETNS...")
		return 2
	}
	var errs []error
	for _, n := range names {
		if err := unredirect(n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "unredirect:", err)
		return 1
	}
	return 0
}

func unredirect(name string) error {
	f, err := os.Open(filepath.Join(netns.RunDir, filepath.Base(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.Name == table {
			c.DelTable(t)
			return c.Flush()
		}
	}
	return fmt.Errorf("no table ip %s", table)
}
