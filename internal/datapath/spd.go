package datapath

import (
	"net/netip"
	"slices"
)

// spd is the security policy database: which peer a packet from the local
// subnets to a destination belongs to. It is immutable once built; a
// configuration change builds a new one and publishes it atomically.
//
// Lookup is a longest-prefix match done as one map probe per distinct
// prefix length, longest first: a cluster has few distinct lengths (the pod
// CIDR size, /32 or /128 for transport mode), so this is a handful of map
// probes whatever the number of peers.
type spd struct {
	v4, v6 lpm
}

type lpm struct {
	lengths []int // distinct prefix lengths, longest first
	routes  map[netip.Prefix]*peerState
}

func newSPD(peers []*peerState) *spd {
	s := &spd{v4: lpm{routes: map[netip.Prefix]*peerState{}}, v6: lpm{routes: map[netip.Prefix]*peerState{}}}
	for _, p := range peers {
		for _, pfx := range p.cfg.RemoteSubnets {
			t := &s.v4
			if pfx.Addr().Is6() {
				t = &s.v6
			}
			if _, dup := t.routes[pfx]; !dup {
				t.routes[pfx] = p
			}
			if !slices.Contains(t.lengths, pfx.Bits()) {
				t.lengths = append(t.lengths, pfx.Bits())
			}
		}
	}
	for _, t := range []*lpm{&s.v4, &s.v6} {
		slices.Sort(t.lengths)
		slices.Reverse(t.lengths)
	}
	return s
}

// lookup returns the peer whose remote subnets hold dst, or nil.
func (s *spd) lookup(dst netip.Addr) *peerState {
	t := &s.v4
	if dst.Is6() {
		t = &s.v6
	}
	for _, bits := range t.lengths {
		pfx, _ := dst.Prefix(bits)
		if p, ok := t.routes[pfx]; ok {
			return p
		}
	}
	return nil
}

// covers reports whether one of the prefixes holds a.
func covers(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
