// Command ike-bench measures an IKEv2 responder: handshakes per second and
// memory per IKE SA. Its initiator is one Rampart ike.Daemon with many
// identities; the responder is either Rampart's (this program's responder
// mode) or any other IKEv2 daemon at the same address, such as strongSwan's
// charon. bench/ike/run.sh builds the namespaces, starts both and reports.
//
//	ike-bench responder -addr 198.18.0.2 -n 10000 -psk-file psk
//	ike-bench initiator -addr 198.18.0.1 -responder 198.18.0.2 -n 10000 -window 32 -psk-file psk
//
// Every handshake is IKE_SA_INIT + IKE_AUTH with one CHILD_SA, PSK
// authentication with one key for all identities, on UDP 4500 behind the
// non-ESP marker. Identity i (1..n) is client-<i>.bench.example; its
// CHILD_SA's initiator selector is the i-th address of -client-net as a
// /32, the responder's is -responder-ts. The responder is
// responder.bench.example.
//
// Not part of the rampart binary; test and benchmark support only.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: ike-bench responder|initiator [flags] (-h for the flags)")
		return 2
	}
	var err error
	switch args[0] {
	case "responder":
		err = runResponder(args[1:])
	case "initiator":
		err = runInitiator(args[1:])
	default:
		fmt.Fprintf(os.Stderr, "ike-bench: unknown mode %q (want responder or initiator)\n", args[0])
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 2
	case err != nil:
		fmt.Fprintln(os.Stderr, "ike-bench:", err)
		return 1
	}
	return 0
}

// common are the settings both ends must agree on.
type common struct {
	n                  int
	pskFile            string
	ikeProps, espProps string
	clientNet          string
	responderTS        string
	logLevel           string

	psk           []byte
	ikeP, espP    []ikecrypto.Proposal
	clients       netip.Prefix
	respTS        netip.Prefix
	responderID   ikecrypto.Identity
	logger        *slog.Logger
	logLevelVal   slog.Level
	maxIdentities int
}

func (c *common) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.n, "n", 1000, "identities (one IKE SA with one CHILD_SA each)")
	fs.StringVar(&c.pskFile, "psk-file", "", "file holding the pre-shared key of every identity (required)")
	fs.StringVar(&c.ikeProps, "ike", "aes256gcm16-prfsha256-x25519", "IKE proposals, strongSwan syntax")
	fs.StringVar(&c.espProps, "esp", "aes256gcm16", "ESP proposals, strongSwan syntax")
	fs.StringVar(&c.clientNet, "client-net", "198.18.128.0/17", "the initiators' selectors: identity i gets the i-th address as a /32")
	fs.StringVar(&c.responderTS, "responder-ts", "198.19.2.0/24", "the responder's selector")
	fs.StringVar(&c.logLevel, "log-level", "info", "daemon log level: debug, info, warn or error (to stderr)")
}

// check parses the common settings after flag parsing.
func (c *common) check() error {
	var errs []error
	var err error
	if c.pskFile == "" {
		errs = append(errs, errors.New("-psk-file is required"))
	} else if c.psk, err = os.ReadFile(c.pskFile); err != nil {
		errs = append(errs, err)
	} else if c.psk = bytes.TrimSpace(c.psk); len(c.psk) == 0 {
		errs = append(errs, fmt.Errorf("-psk-file %s: empty", c.pskFile))
	}
	if c.ikeP, err = ikecrypto.ParseIKEProposals(c.ikeProps); err != nil {
		errs = append(errs, fmt.Errorf("-ike: %w", err))
	}
	if c.espP, err = ikecrypto.ParseESPProposals(c.espProps); err != nil {
		errs = append(errs, fmt.Errorf("-esp: %w", err))
	}
	if c.clients, err = netip.ParsePrefix(c.clientNet); err != nil || !c.clients.Addr().Is4() {
		errs = append(errs, fmt.Errorf("-client-net %q: want an IPv4 prefix", c.clientNet))
	} else {
		c.clients = c.clients.Masked()
		c.maxIdentities = 1<<(32-c.clients.Bits()) - 1
	}
	if c.respTS, err = netip.ParsePrefix(c.responderTS); err != nil {
		errs = append(errs, fmt.Errorf("-responder-ts: %w", err))
	}
	if c.n < 1 || (c.maxIdentities > 0 && c.n > c.maxIdentities) {
		errs = append(errs, fmt.Errorf("-n %d: want 1 to %d (the addresses of -client-net)", c.n, c.maxIdentities))
	}
	if err := c.logLevelVal.UnmarshalText([]byte(c.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("-log-level: %w", err))
	}
	c.responderID = ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(responderName)}
	c.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.logLevelVal}))
	return errors.Join(errs...)
}

const responderName = "responder.bench.example"

// clientName is identity i's peer name and FQDN.
func clientName(i int) string { return fmt.Sprintf("client-%05d.bench.example", i) }

// clientTS is identity i's selector: the i-th address of the client net.
func (c *common) clientTS(i int) netip.Prefix {
	b := c.clients.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 32)
}

func fqdn(s string) ikecrypto.Identity {
	return ikecrypto.Identity{Type: ikecrypto.IDFQDN, Data: []byte(s)}
}

// endpoint is a daemon's UDP socket on the ESP port, as the datapath
// runs it: IKE behind the four-octet non-ESP marker (RFC 3948 §2.2).
type endpoint struct {
	conn *net.UDPConn
}

func listen(addr netip.Addr) (*endpoint, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, esp.NATTPort)))
	if err != nil {
		return nil, err
	}
	// Bursts of a whole window of messages must not be dropped.
	if err := conn.SetReadBuffer(4 << 20); err != nil {
		conn.Close()
		return nil, err
	}
	return &endpoint{conn: conn}, nil
}

// send is the daemon's Sender.
func (e *endpoint) send(msg []byte, to netip.AddrPort) error {
	b := make([]byte, esp.NonESPMarkerLen+len(msg))
	copy(b[esp.NonESPMarkerLen:], msg)
	_, err := e.conn.WriteToUDPAddrPort(b, to)
	return err
}

// serve hands every IKE message to d until the socket is closed. One
// reader, as the datapath's receive path: Handle serializes on the
// daemon's lock anyway.
func (e *endpoint) serve(d *ike.Daemon) {
	buf := make([]byte, 65536)
	for {
		n, from, err := e.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if esp.ClassifyUDP(buf[:n]) == esp.UDPIKE {
			d.Handle(bytes.Clone(buf[esp.NonESPMarkerLen:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
		}
	}
}

// cpuSeconds is the CPU time (user and system) this process used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// rssKiB is VmRSS of /proc/self/status, 0 if unknown.
func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int64
			fmt.Sscan(rest, &kib)
			return kib
		}
	}
	return 0
}
