package datapath

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartnet/rampart/api/v1alpha1"
	"github.com/rampartnet/rampart/internal/cluster"
	"github.com/rampartnet/rampart/ipsec/esp"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// Config is a validated Tunnel: what Device runs.
type Config struct {
	Name           string
	DeviceName     string
	MTU            int // of the TUN device; 0: derived from UnderlayMTU
	LocalAddr      netip.Addr
	Port           uint16
	UnderlayMTU    int
	ControlSocket  string
	MetricsAddress string
	// IKE is the IKE daemon's retransmission, for the peers keyed by IKE.
	IKE   IKEOptions
	Peers []Peer
}

// IKEOptions are the IKE daemon's settings (spec.ike), shared by its peers.
type IKEOptions struct {
	// Retransmit is the first retransmission timeout, doubled each time;
	// Tries the number of sends before the IKE SA is given up.
	Retransmit time.Duration
	Tries      int
}

// Peer is one remote endpoint with its selectors and, when keyed by hand,
// its SA pair.
type Peer struct {
	Name     string
	Endpoint netip.AddrPort
	Mode     esp.Mode
	// LocalSubnets and RemoteSubnets are the traffic selectors: a packet
	// from LocalSubnets to RemoteSubnets is sealed for this peer; one
	// received from it must come from RemoteSubnets to LocalSubnets. In
	// transport mode they are the two hosts' own addresses.
	LocalSubnets, RemoteSubnets []netip.Prefix
	MTU                         int // path MTU to this peer; 0: UnderlayMTU
	// In and Out are manually keyed SAs, or nil when IKE keys the peer.
	In, Out *esp.Config
	// IKE keys the peer when set.
	IKE *IKEPeer
}

// IKEPeer is how IKEv2 keys a peer.
type IKEPeer struct {
	LocalID, RemoteID          ikecrypto.Identity
	PSK                        []byte
	IKEProposals, ESPProposals []ikecrypto.Proposal
	// Certs (leaf first), Key and CAs authenticate with certificates.
	Certs, CAs []*x509.Certificate
	Key        crypto.Signer
	Initiate   bool
	// StrictTS: the CHILD_SA's selectors must be exactly the subnets
	// configured, never narrowed (node agents; see ike.Config.StrictTS).
	StrictTS       bool
	RekeyTime      time.Duration
	ChildRekeyTime time.Duration
	DPDInterval    time.Duration
	// ReplayWindow of the CHILD_SAs (0: the default, 1024 packets).
	ReplayWindow int
}

// LoadOptions changes what LoadConfig accepts.
type LoadOptions struct {
	// AllowManualAEAD accepts manually keyed AES-GCM and ChaCha20-Poly1305
	// SAs. RFC 4106 §8.1 and RFC 7634 §4 forbid them: a restart begins the
	// sequence number, hence the nonce, again at 1 under the same key. For
	// tests only.
	AllowManualAEAD bool
}

const (
	// DefaultPort is ESP-in-UDP's port (RFC 3948 §2).
	DefaultPort = 4500
	// DefaultUnderlayMTU is Ethernet's.
	DefaultUnderlayMTU = 1500
	// DefaultIKERetransmit and DefaultIKETries are ipsec/ike's defaults
	// (strongSwan's: 4s, backing off by 1.8, 5 retransmissions).
	DefaultIKERetransmit = time.Second
	DefaultIKETries      = 5
)

// LoadConfig reads and validates a Tunnel file. Every problem is returned
// as a diagnostic with file:line and field path; the Config is nil unless
// there are none.
func LoadConfig(path string, opts LoadOptions) (*Config, []cluster.Diagnostic) {
	var t v1alpha1.Tunnel
	o, ds := cluster.ReadObject(path, v1alpha1.APIVersion, "Tunnel", &t)
	if len(ds) > 0 {
		return nil, ds
	}
	v := validator{o: o, object: "Tunnel " + t.Metadata.Name, opts: opts, dir: dirOf(path)}
	c := v.tunnel(&t)
	if cluster.HasErrors(v.ds) {
		for _, p := range c.Peers {
			zeroConfig(p.In)
			zeroConfig(p.Out)
		}
		return nil, v.ds
	}
	return c, v.ds
}

type validator struct {
	o      *cluster.Origin
	object string
	opts   LoadOptions
	dir    string
	ds     []cluster.Diagnostic
}

func (v *validator) errorf(path, format string, args ...any) *cluster.Diagnostic {
	v.ds = append(v.ds, cluster.At(cluster.Error, v.o, v.object, path, format, args...))
	return &v.ds[len(v.ds)-1]
}

func (v *validator) warnf(path, format string, args ...any) {
	v.ds = append(v.ds, cluster.At(cluster.Warning, v.o, v.object, path, format, args...))
}

func (v *validator) tunnel(t *v1alpha1.Tunnel) *Config {
	s := &t.Spec
	c := &Config{Name: t.Metadata.Name, DeviceName: s.Device.Name, MTU: s.Device.MTU,
		ControlSocket: s.ControlSocket, MetricsAddress: s.MetricsAddress,
		Port: DefaultPort, UnderlayMTU: DefaultUnderlayMTU}
	if t.Metadata.Name == "" {
		v.errorf("metadata.name", "a name is required")
	}
	if s.Device.Name == "" || len(s.Device.Name) > 15 || strings.ContainsAny(s.Device.Name, "/ \t") {
		v.errorf("spec.device.name", "%q is not a valid interface name (1 to 15 characters, no '/' or spaces)", s.Device.Name)
	}
	addr, err := netip.ParseAddr(s.LocalAddress)
	if err != nil {
		v.errorf("spec.localAddress", "%q is not an IP address", s.LocalAddress)
	}
	c.LocalAddr = addr.Unmap()
	if s.Port != 0 {
		if s.Port < 1 || s.Port > 65535 {
			v.errorf("spec.port", "%d is not a UDP port", s.Port)
		}
		c.Port = uint16(s.Port)
	}
	if s.UnderlayMTU != 0 {
		if s.UnderlayMTU < 1280 || s.UnderlayMTU > 65535 {
			v.errorf("spec.underlayMTU", "%d is out of range (1280 to 65535)", s.UnderlayMTU)
		}
		c.UnderlayMTU = s.UnderlayMTU
	}
	if s.Device.MTU != 0 && (s.Device.MTU < 576 || s.Device.MTU > c.UnderlayMTU) {
		v.errorf("spec.device.mtu", "%d is out of range (576 to the underlay MTU %d)", s.Device.MTU, c.UnderlayMTU)
	}
	if s.ControlSocket == "" {
		v.errorf("spec.controlSocket", "a control socket path is required (namespaces do not separate the filesystem: give each endpoint its own)")
	}
	if s.MetricsAddress != "" {
		if _, err := netip.ParseAddrPort(s.MetricsAddress); err != nil {
			v.errorf("spec.metricsAddress", "%q is not ADDRESS:PORT", s.MetricsAddress)
		}
	}
	if len(s.Peers) == 0 {
		v.errorf("spec.peers", "at least one peer is required")
	}
	c.IKE = v.ikeDaemon(s.IKE)
	names := map[string]int{}
	spis := map[uint32]string{}
	for i := range s.Peers {
		path := fmt.Sprintf("spec.peers[%d]", i)
		p := v.peer(path, &s.Peers[i], c)
		if j, dup := names[p.Name]; dup {
			v.errorf(path+".name", "peer %q is declared twice (first at spec.peers[%d])", p.Name, j)
		}
		names[p.Name] = i
		if p.In != nil {
			if other, dup := spis[p.In.SPI]; dup {
				v.errorf(path+".sas.inbound.spi", "inbound SPI %#x is already used by peer %q: inbound SPIs must be unique on an endpoint", p.In.SPI, other)
			}
			spis[p.In.SPI] = p.Name
		}
		c.Peers = append(c.Peers, p)
	}
	if s.IKE != nil && !slices.ContainsFunc(c.Peers, func(p Peer) bool { return p.IKE != nil }) {
		v.warnf("spec.ike", "no peer is keyed by IKE: these settings have no effect")
	}
	return c
}

// ikeDaemon validates spec.ike and fills in the defaults.
func (v *validator) ikeDaemon(s *v1alpha1.IKEDaemonSpec) IKEOptions {
	o := IKEOptions{Retransmit: DefaultIKERetransmit, Tries: DefaultIKETries}
	if s == nil {
		return o
	}
	if s.RetransmitTimeout != "" {
		d, err := time.ParseDuration(s.RetransmitTimeout)
		if err != nil || d < 100*time.Millisecond || d > time.Minute {
			v.errorf("spec.ike.retransmitTimeout", "%q is not a duration from 100ms to 1m (e.g. 1s)", s.RetransmitTimeout)
		}
		o.Retransmit = d
	}
	if s.RetransmitTries != 0 {
		if s.RetransmitTries < 1 || s.RetransmitTries > 10 {
			v.errorf("spec.ike.retransmitTries", "%d is out of range (1 to 10 sends of a request)", s.RetransmitTries)
		}
		o.Tries = s.RetransmitTries
	}
	return o
}

func (v *validator) peer(path string, ps *v1alpha1.PeerSpec, c *Config) Peer {
	p := Peer{Name: ps.Name, MTU: ps.MTU}
	if ps.Name == "" {
		v.errorf(path+".name", "a name is required")
	}
	ep, err := parseEndpoint(ps.Endpoint, c.Port)
	if err != nil {
		v.errorf(path+".endpoint", "%v", err)
	}
	p.Endpoint = ep
	if ep.IsValid() && c.LocalAddr.IsValid() && ep.Addr().Is4() != c.LocalAddr.Is4() {
		v.errorf(path+".endpoint", "%s and localAddress %s are of different IP families", ep.Addr(), c.LocalAddr)
	}
	switch ps.Mode {
	case "", "tunnel":
		p.Mode = esp.ModeTunnel
		p.LocalSubnets = v.prefixes(path+".localSubnets", ps.LocalSubnets)
		p.RemoteSubnets = v.prefixes(path+".remoteSubnets", ps.RemoteSubnets)
		if len(ps.LocalSubnets) == 0 {
			v.errorf(path+".localSubnets", "tunnel mode needs the local subnets offered to the peer")
		}
		if len(ps.RemoteSubnets) == 0 {
			v.errorf(path+".remoteSubnets", "tunnel mode needs the peer's subnets")
		}
	case "transport":
		p.Mode = esp.ModeTransport
		if len(ps.LocalSubnets)+len(ps.RemoteSubnets) > 0 {
			v.errorf(path+".mode", "transport mode protects the traffic between localAddress and the endpoint; subnets are for tunnel mode")
		}
		if ep.IsValid() && c.LocalAddr.IsValid() {
			p.LocalSubnets = []netip.Prefix{netip.PrefixFrom(c.LocalAddr, c.LocalAddr.BitLen())}
			p.RemoteSubnets = []netip.Prefix{netip.PrefixFrom(ep.Addr(), ep.Addr().BitLen())}
		}
	default:
		v.errorf(path+".mode", "%q is not a mode: use tunnel or transport", ps.Mode)
	}
	if ps.MTU != 0 && (ps.MTU < 1280 || ps.MTU > c.UnderlayMTU) {
		v.errorf(path+".mtu", "%d is out of range (1280 to the underlay MTU %d)", ps.MTU, c.UnderlayMTU)
	}
	switch {
	case ps.SAs != nil && ps.IKE != nil:
		v.errorf(path+".ike", "give either sas (manual keys) or ike, not both")
	case ps.IKE != nil:
		p.IKE = v.ike(path+".ike", ps.IKE, c, p)
	case ps.SAs != nil:
		p.Out = v.sa(path+".sas.outbound", &ps.SAs.Outbound, p.Mode)
		p.In = v.sa(path+".sas.inbound", &ps.SAs.Inbound, p.Mode)
	default:
		v.errorf(path, "a peer is keyed by IKE (ike) or by hand (sas)")
	}
	return p
}

func (v *validator) ike(path string, s *v1alpha1.IKESpec, c *Config, p Peer) *IKEPeer {
	k := &IKEPeer{Initiate: s.Initiate}
	id := func(field, value string, def netip.Addr) ikecrypto.Identity {
		if value == "" {
			value = def.String()
		}
		got, err := ikecrypto.ParseIdentity(value)
		if err != nil {
			v.errorf(path+"."+field, "%v", err)
		}
		return got
	}
	k.LocalID = id("localID", s.LocalID, c.LocalAddr)
	k.RemoteID = id("remoteID", s.RemoteID, p.Endpoint.Addr())
	switch {
	case s.PSKFile != "":
		k.PSK = v.secretFile(path+".pskFile", s.PSKFile)
	case s.CertFile != "" || s.KeyFile != "" || s.CAFile != "":
		k.Certs = v.certs(path+".certFile", s.CertFile)
		k.CAs = v.certs(path+".caFile", s.CAFile)
		k.Key = v.privateKey(path+".keyFile", s.KeyFile)
	default:
		v.errorf(path+".pskFile", "a pre-shared key file is required")
	}
	var err error
	if len(s.Proposals) > 0 {
		if k.IKEProposals, err = ikecrypto.ParseIKEProposals(strings.Join(s.Proposals, ",")); err != nil {
			v.errorf(path+".proposals", "%v", err)
		}
	}
	if len(s.ESPProposals) > 0 {
		if k.ESPProposals, err = ikecrypto.ParseESPProposals(strings.Join(s.ESPProposals, ",")); err != nil {
			v.errorf(path+".espProposals", "%v", err)
		}
	}
	k.ChildRekeyTime = time.Hour
	if s.ChildRekeyTime != "" {
		d, err := time.ParseDuration(s.ChildRekeyTime)
		if err != nil || d < time.Second {
			v.errorf(path+".childRekeyTime", "%q is not a duration of at least 1s (e.g. 1h)", s.ChildRekeyTime)
		}
		k.ChildRekeyTime = d
	}
	k.DPDInterval = 30 * time.Second
	if s.DPDInterval != "" {
		d, err := time.ParseDuration(s.DPDInterval)
		if err != nil || d < 0 {
			v.errorf(path+".dpdInterval", "%q is not a duration (e.g. 30s; 0s turns dead peer detection off)", s.DPDInterval)
		}
		k.DPDInterval = d
	}
	k.RekeyTime = 4 * time.Hour
	if s.RekeyTime != "" {
		d, err := time.ParseDuration(s.RekeyTime)
		if err != nil || d < time.Second {
			v.errorf(path+".rekeyTime", "%q is not a duration of at least 1s (e.g. 4h)", s.RekeyTime)
		}
		k.RekeyTime = d
	}
	return k
}

func (v *validator) path(name string) string {
	if !strings.HasPrefix(name, "/") && v.dir != "" {
		return v.dir + "/" + name
	}
	return name
}

// certs reads PEM certificates.
func (v *validator) certs(path, name string) []*x509.Certificate {
	if name == "" {
		v.errorf(path, "a PEM certificate file is required for certificate authentication")
		return nil
	}
	certs, err := ikecrypto.ReadCertificates(v.path(name))
	if err != nil {
		v.errorf(path, "%v", err)
	}
	return certs
}

// privateKey reads a PEM private key (PKCS#8, SEC 1 EC or PKCS#1 RSA) from
// a file only its owner can read.
func (v *validator) privateKey(path, name string) crypto.Signer {
	if name == "" {
		v.errorf(path, "a private key file is required for certificate authentication")
		return nil
	}
	key, err := ikecrypto.ReadPrivateKey(v.path(name))
	if err != nil {
		v.errorf(path, "%v", err)
	}
	return key
}

// secretFile reads a pre-shared key from a file only its owner can read.
func (v *validator) secretFile(path, name string) []byte {
	name = v.path(name)
	b, err := ikecrypto.ReadSecretFile(name)
	if err != nil {
		v.errorf(path, "%v", err)
		return nil
	}
	// The key is the file's text without the final newline, as strongSwan's
	// secret = "..." would hold it.
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		v.errorf(path, "%s is empty", name)
	}
	return b
}

func (v *validator) prefixes(path string, ss []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%q is not a CIDR", s)
			continue
		}
		if p.Masked() != p {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%s has host bits set", s).Hint = "write " + p.Masked().String()
			continue
		}
		out = append(out, p)
	}
	return out
}

func (v *validator) sa(path string, s *v1alpha1.SASpec, mode esp.Mode) *esp.Config {
	spi, err := parseSPI(s.SPI)
	if err != nil {
		v.errorf(path+".spi", "%v", err)
	}
	alg, err := esp.ParseAlgorithm(s.Algorithm)
	if err != nil {
		v.errorf(path+".algorithm", "%v", err)
		return nil
	}
	if alg != esp.AESCBCHMACSHA256 && !v.opts.AllowManualAEAD {
		v.errorf(path+".algorithm", "%s may not be keyed by hand: a restart would reuse nonces under the same key (RFC 4106 §8.1, RFC 7634 §4)", alg).Hint =
			"use aes-cbc-hmac-sha256 for manual keys, or --insecure-manual-aead-keys in tests"
	}
	c := &esp.Config{SPI: spi, Mode: mode, Algorithm: alg, ESN: s.ESN, ReplayWindow: s.ReplayWindow}
	c.Key = v.keyFile(path+".keyFile", s.KeyFile)
	if alg == esp.AESCBCHMACSHA256 {
		if s.AuthKeyFile == "" {
			v.errorf(path+".authKeyFile", "aes-cbc-hmac-sha256 needs an authentication key file")
		} else {
			c.AuthKey = v.keyFile(path+".authKeyFile", s.AuthKeyFile)
		}
	} else if s.AuthKeyFile != "" {
		v.errorf(path+".authKeyFile", "%s has no separate authentication key", alg)
	}
	if s.Lifetime != nil {
		c.Lifetime = v.lifetime(path+".lifetime", s.Lifetime)
	}
	if err := c.Validate(); err != nil && !cluster.HasErrors(v.ds) {
		v.errorf(path, "%v", err)
	}
	return c
}

func (v *validator) lifetime(path string, l *v1alpha1.LifetimeSpec) esp.Lifetime {
	lt := esp.Lifetime{
		Soft: esp.Limits{Bytes: l.SoftBytes, Packets: l.SoftPackets},
		Hard: esp.Limits{Bytes: l.HardBytes, Packets: l.HardPackets},
	}
	dur := func(field, s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			v.errorf(path+"."+field, "%q is not a positive duration (e.g. 1h)", s)
		}
		return d
	}
	lt.Soft.Time, lt.Hard.Time = dur("softTime", l.SoftTime), dur("hardTime", l.HardTime)
	return lt
}

// keyFile reads a hex key from a file that only its owner can read: a key
// readable by others is refused, as ssh refuses such a private key.
func (v *validator) keyFile(path, name string) []byte {
	if name == "" {
		v.errorf(path, "a key file is required")
		return nil
	}
	if !strings.HasPrefix(name, "/") && v.dir != "" {
		name = v.dir + "/" + name
	}
	fi, err := os.Stat(name)
	if err != nil {
		v.errorf(path, "%v", err)
		return nil
	}
	if fi.Mode().Perm()&0o077 != 0 {
		v.errorf(path, "%s is readable or writable by group or others (mode %v)", name, fi.Mode().Perm()).Hint = "chmod 600 " + name
		return nil
	}
	raw, err := os.ReadFile(name)
	if err != nil {
		v.errorf(path, "%v", err)
		return nil
	}
	defer clear(raw)
	s := strings.TrimSpace(string(raw))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	key := make([]byte, hex.DecodedLen(len(s)))
	if _, err := hex.Decode(key, []byte(s)); err != nil {
		clear(key)
		v.errorf(path, "%s does not hold a hex key", name)
		return nil
	}
	return key
}

func parseSPI(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an SPI (a 32-bit number such as 0x1001)", s)
	}
	if n < 256 {
		return 0, fmt.Errorf("SPI %d is reserved (RFC 4303 §2.1: 1 to 255 are reserved, 0 is never sent)", n)
	}
	return uint32(n), nil
}

func parseEndpoint(s string, defPort uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not ADDRESS or ADDRESS:PORT", s)
	}
	return netip.AddrPortFrom(a.Unmap(), defPort), nil
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return "."
}

func zeroConfig(c *esp.Config) {
	if c != nil {
		clear(c.Key)
		clear(c.AuthKey)
	}
}
