package esp

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestReplayVectors ports the anti-replay cases that wireguard-go took
// from the Linux kernel (replay/replay_test.go there), numbered as there.
// Two differences shift some numbers by one: the RFC 4303 window of W
// covers [top-W+1, top] (theirs covers one number more), and 0 is never a
// valid ESP sequence number. T_LIM is therefore W, not W+1. Their cases
// 25-34 test a message limit that ESP does not have; ours test the top of
// the 64-bit space instead.
func TestReplayVectors(t *testing.T) {
	for _, size := range []int{64, 1024, 4096} {
		W := uint64(size)
		tlim := W
		var w window
		w.init(size)
		n, label := 0, "cases"
		T := func(seq uint64, want bool) {
			t.Helper()
			n++
			if got := w.check(seq) && w.update(seq); got != want {
				t.Fatalf("window %d: %s %d: seq %d: got %t, want %t", size, label, n, seq, got, want)
			}
		}
		T(0, false) /*  1: 0 is never sent */
		T(1, true)  /*  2 */
		T(1, false) /*  3 */
		T(9, true)  /*  4 */
		T(8, true)  /*  5 */
		T(7, true)  /*  6 */
		T(7, false) /*  7 */
		T(tlim, true)
		T(tlim-1, true) /*  9 */
		T(tlim-1, false)
		T(tlim-2, true) /* 11 */
		T(2, true)
		T(2, false)      /* 13 */
		T(tlim+16, true) /* 14 */
		T(3, false)
		T(tlim+16, false) /* 16 */
		T(tlim*4, true)
		T(tlim*4-(tlim-1), true) /* 18 */
		T(10, false)
		T(tlim*4-tlim, false)     /* 20 */
		T(tlim*4-(tlim+1), false) /* 21 */
		T(tlim*4-(tlim-2), true)
		T(tlim*4+1-tlim, false) /* 23 */
		T(0, false)
		T(math.MaxUint64-1, true) /* 25 */
		T(math.MaxUint64, true)
		T(math.MaxUint64, false) /* 27 */
		T(math.MaxUint64-1, false)
		T(math.MaxUint64-2, true) /* 29 */
		T(math.MaxUint64-W, false)
		T(math.MaxUint64-W+1, true) /* 31 */
		T(0, false)

		bulk := func(name string, f func()) {
			w = window{}
			w.init(size)
			n, label = 0, name
			f()
		}
		bulk("bulk 1", func() {
			for i := uint64(2); i <= W; i++ {
				T(i, true)
			}
			T(1, true)
			T(1, false)
		})
		bulk("bulk 2", func() {
			for i := uint64(3); i <= W+1; i++ {
				T(i, true)
			}
			T(2, true)
			T(1, false)
		})
		bulk("bulk 3", func() {
			for i := W; i > 0; i-- {
				T(i, true)
			}
		})
		bulk("bulk 4", func() {
			for i := W + 1; i > 1; i-- {
				T(i, true)
			}
			T(1, false)
		})
		bulk("bulk 5", func() {
			for i := W; i > 0; i-- {
				T(i, true)
			}
			T(W+1, true)
			T(1, false)
		})
		bulk("bulk 6", func() {
			for i := W - 1; i > 1; i-- {
				T(i, true)
			}
			T(1, true)
			T(W, true)
		})
	}
}

// TestReplayDifferential drives the window and a slow reference model (a
// set and the highest number) with the same random sequence numbers.
func TestReplayDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{64, 128, 1024} {
		var w window
		w.init(size)
		seen := map[uint64]bool{0: true}
		var top uint64
		base := uint64(0)
		for i := range 200000 {
			// Mostly near the top, sometimes far ahead or far behind.
			var seq uint64
			switch r := rng.IntN(100); {
			case r < 80:
				seq = top + uint64(rng.IntN(2*size)) - uint64(min(int(top), size+size/2))
			case r < 95:
				base += uint64(rng.IntN(3 * size))
				seq = base
			default:
				seq = uint64(rng.IntN(int(top) + 1))
			}
			want := !seen[seq] && (seq > top || top-seq < uint64(size))
			check := w.check(seq)
			got := check && w.update(seq)
			if got != want {
				t.Fatalf("window %d step %d: seq %d top %d: got %t want %t", size, i, seq, top, got, want)
			}
			if want {
				seen[seq] = true
				top = max(top, seq)
			}
			base = max(base, top)
		}
	}
}

// TestESNInference covers RFC 4303 Appendix A2.1, both cases, and the
// boundaries of each, with W = 64.
func TestESNInference(t *testing.T) {
	const W = 64
	cases := []struct {
		name string
		top  uint64 // T, highest number accepted
		lo   uint32 // Seql received
		want uint64
	}{
		// Case A: the window lies in one subspace (Tl >= W-1).
		{"A: in window", 5<<32 | 1000, 990, 5<<32 | 990},
		{"A: left edge", 5<<32 | 1000, 1000 - W + 1, 5<<32 | (1000 - W + 1)},
		{"A: below window means next subspace", 5<<32 | 1000, 1000 - W, 6<<32 | (1000 - W)},
		{"A: above top", 5<<32 | 1000, 0xfffffff0, 5<<32 | 0xfffffff0},
		{"A: Tl = W-1", 5<<32 | (W - 1), 0, 5 << 32},
		{"A: wrap to next subspace", 5<<32 | 0xffffffff, 3, 6<<32 | 3},
		// Case B: the window spans two subspaces (Tl < W-1).
		{"B: in upper part", 7<<32 | 10, 5, 7<<32 | 5},
		{"B: in lower part", 7<<32 | 10, 0xffffffff, 6<<32 | 0xffffffff},
		{"B: lower left edge", 7<<32 | 10, 1<<32 + 10 - W + 1, 6<<32 | (1<<32 + 10 - W + 1)},
		{"B: just below the lower part is above top", 7<<32 | 10, 1<<32 + 10 - W, 7<<32 | (1<<32 + 10 - W)},
		{"B: above top", 7<<32 | 10, 11, 7<<32 | 11},
		// Start of an SA: T = 0.
		{"start", 0, 1, 1},
		{"start high lo belongs to no real subspace", 0, 0xffffffff, 0xffffffff_ffffffff},
	}
	for _, c := range cases {
		var w window
		w.init(W)
		w.top.Store(c.top)
		if got := w.infer(c.lo); got != c.want {
			t.Errorf("%s: infer(%#x) with T=%#x = %#x, want %#x", c.name, c.lo, c.top, got, c.want)
		}
	}
}

func TestWindowRingSize(t *testing.T) {
	for _, c := range []struct{ size, blocks int }{{64, 2}, {128, 4}, {1024, 32}, {65536, 2048}} {
		var w window
		w.init(c.size)
		if len(w.ring) != c.blocks {
			t.Errorf("window %d: %d blocks, want %d", c.size, len(w.ring), c.blocks)
		}
	}
}
