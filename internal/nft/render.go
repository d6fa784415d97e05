package nft

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// String renders the ruleset as nft-like text: what `nft list table inet
// rampart` would print, with the profiles explained in comments on top. It
// is deterministic, for golden files and for people. (Two liberties with
// nft's syntax: a map's value as a field of a concatenation, "ip daddr map
// @m . ip saddr", which nft cannot parse but the kernel runs; and comments
// on their own lines.)
func (rs *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# rampart ruleset for node %s (local pods: %d, profiles: %d, pod classes: %d)\n", rs.Node, len(rs.Pods), len(rs.Profiles), len(rs.Classes))
	for _, p := range rs.Profiles {
		fmt.Fprintf(&b, "# profile %s: %s of %s\n", profileString(p.ID), p.Direction, strings.Join(p.Pods, ", "))
		if len(p.Admin) > 0 {
			fmt.Fprintf(&b, "#   admin tier: %s\n", strings.Join(p.Admin, ", "))
		}
		if len(p.Policies) > 0 {
			fmt.Fprintf(&b, "#   isolated by %s\n", strings.Join(p.Policies, ", "))
		}
		if len(p.Baseline) > 0 {
			fmt.Fprintf(&b, "#   baseline tier: %s\n", strings.Join(p.Baseline, ", "))
		}
		if len(p.NamedPorts) > 0 {
			fmt.Fprintf(&b, "#   named ports %s\n", strings.Join(p.NamedPorts, ", "))
		}
	}
	for _, c := range rs.Classes {
		fmt.Fprintf(&b, "# class %s: %s\n", profileString(c.ID), strings.Join(c.Pods, ", "))
	}
	for _, u := range rs.Unenforced {
		fmt.Fprintf(&b, "# not enforced: %s\n", u)
	}
	fmt.Fprintf(&b, "table inet %s {\n", rs.Table)
	for _, s := range rs.Sets {
		renderSet(&b, s)
		b.WriteString("\n")
	}
	for i, c := range rs.Chains {
		renderChain(&b, c)
		if i < len(rs.Chains)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func renderSet(b *strings.Builder, s *Set) {
	kind := "set"
	if s.IsMap() {
		kind = "map"
	}
	fmt.Fprintf(b, "\t%s %s {\n", kind, s.Name)
	types := make([]string, len(s.Key))
	for i, t := range s.Key {
		types[i] = t.String()
	}
	fmt.Fprintf(b, "\t\ttype %s", strings.Join(types, " . "))
	if s.IsMap() {
		fmt.Fprintf(b, " : %s", s.Value)
	}
	b.WriteString("\n")
	if s.Interval {
		b.WriteString("\t\tflags interval\n")
	}
	if s.Comment != "" {
		fmt.Fprintf(b, "\t\tcomment %q\n", s.Comment)
	}
	if len(s.Elements) > 0 {
		b.WriteString("\t\telements = {\n")
		for i, e := range s.Elements {
			b.WriteString("\t\t\t")
			b.WriteString(elementString(s, e))
			if i < len(s.Elements)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString("\t\t}\n")
	}
	b.WriteString("\t}\n")
}

// elementString is one element as nft writes it: "a . b . c : v comment "x"".
func elementString(s *Set, e Element) string {
	parts := make([]string, len(e.Key))
	for i, d := range e.Key {
		t := Type(0)
		if i < len(s.Key) {
			t = s.Key[i]
		}
		parts[i] = datumString(t, d)
	}
	str := strings.Join(parts, " . ")
	if s.IsMap() {
		str += " : " + datumString(s.Value, e.Value)
	}
	if e.Comment != "" {
		str += fmt.Sprintf(" comment %q", e.Comment)
	}
	return str
}

// datumString renders one field: an address range as a prefix when it is
// one, a protocol by name.
func datumString(t Type, d Datum) string {
	switch t {
	case TypeIfname:
		return strconv.Quote(d.Name)
	case TypeIPv4:
		if !d.IsRange() {
			return numAddr(d.Lo).String()
		}
		if p, ok := rangePrefix(d.Lo, d.Hi); ok {
			return p.String()
		}
		return numAddr(d.Lo).String() + "-" + numAddr(d.Hi).String()
	case TypeProto:
		if !d.IsRange() {
			return protoName(uint8(d.Lo))
		}
	case TypeProfile:
		if !d.IsRange() {
			return profileString(d.Lo)
		}
		return profileString(d.Lo) + "-" + profileString(d.Hi)
	}
	if !d.IsRange() {
		return strconv.FormatUint(uint64(d.Lo), 10)
	}
	return fmt.Sprintf("%d-%d", d.Lo, d.Hi)
}

func profileString(id uint32) string { return fmt.Sprintf("0x%08x", id) }

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// rangePrefix reports whether [lo, hi] is exactly one prefix.
func rangePrefix(lo, hi uint32) (netip.Prefix, bool) {
	size := uint64(hi) - uint64(lo) + 1
	if size&(size-1) != 0 || uint64(lo)&(size-1) != 0 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(numAddr(lo), 32-bits.TrailingZeros64(size)), true
}

func renderChain(b *strings.Builder, c *Chain) {
	fmt.Fprintf(b, "\tchain %s {\n", c.Name)
	if c.Hook != HookNone {
		fmt.Fprintf(b, "\t\ttype filter hook %s priority %s; policy accept;\n", c.Hook, priorityString(c.Priority))
	}
	for _, r := range c.Rules {
		fmt.Fprintf(b, "\t\t%s\n", r)
	}
	b.WriteString("\t}\n")
}

func priorityString(p int32) string {
	switch p {
	case PriorityRaw:
		return "raw"
	case PriorityFilter:
		return "filter"
	}
	return strconv.Itoa(int(p))
}

// String renders a rule as nft does.
func (r Rule) String() string {
	var parts []string
	for _, m := range r.Matches {
		parts = append(parts, matchString(m))
	}
	if r.Counter {
		parts = append(parts, "counter")
	}
	v := r.Verdict.Kind.String()
	if r.Verdict.Kind == Jump {
		v += " " + r.Verdict.Chain
	}
	parts = append(parts, v)
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}

func matchString(m Match) string {
	switch m := m.(type) {
	case MatchIPv6:
		return "meta nfproto ipv6"
	case MatchCtState:
		var states []string
		for _, s := range []struct {
			bit  CtState
			name string
		}{{CtInvalid, "invalid"}, {CtEstablished, "established"}, {CtRelated, "related"}, {CtNew, "new"}} {
			if m.States&s.bit != 0 {
				states = append(states, s.name)
			}
		}
		return "ct state " + strings.Join(states, ",")
	case MatchTCPNotSyn:
		return "meta l4proto tcp tcp flags & (syn | ack) != syn"
	case MatchSet:
		ops := make([]string, len(m.Key))
		for i, o := range m.Key {
			ops[i] = o.Field.String()
			if o.Map != "" {
				ops[i] += " map @" + o.Map
			}
		}
		op := " @"
		if m.Negate {
			op = " != @"
		}
		return strings.Join(ops, " . ") + op + m.Set
	case MatchIfnamePrefix:
		return fmt.Sprintf("%s %q", m.Field, m.Prefix+"*")
	}
	return fmt.Sprintf("%T", m)
}
