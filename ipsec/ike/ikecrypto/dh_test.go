package ikecrypto

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// dhVector is a published Diffie-Hellman test: both private keys, both
// public values in the KE payload encoding, and g^ir.
type dhVector struct {
	name   string
	group  DHGroup
	i, gi  string
	r, gr  string
	shared string
}

var dhVectors = []dhVector{
	{
		// RFC 5903 §8.1, 256-bit random ECP group.
		name: "rfc5903 8.1 ecp256", group: DHECP256,
		i: "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
		gi: `DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180
			5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3`,
		r: "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
		gr: `D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63
			56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB`,
		shared: "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
	},
	{
		// RFC 5903 §8.2, 384-bit random ECP group.
		name: "rfc5903 8.2 ecp384", group: DHECP384,
		i: "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194",
		gi: `667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA
			9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C`,
		r: "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC",
		gr: `E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571
			DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C`,
		shared: "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746",
	},
	{
		// RFC 5903 §8.3, 521-bit random ECP group.
		name: "rfc5903 8.3 ecp521", group: DHECP521,
		i: `0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A0
			95AA85A30FE1C2952C6771D937BA9777F5957B2639BAB072462F68C27A57382D4A52`,
		gi: `0015417E84DBF28C0AD3C278713349DC7DF153C897A1891BD98BAB4357C9ECBEE1E3BF42E00B8E380AEAE57C2D107564941885942AF5A7F4601723C4195D176CED3E
			017CAE20B6641D2EEB695786D8C946146239D099E18E1D5A514C739D7CB4A10AD8A788015AC405D7799DC75E7B7D5B6CF2261A6A7F1507438BF01BEB6CA3926F9582`,
		r: `0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E
			9C677D600B343757A3BDBF2A3163E4C2F869CCA7458AA4A4EFFC311F5CB151685EB9`,
		gr: `00D0B3975AC4B799F5BEA16D5E13E9AF971D5E9B984C9F39728B5E5739735A219B97C356436ADC6E95BB0352F6BE64A6C2912D4EF2D0433CED2B6171640012D9460F
			015C68226383956E3BD066E797B623C27CE0EAC2F551A10C2C724D9852077B87220B6536C5C408A1D2AEBB8E86D678AE49CB57091F4732296579AB44FCD17F0FC56A`,
		shared: `01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04
			D1427E73CA4BAA240A34786859810C06B3C715A3A8CC3151F2BEE417996D19F3DDEA`,
	},
	{
		// RFC 7748 §6.1, X25519 (Alice is i, Bob is r), the encoding
		// RFC 8031 §2 puts in the KE payload.
		name: "rfc7748 6.1 x25519", group: DHCurve25519,
		i:      "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		gi:     "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
		r:      "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		gr:     "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
		shared: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
	},
}

func TestDHVectors(t *testing.T) {
	for _, v := range dhVectors {
		t.Run(v.name, func(t *testing.T) {
			for _, side := range []struct{ priv, pub, peer string }{{v.i, v.gi, v.gr}, {v.r, v.gr, v.gi}} {
				k, err := NewPrivateKey(v.group, unhex(t, side.priv))
				if err != nil {
					t.Fatal(err)
				}
				if got := k.PublicValue(); !bytes.Equal(got, unhex(t, side.pub)) {
					t.Errorf("public value\n got %x\nwant %s", got, side.pub)
				}
				if len(k.PublicValue()) != v.group.PublicValueLen() {
					t.Errorf("public value %d octets, PublicValueLen %d", len(k.PublicValue()), v.group.PublicValueLen())
				}
				s, err := SharedSecret(k, unhex(t, side.peer))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(s, unhex(t, v.shared)) || len(s) != v.group.SharedSecretLen() {
					t.Errorf("g^ir\n got %x\nwant %s", s, v.shared)
				}
			}
		})
	}
}

func TestDHGenerate(t *testing.T) {
	for _, g := range []DHGroup{DHECP256, DHECP384, DHECP521, DHCurve25519} {
		a, pa, err := GenerateKey(g, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, pb, err := GenerateKey(g, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sa, err1 := SharedSecret(a, pb)
		sb, err2 := SharedSecret(b, pa)
		if err1 != nil || err2 != nil || !bytes.Equal(sa, sb) {
			t.Errorf("%s: %v %v, secrets equal %v", g, err1, err2, bytes.Equal(sa, sb))
		}
		if a.Group() != g || strings.Contains(a.String(), "0x") || !strings.Contains(a.String(), g.String()) {
			t.Errorf("%s: String %q", g, a.String())
		}
	}
}

func TestDHInvalidPublicValues(t *testing.T) {
	p256, _ := NewPrivateKey(DHECP256, unhex(t, dhVectors[0].i))
	x, _ := NewPrivateKey(DHCurve25519, unhex(t, dhVectors[3].i))
	gr := unhex(t, dhVectors[0].gr)
	offCurve := bytes.Clone(gr)
	offCurve[63] ^= 1
	withPrefix := append([]byte{0x04}, gr...)
	cases := []struct {
		name string
		k    *PrivateKey
		pub  []byte
	}{
		{"ecp256 off the curve", p256, offCurve},
		{"ecp256 all zero (not a point)", p256, make([]byte, 64)},
		{"ecp256 with the SEC1 0x04 prefix", p256, withPrefix},
		{"ecp256 x only", p256, gr[:32]},
		{"ecp256 empty", p256, nil},
		{"x25519 short", x, make([]byte, 31)},
		// RFC 7748 §6.1 / RFC 8031 §2.1: low-order points give the
		// all-zero output, which must abort the exchange.
		{"x25519 zero point", x, make([]byte, 32)},
		{"x25519 order-1 point", x, append([]byte{1}, make([]byte, 31)...)},
		{"x25519 order-8 point", x, unhex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")},
	}
	for _, c := range cases {
		if _, err := SharedSecret(c.k, c.pub); !errors.Is(err, ErrInvalidPublicValue) {
			t.Errorf("%s: %v, want ErrInvalidPublicValue", c.name, err)
		}
	}
}

func TestDHUnsupportedGroups(t *testing.T) {
	for _, g := range []DHGroup{2, 14, 15, 24, 29, 0} {
		_, _, err := GenerateKey(g, rand.Reader)
		if !errors.Is(err, ErrUnsupportedGroup) {
			t.Errorf("group %d: %v, want ErrUnsupportedGroup", g, err)
		}
		if g.Supported() {
			t.Errorf("group %d supported", g)
		}
	}
	_, _, err := GenerateKey(14, rand.Reader)
	if !strings.Contains(err.Error(), "MODP") || !strings.Contains(err.Error(), "modp2048") {
		t.Errorf("MODP error does not say why: %v", err)
	}
}
