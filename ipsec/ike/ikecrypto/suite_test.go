package ikecrypto

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseIKEProposals(t *testing.T) {
	cases := []struct {
		in   string
		want []Proposal
	}{
		{"aes256gcm16-prfsha256-x25519", []Proposal{{
			Encr: []EncrAlg{{EncrAESGCM16, 256}}, PRF: []PRFID{PRFHMACSHA256}, DH: []DHGroup{DHCurve25519},
		}}},
		{"aes256-sha256-ecp256", []Proposal{{
			Encr: []EncrAlg{{EncrAESCBC, 256}}, PRF: []PRFID{PRFHMACSHA256},
			Integ: []IntegID{IntegHMACSHA256128}, DH: []DHGroup{DHECP256},
		}}},
		{"chacha20poly1305-prfsha512-x25519", []Proposal{{
			Encr: []EncrAlg{{EncrChaCha20Poly1305, 0}}, PRF: []PRFID{PRFHMACSHA512}, DH: []DHGroup{DHCurve25519},
		}}},
		// An AEAD with an integrity token: the token only gives a PRF.
		{"AES128GCM16-SHA384-ECP384", []Proposal{{
			Encr: []EncrAlg{{EncrAESGCM16, 128}}, PRF: []PRFID{PRFHMACSHA384}, DH: []DHGroup{DHECP384},
		}}},
		// Mixed AEAD and classic: two proposals, AEAD first, explicit PRF.
		{"aes128-aes256gcm16-sha256-sha512-prfsha384-ecp521-x25519", []Proposal{
			{Encr: []EncrAlg{{EncrAESGCM16, 256}}, PRF: []PRFID{PRFHMACSHA384}, DH: []DHGroup{DHECP521, DHCurve25519}},
			{Encr: []EncrAlg{{EncrAESCBC, 128}}, PRF: []PRFID{PRFHMACSHA384},
				Integ: []IntegID{IntegHMACSHA256128, IntegHMACSHA512256}, DH: []DHGroup{DHECP521, DHCurve25519}},
		}},
		{" aes192gcm128-prfsha256-curve25519 , aes192-sha2_512-ecp384 ", []Proposal{
			{Encr: []EncrAlg{{EncrAESGCM16, 192}}, PRF: []PRFID{PRFHMACSHA256}, DH: []DHGroup{DHCurve25519}},
			{Encr: []EncrAlg{{EncrAESCBC, 192}}, PRF: []PRFID{PRFHMACSHA512}, Integ: []IntegID{IntegHMACSHA512256}, DH: []DHGroup{DHECP384}},
		}},
	}
	for _, c := range cases {
		got, err := ParseIKEProposals(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestParseESPProposals(t *testing.T) {
	cases := []struct {
		in   string
		want []Proposal
	}{
		{"aes256gcm16", []Proposal{{Encr: []EncrAlg{{EncrAESGCM16, 256}}}}},
		{"aes128gcm16-x25519", []Proposal{{Encr: []EncrAlg{{EncrAESGCM16, 128}}, DH: []DHGroup{DHCurve25519}}}},
		{"aes256-sha256", []Proposal{{Encr: []EncrAlg{{EncrAESCBC, 256}}, Integ: []IntegID{IntegHMACSHA256128}}}},
		{"chacha20poly1305-esn-noesn", []Proposal{{Encr: []EncrAlg{{EncrChaCha20Poly1305, 0}}, ESN: []ESNID{ESNYes, ESNNo}}}},
	}
	for _, c := range cases {
		got, err := ParseESPProposals(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestParseProposalErrors(t *testing.T) {
	cases := []struct {
		in, want string
		ike      bool
	}{
		{"aes256gcm16-prfsha256-modp2048", "MODP", true},
		{"aes256-sha1-x25519", "not supported", true},
		{"3des-sha256-x25519", "not supported", true},
		{"aes256gcm16-prfsha256", "Diffie-Hellman", true},
		{"aes256gcm16-x25519", "no PRF", true},
		{"aes256-prfsha256-x25519", "integrity", true},
		{"sha256-x25519", "no encryption", true},
		{"aes256gcm16-prfsha256-x25519-esn", "ESP transform", true},
		{"aes256gcm16-prfsha256-x25519,", "empty", true},
		{"aes256gcm16-frobnicate-x25519", "unknown algorithm", true},
		{"aes256gcm16-prfsha256", "ESP has no PRF", false},
		{"aes256", "integrity", false},
		{"aes256gcm16-ecp224", "not supported", false},
	}
	for _, c := range cases {
		parse := ParseESPProposals
		if c.ike {
			parse = ParseIKEProposals
		}
		_, err := parse(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.in, err, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	ike := DefaultIKEProposals()
	if got := ike[0].String(); got != "aes256gcm16-prfsha256-x25519" {
		t.Errorf("first default IKE proposal %s", got)
	}
	if got := ike[1].String(); got != "aes256gcm16-prfsha256-ecp256" {
		t.Errorf("second default IKE proposal %s", got)
	}
	for _, p := range ike {
		s, _, err := SelectIKE([]Proposal{p}, []Proposal{p})
		if err != nil || s.Validate() != nil {
			t.Errorf("default %s: %v %v", p, err, s.Validate())
		}
		if s.String() != p.String() {
			t.Errorf("suite %s from proposal %s", s, p)
		}
	}
	for _, p := range DefaultESPProposals() {
		s, _, err := SelectESP([]Proposal{p}, []Proposal{p}, true)
		if err != nil || s.ValidateESP() != nil || s.DH != DHNone || s.ESN {
			t.Errorf("default ESP %s: %v %+v", p, err, s)
		}
		// ipsec/esp implements AES-CBC with HMAC-SHA-256-128 only.
		if !s.AEAD() && s.Integ != IntegHMACSHA256128 {
			t.Errorf("default ESP %s is not something ipsec/esp implements", p)
		}
	}
	// Fresh copies.
	ike[0].Encr[0].KeyLen = 1
	if DefaultIKEProposals()[0].Encr[0].KeyLen != 256 {
		t.Error("DefaultIKEProposals returns shared slices")
	}
	if got, _ := ParseIKEProposals("default"); !reflect.DeepEqual(got, DefaultIKEProposals()) {
		t.Error(`"default" is not DefaultIKEProposals`)
	}
}

func TestSuiteValidate(t *testing.T) {
	good := Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256, DH: DHCurve25519}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		s    Suite
	}{
		{"aead with integ", Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256, Integ: IntegHMACSHA256128, DH: DHCurve25519}},
		{"cbc without integ", Suite{Encr: EncrAESCBC, KeyLen: 256, PRF: PRFHMACSHA256, DH: DHCurve25519}},
		{"cbc with sha1 integ", Suite{Encr: EncrAESCBC, KeyLen: 256, PRF: PRFHMACSHA256, Integ: 2, DH: DHCurve25519}},
		{"aes key length 64", Suite{Encr: EncrAESGCM16, KeyLen: 64, PRF: PRFHMACSHA256, DH: DHCurve25519}},
		{"chacha with key length", Suite{Encr: EncrChaCha20Poly1305, KeyLen: 256, PRF: PRFHMACSHA256, DH: DHCurve25519}},
		{"no prf", Suite{Encr: EncrAESGCM16, KeyLen: 256, DH: DHCurve25519}},
		{"no dh", Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256}},
		{"modp", Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256, DH: 14}},
		{"esn", Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256, DH: DHCurve25519, ESN: true}},
		{"3des", Suite{Encr: 3, KeyLen: 0, PRF: PRFHMACSHA256, Integ: IntegHMACSHA256128, DH: DHCurve25519}},
	}
	for _, b := range bad {
		if err := b.s.Validate(); err == nil {
			t.Errorf("%s: valid", b.name)
		}
	}
	if err := (Suite{Encr: EncrAESGCM16, KeyLen: 128, PRF: PRFHMACSHA256}).ValidateESP(); err == nil {
		t.Error("ESP suite with a PRF: valid")
	}
	if err := (Suite{Encr: EncrAESCBC, KeyLen: 128, Integ: IntegHMACSHA256128, DH: DHECP256, ESN: true}).ValidateESP(); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		s           Suite
		encr, integ int
	}{
		{Suite{Encr: EncrAESGCM16, KeyLen: 128}, 20, 0},
		{Suite{Encr: EncrAESGCM16, KeyLen: 192}, 28, 0},
		{Suite{Encr: EncrAESGCM16, KeyLen: 256}, 36, 0},
		{Suite{Encr: EncrChaCha20Poly1305}, 36, 0},
		{Suite{Encr: EncrAESCBC, KeyLen: 128, Integ: IntegHMACSHA256128}, 16, 32},
		{Suite{Encr: EncrAESCBC, KeyLen: 256, Integ: IntegHMACSHA384192}, 32, 48},
		{Suite{Encr: EncrAESCBC, KeyLen: 192, Integ: IntegHMACSHA512256}, 24, 64},
	} {
		if c.s.EncrKeyLen() != c.encr || c.s.IntegKeyLen() != c.integ {
			t.Errorf("%s: key lengths %d/%d, want %d/%d", c.s, c.s.EncrKeyLen(), c.s.IntegKeyLen(), c.encr, c.integ)
		}
	}
}

func mustIKE(t *testing.T, s string) []Proposal {
	t.Helper()
	p, err := ParseIKEProposals(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustESP(t *testing.T, s string) []Proposal {
	t.Helper()
	p, err := ParseESPProposals(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSelectIKE(t *testing.T) {
	cases := []struct {
		local, offered string
		want           string
		idx            int
	}{
		// Our order wins over the peer's.
		{"aes256gcm16-prfsha256-x25519,aes128-sha256-ecp256", "aes128-sha256-ecp256,aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519", 1},
		// Within a proposal, our preferred algorithm the peer also has.
		{"aes256gcm16-aes128gcm16-prfsha512-prfsha256-ecp256-x25519", "aes128gcm16-aes256gcm16-prfsha256-prfsha512-x25519-ecp256", "aes256gcm16-prfsha512-ecp256", 0},
		{"aes256-sha384-sha256-ecp384", "aes256-sha256-prfsha384-ecp384", "aes256-sha256-prfsha384-ecp384", 0},
		// Strict key lengths.
		{"aes256gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519,aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-x25519", 1},
	}
	for _, c := range cases {
		s, idx, err := SelectIKE(mustIKE(t, c.local), mustIKE(t, c.offered))
		if err != nil || s.String() != c.want || idx != c.idx {
			t.Errorf("%s vs %s: %s #%d %v, want %s #%d", c.local, c.offered, s, idx, err, c.want, c.idx)
		}
	}
	for _, c := range [][2]string{
		{"aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-ecp256"},
		{"aes256gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519"},
		{"aes256-sha256-x25519", "aes256-sha512-prfsha256-x25519"},
	} {
		if s, _, err := SelectIKE(mustIKE(t, c[0]), mustIKE(t, c[1])); !errors.Is(err, ErrNoProposalChosen) {
			t.Errorf("%s vs %s: %s %v, want ErrNoProposalChosen", c[0], c[1], s, err)
		}
	}
	// A peer's proposal pairing an AEAD with an integrity algorithm is
	// malformed (RFC 5282 §8) and not chosen.
	bad := Proposal{Encr: []EncrAlg{{EncrAESGCM16, 256}}, PRF: []PRFID{PRFHMACSHA256}, Integ: []IntegID{IntegHMACSHA256128}, DH: []DHGroup{DHCurve25519}}
	if _, _, err := SelectIKE(mustIKE(t, "aes256gcm16-prfsha256-x25519"), []Proposal{bad}); err == nil {
		t.Error("AEAD with integrity chosen")
	}
	bad.Integ = []IntegID{IntegNone}
	if _, _, err := SelectIKE(mustIKE(t, "aes256gcm16-prfsha256-x25519"), []Proposal{bad}); err != nil {
		t.Errorf("AEAD with INTEG NONE: %v", err)
	}
}

func TestSelectESP(t *testing.T) {
	local := mustESP(t, "aes256gcm16-x25519,aes128-sha256")
	// IKE_AUTH: DH ignored on both sides.
	s, _, err := SelectESP(local, mustESP(t, "aes256gcm16"), false)
	if err != nil || s.String() != "aes256gcm16" {
		t.Errorf("IKE_AUTH: %s %v", s, err)
	}
	// CREATE_CHILD_SA: the group must match, absent means NONE.
	if _, _, err := SelectESP(local, mustESP(t, "aes256gcm16"), true); err == nil {
		t.Error("PFS required but peer offers none: chosen")
	}
	s, _, err = SelectESP(local, mustESP(t, "aes256gcm16-ecp256-x25519"), true)
	if err != nil || s.String() != "aes256gcm16-x25519" {
		t.Errorf("PFS: %s %v", s, err)
	}
	s, _, err = SelectESP(local, mustESP(t, "aes128-sha256"), true)
	if err != nil || s.String() != "aes128-sha256" {
		t.Errorf("no PFS on either side: %s %v", s, err)
	}
	s, _, err = SelectESP(mustESP(t, "aes128gcm16-esn"), mustESP(t, "aes128gcm16-noesn-esn"), false)
	if err != nil || !s.ESN {
		t.Errorf("ESN: %+v %v", s, err)
	}
	if _, _, err = SelectESP(mustESP(t, "aes128gcm16-esn"), mustESP(t, "aes128gcm16"), false); err == nil {
		t.Error("ESN required, peer without: chosen")
	}
}

func TestTransformsRoundTrip(t *testing.T) {
	for _, p := range append(DefaultIKEProposals(), append(DefaultESPProposals(), mustESP(t, "aes128gcm16-x25519-esn")...)...) {
		got, err := ProposalFromTransforms(p.Transforms())
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("%s: %+v %v", p, got, err)
		}
	}
	if _, err := ProposalFromTransforms([]Transform{{Type: 9, ID: 1}}); err == nil {
		t.Error("unknown transform type accepted")
	}
	// ChaCha20-Poly1305 with a (forbidden) key length of 256 still matches.
	p, _ := ProposalFromTransforms([]Transform{
		{Type: TransformENCR, ID: uint16(EncrChaCha20Poly1305), KeyLen: 256},
		{Type: TransformPRF, ID: uint16(PRFHMACSHA256)},
		{Type: TransformDH, ID: uint16(DHCurve25519)},
	})
	if _, _, err := SelectIKE(mustIKE(t, "chacha20poly1305-prfsha256-x25519"), []Proposal{p}); err != nil {
		t.Error(err)
	}
	s := Suite{Encr: EncrAESCBC, KeyLen: 128, Integ: IntegHMACSHA256128, DH: DHECP256, ESN: true}
	want := []Transform{
		{TransformENCR, uint16(EncrAESCBC), 128}, {TransformINTEG, uint16(IntegHMACSHA256128), 0},
		{TransformDH, uint16(DHECP256), 0}, {TransformESN, uint16(ESNYes), 0},
	}
	if got := s.ESPProposal().Transforms(); !reflect.DeepEqual(got, want) {
		t.Errorf("ESPProposal transforms %+v", got)
	}
	ike := Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256, DH: DHCurve25519}
	if got := ike.IKEProposal().String(); got != "aes256gcm16-prfsha256-x25519" {
		t.Errorf("IKEProposal %s", got)
	}
}

func TestAcceptReply(t *testing.T) {
	offered := mustIKE(t, "aes256gcm16-aes128gcm16-prfsha256-x25519-ecp256")
	s, err := AcceptIKEReply(offered, mustIKE(t, "aes128gcm16-prfsha256-ecp256")[0])
	if err != nil || s.String() != "aes128gcm16-prfsha256-ecp256" {
		t.Errorf("%s %v", s, err)
	}
	for _, reply := range []string{
		"aes256gcm16-aes128gcm16-prfsha256-x25519", // two ciphers: not a choice
		"aes256gcm16-prfsha256-x25519-ecp256",      // two groups
		"aes192gcm16-prfsha256-x25519",             // not offered
	} {
		if _, err := AcceptIKEReply(offered, mustIKE(t, reply)[0]); !errors.Is(err, ErrNoProposalChosen) {
			t.Errorf("%s: %v", reply, err)
		}
	}
	esp := mustESP(t, "aes256gcm16-aes128gcm16-x25519")
	if s, err := AcceptESPReply(esp, mustESP(t, "aes128gcm16-x25519-noesn")[0], true); err != nil || s.String() != "aes128gcm16-x25519" {
		t.Errorf("ESP: %s %v", s, err)
	}
	if _, err := AcceptESPReply(esp, mustESP(t, "aes128gcm16-esn-noesn")[0], false); err == nil {
		t.Error("ESP reply with two ESN transforms accepted")
	}
}
