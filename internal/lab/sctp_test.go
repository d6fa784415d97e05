package lab

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"net/netip"
	"testing"
)

// CRC32c against the vectors of RFC 3720 Appendix B.4 (the same CRC and
// byte order as SCTP's, RFC 9260 Appendix A): 32-byte inputs and the
// checksum as the four bytes sent.
func TestCRC32cVectors(t *testing.T) {
	inc, dec := make([]byte, 32), make([]byte, 32)
	for i := range inc {
		inc[i], dec[i] = byte(i), byte(31-i)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"zeros", make([]byte, 32), "aa36918a"},
		{"ones", bytes.Repeat([]byte{0xff}, 32), "43aba862"},
		{"incrementing", inc, "4e79dd46"},
		{"decrementing", dec, "5cdb3f11"},
	} {
		var got [4]byte
		binary.LittleEndian.PutUint32(got[:], crc32.Checksum(tc.in, castagnoli))
		if hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("%s: CRC32c bytes %x, want %s", tc.name, got, tc.want)
		}
	}
}

// sctpChecksum is that CRC over the packet with its checksum field zero.
func TestCRC32cSkipsChecksumField(t *testing.T) {
	pkt := make([]byte, 32)
	for i := range pkt {
		pkt[i] = byte(i * 7)
	}
	zeroed := bytes.Clone(pkt)
	copy(zeroed[sctpChecksumOff:], []byte{0, 0, 0, 0})
	if got, want := sctpChecksum(pkt), crc32.Checksum(zeroed, castagnoli); got != want {
		t.Errorf("sctpChecksum = %08x, want %08x", got, want)
	}
}

func TestSCTPInitRoundTrip(t *testing.T) {
	init := initChunk{InitiateTag: 0x01020304, Window: labWindow, OutStreams: 1, InStreams: 1, InitialTSN: 7}
	pkt := appendInit(nil, 40000, 81, init)
	want := "9c400051" + "00000000" // ports 40000 → 81, verification tag 0
	if got := hex.EncodeToString(pkt[:8]); got != want {
		t.Errorf("header %s, want %s", got, want)
	}
	if len(pkt) != sctpHeaderLen+chunkHeaderLen+initBodyLen || pkt[12] != chunkInit || binary.BigEndian.Uint16(pkt[14:]) != 20 {
		t.Errorf("INIT chunk % x", pkt[12:])
	}
	p, err := parseSCTP(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if p.SrcPort != 40000 || p.DstPort != 81 || p.VerificationTag != 0 || p.Chunk != chunkInit || p.Init != init {
		t.Errorf("parsed %+v", p)
	}

	ack := initChunk{InitiateTag: 0xa0b0c0d0, Window: labWindow, OutStreams: 1, InStreams: 1, InitialTSN: 9}
	reply := appendInitAck(nil, p, ack, []byte("cookie"))
	q, err := parseSCTP(reply)
	if err != nil {
		t.Fatal(err)
	}
	// §8.5: the INIT-ACK carries the INIT's initiate tag; ports swapped.
	if q.SrcPort != 81 || q.DstPort != 40000 || q.VerificationTag != init.InitiateTag || q.Chunk != chunkInitAck || q.Init != ack {
		t.Errorf("INIT-ACK parsed %+v", q)
	}
	// The State Cookie: type 7, length 4+6, padded to 12 bytes; the chunk
	// length leaves the padding out.
	if got := binary.BigEndian.Uint16(reply[14:]); got != chunkHeaderLen+initBodyLen+10 {
		t.Errorf("INIT-ACK chunk length %d", got)
	}
	if len(reply) != sctpHeaderLen+chunkHeaderLen+initBodyLen+12 || len(reply)%4 != 0 {
		t.Errorf("INIT-ACK is %d bytes", len(reply))
	}
	param := reply[sctpHeaderLen+chunkHeaderLen+initBodyLen:]
	if binary.BigEndian.Uint16(param) != paramStateCookie || string(param[4:10]) != "cookie" {
		t.Errorf("State Cookie % x", param)
	}

	// Every single-bit corruption is caught.
	for i := range pkt {
		for bit := 0; bit < 8; bit++ {
			c := bytes.Clone(pkt)
			c[i] ^= 1 << bit
			if _, err := parseSCTP(c); err == nil {
				t.Fatalf("bit %d of byte %d flipped: no error", bit, i)
			}
		}
	}
}

func TestParseSCTPRefuses(t *testing.T) {
	good := appendInit(nil, 1, 2, initChunk{InitiateTag: 1, OutStreams: 1, InStreams: 1})
	abort := bytes.Clone(good)
	abort[12] = 6 // ABORT
	sealSCTP(abort, 0)
	if _, err := parseSCTP(abort); !errors.Is(err, errNotSCTPInit) {
		t.Errorf("ABORT: %v", err)
	}
	zeroTag := appendInit(nil, 1, 2, initChunk{InitiateTag: 0, OutStreams: 1, InStreams: 1})
	if _, err := parseSCTP(zeroTag); err == nil {
		t.Error("INIT with initiate tag 0 accepted")
	}
	if _, err := parseSCTP(good[:15]); err == nil {
		t.Error("truncated packet accepted")
	}
}

func TestParseIPv4(t *testing.T) {
	payload := []byte{1, 2, 3}
	b := []byte{0x45, 0, 0, 23, 0, 0, 0, 0, 64, ipProtoSCTP, 0, 0, 198, 19, 1, 2, 198, 19, 2, 3}
	b = append(b, payload...)
	b = append(b, 9, 9) // trailing bytes beyond the total length are not payload
	src, dst, proto, got, err := parseIPv4(b)
	if err != nil || src != netip.MustParseAddr("198.19.1.2") || dst != netip.MustParseAddr("198.19.2.3") || proto != ipProtoSCTP || !bytes.Equal(got, payload) {
		t.Errorf("parseIPv4 = %v %v %d % x %v", src, dst, proto, got, err)
	}
	if _, _, _, _, err := parseIPv4(b[:10]); err == nil {
		t.Error("short packet accepted")
	}
}
