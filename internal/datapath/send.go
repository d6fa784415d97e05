package datapath

import (
	"github.com/rampartnet/rampart/ipsec/esp"
)

// The outbound pipeline: TUN read → SPD lookup → seal (parallel) → UDP
// send in order. See doc.go.
//
// Two goroutines share it: routineReadTUN reads, looks up and seals a
// batch, then queues it for routineSend, which sends batches in the order
// they were read and returns them to the free list. While one batch is on
// its way out through the kernel (sendmmsg also runs the receiving side's
// softirq work when the peer is local), the next is read and sealed on
// another core. sendBatches bounds the batches in flight.
const sendBatches = 3

type sendBatch struct {
	in    [][]byte // TUN read slots; packet i is in[i][tunReadOffset:][:sizes[i]]
	sizes []int
	out   [][]byte // sealed packet i, or nil when dropped
	slots [][]byte // where packet i is sealed: slices of one arena (see newSendBatch)
	n     int      // packets in the batch
	sa    []*esp.SA
	peer  []*peerState
	group [][]byte // one run of packets to one peer
	icmp  []byte
	fj    *forkJoin
}

// newSendBatch sizes the slots for packets of up to mtu bytes. The sealed
// packets live in one arena, each slot's capacity running to the arena's
// end: UDP GSO (conn.StdNetBind.Send) appends the rest of a run to the
// first packet's buffer, and since every slot is at least as long as the
// packet in it, that append only ever moves packets down into room
// already sent, never over one not yet copied.
func newSendBatch(mtu int) *sendBatch {
	inSlot := tunReadOffset + mtu + maxESPOverhead
	outSlot := mtu + maxESPOverhead
	b := &sendBatch{
		in: make([][]byte, batchSize), sizes: make([]int, batchSize), out: make([][]byte, batchSize),
		slots: make([][]byte, batchSize), sa: make([]*esp.SA, batchSize), peer: make([]*peerState, batchSize),
		group: make([][]byte, 0, batchSize), icmp: make([]byte, 1500), fj: newForkJoin(),
	}
	inArena := make([]byte, batchSize*inSlot)
	outArena := make([]byte, batchSize*outSlot)
	for i := range b.in {
		// Capacity to the arena's end, as for slots: a packet sealed in
		// place is sent from here, and GSO appends to it.
		b.in[i] = inArena[i*inSlot : (i+1)*inSlot]
		b.slots[i] = outArena[i*outSlot : i*outSlot]
	}
	return b
}

// maxESPOverhead bounds what any transform adds: ESP header, a 16-byte IV,
// up to 15 bytes of padding, the trailer and a 16-byte ICV.
const maxESPOverhead = 8 + 16 + 15 + 2 + 16

// process seals packets [lo, hi); it runs on several cores at once, each
// on its own range.
func (b *sendBatch) process(lo, hi int) {
	for i := lo; i < hi; i++ {
		sa := b.sa[i]
		if sa == nil {
			continue
		}
		// With an AEAD the ESP header and IV (16 bytes) fit the room TUN
		// left in front of the packet: seal in place, no copy. AES-CBC's
		// longer IV needs the separate slot.
		dst := b.slots[i]
		if sa.HeaderLen() == tunReadOffset {
			dst = b.in[i][:0]
		}
		out, err := sa.Seal(dst, b.in[i][tunReadOffset:tunReadOffset+b.sizes[i]])
		if err != nil {
			b.sa[i] = nil
			b.peer[i].drops.add(dropSealFailed, 1)
			continue
		}
		b.out[i] = out
	}
}

func (d *Device) routineReadTUN() {
	for {
		var b *sendBatch
		select {
		case b = <-d.sendFree:
		case <-d.closing:
			return
		}
		n, err := d.tun.Read(b.in, b.sizes, tunReadOffset)
		if n > 0 {
			d.seal(b, n)
			d.sendQueue <- b
		} else {
			d.sendFree <- b
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

func (d *Device) routineSend() {
	for {
		select {
		case b := <-d.sendQueue:
			d.transmit(b)
			d.sendFree <- b
		case <-d.closing:
			return
		}
	}
}

// send seals and transmits a batch on the calling goroutine (tests and
// benchmarks; the device pipelines the two steps).
func (d *Device) send(b *sendBatch, n int) {
	d.seal(b, n)
	d.transmit(b)
}

// seal looks up and seals packets [0, n) of b.
func (d *Device) seal(b *sendBatch, n int) {
	b.n = n
	rt := d.state.Load()
	for i := 0; i < n; i++ {
		b.sa[i], b.peer[i], b.out[i] = nil, nil, nil
		pkt := b.in[i][tunReadOffset : tunReadOffset+b.sizes[i]]
		src, dst, ok := esp.InnerAddrs(pkt)
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
		if !e.AllowsOutbound(src, dst) {
			// Inside the configured subnets, outside what IKE negotiated:
			// the peer would drop it.
			p.drops.add(dropNoPolicy, 1)
			continue
		}
		b.sa[i], b.peer[i] = e.Out, p
	}
	d.workers.run(b.fj, b, n)
}

// transmit sends runs of consecutive packets to the same peer, in read
// order.
func (d *Device) transmit(b *sendBatch) {
	var cur *peerState
	var bytes uint64
	flush := func() {
		if len(b.group) == 0 {
			return
		}
		if err := d.bind.Send(b.group, cur.ep); err != nil {
			cur.drops.add(dropSendFailed, uint64(len(b.group)))
			d.log.Debug("UDP send", "peer", cur.cfg.Name, "err", err)
		} else {
			cur.traffic.txPackets.Add(uint64(len(b.group)))
			cur.traffic.txBytes.Add(bytes)
		}
		b.group, bytes = b.group[:0], 0
	}
	for i := 0; i < b.n; i++ {
		if b.out[i] == nil {
			continue
		}
		if b.peer[i] != cur {
			flush()
			cur = b.peer[i]
		}
		bytes += uint64(b.sizes[i])
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
