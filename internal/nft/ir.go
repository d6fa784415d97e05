package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The IR: one nftables table described as plain Go values. The compiler
// (compiler.go) builds it from the Model, the renderer (render.go) prints it
// as nft-like text for golden files, the interpreter (eval.go) runs it on
// packets in Go, and the applier (apply_linux.go) translates it into netlink
// messages. Everything here is data: no registers, no byte orders except
// where a Datum is encoded.

// Ruleset is everything one node needs: a table of sets and chains, plus
// what the compiler knew when it made them (the local pods and the
// profiles), for comments, the interpreter and conntrack clean-up.
type Ruleset struct {
	// Table is the name of the inet table.
	Table string
	// Node is the node the ruleset was compiled for.
	Node string
	// Sets are sorted by name; Chains are in the order they are declared
	// (base chains first). Rules refer to both by name.
	Sets   []*Set
	Chains []*Chain
	// Pods are the node's local pods, sorted by address.
	Pods []LocalPod
	// Profiles describe the profile numbers in the sets, sorted by
	// direction then ID; Classes the pod class numbers, sorted by ID.
	// They are documentation: nothing applies them.
	Profiles []Profile
	Classes  []Class
	// Unenforced says, in sentences, what of the Model the ruleset does
	// not enforce and what it does instead (the domain names of
	// cluster-wide policies): never more allowed than the policy says.
	Unenforced []string
}

// Class is a class of pods that no policy can tell apart as peers
// (policy.Class): pod_class maps their addresses to its ID, and the
// *_pods allow sets list what each profile allows of each class.
type Class struct {
	ID   uint32
	Pods []string
}

// LocalPod is a pod of this node as the rules see it.
type LocalPod struct {
	Ref  string // namespace/name
	Addr netip.Addr
	Veth string
}

// Profile is one isolation decision shared by the local pods that no
// policy can tell apart in one direction: the same namespace, the same
// selecting policies and (for ingress) the same named ports. Its ID is the
// first field of the allow sets' keys.
type Profile struct {
	ID        uint32
	Direction string // "ingress" or "egress"
	Namespace string
	Policies  []string // the NetworkPolicies that isolate its pods in Direction
	// Admin and Baseline are the cluster-wide policies of each tier that
	// select its pods and have rules in Direction, in evaluation order.
	Admin, Baseline []string
	// NamedPorts are the named container ports that ingress rules resolve
	// against, "name/PROTO=number".
	NamedPorts []string
	Pods       []string // the local pods that have it
}

// Set returns the set called name, or nil.
func (rs *Ruleset) Set(name string) *Set {
	for _, s := range rs.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Chain returns the chain called name, or nil.
func (rs *Ruleset) Chain(name string) *Chain {
	for _, c := range rs.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Type is the datatype of one field of a set's key, or of a map's value.
type Type uint8

// The types the rules use. Each has nft's name and size (type.size).
const (
	TypeIfname  Type = iota + 1 // ifname: an interface name, 16 bytes
	TypeIPv4                    // ipv4_addr
	TypeProto                   // inet_proto: an IP protocol number, 1 byte
	TypePort                    // inet_service: a port, 2 bytes
	TypeProfile                 // mark: a profile or class number, 4 bytes
)

func (t Type) String() string {
	switch t {
	case TypeIfname:
		return "ifname"
	case TypeIPv4:
		return "ipv4_addr"
	case TypeProto:
		return "inet_proto"
	case TypePort:
		return "inet_service"
	case TypeProfile:
		return "mark"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// size is the type's length in bytes, before padding to a 4-byte register
// inside a concatenation.
func (t Type) size() int {
	switch t {
	case TypeIfname:
		return ifnameSize
	case TypeIPv4, TypeProfile:
		return 4
	case TypeProto:
		return 1
	case TypePort:
		return 2
	}
	return 0
}

// ifnameSize is IFNAMSIZ: interface names are compared as 16 bytes, NUL-padded.
const ifnameSize = 16

// max is the largest value of a numeric type.
func (t Type) max() uint32 {
	switch t {
	case TypeProto:
		return 0xff
	case TypePort:
		return 0xffff
	}
	return 0xffffffff
}

// Datum is the value of one field: an interface name, or an inclusive
// range [Lo, Hi] of a numeric type (Lo == Hi for a single value). IPv4
// addresses are numbers in network order: 198.19.0.1 is 0xc6130001.
type Datum struct {
	Name   string
	Lo, Hi uint32
}

// Ifname is an interface name.
func Ifname(name string) Datum { return Datum{Name: name} }

// Addr is one IPv4 address.
func Addr(a netip.Addr) Datum { v := addrNum(a); return Datum{Lo: v, Hi: v} }

// AddrRange is the IPv4 addresses from lo to hi inclusive.
func AddrRange(lo, hi netip.Addr) Datum { return Datum{Lo: addrNum(lo), Hi: addrNum(hi)} }

// Num is one number (a protocol, port or profile).
func Num(v uint32) Datum { return Datum{Lo: v, Hi: v} }

// Range is the numbers from lo to hi inclusive.
func Range(lo, hi uint32) Datum { return Datum{Lo: lo, Hi: hi} }

// IsRange reports whether d spans more than one value.
func (d Datum) IsRange() bool { return d.Hi != d.Lo }

func addrNum(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func numAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// Set is a named set, or a map when Value is not zero.
type Set struct {
	Name string
	// Key is the type of each field of the key: more than one makes a
	// concatenation (nft's "a . b . c").
	Key []Type
	// Value is the type of a map's values; zero for a set.
	Value Type
	// Interval allows ranges in every key field (a concatenation of ranges
	// is the kernel's pipapo set). Without it every Datum is one value.
	Interval bool
	Comment  string
	// ProfileMap, when set, names the map that the rules look up to make
	// this set's first key field: an element whose first field is no value
	// of that map can never match. The applier may leave such elements in
	// the kernel (deleting from interval sets is slow), see Diff.
	ProfileMap string
	// Elements are sorted by key; no two overlap.
	Elements []Element
}

// IsMap reports whether the set maps keys to values.
func (s *Set) IsMap() bool { return s.Value != 0 }

// Element is one member of a set, or one entry of a map.
type Element struct {
	Key     []Datum
	Value   Datum // maps only
	Comment string
}

// Field is a property of a packet that a rule reads.
type Field uint8

// Fields, with nft's names.
const (
	FieldIIFName Field = iota + 1 // meta iifname
	FieldOIFName                  // meta oifname
	FieldSAddr                    // ip saddr
	FieldDAddr                    // ip daddr
	FieldL4Proto                  // meta l4proto
	FieldDPort                    // th dport (the transport header's destination port)
)

func (f Field) String() string {
	switch f {
	case FieldIIFName:
		return "iifname"
	case FieldOIFName:
		return "oifname"
	case FieldSAddr:
		return "ip saddr"
	case FieldDAddr:
		return "ip daddr"
	case FieldL4Proto:
		return "meta l4proto"
	case FieldDPort:
		return "th dport"
	}
	return fmt.Sprintf("field(%d)", uint8(f))
}

// Type is the datatype of the field.
func (f Field) Type() Type {
	switch f {
	case FieldIIFName, FieldOIFName:
		return TypeIfname
	case FieldSAddr, FieldDAddr:
		return TypeIPv4
	case FieldL4Proto:
		return TypeProto
	case FieldDPort:
		return TypePort
	}
	return 0
}

// Operand is one part of a lookup key: a packet field, or, when Map is
// set, the value that map holds for the field (nft's "ip daddr map @m").
// A packet whose field is not in the map matches nothing.
type Operand struct {
	Field Field
	Map   string
}

// Match is one condition of a rule: MatchIPv6, MatchCtState,
// MatchTCPNotSyn, MatchSet or MatchIfnamePrefix.
type Match interface{ isMatch() }

// MatchIPv6 matches IPv6 packets (meta nfproto ipv6). The table is inet,
// so its chains see both families; rules that read IPv4 headers come after
// the IPv6 rules have decided every IPv6 packet.
type MatchIPv6 struct{}

// MatchCtState matches packets whose conntrack state is one of States.
type MatchCtState struct{ States CtState }

// MatchTCPNotSyn matches TCP packets that cannot open a connection: SYN
// clear or ACK set (tcp flags & (syn | ack) != syn).
type MatchTCPNotSyn struct{}

// TCP flags (the header's byte 13).
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPAck = 0x10
)

// MatchSet matches packets whose key (the concatenation of Key) is an
// element of Set, or with Negate, is not (a map operand that finds nothing
// still breaks the rule).
type MatchSet struct {
	Key    []Operand
	Set    string
	Negate bool
}

// MatchIfnamePrefix matches packets whose interface (Field: FieldIIFName
// or FieldOIFName) has a name that starts with Prefix (nft's "rmp*").
type MatchIfnamePrefix struct {
	Field  Field
	Prefix string
}

func (MatchIPv6) isMatch()         {}
func (MatchCtState) isMatch()      {}
func (MatchTCPNotSyn) isMatch()    {}
func (MatchSet) isMatch()          {}
func (MatchIfnamePrefix) isMatch() {}

// CtState is a set of conntrack states, with the kernel's bits.
type CtState uint32

// Conntrack states (NF_CT_STATE_*_BIT).
const (
	CtInvalid     CtState = 1
	CtEstablished CtState = 2
	CtRelated     CtState = 4
	CtNew         CtState = 8
)

// VerdictKind is what a rule does with a packet that matches.
type VerdictKind uint8

// Verdicts.
const (
	Accept VerdictKind = iota + 1
	Drop
	Return
	Jump
)

func (k VerdictKind) String() string {
	switch k {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Return:
		return "return"
	case Jump:
		return "jump"
	}
	return fmt.Sprintf("verdict(%d)", uint8(k))
}

// Verdict is a rule's verdict; Chain is the target of a Jump.
type Verdict struct {
	Kind  VerdictKind
	Chain string
}

// Rule is a list of matches (all must hold), an optional counter, and a
// verdict.
type Rule struct {
	Matches []Match
	Counter bool
	Verdict Verdict
	Comment string
}

// Hook is where a base chain sits in the kernel's path; HookNone for a
// regular chain, which only jumps reach.
type Hook uint8

// Hooks.
const (
	HookNone Hook = iota
	HookPrerouting
	HookForward
)

func (h Hook) String() string {
	switch h {
	case HookPrerouting:
		return "prerouting"
	case HookForward:
		return "forward"
	}
	return ""
}

// Priorities of base chains, as nft names them.
const (
	PriorityRaw    = -300 // before conntrack (-200) sees the packet
	PriorityFilter = 0
	// PriorityL7 is just before mangle (-150), where table inet
	// rampart_l7 steers connections to the L7 proxy (internal/l7).
	PriorityL7 = -151
)

// Chain is a chain of rules. A base chain (Hook set) has policy accept:
// the table drops only what concerns the node's pods, and leaves the rest
// of the node's traffic to whoever else filters it.
type Chain struct {
	Name     string
	Hook     Hook
	Priority int32
	Rules    []Rule
}
