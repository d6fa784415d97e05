package l7

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Steering sends TCP connections to the pod addresses and ports that need
// HTTP authorization to the proxy, with TPROXY, and delivers the replies
// of the proxy's upstream connections back to it. It is a table of its
// own, apart from the policy's and the guard's, and a policy-routing rule
// with its table:
//
//	table inet rampart_l7
//	  set l7_targets { type ipv4_addr . inet_service }
//	  chain prerouting_raw  (prerouting, priority raw):
//	    meta l4proto tcp ip daddr . tcp dport @l7_targets ct zone set 0x4c37
//	  chain output_raw      (output, priority raw):
//	    meta l4proto tcp ip saddr . tcp sport @l7_targets ct zone set 0x4c37
//	  chain prerouting      (prerouting, priority mangle):
//	    meta l4proto tcp socket transparent 1 meta mark set meta mark | 0x800000 accept
//	    meta l4proto tcp ip daddr . tcp dport @l7_targets tproxy ip to 127.0.0.1:PORT meta mark set meta mark | 0x800000 accept
//	    meta l4proto tcp ip daddr . tcp dport @l7_targets reject with tcp reset
//
//	ip rule add fwmark 0x800000/0x800000 lookup 19511 priority 5200
//	ip route add local 0.0.0.0/0 dev lo table 19511
//
// The first prerouting rule sends the packets that belong to one of the
// proxy's transparent sockets to it: the client's packets after the first
// (the accepted socket), and the destination's replies to the proxy's
// upstream connections, which are addressed to the caller and would
// otherwise be forwarded to it. The second assigns a new connection to the
// listener. Both mark the packet, and the mark's route delivers it locally
// although its destination is not an address of the node.
//
// The third makes steering fail closed. nftables' tproxy, unlike
// iptables' TPROXY target, does not drop a packet it finds no transparent
// listener for: it ends the rule and lets the packet go on, here to be
// forwarded to the pod unauthorized. So while the table is in place and
// no proxy listens, a steered connection is reset. A steered packet that
// is not a SYN and belongs to no proxied connection (the proxy restarted)
// goes to the listener, and TCP resets it.
//
// The conntrack zone keeps the two legs of a proxied connection apart.
// The caller's connection (caller:port to pod:80, accepted by the proxy)
// and the proxy's upstream one (caller:port' to pod:80, from the node)
// have the same addresses, and port' is chosen among the node's free
// ports, blind to the ports the caller uses in its own namespace. When
// port' equals port, conntrack takes the upstream SYN for a packet of the
// caller's connection, both legs share one entry whose sequence tracking
// fits neither, and on a node that drops invalid packets the request
// stalls (TestPrivilegedL7SameSourcePort shows it without the zone). The
// caller's leg is zoned (its packets in prerouting, the proxy's answers in
// output); the upstream leg stays in the default zone, as the node's own
// connections to the pod (kubelet's probes) do.
//
// Choices that must not collide with the rest of the node: the mark bit
// 0x800000 is not set in internal/datapath's fwmark 0x52504d (its rule
// matches that exact value, and is inverted), nor in kube-proxy's 0x4000
// and 0x8000; the routing table 19511 (0x4c37, "L7") and the rule's
// priority 5200 come before the datapath's rule (priority 5250, table
// 0x5250), so a marked packet never reaches the datapath's table. The
// mark is or-ed in, keeping other bits.
//
// Nothing here has an owner: the table, rule and route outlive the agent,
// so connections to L7 ports stay refused while it is down (fail closed)
// until Remove.
type Steering struct {
	proxy netip.AddrPort

	mu      sync.Mutex
	targets []netip.AddrPort // what the set holds, as last committed
}

// Names and numbers of the steering (see Steering).
const (
	Table         = "rampart_l7"
	TargetsSet    = "l7_targets"
	Mark          = 0x00800000
	RouteTable    = 0x4c37
	RulePriority  = 5200
	ConntrackZone = 0x4c37
)

// NewSteering returns the steering towards a proxy listening on proxy, a
// loopback address and port (ListenTransparent's). Loopback, because a
// transparent listener on an address that pods can reach would take
// connections that nobody steered to it, and the "socket transparent"
// rule would find it for any packet to its port.
func NewSteering(proxy netip.AddrPort) (*Steering, error) {
	if !proxy.Addr().Is4() || !proxy.Addr().IsLoopback() || proxy.Port() == 0 {
		return nil, fmt.Errorf("l7: steering: proxy address %s: want an IPv4 loopback address and a port, e.g. 127.0.0.1:15006", proxy)
	}
	return &Steering{proxy: proxy}, nil
}

var (
	table      = &nftables.Table{Family: nftables.TableFamilyINet, Name: Table}
	targetsSet = &nftables.Set{Table: table, Name: TargetsSet, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)}
)

// Install replaces the table in the calling thread's network namespace in
// one transaction, with the targets last given to SetTargets, and adds
// the routing rule and route unless they are there. Calling it again
// changes nothing, and repairs what is missing.
func (s *Steering) Install() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.installTable(); err != nil {
		return err
	}
	return installRoute()
}

func (s *Steering) installTable() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("l7: steering: netlink: %w", err)
	}
	// Add, then delete, then add again: the delete of a table that is not
	// there would fail the batch; of one just added, it never does.
	c.AddTable(table)
	c.DelTable(table)
	c.AddTable(table)
	set := *targetsSet
	if err := c.AddSet(&set, nil); err != nil {
		return fmt.Errorf("l7: steering: set %s: %w", TargetsSet, err)
	}
	if err := addElements(c, &set, s.targets); err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: table, Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: prio, Policy: &accept})
	}
	rule := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: slices.Concat(exprs...)})
	}
	zone := binaryutil.NativeEndian.PutUint16(ConntrackZone)
	setZone := []expr.Any{
		&expr.Immediate{Register: 1, Data: zone},
		&expr.Ct{Key: expr.CtKeyZONE, Register: 1, SourceRegister: true},
	}
	rule(chain("prerouting_raw", nftables.ChainHookPrerouting, nftables.ChainPriorityRaw),
		ipv4TCP(), inTargets(&set, dstOff, dportOff), setZone)
	rule(chain("output_raw", nftables.ChainHookOutput, nftables.ChainPriorityRaw),
		ipv4TCP(), inTargets(&set, srcOff, sportOff), setZone)

	pre := chain("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityMangle)
	acceptV := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	rule(pre, ipv4TCP(), []expr.Any{
		&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
	}, setMark(), acceptV)
	addr := s.proxy.Addr().As4()
	rule(pre, ipv4TCP(), inTargets(&set, dstOff, dportOff), []expr.Any{
		&expr.Immediate{Register: 1, Data: addr[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(s.proxy.Port())},
		&expr.TProxy{Family: byte(nftables.TableFamilyIPv4), TableFamily: byte(nftables.TableFamilyINet), RegAddr: 1, RegPort: 2},
	}, setMark(), acceptV)
	rule(pre, ipv4TCP(), inTargets(&set, dstOff, dportOff), []expr.Any{
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("l7: steering: the kernel refused table inet %s: %w", Table, err)
	}
	return nil
}

// SetTargets makes targets the steered pod addresses and TCP ports, in one
// transaction that replaces the set's elements: a connection is steered or
// not, never half. A target that is not in the list is untouched traffic.
// The table must be installed.
func (s *Steering) SetTargets(targets []netip.AddrPort) error {
	norm := make([]netip.AddrPort, 0, len(targets))
	for _, t := range targets {
		t = netip.AddrPortFrom(t.Addr().Unmap(), t.Port())
		if !t.Addr().Is4() || t.Port() == 0 {
			return fmt.Errorf("l7: steering: target %s: want an IPv4 address and a port", t)
		}
		norm = append(norm, t)
	}
	slices.SortFunc(norm, netip.AddrPort.Compare)
	norm = slices.Compact(norm)

	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("l7: steering: netlink: %w", err)
	}
	set := *targetsSet
	c.FlushSet(&set)
	if err := addElements(c, &set, norm); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("l7: steering: replace the elements of set %s (is table inet %s installed?): %w", TargetsSet, Table, err)
	}
	s.targets = norm
	return nil
}

// Adopt takes the targets of a table that a previous process left in the
// calling thread's namespace as this Steering's, so that Install keeps
// them: a restarted agent must not unsteer, even for a moment, what its
// predecessor steered (until its proxy listens, those connections are
// reset; then its decider, none yet, denies). No table: no targets.
func (s *Steering) Adopt() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("l7: steering: netlink: %w", err)
	}
	if _, err := c.ListTableOfFamily(Table, nftables.TableFamilyINet); err != nil {
		s.targets = nil
		return nil
	}
	set, err := c.GetSetByName(table, TargetsSet)
	if err != nil {
		return fmt.Errorf("l7: steering: set %s of the table left in place: %w", TargetsSet, err)
	}
	els, err := c.GetSetElements(set)
	if err != nil {
		return fmt.Errorf("l7: steering: set %s of the table left in place: %w", TargetsSet, err)
	}
	var targets []netip.AddrPort
	for _, e := range els {
		if k := e.Key; len(k) >= 6 {
			targets = append(targets, netip.AddrPortFrom(netip.AddrFrom4([4]byte(k[:4])), uint16(k[4])<<8|uint16(k[5])))
		}
	}
	slices.SortFunc(targets, netip.AddrPort.Compare)
	s.targets = targets
	return nil
}

// Targets returns the targets as last committed.
func (s *Steering) Targets() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.targets)
}

// Remove deletes the table, the rule and the route from the calling
// thread's network namespace; what is already gone is not an error.
// Connections the proxy holds lose their replies: remove the steering
// after the agent stopped serving, not before.
func (s *Steering) Remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("l7: steering: netlink: %w", err)
	}
	c.AddTable(table)
	c.DelTable(table)
	if err := c.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("l7: steering: delete table inet %s: %w", Table, err))
	}
	errs = append(errs, removeRoute())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.targets = nil
	return nil
}

// maxElementsPerMessage keeps one netlink message of set elements well
// under the socket's buffer; a batch of several is still one transaction.
const maxElementsPerMessage = 1024

func addElements(c *nftables.Conn, set *nftables.Set, targets []netip.AddrPort) error {
	for chunk := range slices.Chunk(targets, maxElementsPerMessage) {
		els := make([]nftables.SetElement, len(chunk))
		for i, t := range chunk {
			els[i] = nftables.SetElement{Key: targetKey(t)}
		}
		if err := c.SetAddElements(set, els); err != nil {
			return fmt.Errorf("l7: steering: set %s: %w", TargetsSet, err)
		}
	}
	return nil
}

// targetKey is the set key of a target: the address, then the port in a
// 32-bit register of its own (a concatenation pads each field to 4 bytes).
func targetKey(t netip.AddrPort) []byte {
	a := t.Addr().As4()
	return []byte{a[0], a[1], a[2], a[3], byte(t.Port() >> 8), byte(t.Port()), 0, 0}
}

// Offsets in the IPv4 and TCP headers.
const (
	srcOff   = 12
	dstOff   = 16
	sportOff = 0
	dportOff = 2
)

// reg32 is NFT_REG32_00, where a concatenated key starts.
const reg32 = 8

func ipv4TCP() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
}

// inTargets matches when the IPv4 address at addrOff and the TCP port at
// portOff are an element of set.
func inTargets(set *nftables.Set, addrOff, portOff uint32) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg32, Base: expr.PayloadBaseNetworkHeader, Offset: addrOff, Len: 4},
		&expr.Payload{DestRegister: reg32 + 1, Base: expr.PayloadBaseTransportHeader, Offset: portOff, Len: 2},
		&expr.Lookup{SourceRegister: reg32, SetName: set.Name, SetID: set.ID},
	}
}

// setMark is "meta mark set meta mark | Mark".
func setMark() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^uint32(Mark)), Xor: binaryutil.NativeEndian.PutUint32(Mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

// The routing half: marked packets are delivered locally.
func localRoute(lo int) *netlink.Route {
	return &netlink.Route{Type: unix.RTN_LOCAL, Table: RouteTable, LinkIndex: lo, Scope: netlink.SCOPE_HOST,
		Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}
}

func policyRule() *netlink.Rule {
	r := netlink.NewRule()
	r.Family = unix.AF_INET
	r.Mark = Mark
	m := uint32(Mark)
	r.Mask = &m
	r.Table = RouteTable
	r.Priority = RulePriority
	return r
}

func installRoute() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("l7: steering: netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("l7: steering: link lo: %w", err)
	}
	// Replace: the same route again is no change, and a route left by a
	// killed agent is taken over.
	if err := h.RouteReplace(localRoute(lo.Attrs().Index)); err != nil {
		return fmt.Errorf("l7: steering: route 'local 0.0.0.0/0 dev lo table %d': %w", RouteTable, err)
	}
	if err := h.RuleAdd(policyRule()); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("l7: steering: rule 'fwmark %#x/%#x lookup %d priority %d': %w", Mark, Mark, RouteTable, RulePriority, err)
	}
	return nil
}

func removeRoute() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("l7: steering: netlink: %w", err)
	}
	defer h.Close()
	var errs []error
	// The kernel deletes the first rule that has every attribute given:
	// priority, mark, mask and table, which are ours alone.
	if err := h.RuleDel(policyRule()); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("l7: steering: delete rule 'fwmark %#x/%#x lookup %d': %w", Mark, Mark, RouteTable, err))
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("l7: steering: link lo: %w", err))...)
	}
	if err := h.RouteDel(localRoute(lo.Attrs().Index)); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("l7: steering: delete route 'local 0.0.0.0/0 dev lo table %d': %w", RouteTable, err))
	}
	return errors.Join(errs...)
}
