package message

import (
	"bytes"
	"fmt"
	"sort"
)

// EncryptedFragment is an Encrypted and Authenticated Fragment payload, SKF
// (RFC 7383 §2.5), as parsed: a Reassembler decrypts it.
type EncryptedFragment struct {
	// Next is the type of the first inner payload in fragment 1, and 0 in
	// the others (RFC 7383 §2.5).
	Next PayloadType
	// Number is the fragment's number, from 1 to Total.
	Number, Total uint16
	// Body is IV | ciphertext | ICV of this fragment's part of the inner
	// payloads.
	Body []byte

	// prefix is the parsed message up to Total Fragments.
	prefix []byte
}

func (*EncryptedFragment) Type() PayloadType { return PayloadSKF }

func (p *EncryptedFragment) AppendBody(b []byte) ([]byte, error) {
	b = be.AppendUint16(b, p.Number)
	b = be.AppendUint16(b, p.Total)
	return append(b, p.Body...), nil
}

func parseFragment(next PayloadType, body []byte, off int) (*EncryptedFragment, error) {
	if len(body) < fragHeaderLen {
		return nil, perr(off, PayloadSKF, "%d octets, shorter than %d", len(body), fragHeaderLen)
	}
	f := &EncryptedFragment{
		Next:   next,
		Number: be.Uint16(body[offFragNumber:]),
		Total:  be.Uint16(body[offFragTotal:]),
		Body:   body[fragHeaderLen:],
	}
	// RFC 7383 §2.5: numbers start at 1 and never exceed the total.
	if f.Number == 0 || f.Number > f.Total {
		return nil, perr(off+offFragNumber, PayloadSKF, "fragment %d of %d", f.Number, f.Total)
	}
	return f, nil
}

// Fragment encodes the message with the inner payloads protected in SKF
// payloads (RFC 7383 §2.5), each message at most maxSize octets long (the
// IKE message; the caller subtracts the IP and UDP headers, and the
// non-ESP marker on port 4500, from its path MTU: RFC 7383 §2.5.1 suggests
// 1280 octets for IPv6 and 576 for IPv4 datagrams when the MTU is unknown).
//
// The plaintext chain of inner payloads is cut into parts that fill each
// message, and every part is encrypted on its own. All fragments share
// m's header (and message ID); the unencrypted payloads of m, if any, go in
// the first fragment only (§2.5.3). Whether to fragment is the caller's
// decision: only when the peer sent IKEV2_FRAGMENTATION_SUPPORTED (§2.3),
// never for IKE_SA_INIT, and only for a message that does not fit
// unfragmented. A message that fits maxSize gives one fragment.
func Fragment(m *Message, c SKCipher, inner []Payload, maxSize int) ([][]byte, error) {
	if maxSize > maxMessageLen {
		maxSize = maxMessageLen
	}
	plain, err := appendChain(nil, inner, PayloadNone, true)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	if len(plain) > maxMessageLen {
		// What no Reassembler would take.
		return nil, fmt.Errorf("ike: inner payloads of %d octets are longer than a message can be (%d)", len(plain), maxMessageLen)
	}
	pre, err := appendChain(nil, m.Payloads, PayloadSKF, false)
	if err != nil {
		return nil, err
	}
	const fragOverhead = HeaderLen + genHeaderLen + fragHeaderLen
	first := maxPlaintext(c, maxSize-fragOverhead-len(pre))
	rest := maxPlaintext(c, maxSize-fragOverhead)
	if first < 1 || rest < 1 {
		return nil, fmt.Errorf("ike: fragments of %d octets leave no room for data", maxSize)
	}
	total := 1
	if len(plain) > first {
		total += (len(plain) - first + rest - 1) / rest
	}
	if total > maxFragmentTotal {
		return nil, fmt.Errorf("ike: %d fragments, more than %d", total, maxFragmentTotal)
	}
	out := make([][]byte, 0, total)
	for num, off := 1, 0; num <= total; num++ {
		size := rest
		if num == 1 {
			size = first
		}
		part := plain[off:min(off+size, len(plain))]
		off += len(part)

		n := c.BodyLen(len(part))
		b := make([]byte, HeaderLen, maxSize)
		next, firstPayload := PayloadNone, PayloadSKF
		if num == 1 {
			b = append(b, pre...)
			next, firstPayload = firstType(inner, PayloadNone), firstType(m.Payloads, PayloadSKF)
		}
		b = append(b, byte(next), 0)
		b = be.AppendUint16(b, uint16(genHeaderLen+fragHeaderLen+n))
		b = be.AppendUint16(b, uint16(num))
		b = be.AppendUint16(b, uint16(total))
		bodyAt := len(b)
		b = append(b, make([]byte, n)...)
		putHeader(b, &m.Header, firstPayload, len(b))
		if err := c.Seal(b[bodyAt:], b[:bodyAt], part); err != nil {
			return nil, fmt.Errorf("ike: seal fragment %d of %d: %w", num, total, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// maxPlaintext returns the largest plaintext length whose body fits avail
// octets, or -1. BodyLen grows with its argument.
func maxPlaintext(c SKCipher, avail int) int {
	if avail < 0 || c.BodyLen(0) > avail {
		return -1
	}
	// The body is at least as long as the plaintext.
	return sort.Search(avail+1, func(n int) bool { return c.BodyLen(n) > avail }) - 1
}

// Reassembler collects the fragments of one fragmented message (RFC 7383
// §2.6) and returns the message when it is complete. It is not safe for
// concurrent use; an IKE SA has one per message it expects (the peer's
// current request, and the response to its own).
//
// Memory is bounded: MaxFragments slots and MaxLen octets of plaintext. A
// fragment is stored only after the cipher authenticated it, so forged
// fragments can neither displace nor restart a reassembly. The caller
// enforces the time limit (§2.6: discard an incomplete message after a
// while) with Reset.
type Reassembler struct {
	// MaxFragments bounds Total Fragments; 0 means DefaultMaxFragments.
	MaxFragments int
	// MaxLen bounds the decrypted octets held; 0 means
	// DefaultMaxReassemblyLen.
	MaxLen int

	active bool
	header Header      // of the first fragment stored, then of fragment 1
	first  PayloadType // Next Payload of fragment 1
	pre    []Payload   // unencrypted payloads of fragment 1
	total  int
	parts  [][]byte // index Number-1
	got    int
	size   int
}

// fragmentFields decodes the header, and the SKF payload's Next Payload,
// Fragment Number and Total Fragments, from the prefix of a fragment.
func fragmentFields(prefix []byte) (h Header, next PayloadType, num, total int, err error) {
	if h, err = ParseHeader(prefix); err != nil {
		return h, 0, 0, 0, err
	}
	if len(prefix) < HeaderLen+genHeaderLen+fragHeaderLen {
		return h, 0, 0, 0, perr(len(prefix), PayloadSKF, "prefix of %d octets", len(prefix))
	}
	f := prefix[len(prefix)-fragHeaderLen:]
	next = PayloadType(prefix[len(prefix)-fragHeaderLen-genHeaderLen+offGenNext])
	num, total = int(be.Uint16(f[offFragNumber:])), int(be.Uint16(f[offFragTotal:]))
	// RFC 7383 §2.5: numbers start at 1 and never exceed the total.
	if num == 0 || num > total {
		return h, 0, 0, 0, perr(len(prefix)-fragHeaderLen, PayloadSKF, "fragment %d of %d", num, total)
	}
	return h, next, num, total, nil
}

// Reset discards a partial message.
func (r *Reassembler) Reset() {
	clear(r.parts) // drop references; the parts are copies
	*r = Reassembler{MaxFragments: r.MaxFragments, MaxLen: r.MaxLen}
}

// Pending reports the message being reassembled: its message ID, the
// fragments received and their total.
func (r *Reassembler) Pending() (messageID uint32, got, total int, ok bool) {
	return r.header.MessageID, r.got, r.total, r.active
}

// Add takes one parsed message whose last payload is SKF. It returns the
// reassembled message when this fragment completes it: the header of
// fragment 1 and the unencrypted payloads of fragment 1 followed by the
// decrypted inner payloads, as Decrypt would give for an unfragmented
// message. Otherwise it returns nil and:
//
//   - nil when the fragment was stored;
//   - ErrFragmentIgnored for a duplicate, a fragment of an older (smaller)
//     fragmentation of the message, or a fragment of another message;
//   - ErrDecrypt when the cipher rejects it (it is dropped, §2.6, and the
//     reassembly goes on);
//   - ErrReassemblyLimit when the message is too large (the partial message
//     is discarded);
//   - a *ParseError when the reassembled inner payloads do not parse.
//
// A fragment with a larger Total Fragments than the stored ones restarts
// the reassembly (§2.6: the sender retransmits with smaller fragments).
func (r *Reassembler) Add(m *Message, c SKCipher) (*Message, error) {
	n := len(m.Payloads)
	if n == 0 {
		return nil, fmt.Errorf("%w: no SKF payload", ErrNotEncrypted)
	}
	f, ok := m.Payloads[n-1].(*EncryptedFragment)
	if !ok {
		return nil, fmt.Errorf("%w: the last payload is %s, not SKF", ErrNotEncrypted, m.Payloads[n-1].Type())
	}
	// Decide with the octets the cipher authenticates, not with fields a
	// caller could have changed since Parse.
	prefix := f.prefix
	if prefix == nil {
		full, err := m.Marshal()
		if err != nil {
			return nil, err
		}
		prefix = full[:len(full)-len(f.Body)]
	}
	h, next, num, total, err := fragmentFields(prefix)
	if err != nil {
		return nil, err
	}
	maxFragments := r.MaxFragments
	if maxFragments <= 0 {
		maxFragments = DefaultMaxFragments
	}
	if total > maxFragments {
		return nil, fmt.Errorf("%w: %d fragments, more than %d", ErrReassemblyLimit, total, maxFragments)
	}
	if r.active {
		a := &r.header
		switch {
		case h.MessageID != a.MessageID || h.SPIi != a.SPIi || h.SPIr != a.SPIr || h.Exchange != a.Exchange || h.IsResponse() != a.IsResponse():
			return nil, fmt.Errorf("%w: fragment of %s while reassembling %s", ErrFragmentIgnored, h, a)
		case total < r.total:
			return nil, fmt.Errorf("%w: fragment %d of %d, older than the %d fragments being reassembled", ErrFragmentIgnored, num, total, r.total)
		case total == r.total && r.parts[num-1] != nil:
			return nil, fmt.Errorf("%w: duplicate fragment %d of %d", ErrFragmentIgnored, num, total)
		}
	}

	body := bytes.Clone(f.Body)
	plain, err := c.Open(prefix, body)
	if err != nil {
		return nil, fmt.Errorf("%w: fragment %d of %d: %w", ErrDecrypt, num, total, err)
	}
	part := bytes.Clone(plain)
	clear(body)

	if r.active && total > r.total {
		r.Reset()
	}
	if !r.active {
		r.active = true
		r.header = h
		r.total = total
		r.parts = make([][]byte, r.total) // at most maxFragments
	}
	maxLen := r.MaxLen
	if maxLen <= 0 {
		maxLen = DefaultMaxReassemblyLen
	}
	if r.size+len(part) > maxLen {
		r.Reset()
		return nil, fmt.Errorf("%w: more than %d octets", ErrReassemblyLimit, maxLen)
	}
	if part == nil {
		part = []byte{} // non-nil marks the slot as received
	}
	r.parts[num-1] = part
	r.got++
	r.size += len(part)
	if num == 1 {
		r.header = h
		r.first = next
		r.pre = append([]Payload(nil), m.Payloads[:n-1]...)
	}
	if r.got < r.total {
		return nil, nil
	}

	whole := make([]byte, 0, r.size)
	for _, p := range r.parts {
		whole = append(whole, p...)
	}
	out := &Message{Header: r.header, Payloads: r.pre}
	first := r.first
	r.Reset()
	inner, err := parseChain(whole, 0, first, true)
	if err != nil {
		return nil, err
	}
	out.Payloads = append(out.Payloads, inner...)
	return out, nil
}
