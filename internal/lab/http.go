package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// HTTPResult is the answer to a request sent from one lab pod to another.
type HTTPResult struct {
	From, To string
	URL      string
	Status   int
	// Denied is the L7 proxy's x-rampart-denied header (why a 403), and
	// SeenFrom the caller's address as the responder saw it (its
	// HTTPAnswerHeader): the pod's own when the proxy kept it.
	Denied   string
	SeenFrom string
	Body     string
}

// HTTP sends one HTTP/1.1 request from pod from (ns/name) to pod to's
// address and port, from inside from's namespace, as the pod's own
// process would: what the L7 proxy of to's node decides shows in the
// answer (403 and x-rampart-denied when an AuthorizationPolicy denies it).
func (l *Lab) HTTP(ctx context.Context, from, to string, port int, method, path string, timeout time.Duration) (*HTTPResult, error) {
	if err := l.reload(); err != nil {
		return nil, err
	}
	src, dst := l.st.pod(from), l.st.pod(to)
	switch {
	case src == nil:
		return nil, fmt.Errorf("lab http: %q is not a pod of the lab", from)
	case dst == nil:
		return nil, fmt.Errorf("lab http: %q is not a pod of the lab", to)
	case port < 1 || port > 65535:
		return nil, fmt.Errorf("lab http: port %d", port)
	case !strings.HasPrefix(path, "/"):
		return nil, fmt.Errorf("lab http: path %q does not begin with /", path)
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	url := fmt.Sprintf("http://%s%s", netip.AddrPortFrom(dst.Address, uint16(port)), path)
	res := &HTTPResult{From: from, To: to, URL: url}
	// The socket is made in the pod's namespace (a socket stays in the
	// namespace it was made in); the transport's own goroutines then use
	// it from anywhere. A transport of its own, so that nothing is reused.
	d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src.Address, 0))}
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = nsDo(src.Netns, func() (err error) {
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: tr, Timeout: timeout}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		res.Status, res.Body = resp.StatusCode, string(b)
		res.Denied, res.SeenFrom = resp.Header.Get("x-rampart-denied"), resp.Header.Get(HTTPAnswerHeader)
		return err
	}()
	if err != nil {
		return res, fmt.Errorf("lab http: %s %s from %s: %w", method, url, from, err)
	}
	return res, nil
}
