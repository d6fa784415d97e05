package message

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// authInner is a typical IKE_AUTH request's inner payloads.
func authInner() []Payload {
	return []Payload{
		NewIDString(false, IDFQDN, "client.example.org"),
		NewNotify(NotifyInitialContact, nil),
		&Auth{Method: AuthPSK, Data: seq(32, 1)},
		&SA{Proposals: []Proposal{{Number: 1, Protocol: ProtocolESP, SPI: seq(4, 9), Transforms: []Transform{Encr(EncrAESGCM16, 256), ESN(ESNNone)}}}},
		NewTS(false, netip.MustParsePrefix("10.1.0.0/16")),
		NewTS(true, netip.MustParsePrefix("10.2.0.0/16")),
	}
}

func TestEncryptedRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		clear []Payload
		inner []Payload
	}{
		{"typical", nil, authInner()},
		{"empty (liveness check)", nil, nil},
		{"one payload", nil, []Payload{&Delete{Protocol: ProtocolIKE}}},
		{"unencrypted payloads first", []Payload{&VendorID{Data: []byte("clear")}, NewNotify(NotifyCookie, seq(8, 0))}, authInner()},
		{"every payload", nil, samplePayloads()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeCipher{key: 0x5a}
			m := &Message{Header: testHeader(), Payloads: tt.clear}
			b, err := m.MarshalEncrypted(c, tt.inner)
			if err != nil {
				t.Fatal(err) // the fake's Seal checked the layout
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Payloads) != len(tt.clear)+1 {
				t.Fatalf("%d payloads before decryption", len(got.Payloads))
			}
			sk, ok := got.Payloads[len(tt.clear)].(*Encrypted)
			if !ok || sk.Next != firstType(tt.inner, PayloadNone) {
				t.Fatalf("last payload %s", show(got.Payloads[len(tt.clear)]))
			}
			wantNext := firstType(tt.clear, PayloadSK)
			if got.NextPayload != wantNext {
				t.Errorf("header next payload %s, want %s", got.NextPayload, wantNext)
			}
			// A parsed encrypted message marshals back as it was.
			again, err := got.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("Marshal(Parse(b)) != b (%v)", err)
			}
			if err := got.Decrypt(c); err != nil {
				t.Fatal(err)
			}
			want := append(append([]Payload{}, tt.clear...), tt.inner...)
			if len(got.Payloads) != len(want) {
				t.Fatalf("%d payloads after decryption, want %d", len(got.Payloads), len(want))
			}
			for i := range want {
				if !samePayload(got.Payloads[i], want[i]) {
					t.Errorf("payload %d: %s, want %s", i, show(got.Payloads[i]), show(want[i]))
				}
			}
			if !bytes.Equal(got.Bytes(), b) {
				t.Error("Decrypt changed the parsed octets")
			}
			// AppendEncrypted appends.
			pre := []byte{1, 2, 3}
			c2 := &fakeCipher{key: 0x5a}
			app, err := m.AppendEncrypted(bytes.Clone(pre), c2, tt.inner)
			if err != nil || !bytes.Equal(app, append(pre, b...)) {
				t.Errorf("AppendEncrypted: %v", err)
			}
		})
	}
}

// TestEncryptedTamper flips every bit of an encrypted message: Parse or
// Decrypt must refuse each (the fake's CRC covers the whole message, as a
// real ICV does).
func TestEncryptedTamper(t *testing.T) {
	m := &Message{Header: testHeader(), Payloads: []Payload{&VendorID{Data: []byte("clear")}}}
	b, err := m.MarshalEncrypted(&fakeCipher{key: 1}, authInner())
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			x := bytes.Clone(b)
			x[i] ^= 1 << bit
			got, err := Parse(x)
			if err != nil {
				continue
			}
			err = got.Decrypt(&fakeCipher{key: 1})
			if err == nil {
				t.Fatalf("octet %d bit %d: accepted", i, bit)
			}
			if !errors.Is(err, ErrDecrypt) || !errors.Is(err, errFakeICV) && !errors.Is(err, errFakeLen) {
				t.Fatalf("octet %d bit %d: %v", i, bit, err)
			}
			if NotifyFor(err) != nil {
				t.Fatalf("NotifyFor(%v) answers", err)
			}
		}
	}
}

// TestEncryptedBadInner: an authentic SK payload whose plaintext does not
// parse gives a *ParseError with Encrypted set, and offsets in the
// plaintext.
func TestEncryptedBadInner(t *testing.T) {
	c := &fakeCipher{key: 3}
	m := &Message{Header: testHeader()}
	// An SK payload around garbage: a Nonce of 4 octets.
	b, err := m.MarshalEncrypted(c, []Payload{&Raw{PayloadType: PayloadNonce, Body: []byte{1, 2, 3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	err = got.Decrypt(c)
	var pe *ParseError
	if !errors.As(err, &pe) || !pe.Encrypted || pe.Offset != genHeaderLen || pe.Payload != PayloadNonce || !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("err = %v", err)
	}
	if n := NotifyFor(err); n == nil || n.NotifyType != NotifyInvalidSyntax {
		t.Errorf("NotifyFor = %v", n)
	}
	// An SK payload inside the plaintext (Marshal refuses to build one).
	got, err = Parse(sealPlain(t, c, PayloadSK, gp(0, 0, 1, 2, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Decrypt(c); !errors.As(err, &pe) || !pe.Encrypted || pe.Payload != PayloadSK || pe.Offset != 0 {
		t.Fatalf("nested SK: %v", err)
	}
	// Trailing octets after the inner chain.
	got, _ = Parse(sealPlain(t, c, PayloadVendorID, append(gp(0, 0, 'v'), 0)))
	if err := got.Decrypt(c); !errors.As(err, &pe) || !pe.Encrypted || pe.Offset != 5 {
		t.Fatalf("trailing octet: %v", err)
	}
	// Critical unknown payload inside.
	b, _ = m.MarshalEncrypted(c, []Payload{&Raw{PayloadType: 222, Critical: true}})
	got, _ = Parse(b)
	err = got.Decrypt(c)
	if n := NotifyFor(err); !errors.Is(err, ErrUnsupportedCriticalPayload) || n == nil || !bytes.Equal(n.Data, []byte{222}) {
		t.Fatalf("critical inner payload: %v, %v", err, n)
	}
}

// sealPlain builds an encrypted message whose SK payload announces next and
// holds plain, whatever it is.
func sealPlain(t *testing.T, c SKCipher, next PayloadType, plain []byte) []byte {
	t.Helper()
	n := c.BodyLen(len(plain))
	b := append(make([]byte, HeaderLen), byte(next), 0, byte((genHeaderLen+n)>>8), byte(genHeaderLen+n))
	at := len(b)
	b = append(b, make([]byte, n)...)
	h := testHeader()
	putHeader(b, &h, PayloadSK, len(b))
	if err := c.Seal(b[at:], b[:at], plain); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecryptErrors(t *testing.T) {
	c := &fakeCipher{}
	if err := (&Message{}).Decrypt(c); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("no payloads: %v", err)
	}
	if err := (&Message{Payloads: []Payload{&VendorID{}}}).Decrypt(c); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("no SK: %v", err)
	}
	if err := (&Message{Payloads: []Payload{&EncryptedFragment{Number: 1, Total: 1}}}).Decrypt(c); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("SKF: %v", err)
	}
	// A message built in memory around an *Encrypted: the prefix is
	// marshalled.
	b, _ := (&Message{Header: testHeader()}).MarshalEncrypted(c, authInner())
	parsed, _ := Parse(b)
	sk := parsed.Payloads[0].(*Encrypted)
	built := &Message{Header: parsed.Header, Payloads: []Payload{&Encrypted{Next: sk.Next, Body: sk.Body}}}
	if err := built.Decrypt(c); err != nil || len(built.Payloads) != len(authInner()) {
		t.Errorf("built message: %v", err)
	}
}

type failingCipher struct{ fakeCipher }

var errSeal = errors.New("seal failed")

func (failingCipher) Seal(body, prefix, plaintext []byte) error { return errSeal }

type shortCipher struct{ fakeCipher }

func (shortCipher) BodyLen(n int) int { return n - 1 }

func TestMarshalEncryptedErrors(t *testing.T) {
	pre := []byte("keep")
	tests := []struct {
		name  string
		c     SKCipher
		clear []Payload
		inner []Payload
	}{
		{"seal fails", &failingCipher{}, nil, authInner()},
		{"body shorter than plaintext", &shortCipher{}, nil, authInner()},
		{"SK among the clear payloads", &fakeCipher{}, []Payload{&Encrypted{}}, nil},
		{"SK inside", &fakeCipher{}, nil, []Payload{&Encrypted{}}},
		{"SKF inside", &fakeCipher{}, nil, []Payload{&EncryptedFragment{}}},
		{"bad inner payload", &fakeCipher{}, nil, []Payload{&Nonce{}}},
		{"bad clear payload", &fakeCipher{}, []Payload{&Nonce{}}, nil},
		{"too long", &fakeCipher{}, nil, []Payload{&VendorID{Data: make([]byte, 0xfff0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := (&Message{Header: testHeader(), Payloads: tt.clear}).AppendEncrypted(bytes.Clone(pre), tt.c, tt.inner)
			if err == nil || !bytes.Equal(b, pre) {
				t.Fatalf("got %d octets, %v", len(b), err)
			}
		})
	}
	if _, err := (&Message{Header: testHeader()}).MarshalEncrypted(&failingCipher{}, nil); !errors.Is(err, errSeal) {
		t.Errorf("seal error not wrapped: %v", err)
	}
}
