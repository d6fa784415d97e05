package message

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// bigInner is an inner payload chain of about n octets.
func bigInner(n int) []Payload {
	ps := authInner()
	for i := 0; n > 0; i++ {
		l := min(n, 1000)
		ps = append(ps, &Cert{Encoding: CertX509Signature, Data: seq(l, byte(i))})
		n -= l + 5
	}
	return ps
}

func parseAll(t *testing.T, frags [][]byte) []*Message {
	t.Helper()
	var ms []*Message
	for i, f := range frags {
		m, err := Parse(f)
		if err != nil {
			t.Fatalf("fragment %d: %v", i+1, err)
		}
		ms = append(ms, m)
	}
	return ms
}

func checkInner(t *testing.T, got *Message, clear, inner []Payload) {
	t.Helper()
	want := append(append([]Payload{}, clear...), inner...)
	if got == nil {
		t.Fatal("no message")
	}
	if len(got.Payloads) != len(want) {
		t.Fatalf("%d payloads, want %d", len(got.Payloads), len(want))
	}
	for i := range want {
		if !samePayload(got.Payloads[i], want[i]) {
			t.Fatalf("payload %d: %s, want %s", i, show(got.Payloads[i]), show(want[i]))
		}
	}
}

func TestFragmentAndReassemble(t *testing.T) {
	tests := []struct {
		name    string
		clear   []Payload
		inner   []Payload
		maxSize int
		total   int // 0: more than one
	}{
		{"fits in one", nil, authInner(), 1280, 1},
		{"empty", nil, nil, 576, 1},
		{"576", nil, bigInner(3000), 576, 0},
		{"1280", nil, bigInner(20000), 1280, 0},
		{"tiny fragments", nil, authInner(), HeaderLen + genHeaderLen + fragHeaderLen + fakeIVLen + fakeBlock + fakeICVLen, 0},
		{"unencrypted payloads in the first", []Payload{&VendorID{Data: seq(100, 0)}}, bigInner(2000), 400, 0},
		{"largest message", nil, bigInner(60000), 1500, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeCipher{key: 9}
			h := testHeader()
			frags, err := Fragment(&Message{Header: h, Payloads: tt.clear}, c, tt.inner, tt.maxSize)
			if err != nil {
				t.Fatal(err)
			}
			if tt.total != 0 && len(frags) != tt.total || tt.total == 0 && len(frags) < 2 {
				t.Fatalf("%d fragments", len(frags))
			}
			ms := parseAll(t, frags)
			for i, m := range ms {
				if len(frags[i]) > tt.maxSize {
					t.Errorf("fragment %d: %d octets, more than %d", i+1, len(frags[i]), tt.maxSize)
				}
				f := m.Payloads[len(m.Payloads)-1].(*EncryptedFragment)
				wantNext, wantClear := PayloadNone, 0
				if i == 0 {
					wantNext, wantClear = firstType(tt.inner, PayloadNone), len(tt.clear)
				}
				if int(f.Number) != i+1 || int(f.Total) != len(frags) || f.Next != wantNext || len(m.Payloads) != wantClear+1 {
					t.Errorf("fragment %d: %s next %s", i+1, m, f.Next)
				}
				if m.MessageID != h.MessageID || m.SPIi != h.SPIi || m.Exchange != h.Exchange || m.Flags != h.Flags {
					t.Errorf("fragment %d: header %s", i+1, m.Header)
				}
				// All but the last fragment are full: no octet of the
				// next part would fit.
				if i < len(frags)-1 && len(frags[i])+fakeBlock <= tt.maxSize {
					t.Errorf("fragment %d: %d octets, room for %d more", i+1, len(frags[i]), tt.maxSize-len(frags[i]))
				}
			}
			// In order, reversed and shuffled with duplicates.
			orders := [][]int{nil, nil, nil}
			for i := range ms {
				orders[0] = append(orders[0], i)
				orders[1] = append([]int{i}, orders[1]...)
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(ms))))
			orders[2] = append(rng.Perm(len(ms)), rng.Perm(len(ms))...)
			for _, order := range orders {
				var r Reassembler
				var got *Message
				seen := map[int]bool{}
				for k, i := range order {
					m, err := Parse(frags[i]) // fresh: Add may not modify a message it refused
					if err != nil {
						t.Fatal(err)
					}
					whole, err := r.Add(m, c)
					switch {
					case got != nil:
						// Complete: late duplicates start over.
						if err != nil {
							t.Fatalf("after completion: %v", err)
						}
					case seen[i]:
						if !errors.Is(err, ErrFragmentIgnored) || whole != nil {
							t.Fatalf("duplicate %d: %v", i+1, err)
						}
					case len(seen) == len(ms)-1:
						if err != nil {
							t.Fatal(err)
						}
						got = whole
						if _, _, _, ok := r.Pending(); ok {
							t.Error("still pending after completion")
						}
						r.Reset()
					default:
						if err != nil || whole != nil {
							t.Fatalf("step %d fragment %d: %v", k, i+1, err)
						}
						if id, n, total, ok := r.Pending(); !ok || id != h.MessageID || n != len(seen)+1 || total != len(ms) {
							t.Errorf("Pending() = %d %d %d %v", id, n, total, ok)
						}
					}
					seen[i] = true
				}
				checkInner(t, got, tt.clear, tt.inner)
				if got.MessageID != h.MessageID || got.Exchange != h.Exchange {
					t.Errorf("reassembled header %s", got.Header)
				}
			}
		})
	}
}

func TestFragmentErrors(t *testing.T) {
	c := &fakeCipher{}
	m := &Message{Header: testHeader()}
	if _, err := Fragment(m, c, authInner(), 50); err == nil {
		t.Error("no room: no error")
	}
	if _, err := Fragment(&Message{Header: testHeader(), Payloads: []Payload{&VendorID{Data: seq(100, 0)}}}, c, authInner(), 150); err == nil {
		t.Error("no room in the first fragment: no error")
	}
	if _, err := Fragment(m, c, []Payload{&Nonce{}}, 1280); err == nil {
		t.Error("bad inner payload: no error")
	}
	if _, err := Fragment(&Message{Payloads: []Payload{&Encrypted{}}}, c, nil, 1280); err == nil {
		t.Error("SK among the clear payloads: no error")
	}
	if _, err := Fragment(m, &failingCipher{}, authInner(), 1280); !errors.Is(err, errSeal) {
		t.Errorf("seal: %v", err)
	}
	// More plaintext than a message can hold.
	if _, err := Fragment(m, c, bigInner(70000), 1280); err == nil {
		t.Error("too long: no error")
	}
}

// fragments returns the parsed fragments of authInner at maxSize.
func fragments(t *testing.T, c SKCipher, h Header, inner []Payload, maxSize int) []*Message {
	t.Helper()
	frags, err := Fragment(&Message{Header: h}, c, inner, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	return parseAll(t, frags)
}

func TestReassemblerTamper(t *testing.T) {
	c := &fakeCipher{key: 4}
	ms := fragments(t, c, testHeader(), authInner(), 100)
	if len(ms) < 3 {
		t.Fatalf("%d fragments", len(ms))
	}
	var r Reassembler
	for i, m := range ms {
		// A forged copy first: refused, and it does not take the slot.
		f := m.Payloads[len(m.Payloads)-1].(*EncryptedFragment)
		body := bytes.Clone(f.Body)
		body[0] ^= 1
		forged := &Message{Header: m.Header, Payloads: []Payload{&EncryptedFragment{Next: f.Next, Number: f.Number, Total: f.Total, Body: body}}}
		if _, err := r.Add(forged, c); !errors.Is(err, ErrDecrypt) || !errors.Is(err, errFakeICV) {
			t.Fatalf("forged fragment %d: %v", i+1, err)
		}
		// A forged fragment with a larger total: refused before it can
		// restart the reassembly.
		forged = &Message{Header: m.Header, Payloads: []Payload{&EncryptedFragment{Next: f.Next, Number: f.Number, Total: f.Total + 1, Body: f.Body}}}
		if _, err := r.Add(forged, c); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("forged total: %v", err)
		}
		// Fields changed after Parse do not count: the Reassembler goes
		// by the octets the cipher authenticated.
		changed := *f
		changed.Number, changed.Total = 1, 99
		whole, err := r.Add(&Message{Header: m.Header, Payloads: []Payload{&changed}}, c)
		if err != nil {
			t.Fatal(err)
		}
		if i < len(ms)-1 {
			if _, n, total, _ := r.Pending(); n != i+1 || total != len(ms) {
				t.Fatalf("fragment %d: pending %d of %d", i+1, n, total)
			}
			if _, err := r.Add(m, c); !errors.Is(err, ErrFragmentIgnored) {
				t.Fatalf("duplicate: %v", err)
			}
			continue
		}
		checkInner(t, whole, nil, authInner())
	}
}

func TestReassemblerRestart(t *testing.T) {
	c := &fakeCipher{key: 5}
	h := testHeader()
	inner := bigInner(1500)
	big := fragments(t, c, h, inner, 1200)  // the first attempt
	small := fragments(t, c, h, inner, 500) // the retransmission with smaller fragments (RFC 7383 §2.5.2)
	if len(big) < 2 || len(small) <= len(big) {
		t.Fatalf("%d and %d fragments", len(big), len(small))
	}
	var r Reassembler
	if _, err := r.Add(big[0], c); err != nil {
		t.Fatal(err)
	}
	// More fragments: restart (RFC 7383 §2.6).
	if _, err := r.Add(small[1], c); err != nil {
		t.Fatal(err)
	}
	if _, n, total, _ := r.Pending(); n != 1 || total != len(small) {
		t.Fatalf("after restart: %d of %d", n, total)
	}
	// Fewer fragments: the old attempt, ignored.
	if _, err := r.Add(big[1], c); !errors.Is(err, ErrFragmentIgnored) {
		t.Fatalf("old fragment: %v", err)
	}
	var whole *Message
	for i, m := range small {
		if i == 1 {
			continue
		}
		var err error
		if whole, err = r.Add(m, c); err != nil {
			t.Fatal(err)
		}
	}
	checkInner(t, whole, nil, inner)
}

func TestReassemblerRefuses(t *testing.T) {
	c := &fakeCipher{key: 6}
	h := testHeader()
	ms := fragments(t, c, h, bigInner(3000), 300)

	// Another message while one is in progress.
	var r Reassembler
	if _, err := r.Add(ms[0], c); err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(*Header){
		func(h *Header) { h.MessageID++ },
		func(h *Header) { h.SPIi++ },
		func(h *Header) { h.SPIr++ },
		func(h *Header) { h.Exchange = Informational },
		func(h *Header) { h.Flags |= FlagResponse },
	} {
		other := h
		change(&other)
		om := fragments(t, c, other, authInner(), 300)
		if _, err := r.Add(om[0], c); !errors.Is(err, ErrFragmentIgnored) {
			t.Errorf("other message %s: %v", other, err)
		}
	}

	// Not a fragment.
	if _, err := r.Add(&Message{}, c); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("empty message: %v", err)
	}
	if _, err := r.Add(&Message{Payloads: []Payload{&Encrypted{}}}, c); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("SK: %v", err)
	}
	if _, err := r.Add(&Message{Payloads: []Payload{&EncryptedFragment{Number: 3, Total: 2}}}, c); !errors.Is(err, ErrInvalidSyntax) {
		t.Errorf("number past total: %v", err)
	}

	// Too many fragments.
	r2 := Reassembler{MaxFragments: len(ms) - 1}
	if _, err := r2.Add(ms[0], c); !errors.Is(err, ErrReassemblyLimit) {
		t.Errorf("MaxFragments: %v", err)
	}
	var r3 Reassembler
	many := fragments(t, c, h, bigInner(5000), HeaderLen+genHeaderLen+fragHeaderLen+fakeIVLen+2*fakeBlock+fakeICVLen)
	if len(many) <= DefaultMaxFragments {
		t.Fatalf("%d fragments", len(many))
	}
	if _, err := r3.Add(many[0], c); !errors.Is(err, ErrReassemblyLimit) {
		t.Errorf("DefaultMaxFragments: %v", err)
	}

	// Too many octets: the partial message is dropped.
	r4 := Reassembler{MaxLen: 500}
	var err error
	for _, m := range ms {
		if _, err = r4.Add(m, c); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrReassemblyLimit) {
		t.Errorf("MaxLen: %v", err)
	}
	if _, _, _, ok := r4.Pending(); ok || r4.MaxLen != 500 {
		t.Error("not reset after exceeding MaxLen")
	}
}

// TestReassembledBadInner: authentic fragments whose joined plaintext does
// not parse.
func TestReassembledBadInner(t *testing.T) {
	c := &fakeCipher{key: 7}
	ms := fragments(t, c, testHeader(), []Payload{&Raw{PayloadType: PayloadNonce, Body: seq(100, 0)}, &Raw{PayloadType: PayloadKE, Body: []byte{1}}}, 100)
	var r Reassembler
	var err error
	for _, m := range ms {
		_, err = r.Add(m, c)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || !pe.Encrypted || pe.Payload != PayloadKE || pe.Offset != 108 {
		t.Fatalf("err = %v", err)
	}
	if _, _, _, ok := r.Pending(); ok {
		t.Error("not reset")
	}
}
