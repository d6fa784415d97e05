package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// RenewAt is when to replace leaf: at 2/3 of its validity, moved by
// jitter (in [0, 1), uniform: from 7/12 to 3/4 of it), so the agents of
// nodes that started together do not all ask at once, and a failed
// renewal still has a quarter of the lifetime or more to be retried.
// kubelet's client certificate rotation does the same at 70-90%; ours
// starts earlier because there is no revocation and the lifetime is short.
func RenewAt(leaf *x509.Certificate, jitter float64) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	frac := 7.0/12 + jitter/6 // 7/12 .. 9/12, centre 2/3
	return leaf.NotBefore.Add(time.Duration(float64(life) * frac))
}

// Renewer keeps a certificate fresh: Run waits until RenewAt, calls
// Renew, and starts again from the new certificate.
type Renewer struct {
	// Renew obtains and installs a new certificate (a new key, Request,
	// then the switch of the IKE credentials) and returns the new leaf.
	Renew func(ctx context.Context) (*x509.Certificate, error)
	// RetryMin and RetryMax bound the pause after a failed Renew, doubled
	// each time (defaults 5 s and 5 minutes).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// Jitter is the source of RenewAt's jitter (default math/rand/v2).
	Jitter func() float64
	// Now and Sleep are the clock (defaults: the real one). Sleep returns
	// ctx's error when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Run renews leaf and its successors until ctx ends; it returns nil then.
// A failed renewal is retried with back-off, also past expiry: there is
// nothing better to do than to keep asking, loudly.
func (r *Renewer) Run(ctx context.Context, leaf *x509.Certificate) error {
	if r.Renew == nil || leaf == nil {
		return errors.New("certs: Renewer needs Renew and a certificate")
	}
	log, now, sleep, jitter := r.Logger, r.Now, r.Sleep, r.Jitter
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	if jitter == nil {
		jitter = rand.Float64
	}
	retryMin, retryMax := r.RetryMin, r.RetryMax
	if retryMin <= 0 {
		retryMin = 5 * time.Second
	}
	if retryMax < retryMin {
		retryMax = max(retryMin, 5*time.Minute)
	}
	for {
		at := RenewAt(leaf, jitter())
		log.Info("certificate renewal scheduled", "node", leaf.Subject.CommonName, "at", at.Format(time.RFC3339), "expires", leaf.NotAfter.Format(time.RFC3339))
		if err := sleep(ctx, at.Sub(now())); err != nil {
			return nil
		}
		wait := retryMin
		for {
			next, err := r.Renew(ctx)
			if err == nil && next == nil {
				err = errors.New("Renew returned no certificate")
			}
			if err == nil {
				leaf = next
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			level := slog.LevelWarn
			if now().After(leaf.NotAfter) {
				level = slog.LevelError // peers refuse us now
			}
			log.Log(ctx, level, "certificate renewal failed, will retry", "node", leaf.Subject.CommonName, "retryIn", wait, "expires", leaf.NotAfter.Format(time.RFC3339), "error", err)
			if err := sleep(ctx, wait); err != nil {
				return nil
			}
			wait = min(2*wait, retryMax)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
