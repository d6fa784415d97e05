package esp

import "sync/atomic"

// window is the receiver's anti-replay window (RFC 4303 §3.4.3) over full
// 64-bit sequence numbers, with the ESN high-order bits inferred as in
// RFC 4303 Appendix A2.
//
// The bitmap is a ring of 64-bit blocks, as in the Linux kernel and in
// wireguard-go's replay filter (RFC 6479): moving the right edge clears
// whole blocks instead of shifting bits. The window covers the size
// numbers [top-size+1, top]; the ring has at least one block more than
// that, so a block still inside the window is never reused.
//
// One goroutine updates the window (update, from SA.Accept under its
// mutex) while any number of goroutines read it (check and infer, from
// SA.Open). Every word is an atomic, so readers never race; what a reader
// sees may be a little stale, which check tolerates (see there).
type window struct {
	size uint64 // W: numbers the window covers; 0 when anti-replay is off
	mask uint64 // ring blocks - 1
	ring []atomic.Uint64
	_    [cacheLinePad]byte
	top  atomic.Uint64 // T: highest sequence number accepted so far
}

// init sets the window up for size numbers; size < 0 turns anti-replay
// off (RFC 4303 §3.4.3 lets the receiver do so); the window then still
// tracks the highest number for ESN inference.
func (w *window) init(size int) {
	if size < 0 {
		return
	}
	w.size = uint64(size)
	blocks := uint64(1)
	for blocks < w.size/replayBlockBits+1 {
		blocks <<= 1
	}
	w.mask = blocks - 1
	w.ring = make([]atomic.Uint64, blocks)
	// Sequence number 0 is never sent: the first packet of an SA carries 1
	// (RFC 4303 §2.2, §3.3.3). Marking it seen rejects it like a replay.
	w.ring[0].Store(1)
}

// enabled reports whether anti-replay is on.
func (w *window) enabled() bool { return w.size != 0 }

// inferWindow is the W of RFC 4303 Appendix A2.1, which needs one even
// when anti-replay is off.
func (w *window) inferWindow() uint32 {
	if w.size == 0 {
		return DefaultReplayWindow
	}
	return uint32(w.size)
}

// infer returns the full sequence number of a packet that carries the
// low-order 32 bits lo, following RFC 4303 Appendix A2.1: the number is
// taken to lie in the window or above it. A wrong guess (more than 2^32
// lost packets, or a forgery) then fails the ICV, which covers the
// high-order bits (Appendix A2.2); we do not try the next subspace.
func (w *window) infer(lo uint32) uint64 {
	t := w.top.Load()
	tl, th := uint32(t), uint32(t>>32)
	bottom := tl - w.inferWindow() + 1 // wraps when the window spans two subspaces
	hi := th
	if tl >= w.inferWindow()-1 {
		// Case A: the window lies within one subspace.
		if lo < bottom {
			hi = th + 1
		}
	} else if lo >= bottom {
		// Case B: the window spans two subspaces and lo is in the lower one.
		hi = th - 1
	}
	return uint64(hi)<<32 | uint64(lo)
}

// check reports whether seq may be new: above the window, or inside it and
// not yet seen. It never changes the window.
//
// Read concurrently with update it can be stale, never wrong the unsafe
// way: a bit that is set for another number sharing seq's slot belongs to
// a number at least one ring length above seq, and then seq is below the
// window anyway; a block being cleared reads as unseen, and update decides.
func (w *window) check(seq uint64) bool {
	if w.size == 0 {
		return true
	}
	top := w.top.Load()
	if seq > top {
		return true
	}
	if top-seq >= w.size {
		return false
	}
	bit := uint64(1) << (seq % replayBlockBits)
	return w.ring[(seq/replayBlockBits)&w.mask].Load()&bit == 0
}

// update marks seq as received and reports true if it was new (RFC 4303
// §3.4.3: "the receiver's window is updated only if the integrity
// verification succeeds"; the caller does that first). One goroutine at a
// time.
func (w *window) update(seq uint64) bool {
	top := w.top.Load()
	if w.size == 0 {
		if seq > top {
			w.top.Store(seq)
		}
		return true
	}
	blk := seq / replayBlockBits
	if seq > top {
		// Advance the right edge: clear the blocks between the old top's
		// block and seq's block; at most the whole ring.
		cur := top / replayBlockBits
		diff := blk - cur
		if diff > w.mask+1 {
			diff = w.mask + 1
		}
		for i := cur + 1; i <= cur+diff; i++ {
			w.ring[i&w.mask].Store(0)
		}
		w.ring[blk&w.mask].Store(w.ring[blk&w.mask].Load() | 1<<(seq%replayBlockBits))
		w.top.Store(seq)
		return true
	}
	if top-seq >= w.size {
		return false
	}
	b := &w.ring[blk&w.mask]
	old := b.Load()
	bit := uint64(1) << (seq % replayBlockBits)
	if old&bit != 0 {
		return false
	}
	b.Store(old | bit)
	return true
}
