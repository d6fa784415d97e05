package message

import (
	"fmt"
	"net/netip"
)

// TS is a Traffic Selector payload, TSi or TSr (RFC 7296 §3.13).
type TS struct {
	Responder bool // TSr; TSi when false
	Selectors []Selector
}

// Selector is a traffic selector (RFC 7296 §3.13.1): the packets with IP
// protocol IPProtocol (0: any), a port in StartPort-EndPort and an address
// in StartAddr-EndAddr.
type Selector struct {
	Type TSType
	// IPProtocol is the IP protocol number, 0 for all. For ICMP and
	// ICMPv6 the ports carry type and code (§3.13.1).
	IPProtocol uint8
	// StartPort-EndPort is the port range; 0-65535 is any port, and
	// 65535-0 is OPAQUE (§3.13.1: the port is not available).
	StartPort, EndPort uint16
	StartAddr, EndAddr netip.Addr
	// Data is the rest of a selector of another TS Type (e.g.
	// TS_SECLABEL), kept as octets; IPProtocol then holds its second octet.
	Data []byte
}

func (p *TS) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// NewTS returns a TSi (or TSr) payload with one selector per prefix, for
// every protocol and port.
func NewTS(responder bool, prefixes ...netip.Prefix) *TS {
	ts := &TS{Responder: responder}
	for _, p := range prefixes {
		ts.Selectors = append(ts.Selectors, SelectorFromPrefix(p))
	}
	return ts
}

// SelectorFromPrefix returns the selector of every protocol and port to and
// from the addresses of p.
func SelectorFromPrefix(p netip.Prefix) Selector {
	p = p.Masked()
	start := p.Addr()
	s := Selector{Type: TSIPv6AddrRange, EndPort: 0xffff, StartAddr: start, EndAddr: lastAddr(p)}
	if start.Is4() {
		s.Type = TSIPv4AddrRange
	}
	return s
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	if p.Addr().Is4() {
		return netip.AddrFrom4([4]byte(a[12:]))
	}
	return netip.AddrFrom16(a)
}

// Prefix returns the address range as a prefix, when it is exactly one
// (the start is the prefix's first address and the end its last).
func (s Selector) Prefix() (netip.Prefix, bool) {
	if !s.StartAddr.IsValid() || s.StartAddr.Is4() != s.EndAddr.Is4() {
		return netip.Prefix{}, false
	}
	a, b := s.StartAddr.AsSlice(), s.EndAddr.AsSlice()
	n := len(a) * 8
	bits := n
	for i := 0; i < n; i++ {
		bit := byte(0x80 >> (i % 8))
		x, y := a[i/8]&bit != 0, b[i/8]&bit != 0
		if bits == n {
			if x == y {
				continue
			}
			bits = i
		}
		// From the first difference on, start has zeros and end ones.
		if x || !y {
			return netip.Prefix{}, false
		}
	}
	return netip.PrefixFrom(s.StartAddr, bits), true
}

// AllPorts reports whether the selector covers every port (0-65535).
func (s Selector) AllPorts() bool { return s.StartPort == 0 && s.EndPort == 0xffff }

// String returns the selector for logs: the prefix (or range), then the
// protocol and ports when restricted.
func (s Selector) String() string {
	if s.Type != TSIPv4AddrRange && s.Type != TSIPv6AddrRange {
		return fmt.Sprintf("%s:%x", s.Type, s.Data)
	}
	out := s.StartAddr.String() + "-" + s.EndAddr.String()
	if p, ok := s.Prefix(); ok {
		out = p.String()
	}
	if s.IPProtocol != 0 {
		out += fmt.Sprintf(" proto %d", s.IPProtocol)
	}
	if !s.AllPorts() {
		out += fmt.Sprintf(" ports %d-%d", s.StartPort, s.EndPort)
	}
	return out
}

func (p *TS) AppendBody(b []byte) ([]byte, error) {
	if len(p.Selectors) > 0xff {
		return b, fmt.Errorf("%d selectors, more than 255", len(p.Selectors))
	}
	b = append(b, byte(len(p.Selectors)), 0, 0, 0)
	for i, s := range p.Selectors {
		switch s.Type {
		case TSIPv4AddrRange:
			if !s.StartAddr.Is4() || !s.EndAddr.Is4() {
				return b, fmt.Errorf("selector %d: %s with addresses %s-%s", i+1, s.Type, s.StartAddr, s.EndAddr)
			}
			b = s.appendHeader(b, selIPv4Len)
			b = append(b, s.StartAddr.AsSlice()...)
			b = append(b, s.EndAddr.AsSlice()...)
		case TSIPv6AddrRange:
			if !s.StartAddr.Is6() || !s.EndAddr.Is6() {
				return b, fmt.Errorf("selector %d: %s with addresses %s-%s", i+1, s.Type, s.StartAddr, s.EndAddr)
			}
			b = s.appendHeader(b, selIPv6Len)
			b = append(b, s.StartAddr.AsSlice()...)
			b = append(b, s.EndAddr.AsSlice()...)
		default:
			n := offSelStart + len(s.Data)
			if n > 0xffff {
				return b, fmt.Errorf("selector %d: %d octets", i+1, n)
			}
			b = append(b, byte(s.Type), s.IPProtocol)
			b = be.AppendUint16(b, uint16(n))
			b = append(b, s.Data...)
		}
	}
	return b, nil
}

func (s *Selector) appendHeader(b []byte, n int) []byte {
	b = append(b, byte(s.Type), s.IPProtocol)
	b = be.AppendUint16(b, uint16(n))
	b = be.AppendUint16(b, s.StartPort)
	return be.AppendUint16(b, s.EndPort)
}

// selView is a traffic selector; valid once len(v) >= offSelStart (type,
// protocol and length), and the port and address accessors once len(v) is
// the selector's length for its type.
type selView []byte

func (v selView) typ() TSType       { return TSType(v[offSelType]) }
func (v selView) protocol() uint8   { return v[offSelProtocol] }
func (v selView) length() int       { return int(be.Uint16(v[offSelLength:])) }
func (v selView) startPort() uint16 { return be.Uint16(v[offSelStart:]) }
func (v selView) endPort() uint16   { return be.Uint16(v[offSelEnd:]) }

func parseTS(t PayloadType, body []byte, off int) (*TS, error) {
	if len(body) < tsHeaderLen {
		return nil, perr(off, t, "%d octets, shorter than %d", len(body), tsHeaderLen)
	}
	num := int(body[offTSNum])
	ts := &TS{Responder: t == PayloadTSr}
	rest, at := body[tsHeaderLen:], off+tsHeaderLen
	for len(rest) > 0 {
		if len(rest) < offSelStart {
			return nil, perr(at, t, "%d octets left, shorter than a selector", len(rest))
		}
		v := selView(rest)
		n := v.length()
		if n < offSelStart || n > len(rest) {
			return nil, perr(at+offSelLength, t, "selector length %d outside %d-%d", n, offSelStart, len(rest))
		}
		s := Selector{Type: v.typ(), IPProtocol: v.protocol()}
		switch s.Type {
		case TSIPv4AddrRange, TSIPv6AddrRange:
			want, alen := selIPv4Len, 4
			if s.Type == TSIPv6AddrRange {
				want, alen = selIPv6Len, 16
			}
			if n != want {
				return nil, perr(at+offSelLength, t, "%s of %d octets, want %d", s.Type, n, want)
			}
			s.StartPort, s.EndPort = v.startPort(), v.endPort()
			s.StartAddr, _ = netip.AddrFromSlice(rest[offSelAddrs : offSelAddrs+alen])
			s.EndAddr, _ = netip.AddrFromSlice(rest[offSelAddrs+alen : offSelAddrs+2*alen])
		default:
			s.Data = rest[offSelStart:n]
		}
		ts.Selectors = append(ts.Selectors, s)
		rest, at = rest[n:], at+n
	}
	if len(ts.Selectors) != num {
		return nil, perr(off+offTSNum, t, "%d selectors announced, %d present", num, len(ts.Selectors))
	}
	return ts, nil
}
