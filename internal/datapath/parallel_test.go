package datapath

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// countChunker records how often each packet was processed.
type countChunker struct {
	seen []atomic.Int32
	spin time.Duration
}

func (c *countChunker) process(lo, hi int) {
	for i := lo; i < hi; i++ {
		c.seen[i].Add(1)
	}
	if c.spin > 0 {
		for end := time.Now().Add(c.spin); time.Now().Before(end); {
		}
	}
}

// TestWorkersExactlyOnce: every packet of every batch is processed exactly
// once, whatever the batch size, the number of workers and the backoff.
func TestWorkersExactlyOnce(t *testing.T) {
	for _, nw := range []int{1, 2, 4} {
		w := newWorkers(nw)
		fj := newForkJoin()
		c := &countChunker{seen: make([]atomic.Int32, batchSize)}
		for round := 0; round < 2000; round++ {
			n := 1 + round%batchSize
			for i := 0; i < n; i++ {
				c.seen[i].Store(0)
			}
			w.run(fj, c, n)
			for i := 0; i < n; i++ {
				if got := c.seen[i].Load(); got != 1 {
					t.Fatalf("workers %d, batch of %d: packet %d processed %d times", nw, n, i, got)
				}
			}
		}
		w.close()
	}
}

// TestWorkersHelp: with idle cores, helpers take part of the batches.
func TestWorkersHelp(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one core")
	}
	w := newWorkers(2)
	defer w.close()
	fj := newForkJoin()
	c := &countChunker{seen: make([]atomic.Int32, batchSize), spin: 20 * time.Microsecond}
	var helped int64
	for round := 0; round < 500 && helped == 0; round++ {
		w.run(fj, c, batchSize)
		helped += fj.helped.Load()
	}
	if helped == 0 {
		t.Error("no helper processed a chunk in 500 batches of 16 chunks")
	}
}
