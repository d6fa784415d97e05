package l7

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// The headers the proxy adds to the answers it makes itself.
const (
	// HeaderDenied carries the reason of a refusal: the Decider's Reason
	// on a 403, or what was wrong with the request on a 400 or 405.
	HeaderDenied = "x-rampart-denied"
	// HeaderUpstreamError carries why the destination could not be
	// reached, on a 502.
	HeaderUpstreamError = "x-rampart-upstream-error"
)

// Defaults of Config.
const (
	DefaultHeaderTimeout         = 10 * time.Second
	DefaultIdleTimeout           = 2 * time.Minute
	DefaultMaxIdlePerDestination = 64
)

// Implementation choices, not configurable.
const (
	// upstreamIdleTimeout closes pooled upstream connections nobody used
	// for that long.
	upstreamIdleTimeout = 90 * time.Second
	// callerIdleTimeout drops a caller's upstream pool once it has not
	// been used for that long (its idle connections are closed by then).
	callerIdleTimeout = 2 * upstreamIdleTimeout
	// expectContinueTimeout is how long a request with "Expect:
	// 100-continue" waits for the destination's 100 before its body is
	// sent anyway (RFC 9110 section 10.1.1 lets a client, here the proxy,
	// stop waiting).
	expectContinueTimeout = time.Second
	// maxHeaderBytes bounds request headers (net/http's default) and the
	// destination's response headers alike.
	maxHeaderBytes = 1 << 20
	// maxReasonBytes bounds the reason headers.
	maxReasonBytes = 256
)

// Config configures a Proxy. Only Decider matters in production; Dial and
// Destination replace the kernel's part for tests on loopback.
type Config struct {
	// Decider decides every request; nil denies everything until
	// SetDecider gives one (fail closed).
	Decider Decider
	// Logger gets a line per denial (Info), per allowed request (Debug),
	// per upstream failure (Info) and per refused connection (Debug).
	// Default slog.Default().
	Logger *slog.Logger
	// Dial opens a connection to dst whose source address is src. Default
	// (Linux): DialTransparent, so the destination sees the caller.
	Dial func(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error)
	// Destination gives an accepted connection's original destination.
	// Default: its local address, which is what TPROXY leaves in place.
	Destination func(net.Conn) (netip.AddrPort, error)
	// HeaderTimeout bounds the wait for a request's headers, the first
	// included: a client that sends nothing is closed after it. Default
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// IdleTimeout closes a client connection idle between requests
	// (HTTP/1.1 keep-alive and HTTP/2 alike). Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxIdlePerDestination bounds the idle HTTP/1.1 connections kept per
	// caller and destination. Default DefaultMaxIdlePerDestination.
	MaxIdlePerDestination int
}

// Proxy is the node's transparent HTTP authorization proxy: it serves the
// connections that TPROXY steers to it, asks the Decider about each
// request, answers denied ones itself and forwards allowed ones unchanged
// to their original destination from the caller's own address. See the
// package documentation for the path of a request.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	decider atomic.Pointer[deciderBox]
	srv     *http.Server
	// h1 forwards as HTTP/1.1; h2 as HTTP/2 with prior knowledge, for
	// callers that spoke HTTP/2 with prior knowledge (see the package
	// documentation).
	h1, h2 *httputil.ReverseProxy
	pools  [2]*pool // by upstream protocol: 0 HTTP/1.1, 1 h2c
	stats  counters

	mu     sync.Mutex
	conns  map[*conn]struct{} // open client connections, hijacked ones included
	closed bool
}

// deciderBox lets an interface value live behind an atomic.Pointer.
type deciderBox struct{ d Decider }

// NewProxy makes a proxy; Serve runs it.
func NewProxy(cfg Config) (*Proxy, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		cfg.Dial = defaultDial
	}
	if cfg.Dial == nil {
		return nil, errors.New("l7: no transparent dialer on this system: set Config.Dial")
	}
	if cfg.Destination == nil {
		cfg.Destination = localAddr
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxIdlePerDestination <= 0 {
		cfg.MaxIdlePerDestination = DefaultMaxIdlePerDestination
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, conns: make(map[*conn]struct{})}
	p.SetDecider(cfg.Decider)
	p.pools[0] = newPool(p, false)
	p.pools[1] = newPool(p, true)
	errLog := slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)
	p.h1 = p.reverseProxy(p.pools[0], errLog)
	p.h2 = p.reverseProxy(p.pools[1], errLog)
	h2s := &http2.Server{IdleTimeout: cfg.IdleTimeout}
	p.srv = &http.Server{
		Handler:           p.front(h2c.NewHandler(http.HandlerFunc(p.serveRequest), h2s)),
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if cc, ok := c.(*conn); ok {
				return context.WithValue(ctx, connKey{}, cc)
			}
			return ctx
		},
		ErrorLog: errLog,
	}
	return p, nil
}

// SetDecider replaces the Decider; requests after it returns are decided
// by d. nil denies everything.
func (p *Proxy) SetDecider(d Decider) { p.decider.Store(&deciderBox{d}) }

// Serve serves the connections l accepts until Close or Shutdown, and
// then returns nil. l is normally ListenTransparent's: then each
// connection's local address is its original destination. A connection
// whose original destination is l's own address (made to the proxy
// directly, not steered) is refused, or the proxy would dial itself.
func (p *Proxy) Serve(l net.Listener) error {
	self, _ := addrPortOf(l.Addr())
	err := p.srv.Serve(&listener{Listener: l, p: p, self: self})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the proxy at once: listeners, client connections (HTTP/2
// and upgraded ones too) and pooled upstream connections are closed.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.closeAll()
	return err
}

// Shutdown stops accepting, waits until ctx ends for the HTTP/1.1
// requests in flight, then closes what is left as Close does (HTTP/2 and
// upgraded connections at once).
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	p.closeAll()
	return err
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	for _, pl := range p.pools {
		pl.close()
	}
}

// front is the first handler of every request that net/http parsed:
// from here on, what the server writes on the connection is HTTP (see
// conn.Write). It also remembers whether the caller speaks HTTP/2 with
// prior knowledge, which the h2c handler's streams inherit in their
// context, and declines h2c upgrades that carry a body.
func (p *Proxy) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := connOf(r.Context())
		if c == nil {
			// Every connection comes through listener.Accept; without
			// its state there is nobody to attribute the request to.
			http.Error(w, "no connection state", http.StatusInternalServerError)
			return
		}
		c.http.Store(true)
		switch {
		case r.Method == "PRI" && r.Proto == "HTTP/2.0":
			r = r.WithContext(context.WithValue(r.Context(), priorKnowledgeKey{}, true))
		case r.ContentLength != 0 && isH2CUpgrade(r.Header):
			// The h2c handler would read the whole body into memory
			// before switching. A server may ignore an upgrade (RFC
			// 9110 section 7.8): answer in HTTP/1.1, streaming.
			r.Header.Del("Upgrade")
		}
		next.ServeHTTP(w, r)
	})
}

// isH2CUpgrade is h2c's test for an upgrade request (RFC 7540 section 3.2).
func isH2CUpgrade(h http.Header) bool {
	return httpguts.HeaderValuesContainsToken(h["Upgrade"], "h2c") &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "HTTP2-Settings")
}

// serveRequest decides one request and answers it or forwards it.
func (p *Proxy) serveRequest(w http.ResponseWriter, r *http.Request) {
	c := connOf(r.Context())
	if c == nil {
		http.Error(w, "no connection state", http.StatusInternalServerError)
		return
	}
	if r.Method == http.MethodConnect || r.Method == "PRI" {
		// CONNECT would make the destination a tunnel the Decider
		// cannot see into; a PRI that h2c did not take is malformed.
		p.reject(w, r, c, http.StatusMethodNotAllowed, r.Method+" is not proxied")
		return
	}
	path, err := NormalizePath(r.URL.EscapedPath())
	if err != nil {
		p.reject(w, r, c, http.StatusBadRequest, err.Error())
		return
	}
	if up := r.Header.Values("Upgrade"); len(up) > 0 && !(len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket")) {
		// After a 101 the connection is a tunnel the proxy no longer
		// reads: to another HTTP (an h2c the destination offers, say)
		// it would carry requests nobody decided. WebSocket is let
		// through, decided at its upgrade request; any other upgrade
		// is ignored, as a server may (RFC 9110 section 7.8), and the
		// request goes on without it. That includes the request whose
		// "Upgrade: h2c" the h2c handler took (it serves it as stream
		// 1): that upgrade was the proxy's, not the destination's.
		r.Header.Del("Upgrade")
	}
	req := Request{Source: c.src, Destination: c.dst, Method: r.Method, Path: path, Host: r.Host, Header: r.Header, Proto: r.Proto}
	d := p.decide(req)
	if !d.Allow {
		reason := d.Reason
		if reason == "" {
			reason = "denied"
		}
		p.stats.denied.Add(1)
		p.log.Info("l7: request denied", "src", c.src, "dst", c.dst, "method", r.Method, "host", r.Host, "path", path, "proto", r.Proto, "reason", reason)
		refuse(w, http.StatusForbidden, reason)
		return
	}
	p.stats.allowed.Add(1)
	if p.log.Enabled(r.Context(), slog.LevelDebug) { // spare the hot path the arguments
		p.log.Debug("l7: request allowed", "src", c.src, "dst", c.dst, "method", r.Method, "host", r.Host, "path", path, "proto", r.Proto, "reason", d.Reason)
	}
	rp := p.h1
	if pk, _ := r.Context().Value(priorKnowledgeKey{}).(bool); pk {
		rp = p.h2
	}
	if r.Body != nil && r.Body != http.NoBody {
		r = r.WithContext(context.WithValue(r.Context(), clientBodyKey{}, &clientBody{body: r.Body, remaining: r.ContentLength}))
	}
	rp.ServeHTTP(exactHeader{w}, r)
}

// clientBody is the caller's request body as the upstream Transport reads
// it (pool.RoundTrip puts it in place of ReverseProxy's wrapper).
//
// It ends at the declared length by itself. The Transport reads once more
// after Content-Length bytes to check that the body has no more, and when
// the destination answered fast, ReverseProxy's handler has returned by
// then and its wrapper fails that read, which makes the Transport close a
// connection it could have reused (a POST would often cost a new upstream
// connection). It also remembers why reading failed, so that a malformed
// body (a bad chunk) is answered as the caller's 400, not as the
// destination's 502. Close does nothing: the server closes its body.
type clientBody struct {
	body      io.ReadCloser
	remaining int64 // bytes still to come when the length is known; -1 if not
	err       atomic.Pointer[error]
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if b.remaining > 0 && int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.body.Read(p)
	if b.remaining > 0 {
		b.remaining -= int64(n)
		if b.remaining == 0 && err == nil {
			err = io.EOF
		}
	}
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (b *clientBody) Close() error { return nil }

// decide asks the current Decider; no Decider, or one that panics, denies.
func (p *Proxy) decide(req Request) (d Decision) {
	b := p.decider.Load()
	if b == nil || b.d == nil {
		return Decision{Reason: "no authorization policy loaded"}
	}
	defer func() {
		if e := recover(); e != nil {
			p.log.Error("l7: decider panicked; request denied", "src", req.Source, "dst", req.Destination, "panic", e)
			d = Decision{Reason: "authorization failed"}
		}
	}()
	return b.d.Decide(req)
}

// reject answers a request that is not HTTP the proxy forwards.
func (p *Proxy) reject(w http.ResponseWriter, r *http.Request, c *conn, status int, reason string) {
	p.stats.rejected.Add(1)
	p.log.Info("l7: request rejected", "src", c.src, "dst", c.dst, "method", r.Method, "host", r.Host, "uri", r.RequestURI, "proto", r.Proto, "reason", reason)
	refuse(w, status, reason)
}

// refuse writes the proxy's own short answer.
func refuse(w http.ResponseWriter, status int, reason string) {
	reason = headerValue(reason)
	h := w.Header()
	h.Set(HeaderDenied, reason)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s: %s\n", http.StatusText(status), reason)
}

// headerValue makes s safe as a header field value (RFC 9110 section
// 5.5: no control characters), and short.
func headerValue(s string) string {
	if len(s) > maxReasonBytes {
		s = s[:maxReasonBytes]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// reverseProxy forwards unchanged over the upstream pool tr.
func (p *Proxy) reverseProxy(tr http.RoundTripper, errLog *log.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			c := connOf(pr.In.Context())
			// Always the original destination: never a host the
			// request names (absolute-form targets included).
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = c.dst.String()
			// ReverseProxy drops query parameters it cannot parse
			// and the forwarding headers; the request goes on as the
			// caller sent it. Out.Host stays the caller's Host.
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[k]; ok && !httpguts.HeaderValuesContainsToken(pr.In.Header["Connection"], k) {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport: tr,
		// Flush every write at once: streamed responses (server-sent
		// events, long polls, gRPC-web) must not wait in a buffer.
		FlushInterval: -1,
		ErrorHandler:  p.upstreamError,
		ErrorLog:      errLog,
	}
}

// upstreamError answers 502 when the destination cannot be reached or
// fails before its response started.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if ew, ok := w.(exactHeader); ok {
		w = ew.ResponseWriter // the 502 is the proxy's own: Date and all
	}
	c := connOf(r.Context())
	if r.Context().Err() != nil {
		// The caller went away: nobody reads an answer, and the
		// destination did nothing wrong.
		return
	}
	if b, ok := r.Context().Value(clientBodyKey{}).(*clientBody); ok {
		if berr := b.err.Load(); berr != nil {
			p.reject(w, r, c, http.StatusBadRequest, "request body: "+(*berr).Error())
			return
		}
	}
	p.stats.upstreamErrors.Add(1)
	p.log.Info("l7: upstream failed", "src", c.src, "dst", c.dst, "method", r.Method, "host", r.Host, "err", err)
	h := w.Header()
	delete(h, "Date")
	delete(h, "Content-Type")
	h.Set(HeaderUpstreamError, headerValue(err.Error()))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintf(w, "Bad Gateway: %s is unreachable\n", c.dst)
}

// exactHeader keeps net/http from adding a Date or a sniffed Content-Type
// to a forwarded response that had none (a nil entry suppresses them),
// so the caller gets the destination's header as it was.
type exactHeader struct{ http.ResponseWriter }

func (w exactHeader) WriteHeader(code int) {
	if code >= 200 {
		h := w.ResponseWriter.Header()
		for _, k := range []string{"Date", "Content-Type"} {
			if _, ok := h[k]; !ok {
				h[k] = nil
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w exactHeader) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type (
	connKey           struct{}
	priorKnowledgeKey struct{}
	clientBodyKey     struct{}
)

func connOf(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// listener attaches each accepted connection's endpoints to it, and
// refuses connections that have none the proxy could use.
type listener struct {
	net.Listener
	p    *Proxy
	self netip.AddrPort
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, err := l.p.newConn(nc, l.self)
		if err != nil {
			l.p.stats.refused.Add(1)
			l.p.log.Debug("l7: connection refused", "remote", nc.RemoteAddr(), "local", nc.LocalAddr(), "err", err)
			nc.Close()
			continue
		}
		return c, nil
	}
}

func (p *Proxy) newConn(nc net.Conn, self netip.AddrPort) (*conn, error) {
	src, err := addrPortOf(nc.RemoteAddr())
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dst, err := p.cfg.Destination(nc)
	if err != nil {
		return nil, fmt.Errorf("original destination: %w", err)
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	switch {
	case !src.Addr().Is4() || !dst.Addr().Is4():
		return nil, fmt.Errorf("%s to %s: IPv4 only", src, dst)
	case dst.Port() == 0:
		return nil, fmt.Errorf("original destination %s has no port", dst)
	case dst == self:
		return nil, fmt.Errorf("made to the proxy's own address %s, not steered", self)
	}
	c := &conn{Conn: nc, src: src, dst: dst, p: p}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("proxy closed")
	}
	p.conns[c] = struct{}{}
	return c, nil
}

// conn is a client connection with its endpoints.
//
// Until net/http has parsed a request on it (http is set by front), what
// the server writes on it is dropped: that is the 400 net/http answers to
// bytes that are not HTTP, and the proxy's rule for those is to close the
// connection without a byte in either direction, so that an L7 port
// reveals nothing to a client that does not speak HTTP.
type conn struct {
	net.Conn
	src, dst netip.AddrPort
	p        *Proxy
	http     atomic.Bool
	closed   atomic.Bool
}

func (c *conn) Write(b []byte) (int, error) {
	if !c.http.Load() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// CloseWrite lets net/http half-close as it does on a bare TCP connection.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
		if !c.http.Load() {
			c.p.stats.refused.Add(1)
			c.p.log.Debug("l7: connection closed before any HTTP request", "src", c.src, "dst", c.dst)
		}
	}
	return c.Conn.Close()
}

// localAddr is the default Config.Destination.
func localAddr(c net.Conn) (netip.AddrPort, error) { return addrPortOf(c.LocalAddr()) }

func addrPortOf(a net.Addr) (netip.AddrPort, error) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", a, err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// pool holds the upstream connections of each caller: one http.Transport
// per caller address, so that a connection opened from one caller's
// address never carries another caller's request (the destination, and
// the node's L3/L4 policy, judge each by its source address), and within
// it the connections per destination.
type pool struct {
	p  *Proxy
	h2 bool

	mu        sync.Mutex
	callers   map[netip.Addr]*callerPool
	lastSweep time.Time
}

type callerPool struct {
	t    *http.Transport
	last time.Time
}

func newPool(p *Proxy, h2 bool) *pool {
	return &pool{p: p, h2: h2, callers: make(map[netip.Addr]*callerPool)}
}

// RoundTrip sends req over a connection from its caller's address.
func (pl *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	c := connOf(req.Context())
	if c == nil {
		return nil, errors.New("l7: request without a client connection")
	}
	if req.Body != nil {
		if cb, ok := req.Context().Value(clientBodyKey{}).(*clientBody); ok {
			r := *req // RoundTrip must not modify its argument
			r.Body = cb
			req = &r
		}
	}
	return pl.transport(c.src.Addr()).RoundTrip(req)
}

func (pl *pool) transport(src netip.Addr) *http.Transport {
	now := time.Now()
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if now.Sub(pl.lastSweep) > callerIdleTimeout {
		pl.lastSweep = now
		for a, cp := range pl.callers {
			if now.Sub(cp.last) > callerIdleTimeout {
				cp.t.CloseIdleConnections()
				delete(pl.callers, a)
			}
		}
	}
	cp := pl.callers[src]
	if cp == nil {
		cp = &callerPool{t: pl.newTransport(src)}
		pl.callers[src] = cp
	}
	cp.last = now
	return cp.t
}

func (pl *pool) newTransport(src netip.Addr) *http.Transport {
	dial := pl.p.cfg.Dial
	t := &http.Transport{
		Proxy: nil, // never the environment's proxy
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			dst, err := netip.ParseAddrPort(addr)
			if err != nil {
				return nil, fmt.Errorf("l7: upstream address %q: %w", addr, err)
			}
			return dial(ctx, src, dst)
		},
		// The body goes on as the destination encoded it; the
		// Transport must neither ask for gzip nor decode it.
		DisableCompression:     true,
		MaxIdleConnsPerHost:    pl.p.cfg.MaxIdlePerDestination,
		IdleConnTimeout:        upstreamIdleTimeout,
		ExpectContinueTimeout:  expectContinueTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	if pl.h2 {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

func (pl *pool) close() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for a, cp := range pl.callers {
		cp.t.CloseIdleConnections()
		delete(pl.callers, a)
	}
}
