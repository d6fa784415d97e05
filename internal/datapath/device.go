package datapath

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
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
	// OnIKE, if set, is told of each IKE-keyed peer's negotiations
	// (ike.Options.OnEstablished): err nil when a CHILD_SA is installed,
	// the failure otherwise. Called without the device's locks held.
	OnIKE func(peer string, err error)
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

	// ikeD keys the peers that IKE keys. It is there from the start,
	// without peers or sockets, so that such a peer may come with
	// SetPeers; ike500 is IKE's own port, for peers that start there,
	// opened with the first IKE-keyed peer on a real network.
	ikeD   *ike.Daemon
	ike500 atomic.Pointer[net.UDPConn]

	withNetwork bool            // a real TUN device: routes, rules, UDP 500
	netns       vnetns.NsHandle // where New ran, for sockets opened later
	net         *netState

	// peersMu serializes the changes of the peers (SetPeers,
	// SetCertificates) with each other, with Run's first initiations and
	// with Close. What it guards: net, ikeReady, peerState.digest.
	peersMu   sync.Mutex
	ikeReady  bool   // the IKE handler and port are set up
	digestKey []byte // keys the peers' digests (peers.go)

	sendFree, sendQueue chan *sendBatch
	tunQueue            chan *recvBatch

	mu        sync.Mutex // orders Run's start against Close, and goroutines started later against both
	running   bool       // Run has started its goroutines
	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
	started   time.Time
}

// routing is what the hot path reads: replaced whole, never changed.
type routing struct {
	spd   *spd
	peers map[string]*peerState
	order []*peerState // as configured, for Status
}

func newRouting(peers []*peerState) *routing {
	byName := make(map[string]*peerState, len(peers))
	for _, p := range peers {
		byName[p.cfg.Name] = p
	}
	return &routing{spd: newSPD(peers), peers: byName, order: peers}
}

// peerState is a configured peer and its counters. cfg is not changed
// once the state is published: a changed peer gets a new peerState.
type peerState struct {
	cfg      Peer
	ep       conn.Endpoint
	innerMTU int // largest inner packet that fits the path MTU after ESP-in-UDP
	overhead int // outer IP and UDP headers and the most ESP adds
	drops    drops
	traffic  traffic
	// digest identifies cfg, credentials included (peers.go); SetPeers
	// leaves a peer whose digest is the same untouched.
	digest [sha256.Size]byte
}

// IKEHandler receives an IKE message that arrived on the ESP port, with the
// non-ESP marker removed (RFC 3948 §2.2). msg is the handler's to keep.
type IKEHandler func(msg []byte, remote netip.AddrPort, local netip.Addr)

// New creates the TUN device, opens the UDP socket, installs the SAs and
// routes. Close undoes all of it. The peers' secrets (pre-shared keys,
// manual SA keys) are cleared in cfg once installed; SetPeers changes
// the peers later.
func New(cfg *Config, opts Options) (*Device, error) {
	return newDevice(cfg, opts, func(mtu int) (tun.Device, error) { return tun.CreateTUN(cfg.DeviceName, mtu) },
		conn.NewStdNetBind(), true)
}

// newDevice is New with the TUN device and the UDP bind given, so that
// tests can run devices in memory (tun/tuntest, conn/bindtest) without
// root; withNetwork installs routes and rules and listens on UDP 500 for
// IKE (in memory, IKE goes over the bind only).
func newDevice(cfg *Config, opts Options, makeTUN func(mtu int) (tun.Device, error), bind conn.Bind, withNetwork bool) (d *Device, err error) {
	defer clearSecrets(cfg.Peers)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	d = &Device{cfg: cfg, log: log, closing: make(chan struct{}), started: time.Now(),
		sad: esp.NewTable(esp.TableOptions{}), bind: bind, withNetwork: withNetwork, netns: vnetns.None()}
	d.ikeD = ike.New(d.sad, d.SendIKE, ike.Options{Logger: log, Retransmit: cfg.IKE.Retransmit, Tries: cfg.IKE.Tries,
		OnEstablished: opts.OnIKE})
	// The early returns below return a nil *Device: undo through dev.
	dev := d
	defer func() {
		if err != nil {
			dev.teardown()
			dev.sad.Close()
		}
	}()
	d.digestKey = make([]byte, sha256.Size)
	if _, err := rand.Read(d.digestKey); err != nil {
		return nil, err
	}
	if withNetwork {
		if d.netns, err = currentNetns(); err != nil {
			return nil, fmt.Errorf("find the network namespace: %w", err)
		}
	}

	plan, err := d.planPeers(cfg.Peers, newRouting(nil))
	if err != nil {
		return nil, err
	}
	peers := plan.next
	// A peer behind a narrower path does not shrink the device for the
	// others: its big packets get ICMP from the datapath.
	maxOverhead := 0
	for _, p := range peers {
		maxOverhead = max(maxOverhead, p.overhead)
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
	d.recv, _, err = d.bind.Open(cfg.Port)
	if err != nil {
		return nil, fmt.Errorf("listen on UDP port %d: %w", cfg.Port, err)
	}
	d.state.Store(newRouting(peers))
	for _, p := range peers {
		if err := d.installPeer(p); err != nil {
			return nil, err
		}
	}
	if withNetwork {
		if d.net, err = newNetState(d.tunName); err != nil {
			return nil, err
		}
		if err := d.addRoutes(d.net.wantRoutes(cfg, peers)); err != nil {
			return nil, err
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

// Run moves packets until ctx ends or Close is called.
func (d *Device) Run(ctx context.Context) error {
	// Under peersMu, so that a SetPeers either comes before (and Run
	// initiates its peers) or after (and initiates them itself).
	d.peersMu.Lock()
	// The goroutines are added under mu, so that a Close that runs first
	// or concurrently either sees them in wg or makes Run return.
	d.mu.Lock()
	select {
	case <-d.closing:
		d.mu.Unlock()
		d.peersMu.Unlock()
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
	if c := d.ike500.Load(); c != nil {
		d.goIKE500(c)
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
	d.running = true
	d.mu.Unlock()
	for _, p := range d.state.Load().order {
		if p.cfg.IKE != nil && p.cfg.IKE.Initiate {
			if err := d.ikeD.Initiate(p.cfg.Name); err != nil {
				d.log.Error("IKE initiate", "peer", p.cfg.Name, "err", err)
			}
		}
	}
	d.peersMu.Unlock()
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
			d.ikeD.Tick(now)
		case ev := <-d.sad.Events():
			if p := d.state.Load().peers[ev.Peer]; p != nil && p.cfg.IKE == nil {
				d.logEvent(ev)
			} else {
				// IKE's, or of a peer just removed: the daemon ignores
				// SAs it does not know.
				d.ikeD.Lifetime(ev)
			}
		}
	}
}

// goIKE500 starts reading UDP 500; the caller holds mu.
func (d *Device) goIKE500(c *net.UDPConn) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.routineIKE500(c)
	}()
}

func (d *Device) logEvent(ev esp.Event) {
	switch ev.Kind {
	case esp.EventSoftExpire:
		d.log.Warn("SA reached its soft lifetime; manually keyed SAs are not renewed", "peer", ev.Peer, "spi", fmt.Sprintf("%#x", ev.InSPI))
	case esp.EventHardExpire:
		d.log.Error("SA reached its hard lifetime and was deleted; traffic to the peer is dropped", "peer", ev.Peer, "spi", fmt.Sprintf("%#x", ev.InSPI))
	}
}

// Close stops the device and removes what New and SetPeers installed.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		// A SetPeers under way finishes first: what it installs is then
		// removed here, not left behind.
		d.peersMu.Lock()
		defer d.peersMu.Unlock()
		// Tell the peers while the sockets still work.
		d.ikeD.Close(time.Second)
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

// closed reports whether Close has begun.
func (d *Device) closed() bool {
	select {
	case <-d.closing:
		return true
	default:
		return false
	}
}

// routineIKE500 hands IKE messages from UDP 500 to the daemon.
func (d *Device) routineIKE500(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
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
	if c := d.ike500.Load(); c != nil {
		c.Close()
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
	if d.netns.IsOpen() {
		d.netns.Close()
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
	if c := d.ike500.Load(); remote.Port() == ikePort && c != nil {
		// An answer to a peer that started on UDP 500 (RFC 7296 §2.23: the
		// initiator moves to 4500 after IKE_SA_INIT when NAT is detected).
		_, err := c.WriteToUDPAddrPort(msg, remote)
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
