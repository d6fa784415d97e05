package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The applier is thin: it translates the IR into one nf_tables batch and
// sends it, then removes the conntrack entries of the flows the new rules
// deny. Everything it decides, the compiler decided; everything it knows of
// the kernel is in this file.
//
//  1. One batch: "add table" (a no-op when it exists), "delete table",
//     then the whole new table: sets with their elements, chains, rules.
//     The kernel commits a batch as one transaction or not at all, so a
//     batch it refuses leaves the previous table in force, and packets
//     never see a half-built table.
//  2. Only after the commit: conntrack entries of forwarded flows that the
//     new rules would not let start are deleted, so that "established"
//     does not keep a connection alive that the policy now denies. The
//     next packet of such a flow is judged afresh and dropped.
//
// The table has no owner flag, so it outlives the process that made it:
// if the agent stops, the last rules stay in force (fail closed).

// Stats says what Apply did.
type Stats struct {
	Sets, Elements, Rules int
	// Incremental is true when only elements were sent: Added and
	// Deleted of them. Otherwise the table was replaced whole.
	Incremental    bool
	Added, Deleted int
	// Unreachable counts the elements of earlier rulesets that are still
	// in the table because no packet can match them any more: deleting
	// them from interval sets is slow. The next whole table drops them.
	Unreachable int
	// Fallback is why an incremental change was not made, when the table
	// was replaced whole although the skeleton allowed one.
	Fallback string
	// ConntrackDeleted counts the conntrack entries of flows that the new
	// rules deny, deleted after the commit.
	ConntrackDeleted uint
}

// Apply makes rs the table of the network namespace netnsFD (an open file
// descriptor of it; 0 means the calling thread's namespace), replacing the
// previous table of that name in one transaction, then deletes the
// conntrack entries of flows that rs denies. If the kernel refuses the
// batch, nothing changed and the error says why; if only the conntrack
// clean-up fails, the rules are in force and the error says so.
func Apply(netnsFD int, rs *Ruleset) (Stats, error) {
	var st Stats
	if err := check(rs); err != nil {
		return st, err
	}
	if err := replace(netnsFD, rs, &st); err != nil {
		return st, err
	}
	return st, cleanUp(netnsFD, rs, &st)
}

// replace commits rs as the whole table in one batch.
func replace(netnsFD int, rs *Ruleset, st *Stats) error {
	conn, err := nftables.New(nftables.WithNetNSFd(netnsFD), nftables.WithSockOptions(bigBuffers(rs)))
	if err != nil {
		return fmt.Errorf("nft: netlink: %w", err)
	}
	if err := queue(conn, rs, st); err != nil {
		return err
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nft: the kernel refused table inet %s; the previous rules stay in force: %w", rs.Table, err)
	}
	return nil
}

// cleanUp deletes, after a commit, the conntrack entries of the flows that
// rs denies.
func cleanUp(netnsFD int, rs *Ruleset, st *Stats) error {
	n, err := deleteDeniedFlows(netnsFD, rs)
	st.ConntrackDeleted = n
	if err != nil {
		return fmt.Errorf("nft: table inet %s applied, but conntrack clean-up failed (established flows that the new rules deny may go on): %w", rs.Table, err)
	}
	return nil
}

// Applier applies successive rulesets to the table of one namespace.
// When a ruleset has the skeleton of the one before it (the same sets,
// chains and rules: always so for pod churn and policy edits, doc.go), it
// sends only the elements that leave and join, in one batch, so the cost
// of a change follows its size, not the cluster's. The batch is as atomic
// as a whole table: nf_tables commits all of it or none.
//
// The Applier trusts its memory of what it committed only so far: the
// first Apply, any Apply after an error, and one every Resync replace
// the table whole, so that a table changed behind its back (`nft delete
// element ...` by hand) is put right. If the kernel refuses the element
// changes (the table or a set is gone), the same Apply falls back to a
// whole table.
type Applier struct {
	netnsFD int
	last    *Ruleset  // what the kernel holds; nil: not known
	full    time.Time // when the table was last replaced whole
	// Resync bounds the age of the last whole replacement; zero means
	// DefaultResync.
	Resync time.Duration
}

// maxIntervalDeletes is how many elements one change may delete from
// interval (pipapo) sets before a whole table is cheaper. Deleting from a
// pipapo set costs the kernel far more than adding to it, and more than
// linearly in the number deleted: measured on a 2-core VM with sets of
// 41k and 50k elements (98k in the table, whose whole replacement took
// 2.1 s), a change deleting 10 of them took 0.2 s, 100 took 0.55 s, 300
// took 2.5-3.2 s, while adding 300 took 0.18 s.
const maxIntervalDeletes = 128

// maxUnreachable bounds the elements that no packet can match which an
// Applier leaves in the table (see Changes.Unreachable): a tenth of the
// table, and at least 4096.
func maxUnreachable(rs *Ruleset) int {
	n := 0
	for _, s := range rs.Sets {
		n += len(s.Elements)
	}
	return max(4096, n/10)
}

// DefaultResync is how often an Applier replaces the table whole even
// when element changes would do.
const DefaultResync = 10 * time.Minute

// NewApplier returns an Applier for the namespace netnsFD (0: the calling
// thread's). Like Apply, it is not safe for concurrent use.
func NewApplier(netnsFD int) *Applier { return &Applier{netnsFD: netnsFD} }

// Apply makes rs the table, by element changes when it can, and then
// deletes the conntrack entries of flows that rs denies, as the function
// Apply does.
func (a *Applier) Apply(rs *Ruleset) (Stats, error) {
	var st Stats
	if err := check(rs); err != nil {
		return st, err
	}
	resync := a.Resync
	if resync == 0 {
		resync = DefaultResync
	}
	ch, ok := Diff(a.last, rs)
	switch {
	case !ok:
	case time.Since(a.full) >= resync:
	case ch.IntervalDeletes() > maxIntervalDeletes:
		st.Fallback = fmt.Sprintf("%d deletions from interval sets: a whole table is faster", ch.IntervalDeletes())
	case ch.Unreachable() > maxUnreachable(rs):
		st.Fallback = fmt.Sprintf("%d unreachable elements left in place: time to drop them", ch.Unreachable())
	case ch.Len() == 0:
		// Nothing to send (an API resync, a pod's status): the rules in
		// force are rs's already, and deny no flow they did not.
		if err := checkSets(a.netnsFD, rs); err != nil {
			st.Fallback = err.Error()
			break
		}
		a.last = Kept(rs, ch)
		st.Incremental, st.Unreachable = true, ch.Unreachable()
		countRuleset(rs, &st)
		return st, nil
	default:
		err := checkSets(a.netnsFD, rs)
		if err == nil {
			err = applyChanges(a.netnsFD, rs, ch, &st)
		}
		if err == nil {
			// The unreachable elements stay: deleting them would cost
			// the kernel more than a whole table, and change nothing.
			a.last = Kept(rs, ch)
			st.Unreachable = ch.Unreachable()
			return st, cleanUp(a.netnsFD, rs, &st)
		}
		st = Stats{Fallback: err.Error()}
	}
	a.last = nil
	full := Stats{Fallback: st.Fallback}
	if err := replace(a.netnsFD, rs, &full); err != nil {
		return full, err
	}
	a.last, a.full = rs, time.Now()
	return full, cleanUp(a.netnsFD, rs, &full)
}

// checkSets verifies that the table holds every set of rs: element
// changes to a table that someone removed would otherwise (with nothing
// to delete or add) succeed and leave the node without rules.
func checkSets(netnsFD int, rs *Ruleset) error {
	conn, err := nftables.New(nftables.WithNetNSFd(netnsFD))
	if err != nil {
		return fmt.Errorf("nft: netlink: %w", err)
	}
	sets, err := conn.GetSets(&nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet})
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nft: no table inet %s", rs.Table)
	}
	if err != nil {
		return fmt.Errorf("nft: sets of table inet %s: %w", rs.Table, err)
	}
	have := map[string]bool{}
	for _, s := range sets {
		have[s.Name] = true
	}
	for _, s := range rs.Sets {
		if !have[s.Name] {
			return fmt.Errorf("nft: table inet %s has no set %s", rs.Table, s.Name)
		}
	}
	return nil
}

// applyChanges sends ch as one batch: every deletion, then every addition
// (a map entry whose value changes is deleted and added again).
func applyChanges(netnsFD int, rs *Ruleset, ch *Changes, st *Stats) error {
	n := 1 << 20
	for _, sc := range ch.Sets {
		n += (len(sc.Add) + len(sc.Del)) * 256
	}
	conn, err := nftables.New(nftables.WithNetNSFd(netnsFD), nftables.WithSockOptions(bufferSize(n)))
	if err != nil {
		return fmt.Errorf("nft: netlink: %w", err)
	}
	t := &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
	for _, sc := range ch.Sets {
		ns, err := nftSet(t, sc.Set)
		if err != nil {
			return err
		}
		if err := sendElements(sc.Set, sc.Del, func(els []nftables.SetElement) error { return conn.SetDeleteElements(ns, els) }); err != nil {
			return err
		}
		st.Deleted += len(sc.Del)
	}
	for _, sc := range ch.Sets {
		ns, err := nftSet(t, sc.Set)
		if err != nil {
			return err
		}
		if err := sendElements(sc.Set, sc.Add, func(els []nftables.SetElement) error { return conn.SetAddElements(ns, els) }); err != nil {
			return err
		}
		st.Added += len(sc.Add)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nft: the kernel refused %d element changes to table inet %s: %w", ch.Len(), rs.Table, err)
	}
	st.Incremental = true
	countRuleset(rs, st)
	return nil
}

// countRuleset fills st's counts of rs's sets, elements and rules.
func countRuleset(rs *Ruleset, st *Stats) {
	for _, s := range rs.Sets {
		st.Sets++
		st.Elements += len(s.Elements)
	}
	for _, c := range rs.Chains {
		st.Rules += len(c.Rules)
	}
}

// Remove deletes the table called table from the namespace netnsFD, if it
// is there. Without it, NetworkPolicy is no longer enforced on the node:
// the agent calls it when Rampart is uninstalled, never when it stops.
func Remove(netnsFD int, table string) error {
	conn, err := nftables.New(nftables.WithNetNSFd(netnsFD))
	if err != nil {
		return fmt.Errorf("nft: netlink: %w", err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("nft: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == table {
			conn.DelTable(t)
			if err := conn.Flush(); err != nil {
				return fmt.Errorf("nft: delete table inet %s: %w", table, err)
			}
		}
	}
	return nil
}

// check refuses a ruleset that the encoding below could not express
// faithfully. Everything else (names, references) the kernel checks.
func check(rs *Ruleset) error {
	var errs []error
	for _, s := range rs.Sets {
		if len(s.Key) == 0 {
			errs = append(errs, fmt.Errorf("set %s: no key", s.Name))
			continue
		}
		if s.Interval && len(s.Key) < 2 {
			// A single-field interval set is the kernel's rbtree, with
			// elements of another shape; the compiler never makes one.
			errs = append(errs, fmt.Errorf("set %s: an interval set must be a concatenation", s.Name))
		}
		for i, e := range s.Elements {
			if err := checkElement(s, e); err != nil {
				errs = append(errs, fmt.Errorf("set %s element %d (%s): %w", s.Name, i, elementString(s, e), err))
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nft: ruleset: %w", err)
	}
	return nil
}

func checkElement(s *Set, e Element) error {
	if len(e.Key) != len(s.Key) {
		return fmt.Errorf("%d key fields, the set has %d", len(e.Key), len(s.Key))
	}
	fields := append([]Datum{}, e.Key...)
	types := append([]Type{}, s.Key...)
	if s.IsMap() {
		fields, types = append(fields, e.Value), append(types, s.Value)
	}
	for i, d := range fields {
		t := types[i]
		switch {
		case t.size() == 0:
			return fmt.Errorf("field %d: unknown type", i)
		case t == TypeIfname && len(d.Name) >= ifnameSize:
			return fmt.Errorf("interface name %q longer than %d bytes", d.Name, ifnameSize-1)
		case t != TypeIfname && (d.Lo > d.Hi || d.Hi > t.max()):
			return fmt.Errorf("field %d: %d-%d is not a range of %s", i, d.Lo, d.Hi, t)
		case d.IsRange() && (!s.Interval || i >= len(s.Key)):
			return fmt.Errorf("field %d: a range in a set without intervals", i)
		}
	}
	return nil
}

// bigBuffers sizes the socket for the batch: the kernel takes a batch in
// one sendmsg, which fails beyond the send buffer, and answers every
// message into the receive buffer. FORCE needs CAP_NET_ADMIN, which
// changing nftables needs anyway.
func bigBuffers(rs *Ruleset) nftables.SockOption {
	n := 1 << 20
	for _, s := range rs.Sets {
		n += len(s.Elements) * 256
	}
	return bufferSize(n)
}

// bufferSize sets the send buffer to n bytes and the receive buffer to
// what the acknowledgements of such a batch need.
func bufferSize(n int) nftables.SockOption {
	return func(c *mdnetlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n),
				// Every message of the batch is acknowledged, and the
				// acknowledgements are read only once the whole batch is
				// sent: room for them grows with the batch too.
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, max(1<<20, n/16)))
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("socket buffers of %d bytes: %w", n, err)
		}
		return nil
	}
}

// queue puts the whole transaction into conn.
func queue(conn *nftables.Conn, rs *Ruleset, st *Stats) error {
	t := &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
	conn.AddTable(t) // so that the delete cannot fail when there is none yet
	conn.DelTable(t)
	conn.AddTable(t)

	sets := map[string]set{}
	for _, s := range rs.Sets {
		ns, err := addSet(conn, t, s)
		if err != nil {
			return err
		}
		sets[s.Name] = set{s, ns}
		st.Sets++
		st.Elements += len(s.Elements)
	}
	accept := nftables.ChainPolicyAccept
	chains := map[string]*nftables.Chain{}
	for _, c := range rs.Chains {
		nc := &nftables.Chain{Name: c.Name, Table: t}
		if c.Hook != HookNone {
			nc.Type = nftables.ChainTypeFilter
			nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority))
			nc.Policy = &accept
			switch c.Hook {
			case HookPrerouting:
				nc.Hooknum = nftables.ChainHookPrerouting
			case HookForward:
				nc.Hooknum = nftables.ChainHookForward
			default:
				return fmt.Errorf("nft: chain %s: unknown hook %d", c.Name, c.Hook)
			}
		}
		chains[c.Name] = conn.AddChain(nc)
	}
	for _, c := range rs.Chains {
		for i, r := range c.Rules {
			exprs, err := ruleExprs(r, sets)
			if err != nil {
				return fmt.Errorf("nft: chain %s rule %d: %w", c.Name, i+1, err)
			}
			nr := &nftables.Rule{Table: t, Chain: chains[c.Name], Exprs: exprs}
			if r.Comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
			}
			conn.AddRule(nr)
			st.Rules++
		}
	}
	return nil
}

var nftTypes = map[Type]nftables.SetDatatype{
	TypeIfname:  nftables.TypeIFName,
	TypeIPv4:    nftables.TypeIPAddr,
	TypeProto:   nftables.TypeInetProto,
	TypePort:    nftables.TypeInetService,
	TypeProfile: nftables.TypeMark,
}

// maxElementBytes bounds the elements of one message: their list is one
// netlink attribute, whose length is 16 bits.
const maxElementBytes = 32 << 10

func addSet(conn *nftables.Conn, t *nftables.Table, s *Set) (*nftables.Set, error) {
	ns, err := nftSet(t, s)
	if err != nil {
		return nil, err
	}
	if err := conn.AddSet(ns, nil); err != nil {
		return nil, fmt.Errorf("nft: set %s: %w", s.Name, err)
	}
	return ns, sendElements(s, s.Elements, func(els []nftables.SetElement) error { return conn.SetAddElements(ns, els) })
}

// nftSet is the library's description of s in table t.
func nftSet(t *nftables.Table, s *Set) (*nftables.Set, error) {
	keyTypes := make([]nftables.SetDatatype, len(s.Key))
	for i, k := range s.Key {
		keyTypes[i] = nftTypes[k]
	}
	key := keyTypes[0]
	if len(keyTypes) > 1 {
		var err error
		if key, err = nftables.ConcatSetType(keyTypes...); err != nil {
			return nil, fmt.Errorf("nft: set %s: %w", s.Name, err)
		}
	}
	ns := &nftables.Set{
		Table:         t,
		Name:          s.Name,
		KeyType:       key,
		Interval:      s.Interval,
		Concatenation: len(s.Key) > 1,
		IsMap:         s.IsMap(),
		Comment:       s.Comment,
	}
	if s.IsMap() {
		ns.DataType = nftTypes[s.Value]
	}
	return ns, nil
}

// sendElements encodes elements of s and hands them to send in messages
// of at most maxElementBytes.
func sendElements(s *Set, elements []Element, send func([]nftables.SetElement) error) error {
	var chunk []nftables.SetElement
	size := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := send(chunk)
		chunk, size = nil, 0
		if err != nil {
			return fmt.Errorf("nft: set %s: %w", s.Name, err)
		}
		return nil
	}
	for _, e := range elements {
		el := nftables.SetElement{Key: encodeKey(s.Key, e.Key, false), Comment: truncate(e.Comment, 128)}
		if s.Interval {
			el.KeyEnd = encodeKey(s.Key, e.Key, true)
		}
		if s.IsMap() {
			el.Val = encodeKey([]Type{s.Value}, []Datum{e.Value}, false)
		}
		n := 64 + len(el.Key) + len(el.KeyEnd) + len(el.Val) + len(el.Comment)
		if size+n > maxElementBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		chunk = append(chunk, el)
		size += n
	}
	return flush()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// encodeKey lays out a key as the kernel compares it: each field in its
// byte order, padded to 4 bytes (one register) inside a concatenation. hi
// takes the ends of the ranges (KeyEnd) instead of their starts.
func encodeKey(types []Type, key []Datum, hi bool) []byte {
	var b []byte
	for i, t := range types {
		d := key[i]
		v := d.Lo
		if hi {
			v = d.Hi
		}
		start := len(b)
		switch t {
		case TypeIfname:
			name := make([]byte, ifnameSize)
			copy(name, d.Name)
			b = append(b, name...)
		case TypeIPv4:
			b = binary.BigEndian.AppendUint32(b, v)
		case TypeProto:
			b = append(b, byte(v))
		case TypePort:
			b = binary.BigEndian.AppendUint16(b, uint16(v))
		case TypeProfile:
			// nft's mark type is in host byte order; the map's values and
			// the allow sets' first field use the same bytes.
			b = append(b, binaryutil.NativeEndian.PutUint32(v)...)
		}
		if len(types) > 1 {
			for (len(b)-start)%4 != 0 {
				b = append(b, 0)
			}
		}
	}
	return b
}

// Registers: the 32-bit registers NFT_REG32_00 to _15 are numbered 8 to 23;
// a concatenation is a run of them, one field per 4 bytes.
const reg32 = 8

// set is a set of the IR and the library's handle on it in the batch.
type set struct {
	ir  *Set
	nft *nftables.Set
}

func ruleExprs(r Rule, sets map[string]set) ([]expr.Any, error) {
	var out []expr.Any
	for _, m := range r.Matches {
		switch m := m.(type) {
		case MatchIPv6:
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}})
		case MatchCtState:
			out = append(out,
				&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
					Mask: binaryutil.NativeEndian.PutUint32(uint32(m.States)), Xor: make([]byte, 4)},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
		case MatchTCPNotSyn:
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{TCPSyn | TCPAck}, Xor: []byte{0}},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{TCPSyn}})
		case MatchSet:
			target, ok := sets[m.Set]
			if !ok {
				return nil, fmt.Errorf("no set %s", m.Set)
			}
			// Lay the key out in registers from NFT_REG32_00, one field
			// after the other; a map operand's field is looked up from a
			// scratch register after the key, its value lands in place.
			types := make([]Type, len(m.Key))
			words := 0
			for i, o := range m.Key {
				types[i] = o.Field.Type()
				if o.Map != "" {
					mp, ok := sets[o.Map]
					if !ok || !mp.ir.IsMap() {
						return nil, fmt.Errorf("no map %s", o.Map)
					}
					types[i] = mp.ir.Value
				}
				words += (types[i].size() + 3) / 4
			}
			scratch := uint32(reg32 + words)
			if words+ifnameSize/4 > 16 { // the key, and a field for a map after it
				return nil, fmt.Errorf("key of set %s longer than the registers", m.Set)
			}
			reg := uint32(reg32)
			for i, o := range m.Key {
				if o.Map == "" {
					out = append(out, load(o.Field, reg))
				} else {
					mp := sets[o.Map].nft
					out = append(out, load(o.Field, scratch),
						&expr.Lookup{SourceRegister: scratch, DestRegister: reg, IsDestRegSet: true, SetName: mp.Name, SetID: mp.ID})
				}
				reg += uint32((types[i].size() + 3) / 4)
			}
			out = append(out, &expr.Lookup{SourceRegister: reg32, SetName: target.nft.Name, SetID: target.nft.ID, Invert: m.Negate})
		case MatchIfnamePrefix:
			if m.Field != FieldIIFName && m.Field != FieldOIFName {
				return nil, fmt.Errorf("interface name prefix on %s", m.Field)
			}
			if m.Prefix == "" || len(m.Prefix) >= ifnameSize {
				return nil, fmt.Errorf("interface name prefix %q", m.Prefix)
			}
			// The kernel compares as many bytes as the operand has: a
			// prefix is a shorter comparison ("rmp*" in nft).
			out = append(out, load(m.Field, 1),
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(m.Prefix)})
		default:
			return nil, fmt.Errorf("unknown match %T", m)
		}
	}
	if r.Counter {
		out = append(out, &expr.Counter{})
	}
	v := &expr.Verdict{Chain: r.Verdict.Chain}
	switch r.Verdict.Kind {
	case Accept:
		v.Kind = expr.VerdictAccept
	case Drop:
		v.Kind = expr.VerdictDrop
	case Return:
		v.Kind = expr.VerdictReturn
	case Jump:
		v.Kind = expr.VerdictJump
	default:
		return nil, fmt.Errorf("unknown verdict %d", r.Verdict.Kind)
	}
	return append(out, v), nil
}

// load puts a packet field into register reg.
func load(f Field, reg uint32) expr.Any {
	switch f {
	case FieldIIFName:
		return &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg}
	case FieldOIFName:
		return &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg}
	case FieldSAddr:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
	case FieldDAddr:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	case FieldL4Proto:
		return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}
	case FieldDPort:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	}
	panic(fmt.Sprintf("nft: unknown field %d", f)) // the Field constants are closed
}

// deleteDeniedFlows deletes the conntrack entries of IPv4 flows forwarded
// to or from a local pod that rs would not let start now. A flow is judged
// as the forward hook sees its first packet: the original source, and the
// reply's source and port as destination (after any DNAT). Flows with an
// address of the node itself go through INPUT or OUTPUT, which NetworkPolicy
// leaves alone: they are kept.
func deleteDeniedFlows(netnsFD int, rs *Ruleset) (uint, error) {
	var h *netlink.Handle
	var err error
	if netnsFD == 0 {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(vnetns.NsHandle(netnsFD), unix.NETLINK_NETFILTER, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return 0, err
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return 0, fmt.Errorf("list the node's addresses: %w", err)
	}
	f := &deniedFlows{ev: NewEvaluator(rs), node: map[netip.Addr]bool{}}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			f.node[ip.Unmap()] = true
		}
	}
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
	return n, errors.Join(err, f.err)
}

// deniedFlows is a conntrack filter: it matches the flows to delete.
type deniedFlows struct {
	ev   *Evaluator
	node map[netip.Addr]bool
	err  error
}

func (f *deniedFlows) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	src, ok1 := netip.AddrFromSlice(fl.Forward.SrcIP)
	dst, ok2 := netip.AddrFromSlice(fl.Reverse.SrcIP)
	if !ok1 || !ok2 {
		return false
	}
	src, dst = src.Unmap(), dst.Unmap()
	if !src.Is4() || !dst.Is4() || f.node[src] || f.node[dst] {
		return false
	}
	if !f.ev.IsLocal(src) && !f.ev.IsLocal(dst) {
		return false
	}
	ok, _, err := f.ev.Forwarded(src, dst, fl.Forward.Protocol, fl.Reverse.SrcPort)
	if err != nil {
		f.err = err
		return false
	}
	return !ok
}
