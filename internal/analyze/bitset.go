package analyze

import "math/bits"

// bitset is a fixed-size set of small integers (class IDs, namespace
// indexes, probe columns). policy has its own, unexported; this one is the
// few operations the analysis needs.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, words(n)) }
func words(n int) int           { return (n + 63) / 64 }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) clear(i int)    { b[i>>6] &^= 1 << (uint(i) & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }

func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// each yields the members in increasing order.
func (b bitset) each(yield func(int) bool) {
	for i, w := range b {
		for w != 0 {
			if !yield(i<<6 + bits.TrailingZeros64(w)) {
				return
			}
			w &= w - 1
		}
	}
}
