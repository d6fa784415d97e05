package ikecrypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// unhex decodes hex with any spacing, as the RFCs print it.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// TestPRFRFC4231 runs the HMAC-SHA-2 test cases of RFC 4231 §4.2-§4.8
// through PRF for each of our three PRFs. Case 5's output is truncated to
// 128 bits in the RFC, so only that prefix is compared.
func TestPRFRFC4231(t *testing.T) {
	keyLong := rep(0xaa, 131)
	cases := []struct {
		n         int
		key, data []byte
		sha256    string
		sha384    string
		sha512    string
	}{
		{1, rep(0x0b, 20), []byte("Hi There"),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{2, []byte("Jefe"), []byte("what do ya want for nothing?"),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
		{3, rep(0xaa, 20), rep(0xdd, 50),
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
		{4, unhex(t, "0102030405060708090a0b0c0d0e0f10111213141516171819"), rep(0xcd, 50),
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
		{5, rep(0x0c, 20), []byte("Test With Truncation"),
			"a3b6167473100ee06e0c796c2955552b",
			"3abf34c3503b2a23a46efc619baef897",
			"415fad6271580a531d4179bc891d87a6"},
		{6, keyLong, []byte("Test Using Larger Than Block-Size Key - Hash Key First"),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
		{7, keyLong, []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
	}
	for _, c := range cases {
		for _, v := range []struct {
			prf  PRFID
			want string
		}{{PRFHMACSHA256, c.sha256}, {PRFHMACSHA384, c.sha384}, {PRFHMACSHA512, c.sha512}} {
			t.Run(fmt.Sprintf("case %d %s", c.n, v.prf), func(t *testing.T) {
				// Split the data to check that PRF concatenates.
				got, err := PRF(v.prf, c.key, c.data[:len(c.data)/2], c.data[len(c.data)/2:])
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != v.prf.Size() {
					t.Errorf("output %d octets, want %d", len(got), v.prf.Size())
				}
				want := unhex(t, v.want)
				if !bytes.Equal(got[:len(want)], want) {
					t.Errorf("got %x\nwant %x", got[:len(want)], want)
				}
			})
		}
	}
}

// TestPRFPlus checks prf+ against its definition in RFC 7296 §2.13, written
// out block by block with crypto/hmac, at lengths around block boundaries
// and at the 255-block limit.
func TestPRFPlus(t *testing.T) {
	key := []byte("prf+ key")
	seed := []byte("Ni | Nr | SPIi | SPIr")
	var ref []byte // T1 | T2 | ... | T255 for HMAC-SHA-256
	var prev []byte
	for i := 1; i <= 255; i++ {
		m := hmac.New(sha256.New, key)
		m.Write(prev)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		prev = m.Sum(nil)
		ref = append(ref, prev...)
	}
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 255*32 - 1, 255 * 32} {
		got, err := PRFPlus(PRFHMACSHA256, key, seed, n)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, ref[:n]) {
			t.Errorf("n=%d: prf+ differs from RFC 7296 §2.13", n)
		}
	}
	if _, err := PRFPlus(PRFHMACSHA256, key, seed, 255*32+1); err == nil {
		t.Error("prf+ past 255 blocks: no error")
	}
	if _, err := PRFPlus(PRFID(2), key, seed, 32); err == nil {
		t.Error("prf+ with PRF_HMAC_SHA1: no error")
	}
}

func TestDeriveErrors(t *testing.T) {
	s := Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256, DH: DHCurve25519}
	n := rep(1, 32)
	if _, err := DeriveIKEKeys(s, nil, n, n, 1, 2); err == nil {
		t.Error("empty g^ir: no error")
	}
	if _, err := DeriveIKEKeys(s, n, n[:8], n, 1, 2); err == nil {
		t.Error("8-octet nonce: no error")
	}
	if _, err := DeriveIKEKeys(Suite{Encr: EncrAESGCM16, KeyLen: 256, PRF: PRFHMACSHA256, DH: 14}, n, n, n, 1, 2); err == nil {
		t.Error("MODP suite: no error")
	}
	k, err := DeriveIKEKeys(s, n, n, n, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.SKai) != 0 || len(k.SKei) != 36 || len(k.SKd) != 32 {
		t.Errorf("lengths: ai %d ei %d d %d", len(k.SKai), len(k.SKei), len(k.SKd))
	}
	espGCM := Suite{Encr: EncrAESGCM16, KeyLen: 128}
	if _, err := k.ChildKeys(espGCM, n, n, n); err == nil {
		t.Error("g^ir without a PFS group: no error")
	}
	if _, err := k.ChildKeys(Suite{Encr: EncrAESGCM16, KeyLen: 128, DH: DHECP256}, nil, n, n); err == nil {
		t.Error("PFS group without g^ir: no error")
	}
	c, err := k.ChildKeys(espGCM, nil, n, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EncrI) != 20 || len(c.IntegI) != 0 {
		t.Errorf("AES-128-GCM child keys: encr %d integ %d", len(c.EncrI), len(c.IntegI))
	}
	// Keys never print: every verb gives the String (or GoString) text.
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		for _, v := range []any{k, *k, c, *c} {
			want := fmt.Sprintf(f, v.(fmt.Stringer).String())
			if f == "%#v" {
				want = v.(fmt.GoStringer).GoString()
			}
			if got := fmt.Sprintf(f, v); got != want || !strings.Contains(v.(fmt.Stringer).String(), "ikecrypto.") {
				t.Errorf("%s of %T: %s, want %s", f, v, got, want)
			}
		}
	}
	c.Zero()
	if c.EncrI != nil {
		t.Error("ChildKeys.Zero left keys")
	}
}
