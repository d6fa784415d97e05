package message

import (
	"fmt"
	"strconv"
	"strings"
)

// SA is a Security Association payload (RFC 7296 §3.3): the proposals of an
// initiator, or the one proposal a responder chose.
type SA struct {
	Proposals []Proposal
}

// Proposal is a proposal substructure (RFC 7296 §3.3.1).
type Proposal struct {
	// Number is the proposal number. An initiator numbers its proposals 1,
	// 2, ...; a responder echoes the number it chose. Marshal writes a
	// zero Number as the proposal's position (1-based).
	Number   uint8
	Protocol ProtocolID
	// SPI is empty in IKE_SA_INIT, 8 octets when an IKE SA is rekeyed, 4
	// octets for ESP and AH (§3.3.1).
	SPI        []byte
	Transforms []Transform
}

// Transform is a transform substructure (RFC 7296 §3.3.2). ID is read
// according to Type: EncrID, PRFID, IntegID, DHGroup or ESNID.
type Transform struct {
	Type       TransformType
	ID         uint16
	Attributes []Attribute
}

// Attribute is a transform attribute (RFC 7296 §3.3.5).
type Attribute struct {
	Type AttributeType
	// TV selects the short form (AF = 1) with a two-octet Value; Key
	// Length is always sent that way.
	TV    bool
	Value []byte
}

// Encr returns an encryption transform; keyBits adds the Key Length
// attribute, which AES-CBC, AES-CTR, AES-GCM and AES-CCM need (RFC 7296
// §3.3.5) and ChaCha20-Poly1305 must not carry (RFC 7634 §2). 0 omits it.
func Encr(id EncrID, keyBits int) Transform {
	t := Transform{Type: TransformENCR, ID: uint16(id)}
	if keyBits > 0 {
		t.Attributes = []Attribute{KeyLength(keyBits)}
	}
	return t
}

// KeyLength returns the Key Length attribute for keyBits.
func KeyLength(keyBits int) Attribute {
	return Attribute{Type: AttrKeyLength, TV: true, Value: be.AppendUint16(nil, uint16(keyBits))}
}

// PRF returns a pseudorandom function transform.
func PRF(id PRFID) Transform { return Transform{Type: TransformPRF, ID: uint16(id)} }

// Integ returns an integrity algorithm transform.
func Integ(id IntegID) Transform { return Transform{Type: TransformINTEG, ID: uint16(id)} }

// DH returns a key exchange method (Diffie-Hellman group) transform.
func DH(g DHGroup) Transform { return Transform{Type: TransformDH, ID: uint16(g)} }

// ESN returns an extended sequence numbers transform.
func ESN(e ESNID) Transform { return Transform{Type: TransformESN, ID: uint16(e)} }

// KeyLength returns the value of the Key Length attribute in bits, if the
// transform has one.
func (t Transform) KeyLength() (int, bool) {
	for _, a := range t.Attributes {
		if a.Type == AttrKeyLength && a.TV && len(a.Value) == 2 {
			return int(be.Uint16(a.Value)), true
		}
	}
	return 0, false
}

// IDString returns the transform ID's registry name.
func (t Transform) IDString() string {
	switch t.Type {
	case TransformENCR:
		return EncrID(t.ID).String()
	case TransformPRF:
		return PRFID(t.ID).String()
	case TransformINTEG:
		return IntegID(t.ID).String()
	case TransformDH:
		return DHGroup(t.ID).String()
	case TransformESN:
		return ESNID(t.ID).String()
	}
	if t.Type >= TransformADDKE1 && t.Type <= TransformADDKE7 {
		return DHGroup(t.ID).String()
	}
	return strconv.Itoa(int(t.ID))
}

// String returns "TYPE:ID", with "/bits" for a key length, for logs.
func (t Transform) String() string {
	s := t.Type.String() + ":" + t.IDString()
	if k, ok := t.KeyLength(); ok {
		s += "/" + strconv.Itoa(k)
	}
	return s
}

// TransformsOf returns the proposal's transforms of type t in order.
func (p *Proposal) TransformsOf(t TransformType) []Transform {
	var out []Transform
	for _, x := range p.Transforms {
		if x.Type == t {
			out = append(out, x)
		}
	}
	return out
}

// String returns e.g. "#1 IKE ENCR:ENCR_AES_GCM_16/256 PRF:PRF_HMAC_SHA2_256
// KE:Curve25519", for logs.
func (p Proposal) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "#%d %s", p.Number, p.Protocol)
	if len(p.SPI) > 0 {
		fmt.Fprintf(&s, " spi %x", p.SPI)
	}
	for _, t := range p.Transforms {
		s.WriteByte(' ')
		s.WriteString(t.String())
	}
	return s.String()
}

func (*SA) Type() PayloadType { return PayloadSA }

func (p *SA) AppendBody(b []byte) ([]byte, error) {
	if len(p.Proposals) == 0 {
		return b, fmt.Errorf("no proposals")
	}
	for i := range p.Proposals {
		var err error
		if b, err = p.Proposals[i].append(b, i, i == len(p.Proposals)-1); err != nil {
			return b, fmt.Errorf("proposal %d: %w", i+1, err)
		}
	}
	return b, nil
}

func (p *Proposal) append(b []byte, i int, last bool) ([]byte, error) {
	num := int(p.Number)
	if num == 0 {
		num = i + 1
	}
	switch {
	case num > 0xff:
		return b, fmt.Errorf("proposal number %d", num)
	case !validSPILen(len(p.SPI)):
		return b, fmt.Errorf("spi of %d octets, want 0, 4 or 8", len(p.SPI))
	case len(p.Transforms) > 0xff:
		return b, fmt.Errorf("%d transforms, more than 255", len(p.Transforms))
	}
	at := len(b)
	more := byte(propMore)
	if last {
		more = 0
	}
	b = append(b, more, 0, 0, 0, byte(num), byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
	b = append(b, p.SPI...)
	for j := range p.Transforms {
		var err error
		if b, err = p.Transforms[j].append(b, j == len(p.Transforms)-1); err != nil {
			return b, fmt.Errorf("transform %d: %w", j+1, err)
		}
	}
	if n := len(b) - at; n > maxPayloadLen {
		return b, fmt.Errorf("%d octets", n)
	}
	be.PutUint16(b[at+offPropLength:], uint16(len(b)-at))
	return b, nil
}

func (t *Transform) append(b []byte, last bool) ([]byte, error) {
	at := len(b)
	more := byte(trMore)
	if last {
		more = 0
	}
	b = append(b, more, 0, 0, 0, byte(t.Type), 0)
	b = be.AppendUint16(b, t.ID)
	for _, a := range t.Attributes {
		if a.Type > 0x7fff {
			return b, fmt.Errorf("attribute type %d does not fit 15 bits", a.Type)
		}
		if a.TV {
			if len(a.Value) != 2 {
				return b, fmt.Errorf("%s: TV attribute value of %d octets, want 2", a.Type, len(a.Value))
			}
			b = be.AppendUint16(b, uint16(a.Type)|attrAF)
			b = append(b, a.Value...)
			continue
		}
		if len(a.Value) > 0xffff {
			return b, fmt.Errorf("%s: value of %d octets", a.Type, len(a.Value))
		}
		b = be.AppendUint16(b, uint16(a.Type))
		b = be.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	if n := len(b) - at; n > maxPayloadLen {
		return b, fmt.Errorf("%d octets", n)
	}
	be.PutUint16(b[at+offTrLength:], uint16(len(b)-at))
	return b, nil
}

// propView is a proposal substructure; valid once len(v) >= propHeaderLen.
type propView []byte

func (v propView) last() byte           { return v[offPropLast] }
func (v propView) length() int          { return int(be.Uint16(v[offPropLength:])) }
func (v propView) number() uint8        { return v[offPropNum] }
func (v propView) protocol() ProtocolID { return ProtocolID(v[offPropProtocol]) }
func (v propView) spiSize() int         { return int(v[offPropSPISize]) }
func (v propView) numTransforms() int   { return int(v[offPropNumTransforms]) }

// trView is a transform substructure; valid once len(v) >= trHeaderLen.
type trView []byte

func (v trView) last() byte         { return v[offTrLast] }
func (v trView) length() int        { return int(be.Uint16(v[offTrLength:])) }
func (v trView) typ() TransformType { return TransformType(v[offTrType]) }
func (v trView) id() uint16         { return be.Uint16(v[offTrID:]) }

func parseSA(body []byte, off int) (*SA, error) {
	sa := &SA{}
	for rest, at := body, off; len(rest) > 0; {
		if len(rest) < propHeaderLen {
			return nil, perr(at, PayloadSA, "%d octets left, shorter than a proposal", len(rest))
		}
		v := propView(rest)
		n := v.length()
		if n < propHeaderLen+v.spiSize() || n > len(rest) {
			return nil, perr(at+offPropLength, PayloadSA, "proposal length %d outside %d-%d", n, propHeaderLen+v.spiSize(), len(rest))
		}
		// RFC 7296 §3.3.1: 0 for the last proposal, 2 before others.
		want := byte(0)
		if n < len(rest) {
			want = propMore
		}
		if v.last() != want {
			return nil, perr(at+offPropLast, PayloadSA, "last substruc %d, want %d", v.last(), want)
		}
		// §3.3.1: proposals are numbered from 1.
		if v.number() == 0 {
			return nil, perr(at+offPropNum, PayloadSA, "proposal number 0")
		}
		if s := v.spiSize(); !validSPILen(s) {
			return nil, perr(at+offPropSPISize, PayloadSA, "spi size %d, want 0, 4 or 8", s)
		}
		p := Proposal{Number: v.number(), Protocol: v.protocol(), SPI: rest[propHeaderLen : propHeaderLen+v.spiSize()]}
		trs, err := parseTransforms(rest[propHeaderLen+v.spiSize():n], at+propHeaderLen+v.spiSize())
		if err != nil {
			return nil, err
		}
		if len(trs) != v.numTransforms() {
			return nil, perr(at+offPropNumTransforms, PayloadSA, "%d transforms announced, %d present", v.numTransforms(), len(trs))
		}
		p.Transforms = trs
		sa.Proposals = append(sa.Proposals, p)
		rest, at = rest[n:], at+n
	}
	if len(sa.Proposals) == 0 {
		return nil, perr(off, PayloadSA, "no proposals")
	}
	return sa, nil
}

func parseTransforms(b []byte, off int) ([]Transform, error) {
	var out []Transform
	for rest, at := b, off; len(rest) > 0; {
		if len(rest) < trHeaderLen {
			return nil, perr(at, PayloadSA, "%d octets left, shorter than a transform", len(rest))
		}
		v := trView(rest)
		n := v.length()
		if n < trHeaderLen || n > len(rest) {
			return nil, perr(at+offTrLength, PayloadSA, "transform length %d outside %d-%d", n, trHeaderLen, len(rest))
		}
		// RFC 7296 §3.3.2: 0 for the last transform, 3 before others.
		want := byte(0)
		if n < len(rest) {
			want = trMore
		}
		if v.last() != want {
			return nil, perr(at+offTrLast, PayloadSA, "last substruc %d, want %d", v.last(), want)
		}
		t := Transform{Type: v.typ(), ID: v.id()}
		attrs, err := parseAttributes(rest[trHeaderLen:n], at+trHeaderLen)
		if err != nil {
			return nil, err
		}
		t.Attributes = attrs
		out = append(out, t)
		rest, at = rest[n:], at+n
	}
	return out, nil
}

func parseAttributes(b []byte, off int) ([]Attribute, error) {
	var out []Attribute
	for rest, at := b, off; len(rest) > 0; {
		if len(rest) < attrTLVHeader {
			return nil, perr(at, PayloadSA, "%d octets left, shorter than an attribute", len(rest))
		}
		typ := be.Uint16(rest[offAttrType:])
		if typ&attrAF != 0 {
			out = append(out, Attribute{Type: AttributeType(typ &^ attrAF), TV: true, Value: rest[offAttrTV:attrTVLen]})
			rest, at = rest[attrTVLen:], at+attrTVLen
			continue
		}
		n := int(be.Uint16(rest[offAttrLength:]))
		if n > len(rest)-attrTLVHeader {
			return nil, perr(at+offAttrLength, PayloadSA, "attribute length %d, but %d octets follow", n, len(rest)-attrTLVHeader)
		}
		out = append(out, Attribute{Type: AttributeType(typ), Value: rest[attrTLVHeader : attrTLVHeader+n]})
		rest, at = rest[attrTLVHeader+n:], at+attrTLVHeader+n
	}
	return out, nil
}
