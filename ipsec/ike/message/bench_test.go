package message

import (
	"path/filepath"
	"testing"
)

// The IKE codec is not on the packet path; these show what a message
// costs, to keep an eye on allocations.

func BenchmarkParseIKESAInit(b *testing.B) {
	msg := readPcap(b, filepath.Join("testdata", "strongswan", "gcm.pcap"))[0].ike
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalEncrypted(b *testing.B) {
	m := &Message{Header: testHeader()}
	c := &fakeCipher{key: 1}
	inner := authInner()
	buf := make([]byte, 0, 1500)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.AppendEncrypted(buf[:0], c, inner); err != nil {
			b.Fatal(err)
		}
	}
}
