package esp

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// guardShards is the number of in-flight counters of a guard. More shards
// mean fewer cores writing the same cache line; each costs a cache line.
const guardShards = 8

// guard lets Zero wipe an SA's keys only once no Seal or Open is using
// them, without making the cores that run Seal and Open write one shared
// cache line per packet (as sync.RWMutex.RLock would): each call counts
// itself in one of several padded counters, picked at random with the
// runtime's per-thread generator.
//
// enter increments a counter, then checks the deleted flag; close sets
// the flag, then waits for every counter to drop to zero. Go's atomics are
// sequentially consistent, so either the caller sees the flag and backs
// out, or close sees the caller's increment and waits for it.
type guard struct {
	shards [guardShards]struct {
		n atomic.Int64
		_ [cacheLinePad - 8]byte
	}
	deleted atomic.Bool
	closeMu sync.Mutex
}

// enter registers a caller; it returns nil once the guard is closed.
func (g *guard) enter() *atomic.Int64 {
	n := &g.shards[rand.Uint32()%guardShards].n
	n.Add(1)
	if g.deleted.Load() {
		n.Add(-1)
		return nil
	}
	return n
}

// exit ends a call registered by enter.
func (g *guard) exit(n *atomic.Int64) { n.Add(-1) }

// close shuts the guard and waits for the calls inside to leave, then
// runs f (the wipe) once, whoever calls close.
func (g *guard) close(f func()) {
	g.closeMu.Lock()
	defer g.closeMu.Unlock()
	if g.deleted.Swap(true) {
		return
	}
	for i := range g.shards {
		for g.shards[i].n.Load() != 0 {
			runtime.Gosched()
		}
	}
	f()
}

// closed reports whether close was called.
func (g *guard) closed() bool { return g.deleted.Load() }
