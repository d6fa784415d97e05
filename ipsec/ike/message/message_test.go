package message

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// samplePayloads has one payload of every type this package encodes, with
// the variants of their fields.
func samplePayloads() []Payload {
	return []Payload{
		&SA{Proposals: []Proposal{
			{Number: 1, Protocol: ProtocolIKE, Transforms: []Transform{
				Encr(EncrAESGCM16, 256), PRF(PRFHMACSHA256), DH(DHCurve25519), DH(DHECP256),
			}},
			{Number: 2, Protocol: ProtocolIKE, SPI: seq(8, 0xa0), Transforms: []Transform{
				Encr(EncrAESCBC, 128), Integ(IntegHMACSHA256_128), PRF(PRFHMACSHA384),
				{Type: TransformDH, ID: uint16(DHMODP2048), Attributes: []Attribute{{Type: 99, Value: []byte("tlv")}, {Type: 100, Value: []byte{}}}},
			}},
			{Number: 7, Protocol: ProtocolESP, SPI: seq(4, 0xc0), Transforms: []Transform{Encr(EncrChaCha20Poly1305, 0), ESN(ESNNone), ESN(ESNOn)}},
			{Number: 8, Protocol: ProtocolAH, SPI: seq(4, 0xd0), Transforms: []Transform{}},
		}},
		&KE{Group: DHCurve25519, Data: seq(32, 1)},
		&KE{Group: DHECP521, Data: []byte{}},
		&Nonce{Data: seq(16, 2)},
		&Nonce{Data: seq(256, 3)},
		NewIDString(false, IDFQDN, "gw.example.org"),
		NewIDAddr(true, netip.MustParseAddr("2001:db8::1")),
		NewIDAddr(false, netip.MustParseAddr("192.0.2.1")),
		&ID{Responder: true, IDType: IDNull, Data: []byte{}},
		&Cert{Encoding: CertX509Signature, Data: seq(100, 4)},
		&CertReq{Encoding: CertX509Signature, Data: seq(40, 5)},
		&CertReq{Encoding: CertX509Signature, Data: []byte{}},
		&Auth{Method: AuthPSK, Data: seq(32, 6)},
		&Auth{Method: AuthDigitalSignature, Data: []byte{}},
		NewNotify(NotifyCookie, seq(20, 7)),
		&Notify{Protocol: ProtocolESP, SPI: seq(4, 8), NotifyType: NotifyRekeySA, Data: []byte{}},
		&Notify{Protocol: ProtocolIKE, SPI: seq(8, 9), NotifyType: NotifyInvalidSPI, Data: []byte{}},
		NewInvalidKEPayload(DHECP384),
		NewSignatureHashAlgorithms(HashSHA256, HashSHA384, HashSHA512, HashIdentity),
		&Notify{NotifyType: 65535, Data: []byte{}},
		&Delete{Protocol: ProtocolIKE},
		&Delete{Protocol: ProtocolESP, SPIs: []uint32{1, 0xdeadbeef, 3}},
		&Delete{Protocol: ProtocolAH},
		&VendorID{Data: []byte("rampart")},
		&VendorID{Data: []byte{}},
		NewTS(false, netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")),
		&TS{Responder: true, Selectors: []Selector{
			{Type: TSIPv4AddrRange, IPProtocol: 6, StartPort: 443, EndPort: 443,
				StartAddr: netip.MustParseAddr("192.0.2.7"), EndAddr: netip.MustParseAddr("192.0.2.9")},
			{Type: TSIPv6AddrRange, IPProtocol: 17, StartPort: 65535, EndPort: 0,
				StartAddr: netip.MustParseAddr("::"), EndAddr: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
			{Type: 10, IPProtocol: 0, Data: []byte("system_u:object_r")},
		}},
		&TS{Selectors: []Selector{}},
		&CP{CfgType: CfgRequest, Attributes: []CfgAttribute{
			CfgAddr(CfgInternalIP4Address, netip.Addr{}), CfgAddr(CfgInternalIP6DNS, netip.Addr{}),
		}},
		&CP{CfgType: CfgReply, Attributes: []CfgAttribute{
			CfgAddr(CfgInternalIP4Address, netip.MustParseAddr("10.99.0.1")),
			CfgAddr(CfgInternalIP4DNS, netip.MustParseAddr("10.99.0.53")),
			{Type: CfgInternalIP6Address, Value: append(netip.MustParseAddr("2001:db8::5").AsSlice(), 64)},
			{Type: CfgApplicationVersion, Value: []byte("rampart 1")},
		}},
		&CP{CfgType: CfgAck, Attributes: []CfgAttribute{}},
		&Raw{PayloadType: PayloadEAP, Critical: true, Body: []byte{1, 2, 0, 4}},
		&Raw{PayloadType: 200, Body: []byte("unknown, not critical")},
		&Raw{PayloadType: 201, Body: []byte{}},
	}
}

// show prints a payload for test names and failures.
func show(p Payload) string { return fmt.Sprintf("%T %+v", p, p) }

// samePayload compares the exported fields of two payloads, with nil and
// empty slices alike (which is what a round trip may change).
func samePayload(a, b Payload) bool { return sameValue(reflect.ValueOf(a), reflect.ValueOf(b)) }

var addrType = reflect.TypeOf(netip.Addr{})

func sameValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if a.Type() == addrType {
			return a.Interface().(netip.Addr) == b.Interface().(netip.Addr)
		}
		for i := 0; i < a.NumField(); i++ {
			if a.Type().Field(i).IsExported() && !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}

func testHeader() Header {
	return Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: IKEAuth, Flags: FlagInitiator, MessageID: 7}
}

func TestRoundTripEveryPayload(t *testing.T) {
	all := samplePayloads()
	// Each payload alone, and all of them in one message.
	cases := [][]Payload{all, nil}
	for _, p := range all {
		cases = append(cases, []Payload{p})
	}
	for i, ps := range cases {
		name := "all"
		switch len(ps) {
		case 0:
			name = "empty"
		case 1:
			name = fmt.Sprintf("%02d_%s", i-1, ps[0].Type())
		}
		t.Run(name, func(t *testing.T) {
			m := &Message{Header: testHeader(), Payloads: ps}
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Payloads) != len(ps) {
				t.Fatalf("%d payloads, want %d", len(got.Payloads), len(ps))
			}
			for i := range ps {
				if !samePayload(got.Payloads[i], ps[i]) {
					t.Errorf("payload %d:\n got %s\nwant %s", i, show(got.Payloads[i]), show(ps[i]))
				}
			}
			if int(got.Length) != len(b) || got.NextPayload != firstType(ps, PayloadNone) {
				t.Errorf("header length %d next %s", got.Length, got.NextPayload)
			}
			again, err := got.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("Marshal(Parse(b)) != b (%v)", err)
			}
			if !bytes.Equal(got.Bytes(), b) {
				t.Error("Bytes() is not the parsed message")
			}
			// Append appends.
			pre := []byte("prefix")
			app, err := m.Append(bytes.Clone(pre))
			if err != nil || !bytes.Equal(app, append(pre, b...)) {
				t.Errorf("Append: %v", err)
			}
			// The same payloads as an inner chain.
			chain, err := AppendPayloads(nil, ps)
			if err != nil {
				t.Fatal(err)
			}
			inner, err := ParsePayloads(firstType(ps, PayloadNone), chain)
			if err != nil || len(inner) != len(ps) {
				t.Fatalf("ParsePayloads: %d payloads, %v", len(inner), err)
			}
		})
	}
}

func TestSamePayload(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	for _, c := range []struct {
		a, b Payload
		same bool
	}{
		{&KE{Group: 1, Data: nil}, &KE{Group: 1, Data: []byte{}}, true},
		{&KE{Group: 1}, &KE{Group: 2}, false},
		{&KE{Data: []byte{1}}, &KE{Data: []byte{2}}, false},
		{&KE{}, &Nonce{}, false},
		{&ID{IDType: 1, raw: []byte{1}}, &ID{IDType: 1}, true},
		{&ID{Responder: true}, &ID{}, false},
		{&TS{Selectors: []Selector{{StartAddr: a}}}, &TS{Selectors: []Selector{{StartAddr: a}}}, true},
		{&TS{Selectors: []Selector{{StartAddr: a}}}, &TS{Selectors: []Selector{{StartAddr: a.Next()}}}, false},
		{&TS{Selectors: []Selector{{StartPort: 1}}}, &TS{Selectors: []Selector{{StartPort: 2}}}, false},
		{&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Value: []byte{1}}}}}}}},
			&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Value: []byte{2}}}}}}}}, false},
	} {
		if samePayload(c.a, c.b) != c.same {
			t.Errorf("samePayload(%s, %s) != %v", show(c.a), show(c.b), c.same)
		}
	}
}

func TestHeader(t *testing.T) {
	h := Header{SPIi: 1, SPIr: 2, MinorVersion: 3, Exchange: IKESAInit, Flags: FlagResponse | FlagVersion | 0x01, MessageID: 0x01020304}
	b, err := (&Message{Header: h}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x23, 34, 0x31, 1, 2, 3, 4, 0, 0, 0, 28}
	if !bytes.Equal(b, want) {
		t.Fatalf("header\n got %x\nwant %x", b, want)
	}
	got, err := ParseHeader(b)
	h.Length = HeaderLen
	if err != nil || got != h {
		t.Fatalf("ParseHeader = %+v, %v; want %+v", got, err, h)
	}
	if !got.IsResponse() || got.IsInitiator() {
		t.Error("IsResponse/IsInitiator")
	}
	if s := got.String(); s != "IKE_SA_INIT response 16909060 [V|R|0x1] 0000000000000001_i 0000000000000002_r" {
		t.Errorf("String() = %q", s)
	}
	// ParseHeader does not need the whole message; Parse does.
	if _, err := ParseHeader(append(b, 0)); err != nil {
		t.Error(err)
	}
	if _, err := Parse(append(b, 0)); !errors.Is(err, ErrInvalidSyntax) {
		t.Errorf("trailing octet: %v", err)
	}
}

func TestVersion(t *testing.T) {
	b, _ := (&Message{Header: testHeader()}).Marshal()
	for _, v := range []byte{0x10, 0x30, 0xf0, 0x00} {
		b[offVersion] = v
		_, err := Parse(b)
		var pe *ParseError
		if !errors.Is(err, ErrInvalidMajorVersion) || !errors.As(err, &pe) || pe.Offset != offVersion {
			t.Errorf("version %#x: %v", v, err)
		}
		if n := NotifyFor(err); n == nil || n.NotifyType != NotifyInvalidMajorVersion {
			t.Errorf("NotifyFor: %v", n)
		}
	}
	// Minor versions are ignored but kept.
	b[offVersion] = 0x2f
	m, err := Parse(b)
	if err != nil || m.MinorVersion != 0xf {
		t.Fatal(err)
	}
}

// validMessages returns encoded messages to mutate: every sample payload in
// one message, and the unencrypted captures.
func validMessages(t testing.TB) [][]byte {
	b, err := (&Message{Header: testHeader(), Payloads: samplePayloads()}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := [][]byte{b}
	for _, name := range []string{"gcm", "cbc", "invalidke"} {
		for _, d := range readPcap(t, "testdata/strongswan/"+name+".pcap") {
			out = append(out, d.ike)
		}
	}
	return out
}

// TestTruncations cuts every valid message at every length, once as it is
// (the header's Length no longer matches) and once with the Length field
// set to the cut (the payload chain runs past the end).
func TestTruncations(t *testing.T) {
	for i, b := range validMessages(t) {
		for n := 0; n < len(b); n++ {
			cut := bytes.Clone(b[:n])
			if _, err := Parse(cut); !errors.Is(err, ErrInvalidSyntax) {
				t.Fatalf("message %d cut to %d: %v", i, n, err)
			}
			if n >= HeaderLen {
				be.PutUint32(cut[offLength:], uint32(n))
				if _, err := Parse(cut); !errors.Is(err, ErrInvalidSyntax) {
					t.Fatalf("message %d cut to %d with length %d: %v", i, n, n, err)
				}
			}
		}
	}
}

// lengthField is a length or count field of an encoded message.
type lengthField struct {
	off, size int
	what      string
}

// lengthFields lists the length and count fields of a valid message
// (without encrypted payloads), found by walking it independently of the
// parser.
func lengthFields(b []byte) []lengthField {
	u16 := func(o int) int { return int(b[o])<<8 | int(b[o+1]) }
	fs := []lengthField{{offLength, 4, "header length"}}
	next, off := PayloadType(b[offNextPayload]), HeaderLen
	for next != PayloadNone {
		n := u16(off + offGenLength)
		fs = append(fs, lengthField{off + offGenLength, 2, next.String() + " payload length"})
		body, bo := b[off+genHeaderLen:off+n], off+genHeaderLen
		switch next {
		case PayloadSA:
			for p := 0; p < len(body); {
				pl := int(body[p+offPropLength])<<8 | int(body[p+offPropLength+1])
				fs = append(fs, lengthField{bo + p + offPropLength, 2, "proposal length"},
					lengthField{bo + p + offPropNumTransforms, 1, "transform count"},
					lengthField{bo + p + offPropSPISize, 1, "spi size"})
				for tr := p + propHeaderLen + int(body[p+offPropSPISize]); tr < p+pl; {
					tl := int(body[tr+offTrLength])<<8 | int(body[tr+offTrLength+1])
					fs = append(fs, lengthField{bo + tr + offTrLength, 2, "transform length"})
					for a := tr + trHeaderLen; a < tr+tl; {
						if body[a]&0x80 != 0 {
							a += attrTVLen
							continue
						}
						al := int(body[a+offAttrLength])<<8 | int(body[a+offAttrLength+1])
						fs = append(fs, lengthField{bo + a + offAttrLength, 2, "attribute length"})
						a += attrTLVHeader + al
					}
					tr += tl
				}
				p += pl
			}
		case PayloadNotify:
			fs = append(fs, lengthField{bo + offNotifySPISize, 1, "notify spi size"})
		case PayloadDelete:
			fs = append(fs, lengthField{bo + offDeleteSPISize, 1, "delete spi size"},
				lengthField{bo + offDeleteNumSPIs, 2, "delete spi count"})
		case PayloadTSi, PayloadTSr:
			fs = append(fs, lengthField{bo + offTSNum, 1, "selector count"})
			for s := tsHeaderLen; s < len(body); {
				sl := int(body[s+offSelLength])<<8 | int(body[s+offSelLength+1])
				fs = append(fs, lengthField{bo + s + offSelLength, 2, "selector length"})
				s += sl
			}
		case PayloadCP:
			for a := cpHeaderLen; a < len(body); {
				al := int(body[a+offCfgLength])<<8 | int(body[a+offCfgLength+1])
				fs = append(fs, lengthField{bo + a + offCfgLength, 2, "cp attribute length"})
				a += cfgAttrHeader + al
			}
		case PayloadSK, PayloadSKF:
			return fs
		}
		next, off = PayloadType(b[off+offGenNext]), off+n
	}
	return fs
}

// TestLengthsOffByOne changes every length and count field of every valid
// message by one either way: Parse must refuse each.
func TestLengthsOffByOne(t *testing.T) {
	checked := 0
	for i, b := range validMessages(t) {
		for _, f := range lengthFields(b) {
			for _, d := range []int{-1, 1} {
				m := bytes.Clone(b)
				v := 0
				for k := 0; k < f.size; k++ {
					v = v<<8 | int(m[f.off+k])
				}
				v += d
				if v < 0 || v >= 1<<(8*f.size) {
					continue
				}
				for k := f.size - 1; k >= 0; k-- {
					m[f.off+k] = byte(v)
					v >>= 8
				}
				checked++
				if _, err := Parse(m); !errors.Is(err, ErrInvalidSyntax) {
					t.Errorf("message %d: %s at %d %+d: %v", i, f.what, f.off, d, err)
				}
			}
		}
	}
	if checked < 500 {
		t.Errorf("only %d length changes checked", checked)
	}
}

// msg builds a message from a header and raw payload octets (generic
// headers included) for the negative tests.
func msg(next PayloadType, payloads ...[]byte) []byte {
	b := make([]byte, HeaderLen)
	for _, p := range payloads {
		b = append(b, p...)
	}
	putHeader(b, &Header{SPIi: 1, Exchange: IKESAInit, Flags: FlagInitiator}, next, len(b))
	return b
}

// gp is a generic payload: next, flags, length, body.
func gp(next PayloadType, flags byte, body ...byte) []byte {
	n := genHeaderLen + len(body)
	return append([]byte{byte(next), flags, byte(n >> 8), byte(n)}, body...)
}

func TestMalformed(t *testing.T) {
	nonce := seq(16, 1)
	tests := []struct {
		name    string
		b       []byte
		err     error
		payload PayloadType
		offset  int
	}{
		{"short header", make([]byte, 27), ErrInvalidSyntax, PayloadNone, 27},
		{"length below header", func() []byte { b := msg(0); b[offLength+3] = 27; return b[:27] }(), ErrInvalidSyntax, PayloadNone, 27},
		{"trailing octets", append(msg(0), 0), ErrInvalidSyntax, PayloadNone, offLength},
		{"trailing octets after chain", msg(PayloadNonce, gp(0, 0, nonce...), []byte{0, 0, 0, 0}), ErrInvalidSyntax, PayloadNone, 48},
		{"chain past the end", msg(PayloadNonce, gp(PayloadNonce, 0, nonce...)), ErrInvalidSyntax, PayloadNonce, 48},
		{"payload shorter than its header", msg(PayloadNonce, []byte{0, 0, 0, 3}), ErrInvalidSyntax, PayloadNonce, 30},
		{"payload past the end", msg(PayloadNonce, []byte{0, 0, 0, 30}, nonce), ErrInvalidSyntax, PayloadNonce, 30},
		{"critical unknown", msg(PayloadVendorID, gp(150, 0, 'v'), gp(0, 0x80, 1, 2)), ErrUnsupportedCriticalPayload, 150, 34},
		{"nonce short", msg(PayloadNonce, gp(0, 0, nonce[:15]...)), ErrInvalidSyntax, PayloadNonce, 32},
		{"nonce long", msg(PayloadNonce, gp(0, 0, make([]byte, 257)...)), ErrInvalidSyntax, PayloadNonce, 32},
		{"ke short", msg(PayloadKE, gp(0, 0, 0, 19, 0)), ErrInvalidSyntax, PayloadKE, 32},
		{"id short", msg(PayloadIDi, gp(0, 0, 1, 0, 0)), ErrInvalidSyntax, PayloadIDi, 32},
		{"auth short", msg(PayloadAUTH, gp(0, 0, 2)), ErrInvalidSyntax, PayloadAUTH, 32},
		{"cert empty", msg(PayloadCERT, gp(0, 0)), ErrInvalidSyntax, PayloadCERT, 32},
		{"certreq empty", msg(PayloadCERTREQ, gp(0, 0)), ErrInvalidSyntax, PayloadCERTREQ, 32},
		{"notify short", msg(PayloadNotify, gp(0, 0, 0, 0, 0x40)), ErrInvalidSyntax, PayloadNotify, 32},
		{"notify spi past end", msg(PayloadNotify, gp(0, 0, 3, 4, 0, 11, 1, 2, 3)), ErrInvalidSyntax, PayloadNotify, 33},
		{"notify spi size", msg(PayloadNotify, gp(0, 0, 3, 5, 0, 11, 1, 2, 3, 4, 5)), ErrInvalidSyntax, PayloadNotify, 33},
		{"delete ike with spis", msg(PayloadDelete, gp(0, 0, 1, 0, 0, 1)), ErrInvalidSyntax, PayloadDelete, 34},
		{"delete ike spi size", msg(PayloadDelete, gp(0, 0, 1, 8, 0, 0)), ErrInvalidSyntax, PayloadDelete, 33},
		{"delete esp spi size", msg(PayloadDelete, gp(0, 0, 3, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8)), ErrInvalidSyntax, PayloadDelete, 33},
		{"delete protocol", msg(PayloadDelete, gp(0, 0, 9, 4, 0, 0)), ErrInvalidSyntax, PayloadDelete, 32},
		{"delete count", msg(PayloadDelete, gp(0, 0, 3, 4, 0, 2, 1, 2, 3, 4)), ErrInvalidSyntax, PayloadDelete, 34},
		{"sa empty", msg(PayloadSA, gp(0, 0)), ErrInvalidSyntax, PayloadSA, 32},
		{"proposal short", msg(PayloadSA, gp(0, 0, 0, 0, 0, 8, 1, 1, 0)), ErrInvalidSyntax, PayloadSA, 32},
		{"proposal number 0", msg(PayloadSA, gp(0, 0, 0, 0, 0, 8, 0, 1, 0, 0)), ErrInvalidSyntax, PayloadSA, 36},
		{"proposal last", msg(PayloadSA, gp(0, 0, 2, 0, 0, 8, 1, 1, 0, 0)), ErrInvalidSyntax, PayloadSA, 32},
		{"proposal more", msg(PayloadSA, gp(0, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 0, 0, 8, 2, 1, 0, 0)), ErrInvalidSyntax, PayloadSA, 32},
		{"proposal spi size", msg(PayloadSA, gp(0, 0, 0, 0, 0, 11, 1, 3, 3, 0, 1, 2, 3)), ErrInvalidSyntax, PayloadSA, 38},
		{"proposal spi past length", msg(PayloadSA, gp(0, 0, 0, 0, 0, 8, 1, 3, 4, 0)), ErrInvalidSyntax, PayloadSA, 34},
		{"transform count", msg(PayloadSA, gp(0, 0, 0, 0, 0, 8, 1, 1, 0, 1)), ErrInvalidSyntax, PayloadSA, 39},
		{"transform short", msg(PayloadSA, gp(0, 0, 0, 0, 0, 12, 1, 1, 0, 1, 0, 0, 0, 4)), ErrInvalidSyntax, PayloadSA, 40},
		{"transform last", msg(PayloadSA, gp(0, 0, 0, 0, 0, 16, 1, 1, 0, 1, 3, 0, 0, 8, 1, 0, 0, 12)), ErrInvalidSyntax, PayloadSA, 40},
		{"attribute short", msg(PayloadSA, gp(0, 0, 0, 0, 0, 18, 1, 1, 0, 1, 0, 0, 0, 10, 1, 0, 0, 12, 0x80, 14)), ErrInvalidSyntax, PayloadSA, 48},
		{"tlv attribute past end", msg(PayloadSA, gp(0, 0, 0, 0, 0, 21, 1, 1, 0, 1, 0, 0, 0, 13, 1, 0, 0, 12, 0, 1, 0, 2, 9)), ErrInvalidSyntax, PayloadSA, 50},
		{"ts short", msg(PayloadTSi, gp(0, 0, 0, 0, 0)), ErrInvalidSyntax, PayloadTSi, 32},
		{"ts count", msg(PayloadTSr, gp(0, 0, 2, 0, 0, 0, 7, 0, 0, 16, 0, 0, 255, 255, 10, 0, 0, 0, 10, 255, 255, 255)), ErrInvalidSyntax, PayloadTSr, 32},
		{"ts v4 length", msg(PayloadTSi, gp(0, 0, 1, 0, 0, 0, 7, 0, 0, 40, 0, 0, 255, 255, 10, 0, 0, 0, 10, 255, 255, 255)), ErrInvalidSyntax, PayloadTSi, 38},
		{"ts v6 length", msg(PayloadTSi, gp(0, 0, 1, 0, 0, 0, 8, 0, 0, 16, 0, 0, 255, 255, 10, 0, 0, 0, 10, 255, 255, 255)), ErrInvalidSyntax, PayloadTSi, 38},
		{"ts selector short", msg(PayloadTSi, gp(0, 0, 1, 0, 0, 0, 10, 0, 0, 3)), ErrInvalidSyntax, PayloadTSi, 38},
		{"cp short", msg(PayloadCP, gp(0, 0, 1, 0, 0)), ErrInvalidSyntax, PayloadCP, 32},
		{"cp attribute short", msg(PayloadCP, gp(0, 0, 1, 0, 0, 0, 0, 1, 0)), ErrInvalidSyntax, PayloadCP, 36},
		{"cp attribute past end", msg(PayloadCP, gp(0, 0, 1, 0, 0, 0, 0, 1, 0, 4, 10, 0, 0)), ErrInvalidSyntax, PayloadCP, 38},
		{"sk not last", msg(PayloadSK, gp(PayloadNonce, 0, 1, 2, 3), gp(0, 0, nonce...)), ErrInvalidSyntax, PayloadSK, 30},
		{"skf not last", msg(PayloadSKF, gp(0, 0, 0, 1, 0, 1), gp(0, 0, nonce...)), ErrInvalidSyntax, PayloadSKF, 30},
		{"skf short", msg(PayloadSKF, gp(0, 0, 0, 1, 0)), ErrInvalidSyntax, PayloadSKF, 32},
		{"skf number 0", msg(PayloadSKF, gp(0, 0, 0, 0, 0, 1)), ErrInvalidSyntax, PayloadSKF, 32},
		{"skf number past total", msg(PayloadSKF, gp(0, 0, 0, 3, 0, 2)), ErrInvalidSyntax, PayloadSKF, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.b)
			var pe *ParseError
			if !errors.Is(err, tt.err) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want %v in a *ParseError", err, tt.err)
			}
			if pe.Payload != tt.payload || pe.Offset != tt.offset || pe.Encrypted {
				t.Errorf("%v: payload %s offset %d, want %s at %d", err, pe.Payload, pe.Offset, tt.payload, tt.offset)
			}
			if !strings.HasPrefix(err.Error(), tt.err.Error()+": ") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestUnknownPayloads(t *testing.T) {
	// Unknown and not critical: skipped over, kept raw. EAP with the
	// critical bit is known, so kept too.
	b := msg(150, gp(PayloadEAP, 0, 1, 2), gp(0, 0x80, 3, 4))
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !samePayload(m.Payloads[0], &Raw{PayloadType: 150, Body: []byte{1, 2}}) ||
		!samePayload(m.Payloads[1], &Raw{PayloadType: PayloadEAP, Critical: true, Body: []byte{3, 4}}) {
		t.Errorf("payloads %s, %s", show(m.Payloads[0]), show(m.Payloads[1]))
	}
	// The critical bit of known payloads is ignored (RFC 7296 §2.5) and
	// written as zero.
	b = msg(PayloadVendorID, gp(0, 0x80, 'x'))
	m, err = Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := m.Marshal()
	if out[HeaderLen+offGenFlags] != 0 {
		t.Error("critical bit of a known payload kept")
	}
	// NotifyFor an unsupported critical payload names it.
	_, err = Parse(msg(151, gp(0, 0x80)))
	n := NotifyFor(err)
	if n == nil || n.NotifyType != NotifyUnsupportedCriticalPayload || !bytes.Equal(n.Data, []byte{151}) {
		t.Errorf("NotifyFor(%v) = %v", err, n)
	}
}

func TestNotifyFor(t *testing.T) {
	_, syntax := Parse(make([]byte, 3))
	tests := []struct {
		err  error
		want NotifyType
	}{
		{syntax, NotifyInvalidSyntax},
		{fmt.Errorf("wrapped: %w", ErrInvalidSyntax), NotifyInvalidSyntax},
		{ErrInvalidMajorVersion, NotifyInvalidMajorVersion},
		{ErrUnsupportedCriticalPayload, 0}, // no payload type to report
		{fmt.Errorf("%w: %w", ErrDecrypt, errFakeICV), 0},
		{ErrFragmentIgnored, 0},
		{ErrReassemblyLimit, 0},
		{errors.New("other"), 0},
		{nil, 0},
	}
	for _, tt := range tests {
		n := NotifyFor(tt.err)
		if (n == nil) != (tt.want == 0) || n != nil && n.NotifyType != tt.want {
			t.Errorf("NotifyFor(%v) = %v, want %s", tt.err, n, tt.want)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	big := make([]byte, 0x10000)
	tests := []struct {
		name string
		ps   []Payload
	}{
		{"nil payload", []Payload{nil}},
		{"type 0", []Payload{&Raw{}}},
		{"nonce short", []Payload{&Nonce{Data: seq(15, 0)}}},
		{"payload too long", []Payload{&VendorID{Data: big}}},
		{"message too long", []Payload{&VendorID{Data: big[:40000]}, &VendorID{Data: big[:40000]}}},
		{"sa without proposals", []Payload{&SA{}}},
		{"spi size", []Payload{&SA{Proposals: []Proposal{{SPI: seq(3, 0)}}}}},
		{"proposal number", []Payload{&SA{Proposals: make([]Proposal, 256)}}},
		{"transforms", []Payload{&SA{Proposals: []Proposal{{Transforms: make([]Transform, 256)}}}}},
		{"tv value", []Payload{&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{TV: true, Value: seq(3, 0)}}}}}}}}},
		{"attribute type", []Payload{&SA{Proposals: []Proposal{{Transforms: []Transform{{Attributes: []Attribute{{Type: 0x8000}}}}}}}}},
		{"notify spi", []Payload{&Notify{SPI: big[:5]}}},
		{"delete ike spis", []Payload{&Delete{Protocol: ProtocolIKE, SPIs: []uint32{1}}}},
		{"delete protocol", []Payload{&Delete{Protocol: 7}}},
		{"ts v4 with v6", []Payload{&TS{Selectors: []Selector{{Type: TSIPv4AddrRange, StartAddr: netip.IPv6Loopback(), EndAddr: netip.IPv6Loopback()}}}}},
		{"ts v6 with v4", []Payload{&TS{Selectors: []Selector{{Type: TSIPv6AddrRange, StartAddr: netip.AddrFrom4([4]byte{}), EndAddr: netip.AddrFrom4([4]byte{})}}}}},
		{"ts invalid", []Payload{&TS{Selectors: []Selector{{Type: TSIPv4AddrRange}}}}},
		{"ts count", []Payload{&TS{Selectors: make([]Selector, 256)}}},
		{"cp attribute type", []Payload{&CP{Attributes: []CfgAttribute{{Type: 0x8000}}}}},
		{"sk not last", []Payload{&Encrypted{}, &Nonce{Data: seq(16, 0)}}},
		{"skf not last", []Payload{&EncryptedFragment{}, &Nonce{Data: seq(16, 0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pre := []byte("keep")
			b, err := (&Message{Header: testHeader(), Payloads: tt.ps}).Append(bytes.Clone(pre))
			if err == nil {
				t.Fatal("no error")
			}
			if !bytes.Equal(b, pre) {
				t.Errorf("Append returned %d octets on error, want the input", len(b))
			}
			if !strings.HasPrefix(err.Error(), "ike: ") {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestGetters(t *testing.T) {
	ps := samplePayloads()
	m := &Message{Header: testHeader(), Payloads: ps}
	if m.Get(PayloadKE) != ps[1] || m.Get(PayloadSK) != nil {
		t.Error("Get")
	}
	if got := m.All(PayloadKE); len(got) != 2 || got[1] != ps[2] {
		t.Error("All")
	}
	if ke, ok := First[*KE](m); !ok || ke != ps[1] {
		t.Error("First")
	}
	if _, ok := First[*Encrypted](m); ok {
		t.Error("First found an *Encrypted")
	}
	if n := m.Notifies(); len(n) != 6 || n[0].NotifyType != NotifyCookie {
		t.Errorf("Notifies: %v", n)
	}
	if n := m.Notify(NotifyRekeySA); n == nil || n.Protocol != ProtocolESP {
		t.Error("Notify")
	}
	if m.Notify(NotifyUseTransportMode) != nil {
		t.Error("Notify of an absent type")
	}
	if n := m.ErrorNotify(); n == nil || n.NotifyType != NotifyInvalidSPI {
		t.Errorf("ErrorNotify: %v", n)
	}
	if (&Message{}).ErrorNotify() != nil {
		t.Error("ErrorNotify of an empty message")
	}
	want := "IKE_AUTH request 7 [I] 0123456789abcdef_i fedcba9876543210_r [ SA KE KE Nonce Nonce IDi IDr IDi IDr CERT CERTREQ CERTREQ AUTH AUTH N(COOKIE) N(REKEY_SA) N(INVALID_SPI) N(INVALID_KE_PAYLOAD) N(SIGNATURE_HASH_ALGORITHMS) N(NOTIFY(65535)) D D D V V TSi TSr TSi CP CP CP EAP PAYLOAD(200) PAYLOAD(201) ]"
	if s := m.String(); s != want {
		t.Errorf("String() =\n%s\nwant\n%s", s, want)
	}
}
