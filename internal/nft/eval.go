package nft

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The interpreter runs a Ruleset on packets in Go, as the kernel runs the
// table: base chain by base chain, rule by rule, with nft's verdict
// semantics. Tests hold the compiler to the verdict engine through it
// without root, the privileged tests hold the kernel to it, and the applier
// uses it to find the conntrack entries of flows that a new ruleset denies.

// Packet is what the rules read of a packet.
type Packet struct {
	// IIF and OIF are the input and output interfaces; "" stands for any
	// interface that is not a local pod's veth.
	IIF, OIF string
	IPv6     bool
	Src, Dst netip.Addr
	Proto    uint8
	DPort    uint16
	// TCPFlags are a TCP packet's flags.
	TCPFlags uint8
	// Ct is the packet's conntrack state; zero means new.
	Ct CtState
}

// Evaluator runs one Ruleset; it indexes the sets once. It is not safe for
// concurrent use.
type Evaluator struct {
	rs     *Ruleset
	sets   map[string]*setIndex
	chains map[string]*Chain
	byAddr map[netip.Addr]LocalPod
}

// NewEvaluator prepares rs for Eval.
func NewEvaluator(rs *Ruleset) *Evaluator {
	ev := &Evaluator{rs: rs, sets: map[string]*setIndex{}, chains: map[string]*Chain{}, byAddr: map[netip.Addr]LocalPod{}}
	for _, s := range rs.Sets {
		ev.sets[s.Name] = newSetIndex(s)
	}
	for _, c := range rs.Chains {
		ev.chains[c.Name] = c
	}
	for _, p := range rs.Pods {
		ev.byAddr[p.Addr] = p
	}
	return ev
}

// Eval runs the base chains of hook h on p. It reports whether the packet
// passes, and which rule decided ("policy" when none did).
func (ev *Evaluator) Eval(h Hook, p Packet) (pass bool, by string, err error) {
	for _, c := range ev.rs.Chains {
		if c.Hook != h {
			continue
		}
		v, by, err := ev.run(c, p, 0)
		if err != nil {
			return false, "", err
		}
		if v == Drop {
			return false, by, nil
		}
	}
	return true, "policy", nil
}

// maxDepth bounds jumps, as the kernel does (NFT_JUMP_STACK_SIZE).
const maxDepth = 16

// run returns Accept, Drop, or Return (the chain ended or returned).
func (ev *Evaluator) run(c *Chain, p Packet, depth int) (VerdictKind, string, error) {
	if depth > maxDepth {
		return 0, "", fmt.Errorf("nft: jumps nested deeper than %d at chain %s", maxDepth, c.Name)
	}
	for i, r := range c.Rules {
		ok, err := ev.matches(r, p)
		if err != nil {
			return 0, "", fmt.Errorf("nft: chain %s rule %d: %w", c.Name, i+1, err)
		}
		if !ok {
			continue
		}
		switch r.Verdict.Kind {
		case Accept, Drop:
			// Only a final verdict says which rule decided: formatting it
			// for every rule passed would cost more than the lookups.
			return r.Verdict.Kind, fmt.Sprintf("%s rule %d (%s)", c.Name, i+1, r), nil
		case Return:
			return Return, "", nil
		case Jump:
			target := ev.chains[r.Verdict.Chain]
			if target == nil {
				return 0, "", fmt.Errorf("nft: chain %s rule %d: jump to unknown chain %s", c.Name, i+1, r.Verdict.Chain)
			}
			v, by, err := ev.run(target, p, depth+1)
			if err != nil || v != Return {
				return v, by, err
			}
		}
	}
	return Return, "", nil
}

func (ev *Evaluator) matches(r Rule, p Packet) (bool, error) {
	for _, m := range r.Matches {
		switch m := m.(type) {
		case MatchIPv6:
			if !p.IPv6 {
				return false, nil
			}
		case MatchCtState:
			ct := p.Ct
			if ct == 0 {
				ct = CtNew
			}
			if ct&m.States == 0 {
				return false, nil
			}
		case MatchTCPNotSyn:
			if p.IPv6 || p.Proto != protoTCP || p.TCPFlags&(TCPSyn|TCPAck) == TCPSyn {
				return false, nil
			}
		case MatchSet:
			key := make([]Datum, len(m.Key))
			for i, o := range m.Key {
				d, err := field(o.Field, p)
				if err != nil {
					return false, err
				}
				if o.Map != "" {
					idx := ev.sets[o.Map]
					if idx == nil || !idx.s.IsMap() {
						return false, fmt.Errorf("no map %s", o.Map)
					}
					e := idx.lookup([]Datum{d})
					if e == nil {
						return false, nil // the kernel's lookup breaks the rule
					}
					d = e.Value
				}
				key[i] = d
			}
			idx := ev.sets[m.Set]
			if idx == nil {
				return false, fmt.Errorf("no set %s", m.Set)
			}
			if (idx.lookup(key) == nil) != m.Negate {
				return false, nil
			}
		case MatchIfnamePrefix:
			d, err := field(m.Field, p)
			if err != nil {
				return false, err
			}
			if d.Name == "" || !strings.HasPrefix(d.Name, m.Prefix) {
				return false, nil
			}
		default:
			return false, fmt.Errorf("unknown match %T", m)
		}
	}
	return true, nil
}

// field reads one field of p.
func field(f Field, p Packet) (Datum, error) {
	switch f {
	case FieldIIFName:
		return Ifname(p.IIF), nil
	case FieldOIFName:
		return Ifname(p.OIF), nil
	case FieldSAddr, FieldDAddr:
		// In an inet table the kernel would read the IPv6 header's bytes
		// here: the chains must have decided IPv6 before.
		if p.IPv6 {
			return Datum{}, fmt.Errorf("%s read from an IPv6 packet", f)
		}
		if f == FieldSAddr {
			return Addr(p.Src), nil
		}
		return Addr(p.Dst), nil
	case FieldL4Proto:
		return Num(uint32(p.Proto)), nil
	case FieldDPort:
		return Num(uint32(p.DPort)), nil
	}
	return Datum{}, fmt.Errorf("unknown field %d", f)
}

// Forwarded reports whether the node lets the first packet of a new IPv4
// connection from src to dst through (prerouting, then forward), with the
// interfaces that the node's wiring gives it: a local pod's own veth, any
// other interface for everything else.
func (ev *Evaluator) Forwarded(src, dst netip.Addr, proto uint8, port uint16) (bool, string, error) {
	p := Packet{Src: src, Dst: dst, Proto: proto, DPort: port}
	if proto == protoTCP {
		p.TCPFlags = TCPSyn
	}
	if lp, ok := ev.byAddr[src]; ok {
		p.IIF = lp.Veth
	}
	if lp, ok := ev.byAddr[dst]; ok {
		p.OIF = lp.Veth
	}
	for _, h := range []Hook{HookPrerouting, HookForward} {
		pass, by, err := ev.Eval(h, p)
		if err != nil || !pass {
			return false, by, err
		}
	}
	return true, "", nil
}

// IsLocal reports whether a is a local pod's address.
func (ev *Evaluator) IsLocal(a netip.Addr) bool {
	_, ok := ev.byAddr[a]
	return ok
}

// setIndex finds elements: exact keys by a map, interval keys by their
// first field when it is exact in every element (the profile), else by a
// scan.
type setIndex struct {
	s       *Set
	exact   map[string]*Element
	byFirst map[string][]*Element
}

func newSetIndex(s *Set) *setIndex {
	idx := &setIndex{s: s}
	if !s.Interval {
		idx.exact = map[string]*Element{}
		for i := range s.Elements {
			idx.exact[keyString(s.Elements[i].Key)] = &s.Elements[i]
		}
		return idx
	}
	idx.byFirst = map[string][]*Element{}
	for i := range s.Elements {
		e := &s.Elements[i]
		if len(e.Key) == 0 || e.Key[0].IsRange() {
			idx.byFirst = nil // scan
			return idx
		}
		k := keyString(e.Key[:1])
		idx.byFirst[k] = append(idx.byFirst[k], e)
	}
	return idx
}

func (idx *setIndex) lookup(key []Datum) *Element {
	if len(key) != len(idx.s.Key) {
		return nil
	}
	if idx.exact != nil {
		return idx.exact[keyString(key)]
	}
	cands := idx.byFirst[keyString(key[:1])]
	if idx.byFirst == nil {
		for i := range idx.s.Elements {
			cands = append(cands, &idx.s.Elements[i])
		}
	}
	for _, e := range cands {
		if contains(e.Key, key) {
			return e
		}
	}
	return nil
}

// contains reports whether element key ek holds the single-valued key k.
func contains(ek, k []Datum) bool {
	if len(ek) != len(k) {
		return false
	}
	for i := range ek {
		if ek[i].Name != k[i].Name || k[i].Lo < ek[i].Lo || k[i].Lo > ek[i].Hi {
			return false
		}
	}
	return true
}

func keyString(k []Datum) string {
	b := make([]byte, 0, 24*len(k))
	for _, d := range k {
		b = append(b, d.Name...)
		b = append(b, 0)
		b = strconv.AppendUint(b, uint64(d.Lo), 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(d.Hi), 10)
		b = append(b, '|')
	}
	return string(b)
}
