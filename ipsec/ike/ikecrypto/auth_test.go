package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"reflect"
	"sync"
	"testing"
)

// TestRFC7427AlgorithmIdentifiers compares our AlgorithmIdentifiers with
// the DER printed in RFC 7427 Appendix A (A.1.2-A.1.4 PKCS #1 v1.5, A.3.2-
// A.3.4 ECDSA, A.4.3 RSASSA-PSS with SHA-256) and RFC 8420 §2 (Ed25519),
// and with what encoding/asn1 makes of the ASN.1 values the appendix
// lists, so that a typo in either would show.
func TestRFC7427AlgorithmIdentifiers(t *testing.T) {
	null := asn1.NullRawValue
	pss := func(h asn1.ObjectIdentifier, salt int) pkix.AlgorithmIdentifier {
		hashAI := pkix.AlgorithmIdentifier{Algorithm: h, Parameters: null}
		mgfParams, _ := asn1.Marshal(hashAI)
		params, err := asn1.Marshal(pssParams{
			Hash:         hashAI,
			MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfParams}},
			SaltLength:   salt,
			TrailerField: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidRSAPSS, Parameters: asn1.RawValue{FullBytes: params}}
	}
	cases := []struct {
		s    SignatureScheme
		rfc  string
		asn1 pkix.AlgorithmIdentifier
		hash HashAlgorithm
	}{
		{SigRSAPKCS1SHA256, "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00", pkix.AlgorithmIdentifier{Algorithm: oidRSAPKCS1SHA256, Parameters: null}, HashSHA256},
		{SigRSAPKCS1SHA384, "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0c 05 00", pkix.AlgorithmIdentifier{Algorithm: oidRSAPKCS1SHA384, Parameters: null}, HashSHA384},
		{SigRSAPKCS1SHA512, "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0d 05 00", pkix.AlgorithmIdentifier{Algorithm: oidRSAPKCS1SHA512, Parameters: null}, HashSHA512},
		{SigECDSASHA256, "30 0a 06 08 2a 86 48 ce 3d 04 03 02", pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA256}, HashSHA256},
		{SigECDSASHA384, "30 0a 06 08 2a 86 48 ce 3d 04 03 03", pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA384}, HashSHA384},
		{SigECDSASHA512, "30 0a 06 08 2a 86 48 ce 3d 04 03 04", pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA512}, HashSHA512},
		{SigRSAPSSSHA256, `30 41 06 09 2a 86 48 86 f7 0d 01 01 0a 30 34 a0
			0f 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00
			a1 1c 30 1a 06 09 2a 86 48 86 f7 0d 01 01 08 30
			0d 06 09 60 86 48 01 65 03 04 02 01 05 00 a2 03
			02 01 20`, pss(oidSHA256, 32), HashSHA256},
		{SigRSAPSSSHA384, "", pss(oidSHA384, 48), HashSHA384},
		{SigRSAPSSSHA512, "", pss(oidSHA512, 64), HashSHA512},
		{SigEd25519, "30 05 06 03 2b 65 70", pkix.AlgorithmIdentifier{Algorithm: oidEd25519}, HashIdentity},
	}
	for _, c := range cases {
		got := c.s.AlgorithmIdentifier()
		if c.rfc != "" && !bytes.Equal(got, unhex(t, c.rfc)) {
			t.Errorf("%s:\n got %x\nwant %s", c.s, got, c.rfc)
		}
		der, err := asn1.Marshal(c.asn1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, der) {
			t.Errorf("%s: blob %x, encoding/asn1 gives %x", c.s, got, der)
		}
		if c.s.Hash() != c.hash {
			t.Errorf("%s: hash %s", c.s, c.s.Hash())
		}
		if s, _, err := parseAlgorithmIdentifier(got); err != nil || s != c.s {
			t.Errorf("%s: parsed as %s %v", c.s, s, err)
		}
	}
}

type testKeys struct {
	rsa     *rsa.PrivateKey
	p256    *ecdsa.PrivateKey
	p384    *ecdsa.PrivateKey
	p521    *ecdsa.PrivateKey
	ed25519 ed25519.PrivateKey
}

var (
	testKeysOnce sync.Once
	testKeysVal  testKeys
)

func keys(t testing.TB) testKeys {
	testKeysOnce.Do(func() {
		var err error
		k := &testKeysVal
		if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		k.p256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k.p384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		k.p521, _ = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		_, k.ed25519, _ = ed25519.GenerateKey(rand.Reader)
	})
	return testKeysVal
}

func TestSignatureAuthRoundTrip(t *testing.T) {
	k := keys(t)
	octets := []byte("RealMessage1 | NonceRData | MACedIDForI")
	cases := []struct {
		s      SignatureScheme
		signer crypto.Signer
	}{
		{SigRSAPKCS1SHA256, k.rsa}, {SigRSAPKCS1SHA384, k.rsa}, {SigRSAPKCS1SHA512, k.rsa},
		{SigRSAPSSSHA256, k.rsa}, {SigRSAPSSSHA384, k.rsa}, {SigRSAPSSSHA512, k.rsa},
		{SigECDSASHA256, k.p256}, {SigECDSASHA384, k.p384}, {SigECDSASHA512, k.p521},
		{SigECDSASHA512, k.p256}, {SigEd25519, k.ed25519},
	}
	for _, c := range cases {
		data, err := SignatureAuth(c.s, c.signer, rand.Reader, octets)
		if err != nil {
			t.Fatalf("%s: %v", c.s, err)
		}
		if int(data[0]) != len(c.s.AlgorithmIdentifier()) || !bytes.Equal(data[1:1+data[0]], c.s.AlgorithmIdentifier()) {
			t.Errorf("%s: auth data does not start with length | AlgorithmIdentifier", c.s)
		}
		got, err := VerifySignatureAuth(c.signer.Public(), data, octets)
		if err != nil || got != c.s {
			t.Errorf("%s: verify: %s %v", c.s, got, err)
		}
		// Other octets, a flipped signature bit, a truncated blob: refused.
		if _, err := VerifySignatureAuth(c.signer.Public(), data, []byte("other octets")); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: other octets: %v", c.s, err)
		}
		bad := bytes.Clone(data)
		bad[len(bad)-5] ^= 0x10
		if _, err := VerifySignatureAuth(c.signer.Public(), bad, octets); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: flipped bit: %v", c.s, err)
		}
		if _, err := VerifySignatureAuth(c.signer.Public(), data[:5], octets); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: truncated: %v", c.s, err)
		}
	}
	// Ed25519 signs the octets themselves (RFC 8420 §3), no prehash.
	data, _ := SignatureAuth(SigEd25519, k.ed25519, rand.Reader, octets)
	if !ed25519.Verify(k.ed25519.Public().(ed25519.PublicKey), octets, data[8:]) {
		t.Error("Ed25519 signature is not over the signed octets")
	}
	// ECDSA signatures are DER Ecdsa-Sig-Value (RFC 7427 §3).
	data, _ = SignatureAuth(SigECDSASHA256, k.p256, rand.Reader, octets)
	h := sha256.Sum256(octets)
	if !ecdsa.VerifyASN1(&k.p256.PublicKey, h[:], data[13:]) {
		t.Error("ECDSA signature is not DER over SHA-256 of the octets")
	}
}

func TestSignatureKeyMismatch(t *testing.T) {
	k := keys(t)
	octets := []byte("octets")
	if _, err := SignatureAuth(SigECDSASHA256, k.rsa, rand.Reader, octets); err == nil {
		t.Error("signing ECDSA with an RSA key: no error")
	}
	for _, c := range []struct {
		s      SignatureScheme
		signer crypto.Signer
		pub    crypto.PublicKey
	}{
		{SigECDSASHA256, k.p256, k.rsa.Public()},
		{SigRSAPSSSHA256, k.rsa, k.p256.Public()},
		{SigRSAPKCS1SHA256, k.rsa, k.ed25519.Public()},
		{SigEd25519, k.ed25519, k.p256.Public()},
	} {
		data, err := SignatureAuth(c.s, c.signer, rand.Reader, octets)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifySignatureAuth(c.pub, data, octets); !errors.Is(err, ErrSignatureKeyMismatch) || !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s against %T: %v, want ErrSignatureKeyMismatch", c.s, c.pub, err)
		}
	}
}

// TestSignatureOtherEncodings checks that equivalent AlgorithmIdentifiers
// other than the Appendix A blobs are read, and that weak or malformed ones
// are refused.
func TestSignatureOtherEncodings(t *testing.T) {
	k := keys(t)
	octets := []byte("signed octets")
	digest := sha256.Sum256(octets)
	pkcs1, _ := rsa.SignPKCS1v15(rand.Reader, k.rsa, crypto.SHA256, digest[:])
	pss20, _ := rsa.SignPSS(rand.Reader, k.rsa, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: 20, Hash: crypto.SHA256})
	authData := func(algID string, sig []byte) []byte {
		a := unhex(t, algID)
		return append(append([]byte{byte(len(a))}, a...), sig...)
	}
	// sha256WithRSAEncryption with the parameters absent.
	if s, err := VerifySignatureAuth(k.rsa.Public(), authData("300b06092a864886f70d01010b", pkcs1), octets); err != nil || s != SigRSAPKCS1SHA256 {
		t.Errorf("PKCS#1 without NULL: %s %v", s, err)
	}
	// RSASSA-PSS, SHA-256, salt 20 (A.4.3 with saltLength 20, which is the
	// DEFAULT and so omitted).
	if s, err := VerifySignatureAuth(k.rsa.Public(), authData(
		"303c06092a864886f70d01010a302fa00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500",
		pss20), octets); err != nil || s != SigRSAPSSSHA256 {
		t.Errorf("PSS salt 20: %s %v", s, err)
	}
	for name, algID := range map[string]string{
		// RFC 7427 A.4.1: RSASSA-PSS with empty parameters means SHA-1.
		"pss empty params": "300d06092a864886f70d01010a3000",
		// A.1.1 sha1WithRSAEncryption.
		"sha1WithRSAEncryption": "300d06092a864886f70d0101050500",
		// A.3.1 ecdsa-with-sha1.
		"ecdsa-with-sha1": "300906072a8648ce3d0401",
		"garbage":         "3003020101",
		"trailing octets": "300a06082a8648ce3d04030200",
	} {
		if _, err := VerifySignatureAuth(k.rsa.Public(), authData(algID, pkcs1), octets); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: %v, want ErrAuthFailed", name, err)
		}
	}
}

func TestChooseSignatureScheme(t *testing.T) {
	k := keys(t)
	all := DefaultHashAlgorithms()
	cases := []struct {
		pub  crypto.PublicKey
		peer []HashAlgorithm
		want SignatureScheme
		ok   bool
	}{
		{k.rsa.Public(), all, SigRSAPSSSHA256, true},
		{k.rsa.Public(), []HashAlgorithm{HashSHA512}, SigRSAPSSSHA512, true},
		{k.p256.Public(), all, SigECDSASHA256, true},
		{k.p384.Public(), all, SigECDSASHA384, true},
		{k.p521.Public(), all, SigECDSASHA512, true},
		{k.p384.Public(), []HashAlgorithm{HashSHA256}, SigECDSASHA256, true},
		{k.ed25519.Public(), all, SigEd25519, true},
		{k.ed25519.Public(), []HashAlgorithm{HashSHA256}, 0, false},
		{k.rsa.Public(), []HashAlgorithm{1}, 0, false},
	}
	for _, c := range cases {
		s, ok := ChooseSignatureScheme(c.pub, c.peer)
		if s != c.want || ok != c.ok {
			t.Errorf("%T %v: %s %v, want %s %v", c.pub, c.peer, s, ok, c.want, c.ok)
		}
	}
}

func TestHashAlgorithmsNotify(t *testing.T) {
	data := EncodeHashAlgorithms(DefaultHashAlgorithms())
	if !bytes.Equal(data, []byte{0, 2, 0, 3, 0, 4, 0, 5}) {
		t.Errorf("encoded %x", data)
	}
	// strongSwan's own SIGNATURE_HASH_ALGORITHMS (16431 = 0x402f) from the
	// IKE_SA_INIT messages of testdata/strongswan: 0002 0003 0004 0005.
	got, err := ParseHashAlgorithms([]byte{0, 2, 0, 3, 0, 4, 0, 5})
	if err != nil || !reflect.DeepEqual(got, DefaultHashAlgorithms()) {
		t.Errorf("parsed %v %v", got, err)
	}
	if _, err := ParseHashAlgorithms([]byte{0, 2, 0}); err == nil {
		t.Error("odd length accepted")
	}
}

// TestSignedOctets writes RFC 7296 §2.15 out by hand.
func TestSignedOctets(t *testing.T) {
	msg, nonce, skp := []byte("IKE_SA_INIT request"), rep(7, 32), rep(9, 32)
	id := Identity{Type: IDFQDN, Data: []byte("a.example")}
	body := id.PayloadBody()
	if !bytes.Equal(body, append([]byte{2, 0, 0, 0}, "a.example"...)) {
		t.Errorf("PayloadBody %x", body)
	}
	got, err := SignedOctets(PRFHMACSHA384, msg, nonce, skp, body)
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := PRF(PRFHMACSHA384, skp, body)
	if want := append(append(bytes.Clone(msg), nonce...), mac...); !bytes.Equal(got, want) {
		t.Errorf("SignedOctets %x, want %x", got, want)
	}
	if _, err := PSKAuth(PRFHMACSHA256, nil, got); err == nil {
		t.Error("empty PSK accepted")
	}
	a, _ := PSKAuth(PRFHMACSHA256, []byte("secret"), got)
	a[0] ^= 1
	if err := VerifyPSKAuth(PRFHMACSHA256, []byte("secret"), got, a); err != ErrAuthFailed {
		t.Errorf("altered AUTH: %v", err)
	}
	if err := VerifyPSKAuth(PRFHMACSHA256, []byte("secret"), got, a[:16]); err != ErrAuthFailed {
		t.Errorf("short AUTH: %v", err)
	}
}
