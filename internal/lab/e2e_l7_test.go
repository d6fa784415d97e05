//go:build e2e

package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
	"github.com/rampartnet/rampart/internal/testbin"
)

// TestPrivilegedLabL7 is AuthorizationPolicy without sidecars
// (examples/l7): search takes only POST from the api service account.
// POST from api passes and search sees the caller's own address; GET from
// api, and POST from another service account, get 403 with the policy in
// x-rampart-denied; on search's node and from the other node alike. A
// port the NetworkPolicy does not allow is dropped before any L7 proxy,
// bytes that are not HTTP reach nothing, and without the
// AuthorizationPolicy every request passes.
func TestPrivilegedLabL7(t *testing.T) {
	netns.RequirePrivileged(t)
	bin, cni := testbin.Path(t, "rampart"), testbin.Path(t, "rampart-cni")
	name := fmt.Sprintf("h%d", os.Getpid()%100000)
	dir := filepath.Join(t.TempDir(), "lab")
	ctx := context.Background()
	l, err := Up(ctx, Options{Name: name, StateDir: dir, Nodes: 2, Binary: bin, CNIBinary: cni, Log: testLog{t}},
		[]string{"../../examples/l7"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(dir); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	st := l.State()
	search := st.pod("prod/search")
	cases := []struct {
		from, method string
		status       int
	}{
		{"prod/api-remote", "POST", 200},
		{"prod/api-local", "POST", 200},
		{"prod/api-remote", "GET", 403},
		{"prod/api-local", "GET", 403},
		{"prod/frontend", "POST", 403},
		{"prod/frontend-local", "POST", 403},
	}
	check := func(t *testing.T, what string, want func(from, method string, status int) int) {
		t.Helper()
		for _, c := range cases {
			res, err := l.HTTP(ctx, c.from, "prod/search", 8080, c.method, "/query", 5*time.Second)
			if err != nil {
				t.Errorf("%s: %s from %s: %v", what, c.method, c.from, err)
				continue
			}
			status := want(c.from, c.method, c.status)
			if res.Status != status {
				t.Errorf("%s: %s from %s (%s): %d, want %d (denied: %q)", what, c.method, c.from, st.pod(c.from).Node, res.Status, status, res.Denied)
				continue
			}
			switch status {
			case 200:
				// The proxy kept the caller's address.
				if seen, err := netip.ParseAddrPort(res.SeenFrom); err != nil || seen.Addr() != st.pod(c.from).Address {
					t.Errorf("%s: %s from %s: search saw the caller as %q, not %s", what, c.method, c.from, res.SeenFrom, st.pod(c.from).Address)
				}
			case 403:
				if !strings.Contains(res.Denied, "AuthorizationPolicy prod/search-post-from-api") {
					t.Errorf("%s: %s from %s: 403 without the reason: %q", what, c.method, c.from, res.Denied)
				}
			}
		}
	}
	check(t, "with the AuthorizationPolicy", func(_, _ string, status int) int { return status })

	// L3/L4 first: 9090 is not allowed by the NetworkPolicy.
	if res, err := l.HTTP(ctx, "prod/api-local", "prod/search", 9090, "POST", "/query", time.Second); err == nil {
		t.Errorf("port 9090, which no NetworkPolicy allows, answered %d", res.Status)
	}
	// Not HTTP: nothing reaches search, not even its greeting.
	var got []byte
	err = nsDo(st.pod("prod/api-local").Netns, func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(search.Address, 8080).String(), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("\x16\x03\x01 not HTTP at all\r\n\r\n")); err != nil {
			return err
		}
		got, _ = io.ReadAll(c)
		return nil
	})
	if err != nil || len(got) > 0 {
		t.Errorf("bytes that are not HTTP to search:8080: %v, answered %q", err, got)
	}
	if res, err := l.Probe(ctx, ProbeOptions{}); err != nil || res.Differences() != 0 {
		t.Errorf("lab probe with L7 in force: %v, %d differences", err, res.Differences())
	}

	// Without the AuthorizationPolicy (the NetworkPolicy alone), every
	// request passes.
	onlyL4 := filepath.Join(t.TempDir(), "policies.yaml")
	b, err := os.ReadFile("../../examples/l7/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(onlyL4, []byte(strings.Split(string(b), "\n---\n")[0]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Apply(ctx, []string{onlyL4}); err != nil {
		t.Fatal(err)
	}
	check(t, "without the AuthorizationPolicy", func(_, _ string, _ int) int { return 200 })
}
