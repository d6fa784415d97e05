package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/rampartnet/rampart/internal/policy"
)

// The responders: one `rampart lab serve` process per pod namespace, run
// inside it, answering TCP (accept, a greeting line, then an echo), UDP
// (a greeting datagram for each datagram) and SCTP (an INIT-ACK for each
// INIT, from a raw socket: sctp.go).
//
// A pod answers on every port, not only the ports its containers declare:
// `lab probe --probe 8080/TCP` asks about any port, as `rampart reach`
// does. An nftables table in the pod's namespace redirects every TCP and
// UDP connection to one listener (ServerPort). That changes nothing that
// policy decides: policy is enforced on the node, on the packet as the
// source sent it, before it reaches the pod's namespace; and the reply is
// translated back (conntrack) before it leaves it. A hostNetwork pod
// shares its node's namespace, which also carries the agent's IKE and
// every forwarded pod packet, so no redirect is made there: its server
// listens on the declared ports only, and the prober counts a refusal (a
// TCP reset, an ICMP port unreachable) as reached, which it is (policy
// drops, it never rejects).

// ServerPort is the one port of a pod's responder, where the redirect
// sends every TCP and UDP connection (7: echo).
const ServerPort = 7

// redirectTable is the responder's table in a pod's namespace.
const redirectTable = "rampart_lab"

// Greeting starts every answer, with the names of the pods answering.
func greeting(refs []string) []byte {
	return []byte("rampart-lab " + strings.Join(refs, ",") + "\n")
}

// ServeOptions configure a responder.
type ServeOptions struct {
	// Refs are the pods it answers for ("ns/name").
	Refs []string
	// Address is the pod's (or for hostNetwork pods, the node's) address.
	Address netip.Addr
	// Redirect answers every TCP and UDP port through a redirect to
	// ServerPort; without it, the responder listens on Ports only.
	Redirect bool
	Ports    []policy.ContainerPort
	// Ready, when set, is a file written once every socket listens.
	Ready string
	Log   *slog.Logger
}

// Serve runs a responder in the calling process's network namespace until
// ctx ends.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if !o.Address.Is4() {
		return fmt.Errorf("lab serve: %v is not an IPv4 address", o.Address)
	}
	s := &server{o: o, greet: greeting(o.Refs)}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
		s.wg.Wait()
	}()
	listen := func(proto corev1.Protocol, addr netip.AddrPort) error {
		switch proto {
		case corev1.ProtocolTCP:
			l, err := net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
			if err != nil {
				return err
			}
			closers = append(closers, l)
			s.run(func() { s.serveTCP(ctx, l) })
		case corev1.ProtocolUDP:
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
			if err != nil {
				return err
			}
			closers = append(closers, c)
			pc := ipv4.NewPacketConn(c)
			if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
				return err
			}
			s.run(func() { s.serveUDP(pc) })
		}
		return nil
	}
	if o.Redirect {
		if err := installRedirect(o.Address); err != nil {
			return err
		}
		// Bound to every address: a pod's probe of itself is redirected to
		// 127.0.0.1 (redirect in the output hook).
		all := netip.AddrPortFrom(netip.IPv4Unspecified(), ServerPort)
		for _, p := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			if err := listen(p, all); err != nil {
				return fmt.Errorf("lab serve: %s %v: %w", p, all, err)
			}
		}
	} else {
		for _, p := range o.Ports {
			// Bound to the pod's address: the node's namespace has others.
			err := listen(p.Protocol, netip.AddrPortFrom(o.Address, uint16(p.Port)))
			if errors.Is(err, syscall.EADDRINUSE) {
				// The node's own (the agent's IKE on UDP 500 and 4500), or
				// another hostNetwork pod's: a probe is answered either way.
				o.Log.Warn("port in use, not served by this responder", "port", p.Port, "protocol", p.Protocol)
				continue
			}
			if err != nil {
				return fmt.Errorf("lab serve: %s port %d: %w", p.Protocol, p.Port, err)
			}
		}
	}
	raw, err := net.ListenIP("ip4:132", &net.IPAddr{IP: net.IPv4zero})
	if err != nil {
		return fmt.Errorf("lab serve: SCTP raw socket: %w", err)
	}
	closers = append(closers, raw)
	pc := ipv4.NewPacketConn(raw)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		return fmt.Errorf("lab serve: SCTP raw socket: %w", err)
	}
	s.run(func() { s.serveSCTP(pc) })
	if o.Ready != "" {
		if err := writeFileAtomic(o.Ready, []byte("ready\n"), 0o644); err != nil {
			return err
		}
	}
	o.Log.Info("serving", "pods", strings.Join(o.Refs, ","), "address", o.Address, "redirect", o.Redirect)
	<-ctx.Done()
	return nil
}

type server struct {
	o     ServeOptions
	greet []byte
	wg    sync.WaitGroup
}

func (s *server) run(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// echoIdle ends an echo that has been quiet this long.
const echoIdle = 2 * time.Minute

func (s *server) serveTCP(ctx context.Context, l *net.TCPListener) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			return // closed
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			// A client that speaks first with an HTTP request gets HTTP
			// answers (the L7 proxy, and `lab http`); any other gets the
			// greeting and the echo, after what it sent.
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(httpSniff))
			head, _ := br.Peek(len("OPTIONS "))
			if isHTTP(head) {
				c.SetDeadline(time.Now().Add(echoIdle))
				s.serveHTTP(c, br)
				return
			}
			c.SetDeadline(time.Now().Add(echoIdle))
			if _, err := c.Write(s.greet); err != nil {
				return
			}
			if n := br.Buffered(); n > 0 {
				b, _ := br.Peek(n)
				if _, err := c.Write(b); err != nil {
					return
				}
			}
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
					c.SetDeadline(time.Now().Add(echoIdle))
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// httpSniff is how long a TCP responder waits for the client to speak
// first before it greets: long enough for a request sent right after the
// handshake, short enough that a probe that only connects never notices.
const httpSniff = 50 * time.Millisecond

// isHTTP reports whether b begins an HTTP/1.x request line (a method and a
// space).
func isHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "PATCH ", "OPTIONS "} {
		if len(b) >= len(m) && string(b[:len(m)]) == m || len(b) < len(m) && len(b) >= 4 && strings.HasPrefix(m, string(b)) {
			return true
		}
	}
	return false
}

// HTTPAnswerHeader carries, in every HTTP answer of a responder, the
// caller's address as the responder saw it: the L7 proxy must keep it.
const HTTPAnswerHeader = "X-Rampart-Lab-Remote"

// serveHTTP answers HTTP/1.1 requests on c until the client closes: 200,
// the pods' names, the method and path, and the caller's address (also in
// HTTPAnswerHeader).
func (s *server) serveHTTP(c net.Conn, br *bufio.Reader) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
		body := fmt.Sprintf("%s %s %s from %s\n", strings.TrimSuffix(string(s.greet), "\n"), req.Method, req.URL.Path, c.RemoteAddr())
		resp := &http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1, Request: req,
			Header:        http.Header{"Content-Type": {"text/plain"}, HTTPAnswerHeader: {c.RemoteAddr().String()}},
			ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body)), Close: req.Close}
		if err := resp.Write(c); err != nil || req.Close {
			return
		}
		c.SetDeadline(time.Now().Add(echoIdle))
	}
}

// serveUDP answers each datagram from the address it was sent to: the
// reply of a redirected datagram must leave from the redirect's
// destination (127.0.0.1 for a pod's probe of itself), or conntrack would
// not recognise it and translate it back.
func (s *server) serveUDP(pc *ipv4.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		_, cm, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var reply *ipv4.ControlMessage
		if cm != nil {
			reply = &ipv4.ControlMessage{Src: cm.Dst}
		}
		pc.WriteTo(s.greet, reply, from)
	}
}

// serveSCTP answers every INIT with an INIT-ACK, from the address the
// INIT was sent to.
func (s *server) serveSCTP(pc *ipv4.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, cm, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		init, err := parseSCTP(buf[:n])
		if err != nil || init.Chunk != chunkInit || init.VerificationTag != 0 || cm == nil {
			continue // INIT-ACKs to this pod's own probes, and anything else
		}
		var r [12]byte
		rand.Read(r[:])
		ack := initChunk{InitiateTag: nonZero(binary.BigEndian.Uint32(r[0:])), Window: labWindow,
			OutStreams: min(init.Init.InStreams, labStreams), InStreams: labStreams, InitialTSN: binary.BigEndian.Uint32(r[4:])}
		reply := appendInitAck(nil, init, ack, r[:])
		if _, err := pc.WriteTo(reply, &ipv4.ControlMessage{Src: cm.Dst}, from); err != nil {
			s.o.Log.Debug("INIT-ACK not sent", "to", from, "err", err)
		}
	}
}

func nonZero(v uint32) uint32 {
	if v == 0 {
		return 1
	}
	return v
}

// installRedirect makes the pod namespace's table: every new TCP or UDP
// connection to the pod, from outside (prerouting) or from the pod to its
// own address (output), goes to ServerPort.
//
//	table ip rampart_lab {
//	  chain prerouting { type nat hook prerouting priority dstnat; meta l4proto {tcp, udp} redirect to :7 }
//	  chain output { type nat hook output priority dstnat; ip daddr POD meta l4proto {tcp, udp} redirect to :7 }
//	}
func installRedirect(pod netip.Addr) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: redirectTable})
	accept := nftables.ChainPolicyAccept
	chain := func(name string, hook *nftables.ChainHook) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: hook,
			Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	}
	pre, out := chain("prerouting", nftables.ChainHookPrerouting), chain("output", nftables.ChainHookOutput)
	dst := pod.As4()
	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		redirect := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(ServerPort)},
			&expr.Redir{RegisterProtoMin: 1},
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: redirect})
		toSelf := append([]expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: dst[:]},
		}, redirect...)
		c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: toSelf})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("lab serve: nftables redirect: %w", err)
	}
	return nil
}
