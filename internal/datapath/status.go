package datapath

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
)

// Status is what `rampart tunnel status` prints: the device, its peers,
// their SAs and every counter.
type Status struct {
	Name         string            `json:"name"`
	Device       string            `json:"device"`
	MTU          int               `json:"mtu"`
	LocalAddress string            `json:"localAddress"`
	Port         uint16            `json:"port"`
	Uptime       string            `json:"uptime"`
	Peers        []PeerStatus      `json:"peers"`
	Drops        map[string]uint64 `json:"drops"`
}

// PeerStatus is one peer.
type PeerStatus struct {
	Name          string            `json:"name"`
	Endpoint      string            `json:"endpoint"`
	Mode          string            `json:"mode"`
	LocalSubnets  []string          `json:"localSubnets"`
	RemoteSubnets []string          `json:"remoteSubnets"`
	InnerMTU      int               `json:"innerMTU"`
	TxPackets     uint64            `json:"txPackets"`
	TxBytes       uint64            `json:"txBytes"`
	RxPackets     uint64            `json:"rxPackets"`
	RxBytes       uint64            `json:"rxBytes"`
	Drops         map[string]uint64 `json:"drops"`
	SAs           []SAStatus        `json:"sas"`
	// IKE lists the peer's IKE SAs when IKE keys it.
	IKE []ike.SAStatus `json:"ike,omitempty"`
}

// SAStatus is one SA; keys are never shown.
type SAStatus struct {
	Direction string    `json:"direction"`
	SPI       string    `json:"spi"`
	Algorithm string    `json:"algorithm"`
	Created   time.Time `json:"created"`
	// Retiring: replaced by a rekey, still accepting until the peer's
	// DELETE or the grace period.
	Retiring bool      `json:"retiring,omitempty"`
	Stats    esp.Stats `json:"stats"`
}

// Status reads the device's state.
func (d *Device) Status() Status {
	rt := d.state.Load()
	st := Status{Name: d.cfg.Name, Device: d.tunName, MTU: d.tunMTU, LocalAddress: d.cfg.LocalAddr.String(),
		Port: d.cfg.Port, Uptime: time.Since(d.started).Round(time.Second).String(), Drops: d.drops.snapshot()}
	entries := d.sad.Entries()
	ikeSAs := d.ikeD.Status()
	// The peers of the routing the hot path uses: those SetPeers removed,
	// and their counters, are gone from here and from the metrics.
	for _, p := range rt.order {
		pc := &p.cfg
		ps := PeerStatus{Name: pc.Name, Endpoint: pc.Endpoint.String(), Mode: pc.Mode.String(),
			LocalSubnets: strs(pc.LocalSubnets), RemoteSubnets: strs(pc.RemoteSubnets), InnerMTU: p.innerMTU,
			TxPackets: p.traffic.txPackets.Load(), TxBytes: p.traffic.txBytes.Load(),
			RxPackets: p.traffic.rxPackets.Load(), RxBytes: p.traffic.rxBytes.Load(), Drops: p.drops.snapshot()}
		for _, e := range entries {
			if e.Pair.Peer != pc.Name {
				continue
			}
			if e.Out != nil {
				ps.SAs = append(ps.SAs, SAStatus{Direction: "outbound", SPI: fmt.Sprintf("%#x", e.Out.SPI()),
					Algorithm: string(e.Pair.Out.Algorithm), Created: e.Created, Stats: e.Out.Stats()})
			}
			if e.In != nil {
				ps.SAs = append(ps.SAs, SAStatus{Direction: "inbound", SPI: fmt.Sprintf("%#x", e.In.SPI()),
					Algorithm: string(e.Pair.In.Algorithm), Created: e.Created, Retiring: e.Retiring, Stats: e.In.Stats()})
			}
		}
		for _, s := range ikeSAs {
			if s.Peer == pc.Name {
				ps.IKE = append(ps.IKE, s)
			}
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

func strs[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	slices.Sort(out)
	return out
}

// ServeControl answers `rampart tunnel status` on a Unix socket at path
// until ctx ends. The socket is created mode 0600: counters are not
// secret, but the socket will carry commands later.
func (d *Device) ServeControl(ctx context.Context, path string) error {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		// A socket left by a process that died; refuse to steal a live one.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return fmt.Errorf("control socket %s: another endpoint is serving it", path)
		}
		os.Remove(path)
	}
	old := unixUmask(0o177)
	l, err := net.Listen("unix", path)
	unixUmask(old)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	defer os.Remove(path)
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go d.serveConn(c)
	}
}

func (d *Device) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	enc := json.NewEncoder(c)
	switch cmd := strings.TrimSpace(line); cmd {
	case "status":
		enc.Encode(d.Status())
	default:
		enc.Encode(map[string]string{"error": fmt.Sprintf("unknown command %q", cmd)})
	}
}

// ReadStatus asks the endpoint serving the control socket at path.
func ReadStatus(path string) (*Status, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w (is `rampart tunnel run` running?)", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("status\n")); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := json.NewDecoder(c).Decode(&raw); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return nil, errors.New(e.Error)
	}
	var st Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
