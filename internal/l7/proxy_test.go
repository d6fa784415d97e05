package l7

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP half of the proxy on loopback, without the kernel's part: the
// tests replace Config.Destination (the original destination is the
// upstream test server, not the listener's address) and Config.Dial (a
// plain dial from the caller's loopback address).

// seen is what the upstream received of one request.
type seen struct {
	Method, RequestURI, Host, Proto, Remote string
	Header                                  http.Header
	Body                                    string
}

// upstream is a destination that records what reaches it.
type upstream struct {
	srv      *httptest.Server
	addr     netip.AddrPort
	mu       sync.Mutex
	requests []seen
	conns    atomic.Int32
}

// newUpstream serves h1 and h2c (prior knowledge). handler, if not nil,
// answers after the request is recorded (its body is then unread);
// otherwise the upstream reads the body and answers 200 "ok".
func newUpstream(t *testing.T, handler http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Proto: r.Proto, Remote: r.RemoteAddr, Header: r.Header.Clone()}
		if handler == nil {
			b, _ := io.ReadAll(r.Body)
			s.Body = string(b)
		}
		u.mu.Lock()
		u.requests = append(u.requests, s)
		u.mu.Unlock()
		if handler != nil {
			handler(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			u.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	u.srv = srv
	u.addr = netip.MustParseAddrPort(srv.Listener.Addr().String())
	return u
}

func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.requests)
}

// decider records what it was asked and allows what allow says.
type decider struct {
	mu    sync.Mutex
	asked []Request
	allow func(Request) bool
}

func (d *decider) Decide(r Request) Decision {
	d.mu.Lock()
	d.asked = append(d.asked, r)
	d.mu.Unlock()
	if d.allow(r) {
		return Decision{Allow: true, Reason: "test/allow"}
	}
	return Decision{Reason: "test/deny " + r.Method}
}

func (d *decider) requests() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.asked)
}

// allowPOST allows POST and denies everything else.
func allowPOST(r Request) bool { return r.Method == http.MethodPost }

// dialed records the upstream dials.
type dialed struct {
	mu    sync.Mutex
	dials []netip.Addr // the source address of each
}

func (d *dialed) sources() []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dials)
}

type testProxy struct {
	*Proxy
	addr   string // the listener's
	dialed *dialed
}

// startProxy runs a proxy whose every connection's original destination
// is dst, dialing from the caller's own loopback address.
func startProxy(t *testing.T, d Decider, dst netip.AddrPort, tweak ...func(*Config)) *testProxy {
	t.Helper()
	rec := &dialed{}
	cfg := Config{
		Decider: d,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dial: func(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
			rec.mu.Lock()
			rec.dials = append(rec.dials, src)
			rec.mu.Unlock()
			dl := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
			return dl.DialContext(ctx, "tcp4", dst.String())
		},
		Destination: func(net.Conn) (netip.AddrPort, error) { return dst, nil },
	}
	for _, f := range tweak {
		f(&cfg)
	}
	p, err := NewProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testProxy{Proxy: p, addr: l.Addr().String(), dialed: rec}
}

// rawConn is a client connection that writes bytes as given and reads
// responses.
type rawConn struct {
	t *testing.T
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) response(method string) (*http.Response, string) {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("read response body: %v", err)
	}
	return res, string(b)
}

// closedSilently reads until the proxy closes the connection and fails
// if it sent anything.
func (c *rawConn) closedSilently(within time.Duration) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c.br)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatalf("connection still open after %v (got %q)", within, b)
	case len(b) > 0:
		c.t.Fatalf("the proxy answered %q; want the connection closed without a byte", b)
	}
}

func TestAllowForwardsUnchanged(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		// No Date and no Content-Type: the caller must not get any
		// that the proxy's server would add on its own.
		w.Header()["Date"] = nil
		w.Header()["Content-Type"] = nil
		w.Header().Set("X-Up", "1")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "got %s", b)
	})
	d := &decider{allow: allowPOST}
	p := startProxy(t, d, up.addr)

	c := dialRaw(t, p.addr)
	c.send("POST /a/b%2Fc/%7euser?x=1&y=%zz&y=2 HTTP/1.1\r\n" +
		"Host: svc.example:8080\r\n" +
		"X-Custom: v1\r\n" +
		"X-Custom: v2\r\n" +
		"X-Forwarded-For: 203.0.113.9\r\n" +
		"Forwarded: for=203.0.113.9\r\n" +
		"Connection: keep-alive, X-Hop\r\n" +
		"X-Hop: only for the next hop\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: 11\r\n\r\nhello world")
	res, body := c.response("POST")
	if res.StatusCode != http.StatusCreated || body != "got hello world" || res.Header.Get("X-Up") != "1" {
		t.Fatalf("response %d %q %v; want 201 %q with X-Up", res.StatusCode, body, res.Header, "got hello world")
	}
	for _, k := range []string{"Date", "Content-Type", HeaderDenied} {
		if v, ok := res.Header[k]; ok {
			t.Errorf("response has %s: %q, which the destination did not send", k, v)
		}
	}

	got := up.seen()
	if len(got) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(got))
	}
	s := got[0]
	// (The body: the upstream answered "got hello world".)
	if s.Method != "POST" || s.RequestURI != "/a/b%2Fc/%7euser?x=1&y=%zz&y=2" || s.Host != "svc.example:8080" || s.Proto != "HTTP/1.1" {
		t.Errorf("upstream saw %s %s host %s %s; want the request unchanged", s.Method, s.RequestURI, s.Host, s.Proto)
	}
	want := http.Header{
		"X-Custom":        {"v1", "v2"},
		"X-Forwarded-For": {"203.0.113.9"},
		"Forwarded":       {"for=203.0.113.9"},
		"Content-Type":    {"application/json"},
		"Content-Length":  {"11"},
	}
	if fmt.Sprint(s.Header) != fmt.Sprint(want) {
		t.Errorf("upstream header:\n got %v\nwant %v", s.Header, want)
	}
	if host, _, _ := net.SplitHostPort(s.Remote); host != "127.0.0.1" {
		t.Errorf("upstream saw the request from %s, want the caller's address", s.Remote)
	}

	asked := d.requests()
	if len(asked) != 1 {
		t.Fatalf("decider asked %d times, want 1", len(asked))
	}
	r := asked[0]
	if r.Destination != up.addr || r.Source.Addr() != netip.MustParseAddr("127.0.0.1") || r.Method != "POST" ||
		r.Path != "/a/b%2Fc/~user" || r.Host != "svc.example:8080" || r.Proto != "HTTP/1.1" || r.Header.Get("X-Custom") != "v1" {
		t.Errorf("decider asked %+v", r)
	}
	if st := p.Stats(); st.Allowed != 1 || st.Denied != 0 {
		t.Errorf("stats %+v, want 1 allowed", st)
	}
}

func TestDenyReachesNothing(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, &decider{allow: allowPOST}, up.addr)
	c := dialRaw(t, p.addr)
	c.send("GET /secret HTTP/1.1\r\nHost: svc\r\n\r\n")
	res, body := c.response("GET")
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", res.StatusCode)
	}
	if got := res.Header.Get(HeaderDenied); got != "test/deny GET" {
		t.Errorf("%s: %q, want the decider's reason", HeaderDenied, got)
	}
	if !strings.Contains(body, "test/deny GET") {
		t.Errorf("body %q does not say why", body)
	}
	if n := up.conns.Load(); n != 0 {
		t.Errorf("upstream saw %d connections, want none", n)
	}
	if st := p.Stats(); st.Denied != 1 || st.Allowed != 0 {
		t.Errorf("stats %+v, want 1 denied", st)
	}
	if len(p.dialed.sources()) != 0 {
		t.Errorf("the proxy dialed upstream for a denied request")
	}
}

func TestKeepAliveMixedVerdicts(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, &decider{allow: allowPOST}, up.addr)
	c := dialRaw(t, p.addr)
	steps := []struct {
		method, path string
		status       int
	}{
		{"GET", "/one", 403},
		{"POST", "/two", 200},
		{"GET", "/three", 403},
		{"POST", "/four", 200},
	}
	for _, s := range steps {
		if s.method == "POST" {
			c.send(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabc", s.path))
		} else {
			// A denied request with a body the proxy never reads: the
			// connection must stay usable all the same.
			c.send(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\n\r\nwxyz", s.path))
		}
		res, _ := c.response(s.method)
		// Let the proxy's Transport put its upstream connection back in
		// the pool (it does so on its own goroutine after the body's
		// end) before the next request looks for one.
		time.Sleep(50 * time.Millisecond)
		if res.StatusCode != s.status {
			t.Fatalf("%s %s: status %d, want %d", s.method, s.path, res.StatusCode, s.status)
		}
		if res.Close {
			t.Fatalf("%s %s: the proxy closes the connection", s.method, s.path)
		}
	}
	var paths []string
	for _, s := range up.seen() {
		paths = append(paths, s.Method+" "+s.RequestURI+" "+s.Body)
	}
	if want := []string{"POST /two abc", "POST /four abc"}; !slices.Equal(paths, want) {
		t.Errorf("upstream saw %q, want %q", paths, want)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1 (pooled)", n)
	}
}

func TestStreamingBothWays(t *testing.T) {
	gotFirst := make(chan string, 1)
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		// Read the request's first chunk before the client has sent
		// the rest: the proxy must not wait for the whole body.
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Errorf("upstream: read first chunk: %v", err)
			return
		}
		gotFirst <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "head:%s|", rest)
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, "tail")
	})
	p := startProxy(t, &decider{allow: allowPOST}, up.addr)
	// On failure too, or the upstream's Close waits for its handler.
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseOnce)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/stream", pr)
	type result struct {
		res *http.Response
		err error
	}
	resc := make(chan result, 1)
	// The timeout ends the test if the proxy holds the response back.
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	go func() {
		res, err := client.Do(req)
		resc <- result{res, err}
	}()
	io.WriteString(pw, "first")
	select {
	case s := <-gotFirst:
		if s != "first" {
			t.Fatalf("upstream's first chunk %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request body's first chunk did not reach the upstream while the body was still open")
	}
	io.WriteString(pw, "second")
	pw.Close()
	var r result
	select {
	case r = <-resc:
	case <-time.After(10 * time.Second):
		t.Fatal("no response header while the upstream holds its body open")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.res.Body.Close()
	buf := make([]byte, len("head:second|"))
	if _, err := io.ReadFull(r.res.Body, buf); err != nil || string(buf) != "head:second|" {
		t.Fatalf("first part of the response: %q, %v (it must arrive before the upstream finishes)", buf, err)
	}
	releaseOnce()
	tail, err := io.ReadAll(r.res.Body)
	if err != nil || string(tail) != "tail" {
		t.Fatalf("rest of the response: %q, %v", tail, err)
	}
}

func TestExpectContinue(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, &decider{allow: allowPOST}, up.addr)
	c := dialRaw(t, p.addr)
	c.send("POST /upload HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("before the body: %q, %v; want 100 Continue", line, err)
	}
	if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue followed by %q", blank)
	}
	c.send("hello")
	// The destination's 100 is forwarded, and net/http may send its own
	// when the body is read first: a client takes any number of 1xx
	// (RFC 9110 section 15.2).
	res, body := c.response("POST")
	for res.StatusCode == http.StatusContinue {
		res, body = c.response("POST")
	}
	if res.StatusCode != 200 || body != "ok" {
		t.Fatalf("response %d %q", res.StatusCode, body)
	}
	if s := up.seen(); len(s) != 1 || s[0].Body != "hello" {
		t.Errorf("upstream saw %+v", s)
	}

	// Denied: the client gets the 403 without sending its body, and the
	// body never goes anywhere.
	c2 := dialRaw(t, p.addr)
	c2.send("GET /upload HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	res, _ = c2.response("GET")
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("denied with Expect: status %d", res.StatusCode)
	}
}

// h2cClient speaks HTTP/2 with prior knowledge.
func h2cClient() *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

func TestH2CPriorKnowledge(t *testing.T) {
	up := newUpstream(t, nil)
	d := &decider{allow: allowPOST}
	p := startProxy(t, d, up.addr)
	client := h2cClient()
	defer client.CloseIdleConnections()

	// One request first, so that the concurrent ones find the upstream
	// connection made (concurrent first requests may each dial).
	res, err := client.Post("http://"+p.addr+"/first", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method := "POST"
			want := 200
			if i%2 == 1 {
				method, want = "GET", 403
			}
			req, _ := http.NewRequest(method, fmt.Sprintf("http://%s/h2/%d?q=%d", p.addr, i, i), strings.NewReader("body"))
			res, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.Proto != "HTTP/2.0" || res.StatusCode != want {
				errs <- fmt.Errorf("%s %d: %s %d %q, want HTTP/2.0 %d", method, i, res.Proto, res.StatusCode, b, want)
			}
			if want == 403 && res.Header.Get(HeaderDenied) != "test/deny GET" {
				errs <- fmt.Errorf("%s %d: no %s header: %v", method, i, HeaderDenied, res.Header)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := up.seen()
	if len(s) != 5 {
		t.Fatalf("upstream saw %d requests, want the 5 POSTs", len(s))
	}
	for _, r := range s {
		if r.Proto != "HTTP/2.0" || r.Method != "POST" || r.Body != "body" {
			t.Errorf("upstream saw %+v; want the POSTs forwarded in h2c", r)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1 (multiplexed)", n)
	}
	for _, r := range d.requests() {
		if r.Proto != "HTTP/2.0" {
			t.Errorf("decider saw %s, want HTTP/2.0", r.Proto)
		}
	}
}

// readH2Response reads one stream's response from an HTTP/2 framer; dec
// is the connection's header decoder (its table lives as long as the
// connection).
func readH2Response(t *testing.T, fr *http2.Framer, dec *hpack.Decoder, stream uint32) (status string, header map[string]string, body string) {
	t.Helper()
	header = map[string]string{}
	dec.SetEmitFunc(func(f hpack.HeaderField) { header[f.Name] = f.Value })
	var b strings.Builder
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.HeadersFrame:
			if f.StreamID != stream {
				t.Fatalf("headers for stream %d, want %d", f.StreamID, stream)
			}
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				t.Fatal(err)
			}
			if f.StreamEnded() {
				return header[":status"], header, b.String()
			}
		case *http2.DataFrame:
			b.Write(f.Data())
			if f.StreamEnded() {
				return header[":status"], header, b.String()
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY: %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("RST_STREAM %d: %v", f.StreamID, f.ErrCode)
		}
	}
}

func TestH2CUpgrade(t *testing.T) {
	up := newUpstream(t, nil)
	d := &decider{allow: func(r Request) bool { return r.Path == "/up" }}
	p := startProxy(t, d, up.addr)
	c := dialRaw(t, p.addr)
	settings := base64.RawURLEncoding.EncodeToString(nil)
	c.send("GET /up?x=1 HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: " + settings + "\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 101 ") {
		t.Fatalf("upgrade answered %q, %v; want 101", line, err)
	}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	// From here on HTTP/2: the client preface, then the response to the
	// upgrade request on stream 1.
	c.send(http2.ClientPreface)
	fr := http2.NewFramer(c.Conn, c.br)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	status, _, body := readH2Response(t, fr, dec, 1)
	if status != "200" || body != "ok" {
		t.Fatalf("stream 1: %s %q, want 200 ok", status, body)
	}
	// A second request on the upgraded connection, denied.
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "svc"}, {":path", "/other"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	status, header, _ := readH2Response(t, fr, dec, 3)
	if status != "403" || header[HeaderDenied] != "test/deny GET" {
		t.Fatalf("stream 3: %s %v, want 403 with %s", status, header, HeaderDenied)
	}
	s := up.seen()
	if len(s) != 1 || s[0].RequestURI != "/up?x=1" || s[0].Proto != "HTTP/1.1" {
		t.Fatalf("upstream saw %+v; want the upgrade request alone, forwarded in HTTP/1.1", s)
	}
	if _, ok := s[0].Header["Upgrade"]; ok {
		t.Errorf("upstream got the caller's Upgrade header: %v", s[0].Header)
	}
	// The upgrade request itself was sent in HTTP/1.1; the next one in
	// HTTP/2.
	if asked := d.requests(); len(asked) != 2 || asked[0].Proto != "HTTP/1.1" || asked[1].Proto != "HTTP/2.0" {
		t.Errorf("decider asked %+v", asked)
	}
}

func TestH2CUpgradeWithBodyStaysHTTP1(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, &decider{allow: allowPOST}, up.addr)
	c := dialRaw(t, p.addr)
	c.send("POST /up HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\nContent-Length: 4\r\n\r\nbody")
	res, body := c.response("POST")
	if res.StatusCode != 200 || body != "ok" || res.ProtoMajor != 1 {
		t.Fatalf("response %s %d %q; want the request served in HTTP/1.1", res.Proto, res.StatusCode, body)
	}
	if s := up.seen(); len(s) != 1 || s[0].Body != "body" {
		t.Fatalf("upstream saw %+v", s)
	}
}

// TestUpgrades: WebSocket goes through, decided at its upgrade request;
// any other upgrade, which the upstream here would accept, is ignored, so
// the connection never becomes a tunnel for requests nobody decided.
func TestUpgrades(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		proto := r.Header.Get("Upgrade")
		if proto == "" {
			io.WriteString(w, "no upgrade")
			return
		}
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", proto)
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	})
	p := startProxy(t, &decider{allow: func(Request) bool { return true }}, up.addr)
	for _, c := range []struct {
		upgrade string
		want    bool
	}{
		{"websocket", true},
		{"WebSocket", true},
		{"h2c", false}, // without HTTP2-Settings, so not the proxy's own h2c
		{"HTTP/2.0", false},
		{"websocket, h2c", false},
	} {
		rc := dialRaw(t, p.addr)
		rc.send("GET /ws HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: " + c.upgrade + "\r\n\r\n")
		if !c.want {
			res, body := rc.response("GET")
			if res.StatusCode != 200 || body != "no upgrade" {
				t.Errorf("Upgrade: %s: %d %q; want the request forwarded without it", c.upgrade, res.StatusCode, body)
			}
			continue
		}
		res, err := http.ReadResponse(rc.br, &http.Request{Method: "GET"})
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("Upgrade: %s: %v %v; want 101", c.upgrade, res, err)
		}
		rc.send("ping\n")
		line, err := rc.br.ReadString('\n')
		if err != nil || line != "echo ping\n" {
			t.Fatalf("Upgrade: %s: after the upgrade: %q, %v", c.upgrade, line, err)
		}
	}
}

func TestNotHTTPClosedWithoutAByte(t *testing.T) {
	for _, c := range []struct{ name, bytes string }{
		{"tls client hello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + strings.Repeat("\x00", 40)},
		{"ssh banner", "SSH-2.0-OpenSSH_9.2\r\n"},
		{"binary", "\x00\x01\x02\x03\r\n\r\n"},
		{"request line then garbage", "GET / HTTP/1.1\r\nnot a header line\r\n\r\n"},
		{"no host", "GET / HTTP/1.1\r\n\r\n"},
		{"silence", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			p := startProxy(t, &decider{allow: func(Request) bool { return true }}, up.addr, func(cfg *Config) {
				cfg.HeaderTimeout = 300 * time.Millisecond
			})
			rc := dialRaw(t, p.addr)
			if c.bytes != "" {
				rc.send(c.bytes)
			}
			rc.closedSilently(5 * time.Second)
			if n := up.conns.Load(); n != 0 {
				t.Errorf("upstream saw %d connections", n)
			}
			if len(p.dialed.sources()) != 0 {
				t.Errorf("the proxy dialed upstream")
			}
			waitFor(t, func() bool { return p.Stats().Refused == 1 }, "Refused == 1")
		})
	}
}

func TestMalformedBodyIsTheCallers(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, &decider{allow: allowPOST}, up.addr)
	c := dialRaw(t, p.addr)
	c.send("POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	res, _ := c.response("POST")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.Header.Get(HeaderDenied), "chunk") {
		t.Fatalf("%d %v; want 400 saying what is wrong with the body", res.StatusCode, res.Header)
	}
	if st := p.Stats(); st.UpstreamErrors != 0 || st.Rejected != 1 {
		t.Errorf("stats %+v; want the request rejected, no upstream error", st)
	}
}

func TestDirectConnectionRefused(t *testing.T) {
	up := newUpstream(t, nil)
	// The default Destination: a connection made to the listener itself
	// has the listener's address as its original destination.
	p := startProxy(t, &decider{allow: func(Request) bool { return true }}, up.addr, func(cfg *Config) { cfg.Destination = nil })
	c := dialRaw(t, p.addr)
	c.send("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
	c.closedSilently(5 * time.Second)
	if len(p.dialed.sources()) != 0 {
		t.Errorf("the proxy dialed %v", p.dialed.sources())
	}
	if st := p.Stats(); st.Refused != 1 || st.Allowed != 0 {
		t.Errorf("stats %+v, want 1 refused", st)
	}
}

func TestRejectedBeforeDeciding(t *testing.T) {
	up := newUpstream(t, nil)
	d := &decider{allow: func(Request) bool { return true }}
	p := startProxy(t, d, up.addr)
	for _, c := range []struct {
		req    string
		status int
	}{
		{"GET /public/../admin HTTP/1.1\r\nHost: svc\r\n\r\n", 400},
		{"GET /public/%2e%2E/admin HTTP/1.1\r\nHost: svc\r\n\r\n", 400},
		{"GET /a/./b HTTP/1.1\r\nHost: svc\r\n\r\n", 400},
		{"CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n", 405},
	} {
		rc := dialRaw(t, p.addr)
		rc.send(c.req)
		res, _ := rc.response(strings.Fields(c.req)[0])
		if res.StatusCode != c.status || res.Header.Get(HeaderDenied) == "" {
			t.Errorf("%q: %d %v; want %d with %s", c.req, res.StatusCode, res.Header, c.status, HeaderDenied)
		}
	}
	if len(d.requests()) != 0 || len(up.seen()) != 0 {
		t.Errorf("decider asked %d times, upstream saw %d requests; want none", len(d.requests()), len(up.seen()))
	}
	if st := p.Stats(); st.Rejected != 4 {
		t.Errorf("stats %+v, want 4 rejected", st)
	}
}

func TestUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	p := startProxy(t, &decider{allow: func(Request) bool { return true }}, dead)
	c := dialRaw(t, p.addr)
	c.send("GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
	res, body := c.response("GET")
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(res.Header.Get(HeaderUpstreamError), "refused") {
		t.Fatalf("%d %v %q; want 502 with %s saying the connection was refused", res.StatusCode, res.Header, body, HeaderUpstreamError)
	}
	if res.Header.Get(HeaderDenied) != "" {
		t.Errorf("a 502 carries %s", HeaderDenied)
	}
	if st := p.Stats(); st.UpstreamErrors != 1 {
		t.Errorf("stats %+v, want 1 upstream error", st)
	}
}

func TestCallersPooledApart(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, &decider{allow: func(Request) bool { return true }}, up.addr)
	// Two callers, told apart by their (loopback) source address.
	callers := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	clients := make([]*http.Client, len(callers))
	for i, a := range callers {
		dl := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))}
		tr := &http.Transport{DialContext: dl.DialContext}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr}
	}
	for round := range 3 {
		for i := range callers {
			res, err := clients[i].Post(fmt.Sprintf("http://%s/c%d/%d", p.addr, i, round), "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			time.Sleep(50 * time.Millisecond) // see TestKeepAliveMixedVerdicts
		}
	}
	for _, s := range up.seen() {
		var i, round int
		fmt.Sscanf(s.RequestURI, "/c%d/%d", &i, &round)
		if host, _, _ := net.SplitHostPort(s.Remote); host != callers[i].String() {
			t.Errorf("%s reached the upstream from %s, want %s", s.RequestURI, host, callers[i])
		}
	}
	if got := p.dialed.sources(); len(got) != 2 {
		t.Errorf("dialed from %v; want one connection per caller, reused", got)
	}
}

func TestDeciderSwapAndNone(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, nil, up.addr)
	get := func() *http.Response {
		t.Helper()
		res, err := http.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	if res := get(); res.StatusCode != 403 || res.Header.Get(HeaderDenied) == "" {
		t.Fatalf("no decider: %d %v, want 403", res.StatusCode, res.Header)
	}
	p.SetDecider(DeciderFunc(func(Request) Decision { return Decision{Allow: true} }))
	if res := get(); res.StatusCode != 200 {
		t.Fatalf("allow-all decider: %d", res.StatusCode)
	}
	p.SetDecider(DeciderFunc(func(Request) Decision { panic("broken policy") }))
	if res := get(); res.StatusCode != 403 {
		t.Fatalf("panicking decider: %d, want 403", res.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	up := newUpstream(t, nil)
	p := startProxy(t, &decider{allow: allowPOST}, up.addr)
	for _, m := range []string{"POST", "GET", "GET"} {
		req, _ := http.NewRequest(m, "http://"+p.addr+"/", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"rampart_l7_requests_total{verdict=allowed}":  1,
		"rampart_l7_requests_total{verdict=denied}":   2,
		"rampart_l7_requests_total{verdict=rejected}": 0,
		"rampart_l7_upstream_errors_total":            0,
		"rampart_l7_refused_connections_total":        0,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metrics:\n got %v\nwant %v", got, want)
	}
}

func TestNormalizePath(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"", "/", ""},
		{"*", "*", ""},
		{"/", "/", ""},
		{"/api/v1/items", "/api/v1/items", ""},
		{"/%61dmin", "/admin", ""},
		{"/a%2fb", "/a%2Fb", ""},
		{"/a%5cb", "/a%5Cb", ""},
		{"/%7Euser/%2D%2e%5F", "/~user/-._", ""},
		{"/sp%20ace", "/sp%20ace", ""},
		{"//double//slash", "//double//slash", ""},
		{"/100%", "", "percent"},
		{"/%%610", "", "percent"},
		{"/%g0", "", "percent"},
		{"/..", "", "dot"},
		{"/a/../b", "", "dot"},
		{"/a/./b", "", "dot"},
		{"/a/%2e%2E/b", "", "dot"},
		{"/a/%2e", "", "dot"},
		{"/a/..b", "/a/..b", ""},
		{"/a/.../b", "/a/.../b", ""},
	} {
		got, err := NormalizePath(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("NormalizePath(%q) = %q, %v; want an error about %s", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/%2e%2e/b", "/%7e/%2F", "/100%", "/%zz", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizePath(in)
		if err != nil {
			return
		}
		// The normal form is a fixed point, and has no dot segment.
		again, err := NormalizePath(got)
		if err != nil || again != got {
			t.Fatalf("NormalizePath(%q) = %q, but that normalizes to %q, %v", in, got, again, err)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q has a dot segment", in, got)
			}
		}
	})
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
