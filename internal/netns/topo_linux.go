package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

// The two-site topology of the tunnel tests and benchmarks (bench/tunnel/topo.sh
// builds the same one in shell; keep the two in step):
//
//	podA ─veth─ hostA ══ underlay veth ══ hostB ─veth─ podB
//
//	podA  eth0  198.19.1.2/24 fd00:1::2/64   default via hostA
//	hostA pod0  198.19.1.1/24 fd00:1::1/64
//	hostA ul0   198.18.0.1/24 fd00::1/64
//	hostB ul0   198.18.0.2/24 fd00::2/64
//	hostB pod0  198.19.2.1/24 fd00:2::1/64
//	podB  eth0  198.19.2.2/24 fd00:2::2/64   default via hostB
//
// Hosts forward, and have no route to the far pod subnet unless
// PlainRoutes: the tunnel under test adds it.
const (
	defaultPrefix = "rt"
	defaultMTU    = 1500

	// Link names inside the namespaces. They are not global (each
	// namespace has its own), so they need no random suffix.
	podLink      = "eth0"
	hostPodLink  = "pod0"
	underlayLink = "ul0"
)

// TwoSitesOptions configures TwoSites. The zero value is the default.
type TwoSitesOptions struct {
	// Prefix starts every namespace name: PREFIX-XXXXXX-{pA,hA,hB,pB}
	// with a random XXXXXX per topology, so concurrent runs never collide.
	// Default "rt"; keep it short.
	Prefix string
	// UnderlayMTU is the MTU of the host-to-host veth (default 1500).
	UnderlayMTU int
	// PodMTU is the MTU of the pod-to-host veths (default 1500).
	PodMTU int
	// PlainRoutes routes each host to the far pod subnet through the
	// underlay in clear, so pods reach each other without a tunnel (the
	// baseline). Without it the hosts have no such route.
	PlainRoutes bool
}

// Site is one side of the topology: a host and the pod behind it.
type Site struct {
	Pod, Host *NS

	// PodLink is the pod's link to its host (in Pod), HostPodLink the host's
	// end of it (in Host), UnderlayLink the host's link to the other host.
	PodLink, HostPodLink, UnderlayLink string

	PodAddr4, PodAddr6           netip.Prefix // the pod: 198.19.1.2/24
	HostPodAddr4, HostPodAddr6   netip.Prefix // the host on the pod link, the pod's gateway: 198.19.1.1/24
	UnderlayAddr4, UnderlayAddr6 netip.Prefix // the host on the underlay: 198.18.0.1/24
}

// Subnet4 is the site's IPv4 pod subnet, e.g. 198.19.1.0/24.
func (s *Site) Subnet4() netip.Prefix { return s.PodAddr4.Masked() }

// Subnet6 is the site's IPv6 pod subnet, e.g. fd00:1::/64.
func (s *Site) Subnet6() netip.Prefix { return s.PodAddr6.Masked() }

// Sites is a built two-site topology. Close removes it.
type Sites struct {
	A, B Site
	// Name is PREFIX-XXXXXX, the start of all four namespace names.
	Name        string
	UnderlayMTU int
	PodMTU      int

	mu   sync.Mutex
	made []*NS // in creation order
}

func site(n int) Site {
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	return Site{
		PodLink:       podLink,
		HostPodLink:   hostPodLink,
		UnderlayLink:  underlayLink,
		PodAddr4:      p(fmt.Sprintf("198.19.%d.2/24", n)),
		PodAddr6:      p(fmt.Sprintf("fd00:%d::2/64", n)),
		HostPodAddr4:  p(fmt.Sprintf("198.19.%d.1/24", n)),
		HostPodAddr6:  p(fmt.Sprintf("fd00:%d::1/64", n)),
		UnderlayAddr4: p(fmt.Sprintf("198.18.0.%d/24", n)),
		UnderlayAddr6: p(fmt.Sprintf("fd00::%d/64", n)),
	}
}

// testHookStep, when set (by tests), runs before every build step and can
// fail it, to check that a failure at any point leaves nothing behind.
var testHookStep func(s *Sites, step string) error

// TwoSites builds the two-site topology. On failure it removes whatever it
// had made before returning the error.
func TwoSites(opts TwoSitesOptions) (_ *Sites, err error) {
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if opts.UnderlayMTU == 0 {
		opts.UnderlayMTU = defaultMTU
	}
	if opts.PodMTU == 0 {
		opts.PodMTU = defaultMTU
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("netns: two sites: %w", err)
	}
	s := &Sites{
		A:           site(1),
		B:           site(2),
		Name:        opts.Prefix + "-" + hex.EncodeToString(rnd[:]),
		UnderlayMTU: opts.UnderlayMTU,
		PodMTU:      opts.PodMTU,
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()

	a, b := &s.A, &s.B
	newNS := func(dst **NS, role string) func() error {
		return func() error {
			n, err := New(s.Name + "-" + role)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.made = append(s.made, n)
			s.mu.Unlock()
			*dst = n
			return nil
		}
	}
	podVeth := func(x *Site) func() error {
		return func() error {
			return veth(
				End{NS: x.Pod, Name: x.PodLink, Addrs: []netip.Prefix{x.PodAddr4, x.PodAddr6}},
				End{NS: x.Host, Name: x.HostPodLink, Addrs: []netip.Prefix{x.HostPodAddr4, x.HostPodAddr6}},
				opts.PodMTU)
		}
	}
	podRoutes := func(x *Site) func() error {
		return func() error {
			return errors.Join(
				x.Pod.AddRoute(Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: x.HostPodAddr4.Addr()}),
				x.Pod.AddRoute(Route{Dst: netip.MustParsePrefix("::/0"), Via: x.HostPodAddr6.Addr()}))
		}
	}
	plainRoutes := func(x, far *Site) func() error {
		return func() error {
			if !opts.PlainRoutes {
				return nil
			}
			return errors.Join(
				x.Host.AddRoute(Route{Dst: far.Subnet4(), Via: far.UnderlayAddr4.Addr()}),
				x.Host.AddRoute(Route{Dst: far.Subnet6(), Via: far.UnderlayAddr6.Addr()}))
		}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"new podA", newNS(&a.Pod, "pA")},
		{"new hostA", newNS(&a.Host, "hA")},
		{"veth podA-hostA", podVeth(a)},
		{"new hostB", newNS(&b.Host, "hB")},
		{"veth underlay", func() error {
			return veth(
				End{NS: a.Host, Name: a.UnderlayLink, Addrs: []netip.Prefix{a.UnderlayAddr4, a.UnderlayAddr6}},
				End{NS: b.Host, Name: b.UnderlayLink, Addrs: []netip.Prefix{b.UnderlayAddr4, b.UnderlayAddr6}},
				opts.UnderlayMTU)
		}},
		{"new podB", newNS(&b.Pod, "pB")},
		{"veth podB-hostB", podVeth(b)},
		{"routes podA", podRoutes(a)},
		{"routes podB", podRoutes(b)},
		{"forwarding hostA", func() error { return a.Host.EnableForwarding() }},
		{"forwarding hostB", func() error { return b.Host.EnableForwarding() }},
		{"plain routes hostA", plainRoutes(a, b)},
		{"plain routes hostB", plainRoutes(b, a)},
		{"links up", func() error {
			return errors.Join(
				a.Pod.WaitUp(a.PodLink), a.Host.WaitUp(a.HostPodLink, a.UnderlayLink),
				b.Host.WaitUp(b.UnderlayLink, b.HostPodLink), b.Pod.WaitUp(b.PodLink))
		}},
	}
	for _, st := range steps {
		if testHookStep != nil {
			if err := testHookStep(s, st.name); err != nil {
				return nil, fmt.Errorf("netns: two sites %s: %s: %w", s.Name, st.name, err)
			}
		}
		if err := st.do(); err != nil {
			return nil, fmt.Errorf("netns: two sites %s: %s: %w", s.Name, st.name, err)
		}
	}
	return s, nil
}

// TwoSitesT is TwoSites for tests and benchmarks: it calls
// RequirePrivileged, fails t if the build fails, and removes the topology
// when t ends (t.Cleanup).
func TwoSitesT(t testing.TB, opts TwoSitesOptions) *Sites {
	t.Helper()
	RequirePrivileged(t)
	s, err := TwoSites(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("netns: close two sites: %v", err)
		}
	})
	return s
}

// Namespaces lists the namespaces made so far, in creation order.
func (s *Sites) Namespaces() []*NS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*NS(nil), s.made...)
}

// Close deletes every namespace of the topology, and with them all its
// links (processes started in them must be stopped first, or they keep
// their namespace alive). It is idempotent and safe on a topology whose
// build failed half-way.
func (s *Sites) Close() error {
	s.mu.Lock()
	made := s.made
	s.made = nil
	s.mu.Unlock()
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		errs = append(errs, made[i].Delete())
	}
	return errors.Join(errs...)
}
