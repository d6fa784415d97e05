package l7

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Request is what a Decider sees of one HTTP request.
//
// Source is trustworthy as an identity: the proxy only ever receives
// connections that TPROXY steered to it, whose source address reached the
// node either from a local pod's veth (anti-spoofed by table inet rampart)
// or out of an IKE-authenticated tunnel. The agent maps it to a workload.
type Request struct {
	// Source is the caller; Destination the pod address and port it
	// dialed (the original destination, which TPROXY leaves in place).
	Source, Destination netip.AddrPort
	// Method as sent. Path is the request target's path without the
	// query, in the normal form described at NormalizePath (Istio's
	// "BASE" normalization: %2F stays encoded). Host is the Host header,
	// or HTTP/2's :authority.
	Method, Path, Host string
	// Header is the request's header as received. It is shared with the
	// request that is forwarded: a Decider must not modify it.
	Header http.Header
	// Proto is "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0", as the caller spoke.
	Proto string
}

// Decision is a Decider's verdict on one request.
type Decision struct {
	Allow bool
	// Reason names the policy or rule that decided, for the logs and, when
	// denied, the x-rampart-denied header of the 403.
	Reason string
}

// Decider decides whether a request may reach its destination. The agent
// supplies it (backed by an AuthorizationPolicy engine) and may replace it
// while the proxy runs (Proxy.SetDecider). Decide is called concurrently
// from many goroutines, once per request, on the request's path: it must
// be fast and must not block.
type Decider interface {
	Decide(Request) Decision
}

// DeciderFunc adapts a function to Decider.
type DeciderFunc func(Request) Decision

// Decide calls f(r).
func (f DeciderFunc) Decide(r Request) Decision { return f(r) }

// errDotSegment says a path has a "." or ".." segment.
var errDotSegment = errors.New(`path has a dot segment ("." or "..")`)

// NormalizePath returns the form of an escaped request path that a
// Decider judges, which is Istio's default ("BASE") path normalization,
// RFC 3986 section 6.2.2: percent-encoded unreserved characters (ALPHA,
// DIGIT, "-", ".", "_", "~") are decoded, the hex digits of the other
// percent-encodings are made upper case, and everything else, %2F and %5C
// included, is kept as it is. An empty path is "/", the asterisk form
// (OPTIONS *) stays "*". A "%" that does not start a percent-encoding is
// an error (net/http refuses such a request target before).
//
// A path with a dot segment ("." or "..", also percent-encoded) is an
// error rather than resolved (section 5.2.4): the request is forwarded
// unchanged, and a destination that resolved the segments differently from
// the Decider ("/public/../admin") would get what the Decider never saw.
// Clients remove dot segments before sending, so only crafted requests
// carry them.
func NormalizePath(escaped string) (string, error) {
	switch escaped {
	case "":
		return "/", nil
	case "*":
		return "*", nil
	}
	var b strings.Builder
	b.Grow(len(escaped))
	segStart := 0 // offset in b of the current segment
	endSegment := func() error {
		if s := b.String()[segStart:]; s == "." || s == ".." {
			return errDotSegment
		}
		return nil
	}
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '/':
			if err := endSegment(); err != nil {
				return "", err
			}
			b.WriteByte('/')
			segStart = b.Len()
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", fmt.Errorf("path has an invalid percent-encoding at byte %d", i)
			}
			v := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				b.WriteByte('%')
				b.WriteByte(upperHex(escaped[i+1]))
				b.WriteByte(upperHex(escaped[i+2]))
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	if err := endSegment(); err != nil {
		return "", err
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// isUnreserved is RFC 3986 section 2.3.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
