package datapath

import (
	"errors"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/rampartnet/rampart/ipsec/esp"
)

// The inbound pipeline: UDP receive → SAD lookup → open (parallel) →
// replay check and selectors (sequential, in order) → TUN write. See doc.go.

type recvBatch struct {
	store [][]byte // bufSize each; datagram i is received at store[i][rxOffset:]
	bufs  [][]byte // store[i][rxOffset:], as the bind wants them
	sizes []int
	eps   []conn.Endpoint
	sa    []*esp.SA
	entry []*esp.Entry // the pair sa belongs to: its negotiated selectors
	peer  []*peerState
	inner [][]byte // the opened inner packet, anywhere in store[i]
	seq   []uint64
	err   []error
	tun   [][]byte // packets to write, each store[i][:innerOffset+len]
	local netip.Addr
	fj    *forkJoin
	free  chan *recvBatch // where the batch goes back once written
}

func newRecvBatch(local netip.Addr) *recvBatch {
	b := &recvBatch{
		store: make([][]byte, batchSize), bufs: make([][]byte, batchSize), sizes: make([]int, batchSize),
		eps: make([]conn.Endpoint, batchSize), sa: make([]*esp.SA, batchSize), entry: make([]*esp.Entry, batchSize), peer: make([]*peerState, batchSize),
		inner: make([][]byte, batchSize), seq: make([]uint64, batchSize), err: make([]error, batchSize),
		tun: make([][]byte, 0, batchSize), local: local, fj: newForkJoin(),
	}
	for i := range b.store {
		b.store[i] = make([]byte, bufSize)
		b.bufs[i] = b.store[i][rxOffset:]
	}
	return b
}

// process opens packets [lo, hi) on one core: ICV check and decryption in
// place, no replay-window update (that is sequential, after).
func (b *recvBatch) process(lo, hi int) {
	for i := lo; i < hi; i++ {
		sa := b.sa[i]
		if sa == nil {
			continue
		}
		local := b.eps[i].SrcIP()
		if !local.IsValid() {
			local = b.local
		}
		// Tunnel mode decrypts in place: the inner packet lands at
		// innerOffset. Transport mode rebuilds an IP header in front of the
		// payload, so it writes to the free second half of the buffer
		// (datagrams are split from GRO batches, never near bufSize/2).
		dst := b.store[i][innerOffset:innerOffset]
		if sa.Mode() == esp.ModeTransport {
			dst = b.store[i][bufSize/2 : bufSize/2]
		}
		b.inner[i], b.seq[i], b.err[i] = sa.Open(dst, b.bufs[i][:b.sizes[i]], b.eps[i].DstIP().Unmap(), local.Unmap())
	}
}

// recvBatches is the number of batches each socket's receive routine
// cycles through: while routineWriteTUN writes one to TUN (the write also
// runs the kernel's forwarding to the destination), the next is received
// and opened.
const recvBatches = 2

func (d *Device) routineReceive(recv conn.ReceiveFunc) {
	free := make(chan *recvBatch, recvBatches)
	for i := 0; i < recvBatches; i++ {
		b := newRecvBatch(d.cfg.LocalAddr)
		b.free = free
		free <- b
	}
	for {
		var b *recvBatch
		select {
		case b = <-free:
		case <-d.closing:
			return
		}
		n, err := recv(b.bufs, b.sizes, b.eps)
		if err != nil {
			free <- b
			if d.isClosed(err) {
				return
			}
			d.log.Debug("UDP receive", "err", err)
			continue
		}
		d.decapsulate(b, n)
		if len(b.tun) == 0 {
			free <- b
			continue
		}
		select {
		case d.tunQueue <- b:
		case <-d.closing:
			return
		}
	}
}

// routineWriteTUN writes the opened batches of every socket to TUN, each
// socket's in the order received.
func (d *Device) routineWriteTUN() {
	for {
		select {
		case b := <-d.tunQueue:
			d.deliver(b)
			b.free <- b
		case <-d.closing:
			return
		}
	}
}

// receive opens and delivers a batch on the calling goroutine (tests and
// benchmarks; the device pipelines the two steps).
func (d *Device) receive(b *recvBatch, n int) {
	d.decapsulate(b, n)
	d.deliver(b)
}

// decapsulate classifies, opens and checks packets [0, n) of b, leaving
// the ones to deliver in b.tun.
func (d *Device) decapsulate(b *recvBatch, n int) {
	rt := d.state.Load()
	for i := 0; i < n; i++ {
		b.sa[i], b.entry[i], b.peer[i], b.err[i], b.inner[i] = nil, nil, nil, nil, nil
		pkt := b.bufs[i][:b.sizes[i]]
		if len(pkt) == 0 {
			continue
		}
		switch esp.ClassifyUDP(pkt) {
		case esp.UDPKeepalive:
			continue
		case esp.UDPIKE:
			d.handleIKE(pkt[esp.NonESPMarkerLen:], b.eps[i])
			continue
		case esp.UDPESP:
		default:
			d.drops.add(dropMalformed, 1)
			continue
		}
		spi, _ := esp.PeekSPI(pkt)
		e := d.sad.InboundEntry(spi)
		if e == nil || e.In == nil {
			d.drops.add(dropUnknownSPI, 1)
			continue
		}
		p := rt.peers[e.Pair.Peer]
		if p == nil {
			d.drops.add(dropUnknownSPI, 1)
			continue
		}
		b.sa[i], b.entry[i], b.peer[i] = e.In, e, p
	}

	d.workers.run(b.fj, b, n)

	b.tun = b.tun[:0]
	for i := 0; i < n; i++ {
		sa, p := b.sa[i], b.peer[i]
		if sa == nil {
			continue
		}
		if err := b.err[i]; err != nil {
			p.drops.add(openDropReason(err), 1)
			if errors.Is(err, esp.ErrDummy) {
				// A dummy packet verified: it moves the window like any
				// other (RFC 4303 §2.6), then is discarded.
				_ = sa.Accept(b.seq[i], 0)
			}
			continue
		}
		ip := b.inner[i]
		// RFC 4303 §3.4.3: the window is checked and updated only now that
		// the ICV verified, in arrival order.
		if err := sa.Accept(b.seq[i], len(ip)); err != nil {
			p.drops.add(openDropReason(err), 1)
			continue
		}
		src, dst, ok := esp.InnerAddrs(ip)
		if !ok {
			p.drops.add(dropMalformed, 1)
			continue
		}
		// The SA's selectors, as negotiated (IKE may have narrowed the
		// configured subnets), not the peer's configuration.
		if !b.entry[i].AllowsInbound(src, dst) {
			p.drops.add(dropSelector, 1)
			continue
		}
		if &ip[0] != &b.store[i][innerOffset] {
			copy(b.store[i][innerOffset:], ip)
		}
		p.traffic.rxPackets.Add(1)
		p.traffic.rxBytes.Add(uint64(len(ip)))
		b.tun = append(b.tun, b.store[i][:innerOffset+len(ip)])
	}
}

// deliver writes the batch's opened packets to TUN.
func (d *Device) deliver(b *recvBatch) {
	if len(b.tun) == 0 {
		return
	}
	if _, err := d.tun.Write(b.tun, innerOffset); err != nil {
		d.drops.add(dropWriteFailed, 1)
		d.log.Debug("TUN write", "err", err)
	}
}

func openDropReason(err error) dropReason {
	switch {
	case errors.Is(err, esp.ErrAuth):
		return dropAuth
	case errors.Is(err, esp.ErrReplay):
		return dropReplay
	case errors.Is(err, esp.ErrDummy):
		return dropDummy
	case errors.Is(err, esp.ErrShort), errors.Is(err, esp.ErrMalformed):
		return dropMalformed
	}
	return dropOpenFailed
}

func (d *Device) handleIKE(msg []byte, ep conn.Endpoint) {
	h := d.ike.Load()
	if h == nil {
		d.drops.add(dropIKENoHandler, 1)
		return
	}
	remote := netip.AddrPortFrom(ep.DstIP().Unmap(), 0)
	if sep, ok := ep.(*conn.StdNetEndpoint); ok {
		remote = netip.AddrPortFrom(sep.DstIP().Unmap(), sep.Port())
	}
	local := ep.SrcIP()
	if !local.IsValid() {
		local = d.cfg.LocalAddr
	}
	(*h)(append([]byte(nil), msg...), remote, local.Unmap())
}
