package ike

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/message"
)

func TestCookieJar(t *testing.T) {
	var j cookieJar
	now := time.Now()
	ni := []byte("nonce of the initiator, 32 bytes")
	ip := netip.MustParseAddr("198.18.0.1")
	c, err := j.make(ni, ip, 7, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte{c[0] - 1}, make([]byte, cookieMACLen)...)
	for _, x := range []struct {
		name   string
		c, ni  []byte
		ip     netip.Addr
		spi    uint64
		at     time.Time
		wantOK bool
	}{
		{"the cookie", c, ni, ip, 7, now, true},
		{"another address", c, ni, netip.MustParseAddr("198.18.0.2"), 7, now, false},
		{"another SPI", c, ni, ip, 8, now, false},
		{"another nonce", c, []byte("another nonce"), ip, 7, now, false},
		{"truncated", c[:len(c)-1], ni, ip, 7, now, false},
		{"a previous version that never was", forged, ni, ip, 7, now, false},
		{"too old", c, ni, ip, 7, now.Add(3 * cookieLifetime), false},
	} {
		if got := j.valid(x.c, x.ni, x.ip, x.spi, x.at); got != x.wantOK {
			t.Errorf("%s: valid = %v, want %v", x.name, got, x.wantOK)
		}
	}
	// A new secret after cookieLifetime: the old cookie stays good for
	// one more lifetime, then not.
	later := now.Add(cookieLifetime + time.Second)
	c2, _ := j.make(ni, ip, 7, later, rand.Reader)
	if bytes.Equal(c, c2) || c2[0] == c[0] {
		t.Fatalf("the secret was not replaced: %x, %x", c, c2)
	}
	if !j.valid(c, ni, ip, 7, later) || !j.valid(c2, ni, ip, 7, later) {
		t.Error("a cookie of the current or the previous secret is refused")
	}
	if j.valid(c, ni, ip, 7, later.Add(cookieLifetime+time.Second)) {
		t.Error("a cookie of the previous secret is accepted after a lifetime more")
	}
}

// TestCookies: a responder under a flood of IKE_SA_INIT requests keeps at
// most CookieThreshold half-open IKE SAs; the rest get a COOKIE and no
// state, a real initiator still gets through by sending the cookie back,
// and the half-open SAs expire.
func TestCookies(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	const threshold = 4
	na, nb, n := newPairOpts(t, a, b, nil, esp.TableOptions{}, func(which string, o *Options) {
		if which == "b" {
			o.CookieThreshold = threshold
		}
	})
	var mu sync.Mutex
	cookies, answers := 0, 0
	n.tap = func(msg []byte, from, to netip.AddrPort) bool {
		m, err := message.Parse(msg)
		if err != nil || m.Exchange != message.IKESAInit || !m.IsResponse() {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if m.Notify(message.NotifyCookie) != nil {
			cookies++
		} else {
			answers++
		}
		return to.Port() != 4500 // the flood's source ports: nobody there
	}
	// The flood: IKE_SA_INIT requests from A's address (a configured
	// peer: unknown addresses get no answer at all), each from another
	// port with another SPI, that never go on to IKE_AUTH.
	flooder := New(esp.NewTable(esp.TableOptions{}), func(msg []byte, to netip.AddrPort) error { return nil }, Options{})
	if err := flooder.AddPeer(Config{Name: "b", Remote: nb.addr, LocalID: ident("x.example"), RemoteID: ident("b.example"), PSK: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 * threshold {
		if err := flooder.Initiate("b"); err != nil {
			t.Fatal(err)
		}
		var req []byte
		flooder.mu.Lock()
		for _, sa := range flooder.sas {
			if sa.request != nil {
				req = sa.request[0]
				flooder.stopRetransmit(sa)
			}
		}
		flooder.mu.Unlock()
		nb.d.Handle(req, netip.AddrPortFrom(na.addr.Addr(), uint16(10000+i)))
	}
	nb.d.mu.Lock()
	halfOpen := len(nb.d.halfOpen)
	nb.d.mu.Unlock()
	mu.Lock()
	if halfOpen != threshold || answers != threshold || cookies != 2*threshold {
		t.Errorf("after %d requests: %d half-open, %d answers, %d cookies; want %d, %d, %d",
			3*threshold, halfOpen, answers, cookies, threshold, threshold, 2*threshold)
	}
	cookies = 0
	mu.Unlock()

	// The real initiator is asked for a cookie too, and gets in with it.
	establish(t, na, nb)
	mu.Lock()
	if cookies != 1 {
		t.Errorf("the initiator was asked for %d cookies, want 1", cookies)
	}
	mu.Unlock()

	// The flood's half-open IKE SAs expire; the established one stays.
	nb.d.Tick(time.Now().Add(nb.d.opts.HalfOpenTimeout + time.Second))
	if st := nb.d.Status(); len(st) != 1 || st[0].State != "established" || len(nb.d.halfOpen) != 0 {
		t.Errorf("after the half-open timeout: %+v, %d half-open", st, len(nb.d.halfOpen))
	}
}

// TestCookieAlways: with a negative threshold every initiator sends a
// cookie; it survives an INVALID_KE_PAYLOAD retry (same nonce).
func TestCookieAlways(t *testing.T) {
	a := side{psk: "k", ike: "aes256gcm16-prfsha256-x25519-ecp256", esp: "aes256gcm16", localTS: pfx("198.19.1.0/24"), remoteTS: pfx("198.19.2.0/24")}
	b := side{psk: "k", ike: "aes256gcm16-prfsha256-ecp256", esp: "aes256gcm16", localTS: pfx("198.19.2.0/24"), remoteTS: pfx("198.19.1.0/24")}
	na, nb, n := newPairOpts(t, a, b, nil, esp.TableOptions{}, func(which string, o *Options) { o.CookieThreshold = -1 })
	var mu sync.Mutex
	var seen []string
	n.tap = func(msg []byte, from, to netip.AddrPort) bool {
		if m, err := message.Parse(msg); err == nil && m.Exchange == message.IKESAInit {
			s := "request"
			if m.IsResponse() {
				s = "response"
			}
			for _, x := range m.Notifies() {
				if x.NotifyType == message.NotifyCookie || x.NotifyType == message.NotifyInvalidKEPayload {
					s += " " + x.NotifyType.String()
				}
			}
			mu.Lock()
			seen = append(seen, s)
			mu.Unlock()
		}
		return false
	}
	establish(t, na, nb)
	want := []string{"request", "response COOKIE", "request COOKIE", "response INVALID_KE_PAYLOAD", "request COOKIE", "response"}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("IKE_SA_INIT messages: %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("IKE_SA_INIT messages: %q, want %q", seen, want)
		}
	}
}
