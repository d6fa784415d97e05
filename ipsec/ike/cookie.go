package ike

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/netip"
	"time"
)

// cookieJar makes and checks the responder's IKE_SA_INIT cookies (RFC
// 7296 §2.6): <version of the secret> | HMAC-SHA-256(secret, Ni | IPi |
// SPIi), truncated to 16 octets. The secret is replaced every
// cookieLifetime; a cookie made with the previous one is still accepted,
// so an initiator whose cookie was made just before the change gets in.
// Guarded by Daemon.mu.
type cookieJar struct {
	version byte
	secret  [2][32]byte // by version & 1
	made    time.Time   // when the current secret was made
	prev    bool        // the previous secret exists (was replaced at made)
}

const (
	cookieLifetime = 2 * time.Minute
	cookieMACLen   = 16
)

// make returns the cookie for an initiator, making or replacing the
// secret when due.
func (j *cookieJar) make(ni []byte, ip netip.Addr, spiI uint64, now time.Time, rand io.Reader) ([]byte, error) {
	if j.made.IsZero() || now.Sub(j.made) > cookieLifetime {
		next := j.version + 1
		if j.made.IsZero() {
			next = j.version
		}
		if _, err := io.ReadFull(rand, j.secret[next&1][:]); err != nil {
			return nil, err
		}
		j.prev = !j.made.IsZero() && now.Sub(j.made) <= 2*cookieLifetime
		j.version, j.made = next, now
	}
	return append([]byte{j.version}, j.mac(j.version, ni, ip, spiI)...), nil
}

// valid reports whether c is a cookie we made for this initiator in the
// last cookieLifetime or so: with the current secret, or with the
// previous one if it was replaced a moment ago. Constant time in the MAC.
func (j *cookieJar) valid(c, ni []byte, ip netip.Addr, spiI uint64, now time.Time) bool {
	if j.made.IsZero() || now.Sub(j.made) > 2*cookieLifetime || len(c) != 1+cookieMACLen {
		return false
	}
	switch {
	case c[0] == j.version:
	case c[0] == j.version-1 && j.prev && now.Sub(j.made) <= cookieLifetime:
	default:
		return false
	}
	return hmac.Equal(c[1:], j.mac(c[0], ni, ip, spiI))
}

func (j *cookieJar) mac(version byte, ni []byte, ip netip.Addr, spiI uint64) []byte {
	h := hmac.New(sha256.New, j.secret[version&1][:])
	h.Write(ni)
	a := ip.Unmap().AsSlice()
	h.Write(a)
	h.Write(binary.BigEndian.AppendUint64(nil, spiI))
	return h.Sum(nil)[:cookieMACLen]
}

// cookieRequired: the responder asks for cookies once CookieThreshold IKE
// SAs are half open (or always, with a negative threshold).
func (d *Daemon) cookieRequired() bool {
	t := d.opts.CookieThreshold
	return t < 0 || len(d.halfOpen) >= t
}
