package datapath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// Buffer layout. A packet read from TUN lands at tunReadOffset; an ESP
// packet is received at rxOffset so that, decrypted in place, its inner
// packet starts at innerOffset, where the TUN write wants it (after room
// for the virtio-net header that the TUN offloads prepend).
const (
	bufSize       = 1<<16 + 64 // a GSO super-packet, and room to coalesce into it
	tunReadOffset = 16
	innerOffset   = 32
	rxOffset      = innerOffset - 16 // 16 = ESP header (8) + AEAD IV (8)
	batchSize     = conn.IdealBatchSize
	ipv4UDPHeader = 20 + 8
	ipv6UDPHeader = 40 + 8
	tickInterval  = time.Second
	ikePort       = 500
)

// Options are the knobs that are not configuration.
type Options struct {
	Logger *slog.Logger
	// Workers is the number of cores that seal and open; 0: all of them.
	Workers int
}

// Device is one running endpoint.
type Device struct {
	cfg     *Config
	log     *slog.Logger
	tun     tun.Device
	tunName string
	tunMTU  int
	bind    conn.Bind
	recv    []conn.ReceiveFunc
	sad     *esp.Table
	state   atomic.Pointer[routing]
	drops   drops
	workers *workers
	ike     atomic.Pointer[IKEHandler]

	ikeD   *ike.Daemon  // nil when every peer is keyed by hand
	ike500 *net.UDPConn // IKE's own port, for peers that start there

	sendFree, sendQueue chan *sendBatch
	tunQueue            chan *recvBatch
	net                 *netState

	mu        sync.Mutex // orders Run's start against Close
	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
	started   time.Time
}

// routing is what the hot path reads: replaced whole, never changed.
type routing struct {
	spd   *spd
	peers map[string]*peerState
}

// peerState is a configured peer and its counters.
type peerState struct {
	cfg      Peer
	ep       conn.Endpoint
	innerMTU int // largest inner packet that fits the path MTU after ESP-in-UDP
	drops    drops
	traffic  traffic
}

// IKEHandler receives an IKE message that arrived on the ESP port, with the
// non-ESP marker removed (RFC 3948 §2.2). msg is the handler's to keep.
type IKEHandler func(msg []byte, remote netip.AddrPort, local netip.Addr)

// New creates the TUN device, opens the UDP socket, installs the SAs and
// routes. Close undoes all of it.
func New(cfg *Config, opts Options) (*Device, error) {
	return newDevice(cfg, opts, func(mtu int) (tun.Device, error) { return tun.CreateTUN(cfg.DeviceName, mtu) },
		conn.NewStdNetBind(), true)
}

// newDevice is New with the TUN device and the UDP bind given, so that
// tests can run two devices in memory (tun/tuntest, conn/bindtest) without
// root; withNetwork installs routes and rules.
func newDevice(cfg *Config, opts Options, makeTUN func(mtu int) (tun.Device, error), bind conn.Bind, withNetwork bool) (d *Device, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	d = &Device{cfg: cfg, log: log, closing: make(chan struct{}), started: time.Now(),
		sad: esp.NewTable(esp.TableOptions{})}
	// The early returns below return a nil *Device: undo through dev.
	dev := d
	defer func() {
		if err != nil {
			dev.teardown()
			dev.sad.Close()
		}
	}()

	peers := make([]*peerState, 0, len(cfg.Peers))
	byName := map[string]*peerState{}
	maxOverhead := 0
	for _, pc := range cfg.Peers {
		p := &peerState{cfg: pc}
		if pc.In != nil && pc.Out != nil {
			if err := d.sad.Add(esp.Pair{Peer: pc.Name, Remote: pc.Endpoint,
				LocalTS: pc.LocalSubnets, RemoteTS: pc.RemoteSubnets, In: *pc.In, Out: *pc.Out}); err != nil {
				return nil, fmt.Errorf("peer %s: %w", pc.Name, err)
			}
			zeroConfig(pc.In)
			zeroConfig(pc.Out)
		}
		overhead, err := espOverhead(d.sad, &pc)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", pc.Name, err)
		}
		pathMTU := cfg.UnderlayMTU
		if pc.MTU != 0 {
			pathMTU = pc.MTU
		}
		outer := ipv4UDPHeader
		if pc.Endpoint.Addr().Is6() {
			outer = ipv6UDPHeader
		}
		p.innerMTU = pathMTU - outer - overhead
		// A peer behind a narrower path does not shrink the device for
		// the others: its big packets get ICMP from the datapath.
		maxOverhead = max(maxOverhead, outer+overhead)
		peers = append(peers, p)
		byName[pc.Name] = p
	}
	d.tunMTU = cfg.MTU
	if d.tunMTU == 0 {
		d.tunMTU = cfg.UnderlayMTU - maxOverhead
	}

	d.tun, err = makeTUN(d.tunMTU)
	if err != nil {
		return nil, fmt.Errorf("create TUN device %s: %w", cfg.DeviceName, err)
	}
	if d.tunName, err = d.tun.Name(); err != nil {
		return nil, err
	}

	d.bind = bind
	d.recv, _, err = d.bind.Open(cfg.Port)
	if err != nil {
		return nil, fmt.Errorf("listen on UDP port %d: %w", cfg.Port, err)
	}
	for _, p := range peers {
		if p.ep, err = d.bind.ParseEndpoint(p.cfg.Endpoint.String()); err != nil {
			return nil, fmt.Errorf("peer %s: %w", p.cfg.Name, err)
		}
	}
	d.state.Store(&routing{spd: newSPD(peers), peers: byName})
	if err := d.setupIKE(peers); err != nil {
		return nil, err
	}

	if withNetwork {
		if d.net, err = setupNetwork(d.tunName, cfg, peers); err != nil {
			return nil, err
		}
		if d.net.mark != 0 {
			if err := d.bind.SetMark(d.net.mark); err != nil {
				return nil, fmt.Errorf("mark the UDP socket: %w", err)
			}
			if err := setMark(d.ike500, d.net.mark); err != nil {
				return nil, fmt.Errorf("mark the IKE socket: %w", err)
			}
		}
	}
	d.workers = newWorkers(opts.Workers)
	d.sendFree, d.sendQueue = make(chan *sendBatch, sendBatches), make(chan *sendBatch, sendBatches)
	d.tunQueue = make(chan *recvBatch, recvBatches*len(d.recv))
	for i := 0; i < sendBatches; i++ {
		d.sendFree <- newSendBatch(d.tunMTU)
	}
	return d, nil
}

// setupIKE starts the IKE daemon for the peers keyed by IKE: it installs
// CHILD_SAs in the device's SA database and speaks on the ESP port.
func (d *Device) setupIKE(peers []*peerState) error {
	for _, p := range peers {
		k := p.cfg.IKE
		if k == nil {
			continue
		}
		if d.ikeD == nil {
			d.ikeD = ike.New(d.sad, d.SendIKE, ike.Options{Logger: d.log,
				Retransmit: d.cfg.IKE.Retransmit, Tries: d.cfg.IKE.Tries})
			d.SetIKEHandler(func(msg []byte, remote netip.AddrPort, _ netip.Addr) { d.ikeD.Handle(msg, remote) })
			// Peers such as strongSwan start on UDP 500 and move to 4500.
			c, err := net.ListenUDP("udp", &net.UDPAddr{Port: ikePort})
			if err != nil {
				return fmt.Errorf("IKE: listen on UDP %d: %w", ikePort, err)
			}
			d.ike500 = c
		}
		err := d.ikeD.AddPeer(ike.Config{Name: p.cfg.Name, Remote: p.cfg.Endpoint, LocalID: k.LocalID, RemoteID: k.RemoteID,
			PSK: k.PSK, Certs: k.Certs, Key: k.Key, CAs: k.CAs, IKEProposals: k.IKEProposals, ESPProposals: k.ESPProposals,
			LocalTS: p.cfg.LocalSubnets, RemoteTS: p.cfg.RemoteSubnets, Transport: p.cfg.Mode == esp.ModeTransport,
			RekeyTime: k.RekeyTime, ChildRekeyTime: k.ChildRekeyTime, DPDInterval: k.DPDInterval, Keep: k.Initiate, StrictTS: k.StrictTS,
			ReplayWindow: k.ReplayWindow})
		clear(k.PSK)
		if err != nil {
			return fmt.Errorf("peer %s: %w", p.cfg.Name, err)
		}
	}
	return nil
}

// espOverhead is the most the peer's outbound SA adds to an inner packet.
func espOverhead(t *esp.Table, pc *Peer) (int, error) {
	if e := t.Current(pc.Name); e != nil && e.Out != nil {
		return e.Out.Overhead(), nil
	}
	if pc.IKE == nil {
		return maxESPOverhead, nil
	}
	// Keyed by IKE: the largest overhead of the transforms our proposals
	// allow, so that whatever IKE negotiates fits the path.
	proposals := pc.IKE.ESPProposals
	if len(proposals) == 0 {
		proposals = ikecrypto.DefaultESPProposals()
	}
	return ike.MaxESPOverhead(proposals)
}

// Run moves packets until ctx ends or Close is called.
func (d *Device) Run(ctx context.Context) error {
	// The goroutines are added under mu, so that a Close that runs first
	// or concurrently either sees them in wg or makes Run return.
	d.mu.Lock()
	select {
	case <-d.closing:
		d.mu.Unlock()
		return nil
	default:
	}
	for _, fn := range d.recv {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.routineReceive(fn)
		}()
	}
	if d.ike500 != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.routineIKE500()
		}()
	}
	d.wg.Add(3)
	go func() {
		defer d.wg.Done()
		d.routineReadTUN()
	}()
	go func() {
		defer d.wg.Done()
		d.routineWriteTUN()
	}()
	go func() {
		defer d.wg.Done()
		d.routineSend()
	}()
	d.mu.Unlock()
	if d.ikeD != nil {
		for _, pc := range d.cfg.Peers {
			if pc.IKE != nil && pc.IKE.Initiate {
				if err := d.ikeD.Initiate(pc.Name); err != nil {
					d.log.Error("IKE initiate", "peer", pc.Name, "err", err)
				}
			}
		}
	}
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.Close()
			return nil
		case <-d.closing:
			return nil
		case now := <-tick.C:
			d.sad.Tick(now)
			if d.ikeD != nil {
				d.ikeD.Tick(now)
			}
		case ev := <-d.sad.Events():
			if d.ikeD != nil {
				d.ikeD.Lifetime(ev)
			} else {
				d.logEvent(ev)
			}
		}
	}
}

func (d *Device) logEvent(ev esp.Event) {
	switch ev.Kind {
	case esp.EventSoftExpire:
		d.log.Warn("SA reached its soft lifetime; manually keyed SAs are not renewed", "peer", ev.Peer, "spi", fmt.Sprintf("%#x", ev.InSPI))
	case esp.EventHardExpire:
		d.log.Error("SA reached its hard lifetime and was deleted; traffic to the peer is dropped", "peer", ev.Peer, "spi", fmt.Sprintf("%#x", ev.InSPI))
	}
}

// Close stops the device and removes what New installed.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		if d.ikeD != nil {
			// Tell the peers while the sockets still work.
			d.ikeD.Close(time.Second)
		}
		d.mu.Lock()
		close(d.closing)
		d.mu.Unlock()
		d.teardown()
		d.wg.Wait()
		if d.workers != nil {
			d.workers.close()
		}
		d.sad.Close()
	})
	return nil
}

// routineIKE500 hands IKE messages from UDP 500 to the daemon.
func (d *Device) routineIKE500() {
	buf := make([]byte, 65536)
	for {
		n, from, err := d.ike500.ReadFromUDPAddrPort(buf)
		if err != nil {
			if d.isClosed(err) {
				return
			}
			continue
		}
		d.ikeD.Handle(append([]byte(nil), buf[:n]...), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	}
}

func (d *Device) teardown() {
	if d.ike500 != nil {
		d.ike500.Close()
	}
	if d.net != nil {
		d.net.remove()
	}
	if d.bind != nil {
		d.bind.Close()
	}
	if d.tun != nil {
		d.tun.Close()
	}
}

// SADB is the device's SA database: ipsec/ike keys the peers through it.
func (d *Device) SADB() esp.SADB { return d.sad }

// SetIKEHandler registers the IKE daemon for messages arriving on the ESP
// port.
func (d *Device) SetIKEHandler(h IKEHandler) { d.ike.Store(&h) }

// SendIKE sends an IKE message to remote on the ESP port, behind the
// non-ESP marker.
func (d *Device) SendIKE(msg []byte, remote netip.AddrPort) error {
	if remote.Port() == ikePort && d.ike500 != nil {
		// An answer to a peer that started on UDP 500 (RFC 7296 §2.23: the
		// initiator moves to 4500 after IKE_SA_INIT when NAT is detected).
		_, err := d.ike500.WriteToUDPAddrPort(msg, remote)
		return err
	}
	ep, err := d.bind.ParseEndpoint(remote.String())
	if err != nil {
		return err
	}
	b := make([]byte, esp.NonESPMarkerLen+len(msg))
	copy(b[esp.NonESPMarkerLen:], msg)
	return d.bind.Send([][]byte{b}, ep)
}

// SendKeepalive sends a NAT keepalive (RFC 3948 §2.3) to a peer.
func (d *Device) SendKeepalive(peer string) error {
	p := d.state.Load().peers[peer]
	if p == nil {
		return fmt.Errorf("no peer %q", peer)
	}
	return d.bind.Send([][]byte{esp.KeepalivePacket}, p.ep)
}

// TUNName is the name of the device's TUN interface.
func (d *Device) TUNName() string { return d.tunName }

// isClosed reports whether err means the device is shutting down.
func (d *Device) isClosed(err error) bool {
	select {
	case <-d.closing:
		return true
	default:
	}
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}
