package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(24 * time.Hour)}
	for _, c := range []struct {
		jitter float64
		want   time.Duration
	}{
		{0, 14 * time.Hour},        // 7/12
		{0.5, 16 * time.Hour},      // 2/3
		{0.999999, 18 * time.Hour}, // just under 3/4
	} {
		got := RenewAt(leaf, c.jitter).Sub(t0)
		if d := got - c.want; d < -time.Second || d > time.Second {
			t.Errorf("jitter %v: renew after %v, want %v", c.jitter, got, c.want)
		}
	}
}

// fakeClock advances only when the Renewer sleeps.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	stop   int // cancel after this many sleeps
	cancel context.CancelFunc
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	n := len(c.sleeps)
	c.mu.Unlock()
	if n >= c.stop {
		c.cancel()
	}
	return ctx.Err()
}

// TestRenewer: renew at 2/3, back off on failure (5 s, 10 s, 20 s), then
// schedule from each new certificate.
func TestRenewer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &fakeClock{now: t0, stop: 6, cancel: cancel}
	calls := 0
	r := &Renewer{
		Renew: func(ctx context.Context) (*x509.Certificate, error) {
			calls++
			if calls <= 3 {
				return nil, errors.New("API server away")
			}
			now := clk.Now()
			return &x509.Certificate{NotBefore: now, NotAfter: now.Add(12 * time.Hour)}, nil
		},
		Jitter: func() float64 { return 0.5 },
		Now:    clk.Now, Sleep: clk.Sleep,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if err := r.Run(ctx, &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{16 * time.Hour, 5 * time.Second, 10 * time.Second, 20 * time.Second, 8 * time.Hour, 8 * time.Hour}
	if calls != 5 || len(clk.sleeps) != len(want) {
		t.Fatalf("%d renewals, sleeps %v; want 5 and %v", calls, clk.sleeps, want)
	}
	for i, w := range want {
		if clk.sleeps[i] != w {
			t.Errorf("sleep %d: %v, want %v (all: %v)", i, clk.sleeps[i], w, clk.sleeps)
		}
	}
}
