package message

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// parseSeeds are valid and nearly valid messages: the strongSwan captures,
// every payload type, an encrypted message and fragments, and the
// malformed cases of TestMalformed.
func parseSeeds(t testing.TB) [][]byte {
	seeds := validMessages(t)
	c := &fakeCipher{key: 1}
	enc, err := (&Message{Header: testHeader(), Payloads: []Payload{&VendorID{Data: []byte("v")}}}).MarshalEncrypted(c, authInner())
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, enc)
	frags, err := Fragment(&Message{Header: testHeader()}, c, authInner(), 120)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, frags...)
	nonce := seq(16, 1)
	seeds = append(seeds,
		nil, make([]byte, HeaderLen),
		msg(150, gp(PayloadEAP, 0, 1, 2), gp(0, 0x80, 3, 4)),
		msg(PayloadVendorID, gp(150, 0, 'v'), gp(0, 0x80, 1, 2)),
		msg(PayloadNonce, gp(0, 0, nonce...), []byte{0, 0, 0, 0}),
		msg(PayloadSA, gp(0, 0, 0, 0, 0, 21, 1, 1, 0, 1, 0, 0, 0, 13, 1, 0, 0, 12, 0, 1, 0, 2, 9)),
		msg(PayloadTSi, gp(0, 0, 1, 0, 0, 0, 8, 0, 0, 16, 0, 0, 255, 255, 10, 0, 0, 0, 10, 255, 255, 255)),
		msg(PayloadSKF, gp(0, 0, 0, 3, 0, 2)),
		// A plaintext chain for the second half of the target: the type
		// of the first payload, then the chain.
		append([]byte{byte(PayloadNonce)}, gp(PayloadKE, 0, nonce...)...),
	)
	return seeds
}

// FuzzParse checks that Parse never panics, that its errors say where,
// and that what it accepts marshals back to as many octets and to a fixed
// point. The same octets are then taken as the plaintext of an authentic
// SK payload, so that the parsing of decrypted payloads is fuzzed as well.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			checkParseError(t, err, len(data))
		} else {
			checkRoundTrip(t, m, data)
			_ = m.String()
			for _, p := range m.Payloads {
				exercise(p)
			}
			// Opening with the wrong cipher fails cleanly.
			if err := m.Decrypt(&fakeCipher{key: 0xee}); err == nil {
				if _, ok := m.Payloads[len(m.Payloads)-1].(*Encrypted); ok {
					t.Fatal("decrypted with the wrong key")
				}
			}
			var r Reassembler
			_, _ = r.Add(m, &fakeCipher{key: 0xee})
		}
		if len(data) == 0 {
			return
		}
		// data[0] as the first payload type, data[1:] as the decrypted
		// chain of an authentic SK payload.
		c := &fakeCipher{key: 2}
		sealed := sealPlainRaw(c, PayloadType(data[0]), data[1:])
		m, err = Parse(sealed)
		if err != nil {
			t.Fatalf("sealed message does not parse: %v", err)
		}
		err = m.Decrypt(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidSyntax) && !errors.Is(err, ErrUnsupportedCriticalPayload) {
				t.Fatalf("authentic SK: %v", err)
			}
			checkParseError(t, err, len(data)-1)
			return
		}
		chain, err := AppendPayloads(nil, m.Payloads)
		if err != nil {
			t.Fatalf("inner payloads do not marshal: %v", err)
		}
		if len(chain) != len(data)-1 {
			t.Fatalf("inner chain of %d octets marshals to %d", len(data)-1, len(chain))
		}
		again, err := ParsePayloads(firstType(m.Payloads, PayloadNone), chain)
		if err != nil || len(again) != len(m.Payloads) {
			t.Fatalf("marshalled inner chain does not parse: %v", err)
		}
	})
}

func checkParseError(t *testing.T, err error, n int) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%v is not a *ParseError", err)
	}
	if pe.Offset < 0 || pe.Offset > n {
		t.Fatalf("%v: offset %d outside 0-%d", err, pe.Offset, n)
	}
	if pe.Err != ErrInvalidSyntax && pe.Err != ErrInvalidMajorVersion && pe.Err != ErrUnsupportedCriticalPayload {
		t.Fatalf("%v: sentinel %v", err, pe.Err)
	}
	if NotifyFor(err) == nil {
		t.Fatalf("%v: no notification", err)
	}
	_ = err.Error()
}

func checkRoundTrip(t *testing.T, m *Message, data []byte) {
	t.Helper()
	out, err := m.Marshal()
	if err != nil {
		t.Fatalf("parsed message does not marshal: %v", err)
	}
	// Only reserved octets and bits can change, never the length.
	if len(out) != len(data) {
		t.Fatalf("%d octets marshal to %d", len(data), len(out))
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("marshalled message does not parse: %v\n%x", err, out)
	}
	out2, err := m2.Marshal()
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("marshalling is not a fixed point: %v", err)
	}
}

// exercise calls the helpers of a payload, which must not panic.
func exercise(p Payload) {
	switch p := p.(type) {
	case *SA:
		for _, pr := range p.Proposals {
			_ = pr.String()
			for _, tr := range pr.Transforms {
				tr.KeyLength()
			}
		}
	case *ID:
		_ = p.String()
		p.Addr()
	case *Notify:
		p.Group()
		p.HashAlgorithms()
	case *CertReq:
		p.Authorities()
	case *TS:
		for _, s := range p.Selectors {
			s.Prefix()
			_ = s.String()
		}
	case *CP:
		for _, a := range p.Attributes {
			a.Addr()
			a.Prefix()
		}
	}
}

// sealPlainRaw is sealPlain without a testing.T.
func sealPlainRaw(c SKCipher, next PayloadType, plain []byte) []byte {
	n := c.BodyLen(len(plain))
	b := append(make([]byte, HeaderLen), byte(next), 0, byte((genHeaderLen+n)>>8), byte(genHeaderLen+n))
	at := len(b)
	b = append(b, make([]byte, n)...)
	h := testHeader()
	putHeader(b, &h, PayloadSK, len(b))
	if err := c.Seal(b[at:], b[:at], plain); err != nil {
		panic(err)
	}
	return b
}

// FuzzFragmentReassembly fragments inner payloads made from data at a
// fuzzed size and reassembles them in a fuzzed order with duplicates,
// forged copies and a stale retransmission: the result must be the inner
// payloads. data is also fed to a Reassembler as a message.
func FuzzFragmentReassembly(f *testing.F) {
	inner, _ := AppendPayloads(nil, authInner())
	f.Add(append([]byte{byte(PayloadIDi)}, inner...), uint16(100), uint64(1))
	f.Add([]byte("vendor id"), uint16(0), uint64(2))
	f.Add([]byte{}, uint16(1500), uint64(3))
	big, _ := AppendPayloads(nil, bigInner(600))
	f.Add(append([]byte{byte(PayloadIDi)}, big...), uint16(600), uint64(4))
	for _, s := range parseSeeds(f)[:8] {
		f.Add(s, uint16(200), uint64(len(s)))
	}
	f.Fuzz(fuzzFragment)
}

func fuzzFragment(t *testing.T, data []byte, size uint16, seed uint64) {
	{
		// Keep an execution short, so that the fuzzer can minimize what
		// it finds in seconds: 1 KiB in fragments of 32 octets and more
		// is already 30 fragments.
		if len(data) > 1024 {
			data = data[:1024]
		}
		c := &fakeCipher{key: 3}
		// data as a message: no panic, whatever it is.
		if m, err := Parse(data); err == nil {
			var r Reassembler
			_, _ = r.Add(m, c)
		}
		// Inner payloads: data as a chain if it is one, else a Vendor ID.
		var ps []Payload
		if len(data) > 0 {
			ps, _ = ParsePayloads(PayloadType(data[0]), data[1:])
		}
		if ps == nil {
			ps = []Payload{&VendorID{Data: data}}
		}
		maxSize := HeaderLen + genHeaderLen + fragHeaderLen + fakeIVLen + 4*fakeBlock + fakeICVLen + int(size)%1500
		h := testHeader()
		frags, err := Fragment(&Message{Header: h}, c, ps, maxSize)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		r := Reassembler{MaxFragments: maxFragmentTotal} // tiny fragments make many
		// A stale, smaller fragmentation of the same message first (RFC
		// 7383 §2.6): its fragment 1 is superseded by the real ones.
		if old, err := Fragment(&Message{Header: h}, c, ps, maxSize+500); err == nil && len(old) < len(frags) {
			om, err := Parse(old[0])
			if err != nil {
				t.Fatal(err)
			}
			if whole, err := r.Add(om, c); err != nil || whole != nil && len(old) != 1 {
				t.Fatalf("stale fragment: %v", err)
			}
		}
		order := rng.Perm(len(frags))
		for k := 0; k < len(frags)/2; k++ {
			order = append(order, rng.IntN(len(frags)))
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		seen := map[int]bool{}
		var got *Message
		for _, i := range order {
			if len(frags[i]) > maxSize {
				t.Fatalf("fragment %d: %d octets, more than %d", i+1, len(frags[i]), maxSize)
			}
			// A forged copy.
			forged := bytes.Clone(frags[i])
			forged[rng.IntN(len(forged))] ^= byte(1 + rng.IntN(255))
			if fm, err := Parse(forged); err == nil {
				if whole, err := r.Add(fm, c); whole != nil || err == nil {
					t.Fatalf("forged fragment %d accepted", i+1)
				}
			}
			m, err := Parse(frags[i])
			if err != nil {
				t.Fatal(err)
			}
			whole, err := r.Add(m, c)
			switch {
			case got != nil:
			case seen[i]:
				if !errors.Is(err, ErrFragmentIgnored) {
					t.Fatalf("duplicate %d: %v", i+1, err)
				}
			case err != nil:
				t.Fatalf("fragment %d: %v", i+1, err)
			case whole != nil:
				got = whole
			}
			seen[i] = true
		}
		if got == nil {
			t.Fatal("not reassembled")
		}
		want, _ := AppendPayloads(nil, ps)
		chain, err := AppendPayloads(nil, got.Payloads)
		if err != nil || !bytes.Equal(chain, want) {
			t.Fatalf("reassembled payloads differ (%v)", err)
		}
	}
}

// TestWriteFuzzSeeds regenerates the seed corpora in testdata/fuzz when
// IKE_WRITE_FUZZ_SEEDS=1; the files are committed.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("IKE_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set IKE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, bodies []string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range bodies {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte("go test fuzz v1\n"+b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var parse []string
	for _, s := range parseSeeds(t) {
		parse = append(parse, fmt.Sprintf("[]byte(%q)\n", s))
	}
	write("FuzzParse", parse)
	inner, _ := AppendPayloads(nil, authInner())
	big, _ := AppendPayloads(nil, bigInner(600))
	frag := []string{
		fmt.Sprintf("[]byte(%q)\nuint16(100)\nuint64(1)\n", append([]byte{byte(PayloadIDi)}, inner...)),
		fmt.Sprintf("[]byte(%q)\nuint16(0)\nuint64(2)\n", "vendor id"),
		fmt.Sprintf("[]byte(%q)\nuint16(1500)\nuint64(3)\n", ""),
		fmt.Sprintf("[]byte(%q)\nuint16(600)\nuint64(4)\n", append([]byte{byte(PayloadIDi)}, big...)),
	}
	write("FuzzFragmentReassembly", frag)
}
