package datapath

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// workers runs the crypto of a batch on every core, helper-first: the
// goroutine that owns the batch splits it into chunks and starts on them
// at once, while it wakes idle helpers that claim the chunks it has not
// reached. When the other cores are busy (two endpoints and iperf on one
// small machine) the owner simply does the whole batch itself and pays one
// non-blocking channel send, instead of waiting for a helper to be
// scheduled; when they are idle, the batch is split across all of them.
// The order of packets is kept because each chunk writes only to its own
// slots of the batch; the owner does the ordered work (replay window,
// sending) after run returns.
type workers struct {
	n    int
	jobs chan job
	wg   sync.WaitGroup
}

// chunker is a batch that can process packets [lo, hi).
type chunker interface {
	process(lo, hi int)
}

// chunkSize is the number of packets a helper claims at a time: big enough
// that claiming costs little next to sealing 8 packets, small enough that
// a 45-packet batch (one 64 KiB TSO segment) splits.
const chunkSize = 8

// forkJoin is the shared state of one batch owner's batches, reused.
type forkJoin struct {
	// claim is gen<<32 | next unclaimed chunk: a helper holding a stale
	// gen can never claim a chunk of a later batch.
	claim  atomic.Uint64
	done   atomic.Int64
	helped atomic.Int64  // chunks of the current batch done by helpers
	fin    chan struct{} // the helper that finishes the last chunk signals
	gen    uint32
	// Waking a helper costs a futex call and a context switch. When the
	// helpers did none of the last batch's chunks (the other cores are
	// busy), waking them is pure cost: back off, doubling the number of
	// batches done alone up to maxBackoff, and try again after that.
	backoff, skip int
}

const maxBackoff = 64

type job struct {
	fj     *forkJoin
	b      chunker
	gen    uint32
	n      int
	chunks int
	owner  bool
}

func newForkJoin() *forkJoin { return &forkJoin{fin: make(chan struct{}, 1)} }

func newWorkers(n int) *workers {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	w := &workers{n: n, jobs: make(chan job, n)}
	for i := 0; i < n-1; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for j := range w.jobs {
				j.work()
			}
		}()
	}
	return w
}

// run processes [0, n) of b and returns when every packet is done.
func (w *workers) run(fj *forkJoin, b chunker, n int) {
	chunks := (n + chunkSize - 1) / chunkSize
	if w.n == 1 || chunks <= 1 {
		b.process(0, n)
		return
	}
	fj.gen++
	select { // a signal left by the previous batch
	case <-fj.fin:
	default:
	}
	if fj.skip > 0 {
		fj.skip--
		b.process(0, n)
		return
	}
	fj.done.Store(0)
	fj.helped.Store(0)
	fj.claim.Store(uint64(fj.gen) << 32)
	j := job{fj: fj, b: b, gen: fj.gen, n: n, chunks: chunks}
	for i := 0; i < min(w.n-1, chunks-1); i++ {
		select {
		case w.jobs <- j:
		default: // every helper is already woken
		}
	}
	j.owner = true
	j.work()
	for fj.done.Load() < int64(chunks) {
		<-fj.fin
	}
	if fj.helped.Load() == 0 {
		fj.backoff = min(2*fj.backoff+1, maxBackoff)
		fj.skip = fj.backoff
	} else {
		fj.backoff = 0
	}
}

// work claims and processes chunks of the job's batch until none is left.
func (j job) work() {
	fj := j.fj
	for {
		c := fj.claim.Load()
		next := int(uint32(c))
		if uint32(c>>32) != j.gen || next >= j.chunks {
			return
		}
		if !fj.claim.CompareAndSwap(c, c+1) {
			continue
		}
		lo := next * chunkSize
		j.b.process(lo, min(lo+chunkSize, j.n))
		if !j.owner {
			fj.helped.Add(1)
		}
		if fj.done.Add(1) == int64(j.chunks) {
			select {
			case fj.fin <- struct{}{}:
			default:
			}
		}
	}
}

func (w *workers) close() {
	close(w.jobs)
	w.wg.Wait()
}
