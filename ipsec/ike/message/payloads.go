package message

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
)

// KE is a Key Exchange payload (RFC 7296 §3.4).
type KE struct {
	Group DHGroup
	Data  []byte // the public value, in the group's encoding
}

func (*KE) Type() PayloadType { return PayloadKE }

func (p *KE) AppendBody(b []byte) ([]byte, error) {
	b = be.AppendUint16(b, uint16(p.Group))
	b = append(b, 0, 0) // RESERVED
	return append(b, p.Data...), nil
}

func parseKE(body []byte, off int) (*KE, error) {
	if len(body) < keHeaderLen {
		return nil, perr(off, PayloadKE, "%d octets, shorter than %d", len(body), keHeaderLen)
	}
	return &KE{Group: DHGroup(be.Uint16(body[offKEGroup:])), Data: body[keHeaderLen:]}, nil
}

// ID is an Identification payload, IDi or IDr (RFC 7296 §3.5).
type ID struct {
	Responder bool // IDr; IDi when false
	IDType    IDType
	Data      []byte

	raw []byte // the body as parsed
}

// Body returns the payload's body, RestOfInitIDPayload or
// RestOfRespIDPayload, which the AUTH payload covers (RFC 7296 §2.15): the
// octets as received for a parsed payload (whatever its RESERVED octets
// held), else as Marshal writes them.
func (p *ID) Body() []byte {
	if len(p.raw) >= idHeaderLen && p.raw[offIDType] == byte(p.IDType) && bytes.Equal(p.raw[idHeaderLen:], p.Data) {
		return p.raw
	}
	b, _ := p.AppendBody(nil)
	return b
}

func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

func (p *ID) AppendBody(b []byte) ([]byte, error) {
	b = append(b, byte(p.IDType), 0, 0, 0)
	return append(b, p.Data...), nil
}

func parseID(t PayloadType, body []byte, off int) (*ID, error) {
	if len(body) < idHeaderLen {
		return nil, perr(off, t, "%d octets, shorter than %d", len(body), idHeaderLen)
	}
	return &ID{Responder: t == PayloadIDr, IDType: IDType(body[offIDType]), Data: body[idHeaderLen:], raw: body}, nil
}

// NewIDAddr returns an ID_IPV4_ADDR or ID_IPV6_ADDR identification.
func NewIDAddr(responder bool, a netip.Addr) *ID {
	if a.Is4() {
		v := a.As4()
		return &ID{Responder: responder, IDType: IDIPv4Addr, Data: v[:]}
	}
	v := a.As16()
	return &ID{Responder: responder, IDType: IDIPv6Addr, Data: v[:]}
}

// NewIDString returns an identification whose data is s: ID_FQDN,
// ID_RFC822_ADDR or ID_KEY_ID.
func NewIDString(responder bool, t IDType, s string) *ID {
	return &ID{Responder: responder, IDType: t, Data: []byte(s)}
}

// Addr returns the address of an ID_IPV4_ADDR or ID_IPV6_ADDR
// identification.
func (p *ID) Addr() (netip.Addr, bool) {
	switch {
	case p.IDType == IDIPv4Addr && len(p.Data) == 4:
		return netip.AddrFrom4([4]byte(p.Data)), true
	case p.IDType == IDIPv6Addr && len(p.Data) == 16:
		return netip.AddrFrom16([16]byte(p.Data)), true
	}
	return netip.Addr{}, false
}

// String returns the identity for logs: the address, the name or the
// data in hex, with the type.
func (p *ID) String() string {
	switch p.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		if a, ok := p.Addr(); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822Addr:
		return strconv.Quote(string(p.Data))
	}
	return fmt.Sprintf("%s:%x", p.IDType, p.Data)
}

// Cert is a Certificate payload (RFC 7296 §3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

func (*Cert) Type() PayloadType { return PayloadCERT }

func (p *Cert) AppendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(p.Encoding)), p.Data...), nil
}

func parseCert(body []byte, off int) (*Cert, error) {
	if len(body) < certHeaderLen {
		return nil, perr(off, PayloadCERT, "empty body")
	}
	return &Cert{Encoding: CertEncoding(body[offCertEncoding]), Data: body[certHeaderLen:]}, nil
}

// CertReq is a Certificate Request payload (RFC 7296 §3.7).
type CertReq struct {
	Encoding CertEncoding
	// Data is, for CertX509Signature, the concatenated SHA-1 hashes of
	// the public keys of trusted CAs.
	Data []byte
}

func (*CertReq) Type() PayloadType { return PayloadCERTREQ }

func (p *CertReq) AppendBody(b []byte) ([]byte, error) {
	return append(append(b, byte(p.Encoding)), p.Data...), nil
}

func parseCertReq(body []byte, off int) (*CertReq, error) {
	if len(body) < certHeaderLen {
		return nil, perr(off, PayloadCERTREQ, "empty body")
	}
	return &CertReq{Encoding: CertEncoding(body[offCertEncoding]), Data: body[certHeaderLen:]}, nil
}

// sha1Len is the length of a CA's key hash in a CERTREQ (RFC 7296 §3.7).
const sha1Len = 20

// Authorities splits the data of an X.509 CERTREQ into the 20-octet SHA-1
// hashes of the CAs' subject public key info. It reports false for other
// encodings and for data that is not a whole number of hashes.
func (p *CertReq) Authorities() ([][]byte, bool) {
	if p.Encoding != CertX509Signature || len(p.Data)%sha1Len != 0 {
		return nil, false
	}
	out := make([][]byte, 0, len(p.Data)/sha1Len)
	for i := 0; i < len(p.Data); i += sha1Len {
		out = append(out, p.Data[i:i+sha1Len])
	}
	return out, true
}

// Auth is an Authentication payload (RFC 7296 §3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (*Auth) Type() PayloadType { return PayloadAUTH }

func (p *Auth) AppendBody(b []byte) ([]byte, error) {
	b = append(b, byte(p.Method), 0, 0, 0)
	return append(b, p.Data...), nil
}

func parseAuth(body []byte, off int) (*Auth, error) {
	if len(body) < authHeaderLen {
		return nil, perr(off, PayloadAUTH, "%d octets, shorter than %d", len(body), authHeaderLen)
	}
	return &Auth{Method: AuthMethod(body[offAuthMethod]), Data: body[authHeaderLen:]}, nil
}

// Nonce is a Nonce payload, Ni or Nr (RFC 7296 §3.9).
type Nonce struct {
	Data []byte // 16 to 256 octets
}

func (*Nonce) Type() PayloadType { return PayloadNonce }

func (p *Nonce) AppendBody(b []byte) ([]byte, error) {
	if len(p.Data) < MinNonceLen || len(p.Data) > MaxNonceLen {
		return b, fmt.Errorf("nonce of %d octets, want %d-%d (RFC 7296 §3.9)", len(p.Data), MinNonceLen, MaxNonceLen)
	}
	return append(b, p.Data...), nil
}

func parseNonce(body []byte, off int) (*Nonce, error) {
	// RFC 7296 §3.9: "The size of the Nonce Data MUST be between 16 and
	// 256 octets, inclusive."
	if len(body) < MinNonceLen || len(body) > MaxNonceLen {
		return nil, perr(off, PayloadNonce, "nonce of %d octets, want %d-%d", len(body), MinNonceLen, MaxNonceLen)
	}
	return &Nonce{Data: body}, nil
}

// Notify is a Notify payload (RFC 7296 §3.10).
type Notify struct {
	// Protocol and SPI name the SA the notification is about;
	// ProtocolNone and no SPI otherwise (RFC 7296 §3.10: the SPI size is
	// zero for notifications about the IKE SA).
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

func (*Notify) Type() PayloadType { return PayloadNotify }

func (p *Notify) AppendBody(b []byte) ([]byte, error) {
	if !validSPILen(len(p.SPI)) {
		return b, fmt.Errorf("spi of %d octets, want 0, 4 or 8", len(p.SPI))
	}
	b = append(b, byte(p.Protocol), byte(len(p.SPI)))
	b = be.AppendUint16(b, uint16(p.NotifyType))
	b = append(b, p.SPI...)
	return append(b, p.Data...), nil
}

func parseNotify(body []byte, off int) (*Notify, error) {
	if len(body) < notifyHeaderLen {
		return nil, perr(off, PayloadNotify, "%d octets, shorter than %d", len(body), notifyHeaderLen)
	}
	n := int(body[offNotifySPISize])
	// RFC 7296 §3.10: the SPI is that of an AH or ESP SA (4 octets), or
	// absent; IKE SPIs are 8 octets.
	if !validSPILen(n) {
		return nil, perr(off+offNotifySPISize, PayloadNotify, "spi size %d, want 0, 4 or 8", n)
	}
	if n > len(body)-notifyHeaderLen {
		return nil, perr(off+offNotifySPISize, PayloadNotify, "spi size %d, but %d octets follow", n, len(body)-notifyHeaderLen)
	}
	return &Notify{
		Protocol:   ProtocolID(body[offNotifyProtocol]),
		NotifyType: NotifyType(be.Uint16(body[offNotifyType:])),
		SPI:        body[notifyHeaderLen : notifyHeaderLen+n],
		Data:       body[notifyHeaderLen+n:],
	}, nil
}

// validSPILen reports whether n is the length of no SPI, an AH or ESP SPI,
// or an IKE SPI (RFC 7296 §3.3.1, §3.10).
func validSPILen(n int) bool { return n == 0 || n == childSPILen || n == ikeSPILen }

// NewNotify returns a notification about the IKE SA (no protocol, no SPI).
func NewNotify(t NotifyType, data []byte) *Notify {
	return &Notify{NotifyType: t, Data: data}
}

// NewInvalidKEPayload returns the INVALID_KE_PAYLOAD notification that
// asks the initiator for the group g (RFC 7296 §1.3, §3.10.1: the data is
// the two-octet group number).
func NewInvalidKEPayload(g DHGroup) *Notify {
	return NewNotify(NotifyInvalidKEPayload, be.AppendUint16(nil, uint16(g)))
}

// Group returns the group of an INVALID_KE_PAYLOAD notification.
func (p *Notify) Group() (DHGroup, bool) {
	if p.NotifyType != NotifyInvalidKEPayload || len(p.Data) != 2 {
		return 0, false
	}
	return DHGroup(be.Uint16(p.Data)), true
}

// NewSignatureHashAlgorithms returns a SIGNATURE_HASH_ALGORITHMS
// notification (RFC 7427 §4: a list of two-octet hash algorithm numbers).
func NewSignatureHashAlgorithms(algs ...HashAlgorithm) *Notify {
	var d []byte
	for _, a := range algs {
		d = be.AppendUint16(d, uint16(a))
	}
	return NewNotify(NotifySignatureHashAlgorithms, d)
}

// HashAlgorithms decodes a SIGNATURE_HASH_ALGORITHMS notification.
func (p *Notify) HashAlgorithms() ([]HashAlgorithm, bool) {
	if p.NotifyType != NotifySignatureHashAlgorithms || len(p.Data)%2 != 0 {
		return nil, false
	}
	out := make([]HashAlgorithm, 0, len(p.Data)/2)
	for i := 0; i < len(p.Data); i += 2 {
		out = append(out, HashAlgorithm(be.Uint16(p.Data[i:])))
	}
	return out, true
}

// Delete is a Delete payload (RFC 7296 §3.11). Deleting the IKE SA has
// ProtocolIKE and no SPIs (the SA is the one of the message's header);
// deleting Child SAs has ProtocolESP or ProtocolAH and their inbound SPIs.
type Delete struct {
	Protocol ProtocolID
	SPIs     []uint32
}

func (*Delete) Type() PayloadType { return PayloadDelete }

func (p *Delete) AppendBody(b []byte) ([]byte, error) {
	switch {
	case p.Protocol == ProtocolIKE && len(p.SPIs) != 0:
		return b, fmt.Errorf("delete of the IKE SA with %d spis; it has none (RFC 7296 §3.11)", len(p.SPIs))
	case p.Protocol != ProtocolIKE && p.Protocol != ProtocolAH && p.Protocol != ProtocolESP:
		return b, fmt.Errorf("delete for protocol %s", p.Protocol)
	case len(p.SPIs) > 0xffff:
		return b, fmt.Errorf("%d spis, more than %d", len(p.SPIs), 0xffff)
	}
	size := byte(childSPILen)
	if p.Protocol == ProtocolIKE {
		size = 0
	}
	b = append(b, byte(p.Protocol), size)
	b = be.AppendUint16(b, uint16(len(p.SPIs)))
	for _, s := range p.SPIs {
		b = be.AppendUint32(b, s)
	}
	return b, nil
}

func parseDelete(body []byte, off int) (*Delete, error) {
	if len(body) < deleteHeaderLen {
		return nil, perr(off, PayloadDelete, "%d octets, shorter than %d", len(body), deleteHeaderLen)
	}
	proto := ProtocolID(body[offDeleteProtocol])
	size := int(body[offDeleteSPISize])
	num := int(be.Uint16(body[offDeleteNumSPIs:]))
	want := childSPILen
	switch proto {
	case ProtocolIKE:
		want = 0
	case ProtocolAH, ProtocolESP:
	default:
		return nil, perr(off+offDeleteProtocol, PayloadDelete, "protocol %s", proto)
	}
	if size != want {
		return nil, perr(off+offDeleteSPISize, PayloadDelete, "spi size %d for %s, want %d", size, proto, want)
	}
	if proto == ProtocolIKE && num != 0 {
		return nil, perr(off+offDeleteNumSPIs, PayloadDelete, "%d spis for the IKE SA, want 0", num)
	}
	if rest := len(body) - deleteHeaderLen; rest != num*size {
		return nil, perr(off+offDeleteNumSPIs, PayloadDelete, "%d spis of %d octets, but %d octets follow", num, size, rest)
	}
	d := &Delete{Protocol: proto}
	if num > 0 {
		d.SPIs = make([]uint32, num) // num*4 octets were checked above
		for i := range d.SPIs {
			d.SPIs[i] = be.Uint32(body[deleteHeaderLen+i*childSPILen:])
		}
	}
	return d, nil
}

// VendorID is a Vendor ID payload (RFC 7296 §3.12).
type VendorID struct {
	Data []byte
}

func (*VendorID) Type() PayloadType { return PayloadVendorID }

func (p *VendorID) AppendBody(b []byte) ([]byte, error) { return append(b, p.Data...), nil }

// Raw is a payload kept as octets: EAP (RFC 7296 §3.16), which an EAP
// implementation decodes, and payload types this package does not know
// (which RFC 7296 §2.5 says to skip unless critical).
type Raw struct {
	PayloadType PayloadType
	// Critical is the C bit (RFC 7296 §3.2). Parse rejects an unknown
	// payload with it set (ErrUnsupportedCriticalPayload).
	Critical bool
	Body     []byte
}

func (p *Raw) Type() PayloadType { return p.PayloadType }

func (p *Raw) AppendBody(b []byte) ([]byte, error) { return append(b, p.Body...), nil }
