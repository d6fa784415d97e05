package datapath

import (
	"github.com/rampartnet/rampart/ipsec/esp"
)

// The outbound pipeline: TUN read → SPD lookup → seal (parallel) → UDP
// send in order. See doc.go.

type sendBatch struct {
	in    [][]byte // TUN read buffers; packet i is in[i][tunReadOffset:][:sizes[i]]
	sizes []int
	out   [][]byte // sealed packet i, or nil when dropped
	store [][]byte // backing of out; UDP GSO coalesces into these, so each is bufSize
	sa    []*esp.SA
	peer  []*peerState
	group [][]byte // one run of packets to one peer
	icmp  []byte
	fj    *forkJoin
}

func newSendBatch() *sendBatch {
	b := &sendBatch{
		in: make([][]byte, batchSize), sizes: make([]int, batchSize), out: make([][]byte, batchSize),
		store: make([][]byte, batchSize), sa: make([]*esp.SA, batchSize), peer: make([]*peerState, batchSize),
		group: make([][]byte, 0, batchSize), icmp: make([]byte, 1500), fj: newForkJoin(),
	}
	for i := range b.in {
		b.in[i] = make([]byte, bufSize)
		b.store[i] = make([]byte, 0, bufSize)
	}
	return b
}

// process seals packets [lo, hi); it runs on several cores at once, each
// on its own range.
func (b *sendBatch) process(lo, hi int) {
	for i := lo; i < hi; i++ {
		sa := b.sa[i]
		if sa == nil {
			continue
		}
		out, err := sa.Seal(b.store[i][:0], b.in[i][tunReadOffset:tunReadOffset+b.sizes[i]])
		if err != nil {
			b.sa[i] = nil
			b.peer[i].drops.add(dropSealFailed, 1)
			continue
		}
		b.out[i] = out
	}
}

func (d *Device) routineReadTUN() {
	b := newSendBatch()
	for {
		n, err := d.tun.Read(b.in, b.sizes, tunReadOffset)
		if n > 0 {
			d.send(b, n)
		}
		if err != nil {
			if d.isClosed(err) {
				return
			}
			// ErrTooManySegments and short reads lose one super-packet;
			// the device goes on.
			d.log.Debug("TUN read", "err", err)
		}
	}
}

func (d *Device) send(b *sendBatch, n int) {
	rt := d.state.Load()
	for i := 0; i < n; i++ {
		b.sa[i], b.peer[i], b.out[i] = nil, nil, nil
		pkt := b.in[i][tunReadOffset : tunReadOffset+b.sizes[i]]
		src, dst, ok := addrs(pkt)
		if !ok {
			d.drops.add(dropMalformed, 1)
			continue
		}
		p := rt.spd.lookup(dst)
		if p == nil || !covers(p.cfg.LocalSubnets, src) {
			d.drops.add(dropNoPolicy, 1)
			continue
		}
		if len(pkt) > p.innerMTU {
			if msg := tooBig(b.icmp, pkt, p.innerMTU); msg != nil {
				d.writeICMP(msg)
				p.drops.add(dropTooBig, 1)
				continue
			}
			// IPv4 without DF: the kernel would fragment the outer
			// packet; UDP does that for us.
		}
		e := d.sad.Current(p.cfg.Name)
		if e == nil || e.Out == nil {
			p.drops.add(dropNoSA, 1)
			continue
		}
		b.sa[i], b.peer[i] = e.Out, p
	}

	d.workers.run(b.fj, b, n)

	// Send runs of consecutive packets to the same peer, in read order.
	var cur *peerState
	flush := func() {
		if len(b.group) == 0 {
			return
		}
		if err := d.bind.Send(b.group, cur.ep); err != nil {
			cur.drops.add(dropSendFailed, uint64(len(b.group)))
			d.log.Debug("UDP send", "peer", cur.cfg.Name, "err", err)
		} else {
			cur.traffic.txPackets.Add(uint64(len(b.group)))
		}
		b.group = b.group[:0]
	}
	for i := 0; i < n; i++ {
		if b.out[i] == nil {
			continue
		}
		if b.peer[i] != cur {
			flush()
			cur = b.peer[i]
		}
		cur.traffic.txBytes.Add(uint64(b.sizes[i]))
		b.group = append(b.group, b.out[i])
	}
	flush()
}

// writeICMP hands an ICMP error back to the kernel through TUN.
func (d *Device) writeICMP(msg []byte) {
	buf := make([]byte, innerOffset+len(msg))
	copy(buf[innerOffset:], msg)
	if _, err := d.tun.Write([][]byte{buf}, innerOffset); err != nil {
		d.log.Debug("TUN write ICMP", "err", err)
	}
}
