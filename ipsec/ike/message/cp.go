package message

import (
	"fmt"
	"net/netip"
)

// CP is a Configuration payload (RFC 7296 §3.15): a remote-access client's
// request for an internal address and servers, and the gateway's reply.
type CP struct {
	CfgType    CfgType
	Attributes []CfgAttribute
}

// CfgAttribute is a configuration attribute (RFC 7296 §3.15.1). In a
// CFG_REQUEST an empty Value asks for any value.
type CfgAttribute struct {
	Type  CfgAttrType
	Value []byte
}

// CfgAddr returns an attribute carrying an address (INTERNAL_IP4_ADDRESS,
// INTERNAL_IP4_DNS, INTERNAL_IP6_DNS, ...). An invalid address gives the
// empty value of a request.
func CfgAddr(t CfgAttrType, a netip.Addr) CfgAttribute {
	if !a.IsValid() {
		return CfgAttribute{Type: t}
	}
	return CfgAttribute{Type: t, Value: a.AsSlice()}
}

// Addr returns the address an attribute carries: 4 octets for the IPv4
// attributes, 16 for IPv6 ones, or the first 16 of the 17 of
// INTERNAL_IP6_ADDRESS and INTERNAL_IP6_SUBNET (address and prefix length,
// §3.15.1; Prefix returns both).
func (a CfgAttribute) Addr() (netip.Addr, bool) {
	switch len(a.Value) {
	case 4, 16:
		return netip.AddrFromSlice(a.Value)
	case 17:
		return netip.AddrFrom16([16]byte(a.Value[:16])), true
	}
	return netip.Addr{}, false
}

// Prefix decodes the 17-octet address and prefix length of
// INTERNAL_IP6_ADDRESS and INTERNAL_IP6_SUBNET (RFC 7296 §3.15.1).
func (a CfgAttribute) Prefix() (netip.Prefix, bool) {
	if len(a.Value) != 17 || a.Value[16] > 128 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom16([16]byte(a.Value[:16])), int(a.Value[16])), true
}

// Get returns the attributes of type t in order.
func (p *CP) Get(t CfgAttrType) []CfgAttribute {
	var out []CfgAttribute
	for _, a := range p.Attributes {
		if a.Type == t {
			out = append(out, a)
		}
	}
	return out
}

func (*CP) Type() PayloadType { return PayloadCP }

func (p *CP) AppendBody(b []byte) ([]byte, error) {
	b = append(b, byte(p.CfgType), 0, 0, 0)
	for _, a := range p.Attributes {
		if a.Type > cfgTypeMask {
			return b, fmt.Errorf("attribute type %d does not fit 15 bits", a.Type)
		}
		if len(a.Value) > 0xffff {
			return b, fmt.Errorf("%s: value of %d octets", a.Type, len(a.Value))
		}
		b = be.AppendUint16(b, uint16(a.Type))
		b = be.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b, nil
}

func parseCP(body []byte, off int) (*CP, error) {
	if len(body) < cpHeaderLen {
		return nil, perr(off, PayloadCP, "%d octets, shorter than %d", len(body), cpHeaderLen)
	}
	cp := &CP{CfgType: CfgType(body[offCPType])}
	for rest, at := body[cpHeaderLen:], off+cpHeaderLen; len(rest) > 0; {
		if len(rest) < cfgAttrHeader {
			return nil, perr(at, PayloadCP, "%d octets left, shorter than an attribute", len(rest))
		}
		n := int(be.Uint16(rest[offCfgLength:]))
		if n > len(rest)-cfgAttrHeader {
			return nil, perr(at+offCfgLength, PayloadCP, "attribute length %d, but %d octets follow", n, len(rest)-cfgAttrHeader)
		}
		// The top bit is reserved (§3.15.1) and ignored.
		t := CfgAttrType(be.Uint16(rest[offCfgType:]) & cfgTypeMask)
		cp.Attributes = append(cp.Attributes, CfgAttribute{Type: t, Value: rest[cfgAttrHeader : cfgAttrHeader+n]})
		rest, at = rest[cfgAttrHeader+n:], at+cfgAttrHeader+n
	}
	return cp, nil
}
