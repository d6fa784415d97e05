package esp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSAs are fixed SAs that FuzzOpen opens with: one per algorithm, both
// modes, ESN on and off. Their keys are deterministic, so that the seed
// corpus in testdata/fuzz/FuzzOpen stays valid.
func fuzzSAs(t testing.TB) []*SA {
	var sas []*SA
	for i, c := range []Config{
		testConfig(AESGCM16, ModeTunnel, false),
		testConfig(ChaCha20Poly1305, ModeTransport, true),
		testConfig(AESCBCHMACSHA256, ModeTunnel, true),
		testConfig(AESCBCHMACSHA256, ModeTransport, false),
	} {
		c.SPI = 0x1000 + uint32(i)
		sa, err := NewSA(c)
		if err != nil {
			t.Fatal(err)
		}
		sas = append(sas, sa)
	}
	return sas
}

// fuzzSeeds are valid packets of the fuzz SAs and a few edge cases.
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{nil, {0xff}, make([]byte, 8), make([]byte, 40)}
	for _, sa := range fuzzSAs(t) {
		for _, ip := range [][]byte{
			ipPacket(v4a, v4b, 17, []byte("seed")),
			ipPacket(v6a, v6b, 6, make([]byte, 20)),
		} {
			if sa.mode == ModeTransport && ip[0]>>4 == 6 {
				continue // the fuzz target opens with IPv4 outer addresses
			}
			p, err := sa.Seal(nil, ip)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, p)
		}
		d, _ := sa.SealDummy(nil, 3)
		seeds = append(seeds, d)
	}
	return seeds
}

// FuzzOpen feeds arbitrary packets to Open (which must never panic and
// must return well-formed results), and then feeds the same octets as the
// plaintext of an authentic packet, so that the code after the ICV check
// (trailer, padding, inner packet, transport header) is fuzzed too.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	sas := fuzzSAs(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOpen(t, sas, data) })
}

func fuzzOpen(t *testing.T, sas []*SA, data []byte) {
	{
		for _, sa := range sas {
			ip, _, err := sa.Open(nil, data, v4a, v4b)
			checkFuzzResult(t, sa, ip, err)
			// In place, on a copy.
			buf := bytes.Clone(data)
			ip, _, err = sa.Open(buf[:0], buf, v4a, v4b)
			checkFuzzResult(t, sa, ip, err)

			// data as an authentic plaintext; grow it to the block size as a
			// sender's padding would.
			plain := bytes.Clone(data)
			if a := sa.tr.align; len(plain)%a != 0 || len(plain) < sa.tr.minCT {
				plain = append(make([]byte, a-len(plain)%a), plain...)
			}
			pkt := make([]byte, sa.HeaderLen()+len(plain)+icvLen)
			copy(pkt[sa.HeaderLen():], plain)
			sa.tr.protect(pkt, len(plain), 1, nil)
			ip, seq, err := sa.Open(nil, pkt, v4a, v4b)
			if err != nil && seq != 1 {
				t.Fatalf("authentic packet: seq %d with %v", seq, err)
			}
			checkFuzzResult(t, sa, ip, err)
			if err == nil && sa.mode == ModeTunnel && !bytes.HasPrefix(plain, ip) {
				t.Fatalf("tunnel: inner packet is not a prefix of the plaintext")
			}
		}
	}
}

func checkFuzzResult(t *testing.T, sa *SA, ip []byte, err error) {
	t.Helper()
	if err != nil {
		if ip != nil {
			t.Fatalf("%v with a packet", err)
		}
		return
	}
	src, dst, ok := InnerAddrs(ip)
	if !ok {
		t.Fatalf("Open returned a packet that does not parse: %x", ip)
	}
	if sa.mode == ModeTransport && (src != v4a || dst != v4b || ipv4Checksum(ip[:ipv4HeaderLen]) != 0) {
		t.Fatalf("transport header %x", ip[:ipv4HeaderLen])
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzOpen when
// ESP_WRITE_FUZZ_SEEDS=1; the files are committed.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ESP_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set ESP_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzOpen")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	udp := filepath.Join("testdata", "fuzz", "FuzzClassifyUDP")
	if err := os.MkdirAll(udp, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range [][]byte{KeepalivePacket, AppendNonESPMarker(make([]byte, 0, 32))[:4:4], append(make([]byte, 4), make([]byte, 28)...), {0, 0, 1, 0, 0, 0, 0, 1}} {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(udp, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
