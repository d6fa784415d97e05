package message

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestNames(t *testing.T) {
	tests := []struct {
		v    fmt.Stringer
		want string
	}{
		{IKESAInit, "IKE_SA_INIT"},
		{IKEIntermediate, "IKE_INTERMEDIATE"},
		{ExchangeType(99), "EXCHANGE(99)"},
		{PayloadSKF, "SKF"},
		{PayloadNotify, "N"},
		{PayloadType(99), "PAYLOAD(99)"},
		{FlagInitiator | FlagResponse, "I|R"},
		{Flags(0), "0"},
		{Flags(0x81), "0x81"},
		{ProtocolESP, "ESP"},
		{TransformDH, "KE"},
		{TransformType(13), "TRANSFORM(13)"},
		{EncrAESGCM16, "ENCR_AES_GCM_16"},
		{EncrChaCha20Poly1305, "ENCR_CHACHA20_POLY1305"},
		{EncrID(1000), "ENCR(1000)"},
		{PRFHMACSHA512, "PRF_HMAC_SHA2_512"},
		{IntegHMACSHA384_192, "AUTH_HMAC_SHA2_384_192"},
		{DHCurve25519, "Curve25519"},
		{DHMODP2048, "2048-bit MODP Group"},
		{DHECP521, "521-bit random ECP group"},
		{ESNOn, "Extended Sequence Numbers"},
		{AttrKeyLength, "Key Length"},
		{AttributeType(3), "ATTRIBUTE(3)"},
		{IDDERASN1DN, "ID_DER_ASN1_DN"},
		{AuthECDSASHA384P384, "ECDSA with SHA-384 on the P-384 curve"},
		{CertX509Signature, "X.509 Certificate - Signature"},
		{TSIPv6AddrRange, "TS_IPV6_ADDR_RANGE"},
		{CfgReply, "CFG_REPLY"},
		{CfgInternalIP4Address, "INTERNAL_IP4_ADDRESS"},
		{HashSHA256, "SHA2-256"},
		{NotifyNonFirstFragmentsAlso, "NON_FIRST_FRAGMENTS_ALSO"},
		{NotifyIKEv2FragmentationSupported, "IKEV2_FRAGMENTATION_SUPPORTED"},
		{NotifyType(16383), "NOTIFY(16383)"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%T %v: %q, want %q", tt.v, tt.v, got, tt.want)
		}
	}
	// Numbers the brief and the RFCs fix.
	for _, c := range []struct{ got, want int }{
		{int(PayloadSKF), 53}, {int(NotifyIKEv2FragmentationSupported), 16430}, {int(NotifySignatureHashAlgorithms), 16431},
		{int(EncrAESCBC), 12}, {int(EncrAESGCM8), 18}, {int(EncrAESGCM12), 19}, {int(EncrAESGCM16), 20}, {int(EncrChaCha20Poly1305), 28},
		{int(PRFHMACSHA256), 5}, {int(PRFHMACSHA384), 6}, {int(PRFHMACSHA512), 7},
		{int(IntegHMACSHA256_128), 12}, {int(IntegHMACSHA384_192), 13}, {int(IntegHMACSHA512_256), 14},
		{int(DHECP256), 19}, {int(DHECP384), 20}, {int(DHECP521), 21}, {int(DHCurve25519), 31}, {int(AttrKeyLength), 14},
		{int(IDIPv4Addr), 1}, {int(IDFQDN), 2}, {int(IDRFC822Addr), 3}, {int(IDIPv6Addr), 5}, {int(IDDERASN1DN), 9}, {int(IDKeyID), 11},
		{int(AuthRSASignature), 1}, {int(AuthPSK), 2}, {int(AuthDSSSignature), 3}, {int(AuthECDSASHA256P256), 9}, {int(AuthDigitalSignature), 14},
		{int(TSIPv4AddrRange), 7}, {int(TSIPv6AddrRange), 8}, {int(CertX509Signature), 4},
		{int(NotifyNATDetectionSourceIP), 16388}, {int(NotifyCookie), 16390}, {int(NotifyInvalidKEPayload), 17},
		{int(NotifyChildSANotFound), 44}, {int(NotifyESPTFCPaddingNotSupported), 16394}, {int(NotifyNonFirstFragmentsAlso), 16395},
	} {
		if c.got != c.want {
			t.Errorf("constant %d, want %d", c.got, c.want)
		}
	}
	if !NotifyTSUnacceptable.IsError() || NotifyCookie.IsError() {
		t.Error("IsError")
	}
	if !EncrAESGCM16.AEAD() || !EncrChaCha20Poly1305.AEAD() || EncrAESCBC.AEAD() {
		t.Error("AEAD")
	}
}

func TestTransforms(t *testing.T) {
	tr := Encr(EncrAESGCM16, 256)
	if k, ok := tr.KeyLength(); !ok || k != 256 {
		t.Errorf("KeyLength = %d, %v", k, ok)
	}
	if _, ok := Encr(EncrChaCha20Poly1305, 0).KeyLength(); ok {
		t.Error("ChaCha20 with a key length")
	}
	for _, c := range []struct {
		tr   Transform
		want string
	}{
		{tr, "ENCR:ENCR_AES_GCM_16/256"},
		{PRF(PRFHMACSHA256), "PRF:PRF_HMAC_SHA2_256"},
		{Integ(IntegNone), "INTEG:NONE"},
		{DH(DHECP384), "KE:384-bit random ECP group"},
		{ESN(ESNNone), "ESN:No Extended Sequence Numbers"},
		{Transform{Type: 6, ID: 36}, "ADDKE1:GROUP(36)"},
		{Transform{Type: 200, ID: 7}, "TRANSFORM(200):7"},
	} {
		if s := c.tr.String(); s != c.want {
			t.Errorf("%q, want %q", s, c.want)
		}
	}
	p := Proposal{Number: 2, Protocol: ProtocolESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{tr, ESN(ESNOn), ESN(ESNNone)}}
	if s := p.String(); s != "#2 ESP spi 01020304 ENCR:ENCR_AES_GCM_16/256 ESN:Extended Sequence Numbers ESN:No Extended Sequence Numbers" {
		t.Errorf("Proposal.String() = %q", s)
	}
	if got := p.TransformsOf(TransformESN); len(got) != 2 || got[1].ID != uint16(ESNNone) {
		t.Errorf("TransformsOf = %v", got)
	}
}

func TestSelectors(t *testing.T) {
	tests := []struct {
		start, end string
		prefix     string // "" when not exactly a prefix
	}{
		{"10.0.0.0", "10.255.255.255", "10.0.0.0/8"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"192.0.2.7", "192.0.2.7", "192.0.2.7/32"},
		{"192.0.2.6", "192.0.2.7", "192.0.2.6/31"},
		{"192.0.2.7", "192.0.2.8", ""},
		{"192.0.2.0", "192.0.2.254", ""},
		{"192.0.2.1", "192.0.2.255", ""},
		{"192.0.2.9", "192.0.2.7", ""},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"},
		{"2001:db8::", "2001:db8:0:ffff:ffff:ffff:ffff:ffff", "2001:db8::/48"},
		{"2001:db8::", "2001:db8::1:0", ""},
		{"10.0.0.0", "::1", ""},
	}
	for _, tt := range tests {
		s := Selector{StartAddr: netip.MustParseAddr(tt.start), EndAddr: netip.MustParseAddr(tt.end)}
		p, ok := s.Prefix()
		if ok != (tt.prefix != "") || ok && p.String() != tt.prefix {
			t.Errorf("%s-%s: %s %v, want %q", tt.start, tt.end, p, ok, tt.prefix)
		}
		if ok {
			back := SelectorFromPrefix(p)
			if back.StartAddr != s.StartAddr || back.EndAddr != s.EndAddr || !back.AllPorts() || back.IPProtocol != 0 {
				t.Errorf("SelectorFromPrefix(%s) = %+v", p, back)
			}
		}
	}
	if _, ok := (Selector{}).Prefix(); ok {
		t.Error("zero selector has a prefix")
	}
	// Not masked: the prefix's network.
	s := SelectorFromPrefix(netip.MustParsePrefix("10.1.2.3/16"))
	if s.Type != TSIPv4AddrRange || s.StartAddr.String() != "10.1.0.0" || s.EndAddr.String() != "10.1.255.255" {
		t.Errorf("%+v", s)
	}
	for _, c := range []struct {
		s    Selector
		want string
	}{
		{s, "10.1.0.0/16"},
		{Selector{Type: TSIPv4AddrRange, IPProtocol: 6, StartPort: 80, EndPort: 80, StartAddr: netip.MustParseAddr("10.0.0.1"), EndAddr: netip.MustParseAddr("10.0.0.3")}, "10.0.0.1-10.0.0.3 proto 6 ports 80-80"},
		{Selector{Type: 10, Data: []byte{1, 2}}, "TS_SECLABEL:0102"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

func TestPayloadHelpers(t *testing.T) {
	id := NewIDAddr(true, netip.MustParseAddr("192.0.2.1"))
	if a, ok := id.Addr(); !ok || a.String() != "192.0.2.1" || id.Type() != PayloadIDr || id.String() != "192.0.2.1" {
		t.Errorf("%+v", id)
	}
	id6 := NewIDAddr(false, netip.MustParseAddr("2001:db8::1"))
	if a, ok := id6.Addr(); !ok || a.String() != "2001:db8::1" || id6.IDType != IDIPv6Addr || id6.Type() != PayloadIDi {
		t.Errorf("%+v", id6)
	}
	if _, ok := NewIDString(false, IDFQDN, "x").Addr(); ok {
		t.Error("FQDN has an address")
	}
	if s := NewIDString(false, IDRFC822Addr, "a@b").String(); s != `"a@b"` {
		t.Error(s)
	}
	if s := (&ID{IDType: IDKeyID, Data: []byte{0xab}}).String(); s != "ID_KEY_ID:ab" {
		t.Error(s)
	}
	if s := (&ID{IDType: IDIPv4Addr, Data: []byte{1}}).String(); s != "ID_IPV4_ADDR:01" {
		t.Error(s)
	}

	// Body: as received, reserved octets included.
	b := msg(PayloadIDi, gp(0, 0, byte(IDFQDN), 0, 7, 0, 'g', 'w'))
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	pid := m.Payloads[0].(*ID)
	if got := pid.Body(); string(got) != "\x02\x00\x07\x00gw" {
		t.Errorf("Body() = %q", got)
	}
	pid.Data = []byte("other")
	if got := pid.Body(); string(got) != "\x02\x00\x00\x00other" {
		t.Errorf("Body() of a changed ID = %q", got)
	}
	if got := NewIDString(true, IDKeyID, "k").Body(); string(got) != "\x0b\x00\x00\x00k" {
		t.Errorf("Body() = %q", got)
	}

	n := NewInvalidKEPayload(DHECP256)
	if g, ok := n.Group(); !ok || g != DHECP256 {
		t.Error("Group")
	}
	if _, ok := NewNotify(NotifyCookie, []byte{1, 2}).Group(); ok {
		t.Error("Group of a COOKIE")
	}
	h := NewSignatureHashAlgorithms(HashSHA256, HashIdentity)
	if algs, ok := h.HashAlgorithms(); !ok || len(algs) != 2 || algs[1] != HashIdentity {
		t.Errorf("HashAlgorithms = %v", algs)
	}
	if _, ok := (&Notify{NotifyType: NotifySignatureHashAlgorithms, Data: []byte{1}}).HashAlgorithms(); ok {
		t.Error("odd length accepted")
	}

	cr := &CertReq{Encoding: CertX509Signature, Data: seq(40, 0)}
	if cas, ok := cr.Authorities(); !ok || len(cas) != 2 || cas[1][0] != 20 {
		t.Errorf("Authorities = %v", cas)
	}
	if _, ok := (&CertReq{Encoding: CertX509Signature, Data: seq(21, 0)}).Authorities(); ok {
		t.Error("21 octets accepted")
	}

	cp := &CP{CfgType: CfgReply, Attributes: []CfgAttribute{
		CfgAddr(CfgInternalIP4Address, netip.MustParseAddr("10.0.0.1")),
		CfgAddr(CfgInternalIP4DNS, netip.MustParseAddr("10.0.0.53")),
		CfgAddr(CfgInternalIP4DNS, netip.MustParseAddr("10.0.0.54")),
		{Type: CfgInternalIP6Address, Value: append(netip.MustParseAddr("2001:db8::7").AsSlice(), 64)},
		{Type: CfgInternalIP6Address, Value: append(netip.MustParseAddr("2001:db8::7").AsSlice(), 129)},
		{Type: CfgApplicationVersion, Value: []byte("x")},
	}}
	if dns := cp.Get(CfgInternalIP4DNS); len(dns) != 2 {
		t.Error("Get")
	}
	if a, ok := cp.Attributes[0].Addr(); !ok || a.String() != "10.0.0.1" {
		t.Error("Addr v4")
	}
	if a, ok := cp.Attributes[3].Addr(); !ok || a.String() != "2001:db8::7" {
		t.Error("Addr of a 17-octet value")
	}
	if p, ok := cp.Attributes[3].Prefix(); !ok || p.String() != "2001:db8::7/64" {
		t.Error("Prefix")
	}
	if _, ok := cp.Attributes[4].Prefix(); ok {
		t.Error("prefix length 129 accepted")
	}
	if _, ok := cp.Attributes[5].Addr(); ok {
		t.Error("Addr of a string")
	}
	if _, ok := cp.Attributes[0].Prefix(); ok {
		t.Error("Prefix of 4 octets")
	}
}
