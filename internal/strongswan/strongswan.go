// Package strongswan runs strongSwan's charon, from Debian's packages, in a
// network namespace as an IKEv2/ESP peer for Rampart's interoperability
// tests, and drives it with swanctl. charon uses its user-space
// kernel-libipsec plugin (this kernel has no ESP): a TUN device ipsec0 and
// routes in table 220. Test support only.
package strongswan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/rampartnet/rampart/internal/netns"
)

// CharonPath is the path of the charon daemon in Debian's packages.
const CharonPath = "/usr/lib/ipsec/charon"

// Options configures one charon and its single connection "rampart".
type Options struct {
	// Dir is a directory of the caller's for config, sockets, its /run and
	// the log.
	Dir string
	NS  *netns.NS
	// Local and Remote are the underlay addresses.
	Local, Remote netip.Addr
	// LocalID and RemoteID default to the addresses.
	LocalID, RemoteID string
	// PSK, or the certificate files (PEM; the key in PKCS#8) for public-key
	// authentication.
	PSK                       string
	CertFile, KeyFile, CAFile string
	// Proposals and ESPProposals in swanctl syntax; default
	// aes256gcm16-prfsha256-x25519 and aes256gcm16.
	Proposals, ESPProposals string
	// LocalTS and RemoteTS are the CHILD_SA's traffic selectors.
	LocalTS, RemoteTS []netip.Prefix
	// Transport selects transport mode (default tunnel).
	Transport bool
	// Initiate starts the connection once loaded (start_action = start;
	// trap does not work with kernel-libipsec).
	Initiate bool
	// RekeyTime and ChildRekeyTime (0: strongSwan's defaults), DPDDelay
	// (0: off).
	RekeyTime, ChildRekeyTime, DPDDelay time.Duration
	// Fragmentation is the connection's IKE fragmentation (RFC 7383)
	// setting: "" (strongSwan's default, yes), yes, accept, force or no;
	// FragmentSize the largest IKE datagram charon sends (0: its default,
	// 1280).
	Fragmentation string
	FragmentSize  int
	// CookieThreshold is charon's cookie_threshold: the number of
	// half-open IKE SAs at which it asks initiators for a COOKIE (0: its
	// default, 10).
	CookieThreshold int
}

// A Charon is a running charon.
type Charon struct {
	opts Options
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{} // closed when charon has exited
	err  error         // its exit status, once done is closed
	vici string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var confTemplate = template.Must(template.New("strongswan.conf").Parse(`charon {
  load_modular = no
  # openssl before anything else with AES: strongSwan's own AES-GCM runs 8
  # times slower. kdf is required by 5.9.8.
  load = random nonce kdf aesni openssl sha1 sha2 hmac pem pkcs1 pkcs8 x509 pubkey constraints curve25519 kernel-libipsec kernel-netlink socket-default vici
  port = 500
  port_nat_t = 4500
  {{- if .CookieThreshold}}
  cookie_threshold = {{.CookieThreshold}}
  {{- end}}
  {{- if .FragmentSize}}
  fragment_size = {{.FragmentSize}}
  {{- end}}
  # Short retransmissions, so failures show in seconds.
  retransmit_timeout = 1
  retransmit_base = 1.4
  retransmit_tries = 3
  filelog {
    stderr {
      default = 1
      ike = 2
      cfg = 2
      time_format = %T
    }
  }
  plugins {
    vici {
      socket = unix://{{.Dir}}/charon.vici
    }
  }
}
`))

var swanctlTemplate = template.Must(template.New("swanctl.conf").Parse(`connections {
  rampart {
    version = 2
    local_addrs = {{.Local}}
    remote_addrs = {{.Remote}}
    encap = yes
    {{- if .Fragmentation}}
    fragmentation = {{.Fragmentation}}
    {{- end}}
    proposals = {{.Proposals}}
    {{- if .RekeyTime}}
    rekey_time = {{.RekeyTime}}
    over_time = {{.RekeyTime}}
    rand_time = 0s
    {{- end}}
    {{- if .DPDDelay}}
    dpd_delay = {{.DPDDelay}}
    {{- end}}
    local {
      {{- if .PSK}}
      auth = psk
      {{- else}}
      auth = pubkey
      certs = {{.CertFile}}
      {{- end}}
      id = {{.LocalID}}
    }
    remote {
      {{- if .PSK}}
      auth = psk
      {{- else}}
      auth = pubkey
      cacerts = {{.CAFile}}
      {{- end}}
      id = {{.RemoteID}}
    }
    children {
      rampart {
        local_ts = {{.LocalTS}}
        remote_ts = {{.RemoteTS}}
        esp_proposals = {{.ESPProposals}}
        mode = {{.Mode}}
        {{- if .ChildRekeyTime}}
        rekey_time = {{.ChildRekeyTime}}
        life_time = {{.ChildLifeTime}}
        rand_time = 0s
        {{- end}}
        start_action = {{.StartAction}}
        {{- if .DPDDelay}}
        dpd_action = clear
        {{- end}}
      }
    }
  }
}
secrets {
  {{- if .PSK}}
  ike-rampart {
    id-local = {{.LocalID}}
    id-remote = {{.RemoteID}}
    secret = "{{.PSK}}"
  }
  {{- end}}
}
`))

func seconds(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Start writes the configuration, starts charon in the namespace and loads
// the connection. Stop it with Stop (tests: t.Cleanup).
func Start(o Options) (*Charon, error) {
	if _, err := os.Stat(CharonPath); err != nil {
		return nil, fmt.Errorf("strongswan: %s: %w (apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins libstrongswan-extra-plugins)", CharonPath, err)
	}
	if o.LocalID == "" {
		o.LocalID = o.Local.String()
	}
	if o.RemoteID == "" {
		o.RemoteID = o.Remote.String()
	}
	if o.Proposals == "" {
		o.Proposals = "aes256gcm16-prfsha256-x25519"
	}
	if o.ESPProposals == "" {
		o.ESPProposals = "aes256gcm16"
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "run"), 0o700); err != nil {
		return nil, err
	}
	var conf, swanctl bytes.Buffer
	if err := confTemplate.Execute(&conf, o); err != nil {
		return nil, err
	}
	mode, start := "tunnel", "none"
	if o.Transport {
		mode = "transport"
	}
	if o.Initiate {
		start = "start"
	}
	if err := swanctlTemplate.Execute(&swanctl, map[string]any{
		"Local": o.Local, "Remote": o.Remote, "LocalID": o.LocalID, "RemoteID": o.RemoteID,
		"Proposals": o.Proposals, "ESPProposals": o.ESPProposals, "PSK": o.PSK,
		"CertFile": o.CertFile, "KeyFile": o.KeyFile, "CAFile": o.CAFile,
		"LocalTS": prefixes(o.LocalTS), "RemoteTS": prefixes(o.RemoteTS), "Mode": mode, "StartAction": start,
		"RekeyTime": seconds(o.RekeyTime), "ChildRekeyTime": seconds(o.ChildRekeyTime), "ChildLifeTime": seconds(2 * o.ChildRekeyTime), "DPDDelay": seconds(o.DPDDelay),
		"Fragmentation": o.Fragmentation,
	}); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "strongswan.conf"), conf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "swanctl.conf"), swanctl.Bytes(), 0o600); err != nil {
		return nil, err
	}
	// swanctl loads private keys only from the pkcs8/ (private/, rsa/,
	// ecdsa/) folder next to the swanctl.conf it is given.
	if o.KeyFile != "" {
		key, err := os.ReadFile(o.KeyFile)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(o.Dir, "pkcs8"), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(o.Dir, "pkcs8", "key.pem"), key, 0o600); err != nil {
			return nil, err
		}
	}
	c := &Charon{opts: o, log: &lockedBuffer{}, done: make(chan struct{}), vici: "unix://" + filepath.Join(o.Dir, "charon.vici")}
	// charon's pid file is always /run/charon.pid: give it a /run of its
	// own. ip netns exec already runs it in a private mount namespace; sh
	// and ip exec, so the PID is charon's.
	c.cmd = o.NS.Command(context.Background(), "sh", "-c",
		`mount --bind "$1/run" /run && exec env STRONGSWAN_CONF="$1/strongswan.conf" "$2"`, "sh", o.Dir, CharonPath)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("strongswan: start charon: %w", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(o.Dir, "charon.vici")); err == nil {
			break
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("strongswan: charon exited: %v\n%s", c.err, c.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("strongswan: charon did not open its vici socket in 10 s\n%s", c.log)
		}
	}
	if out, err := c.Swanctl("--load-all", "--file", filepath.Join(o.Dir, "swanctl.conf")); err != nil {
		c.Stop()
		return nil, fmt.Errorf("strongswan: swanctl --load-all: %v\n%s", err, out)
	}
	return c, nil
}

// Swanctl runs swanctl against this charon.
func (c *Charon) Swanctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "swanctl", append(args, "--uri", c.vici)...).CombinedOutput()
	return string(out), err
}

// Log is what charon has logged so far.
func (c *Charon) Log() string { return c.log.String() }

// LogContains waits up to timeout for charon's log to contain s: the log
// comes through a pipe and may lag what charon did.
func (c *Charon) LogContains(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.Log(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// ListSAs is `swanctl --list-sas` (text, for assertions and failure logs).
func (c *Charon) ListSAs() string {
	out, err := c.Swanctl("--list-sas")
	if err != nil {
		return fmt.Sprintf("swanctl --list-sas: %v\n%s", err, out)
	}
	return out
}

// WaitEstablished waits until the connection has an established IKE SA and
// an installed CHILD_SA.
func (c *Charon) WaitEstablished(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out := c.ListSAs()
		if strings.Contains(out, "ESTABLISHED") && strings.Contains(out, "INSTALLED") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("strongswan: no established SAs after %v:\n%s\nlog:\n%s", timeout, out, c.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill ends charon at once with SIGKILL (by PID) and waits for it: a peer
// that is gone without a word, for dead peer detection to notice. The
// TUN device of kernel-libipsec goes with the process.
func (c *Charon) Kill() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("strongswan: kill charon: %w", err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("strongswan: charon did not exit on SIGKILL in 5 s")
	}
}

// Stop ends charon (SIGTERM by PID, SIGKILL after 5 s). It may be called
// more than once.
func (c *Charon) Stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
		return errors.New("strongswan: charon did not stop on SIGTERM; killed")
	}
	return nil
}
