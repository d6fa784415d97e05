package esp

import (
	"fmt"
	"testing"
)

var benchSizes = []int{64, 1400, 8900}

// TestZeroAllocs holds Seal, Open and Accept to their budget: no
// allocation per packet for any algorithm, once the pools are warm.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, alg := range algorithms {
		for _, mode := range []Mode{ModeTunnel, ModeTransport} {
			for _, esn := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/esn=%t", alg, mode, esn), func(t *testing.T) {
					out, in := testPair(t, testConfig(alg, mode, esn))
					ip := testIPv4(t, 1400)
					dst := make([]byte, 0, len(ip)+out.Overhead())
					if a := testing.AllocsPerRun(1000, func() {
						if _, err := out.Seal(dst, ip); err != nil {
							t.Fatal(err)
						}
					}); a != 0 {
						t.Errorf("Seal: %v allocs", a)
					}
					pkt, _ := out.Seal(nil, ip)
					buf := make([]byte, 0, len(pkt)+ipv6HeaderLen)
					if a := testing.AllocsPerRun(1000, func() {
						if _, _, err := in.Open(buf, pkt, v4a, v4b); err != nil {
							t.Fatal(err)
						}
					}); a != 0 {
						t.Errorf("Open: %v allocs", a)
					}
					// The error paths allocate nothing either.
					bad := append([]byte(nil), pkt...)
					bad[len(bad)-1] ^= 1
					if a := testing.AllocsPerRun(1000, func() { _, _, _ = in.Open(buf, bad, v4a, v4b) }); a != 0 {
						t.Errorf("Open (bad ICV): %v allocs", a)
					}
					seq := uint64(0)
					if a := testing.AllocsPerRun(1000, func() {
						seq++
						if err := in.Accept(seq, 1400); err != nil {
							t.Fatal(err)
						}
					}); a != 0 {
						t.Errorf("Accept: %v allocs", a)
					}
				})
			}
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, alg := range algorithms {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", alg, n), func(b *testing.B) {
				c := testConfig(alg, ModeTunnel, false)
				sa, err := NewSA(c)
				if err != nil {
					b.Fatal(err)
				}
				ip := testIPv4(b, n)
				dst := make([]byte, 0, n+sa.Overhead())
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := sa.Seal(dst, ip); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, alg := range algorithms {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", alg, n), func(b *testing.B) {
				out, in := testPair(b, testConfig(alg, ModeTunnel, false))
				pkt, _ := out.Seal(nil, testIPv4(b, n))
				dst := make([]byte, 0, len(pkt))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := in.Open(dst, pkt, v4a, v4b); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpenParallel opens one SA's packets on every core, as a
// datapath does before the sequential Accept.
func BenchmarkOpenParallel(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(fmt.Sprintf("%s/1400", alg), func(b *testing.B) {
			out, in := testPair(b, testConfig(alg, ModeTunnel, false))
			pkt, _ := out.Seal(nil, testIPv4(b, 1400))
			b.SetBytes(1400)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				dst := make([]byte, 0, len(pkt))
				for pb.Next() {
					if _, _, err := in.Open(dst, pkt, v4a, v4b); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSealParallel seals on every core through one SA: the shared
// sequence number is the only contended write.
func BenchmarkSealParallel(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(fmt.Sprintf("%s/1400", alg), func(b *testing.B) {
			sa, _ := NewSA(testConfig(alg, ModeTunnel, true))
			ip := testIPv4(b, 1400)
			b.SetBytes(1400)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				dst := make([]byte, 0, len(ip)+sa.Overhead())
				for pb.Next() {
					if _, err := sa.Seal(dst, ip); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkAccept(b *testing.B) {
	_, in := testPair(b, testConfig(AESGCM16, ModeTunnel, false))
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		if seq > 1<<32-1 {
			b.Fatal("out of sequence numbers")
		}
		// Slight reordering, as after parallel decryption.
		s := seq ^ 1
		if s == 0 {
			s = seq
		}
		_ = in.Accept(s, 1400)
	}
}
