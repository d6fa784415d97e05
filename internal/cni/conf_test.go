package cni

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseConf(t *testing.T) {
	c, err := ParseConf([]byte(`{"cniVersion":"1.0.0","name":"rampart","type":"rampart-cni",
		"podCIDR":"198.19.1.0/24","dataDir":"/var/lib/rampart/test","mtu":1400,
		"runtimeConfig":{"portMappings":[]},"dns":{"nameservers":["198.18.0.10"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.CNIVersion != "1.0.0" || c.Name != "rampart" || c.Type != "rampart-cni" ||
		c.Prefix != netip.MustParsePrefix("198.19.1.0/24") || c.DataDir != "/var/lib/rampart/test" || c.MTU != 1400 ||
		len(c.DNS.Nameservers) != 1 {
		t.Errorf("ParseConf = %+v", c)
	}
	if got, want := c.StoreDir(), "/var/lib/rampart/test/rampart"; got != want {
		t.Errorf("StoreDir = %q, want %q", got, want)
	}

	// Defaults.
	c, err = ParseConf([]byte(`{"cniVersion":"1.0.0","name":"n","type":"rampart-cni","podCIDR":"198.19.2.0/30"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != DefaultDataDir || c.MTU != DefaultMTU {
		t.Errorf("defaults: dataDir %q mtu %d, want %q %d", c.DataDir, c.MTU, DefaultDataDir, DefaultMTU)
	}
}

func TestParseConfErrors(t *testing.T) {
	for _, c := range []struct {
		name, conf string
		code       uint
		want       []string // substrings of the message
	}{
		{"not json", `{"name":`, types.ErrDecodingFailure, []string{"network configuration"}},
		{"mtu string", `{"name":"n","podCIDR":"198.19.1.0/24","mtu":"1400"}`, types.ErrDecodingFailure, []string{`field "mtu"`}},
		{"podCIDR missing", `{"name":"n"}`, types.ErrInvalidNetworkConfig, []string{"podCIDR: missing"}},
		{"podCIDR garbage", `{"name":"n","podCIDR":"198.19.1.0"}`, types.ErrInvalidNetworkConfig, []string{`podCIDR "198.19.1.0": not a CIDR`}},
		{"podCIDR ipv6", `{"name":"n","podCIDR":"fd00:1::/64"}`, types.ErrInvalidNetworkConfig, []string{"IPv6 is not supported"}},
		{"podCIDR host bits", `{"name":"n","podCIDR":"198.19.1.7/24"}`, types.ErrInvalidNetworkConfig, []string{`did you mean "198.19.1.0/24"`}},
		{"podCIDR too small", `{"name":"n","podCIDR":"198.19.1.0/31"}`, types.ErrInvalidNetworkConfig, []string{"too small", "/30"}},
		{"dataDir relative", `{"name":"n","podCIDR":"198.19.1.0/24","dataDir":"var/lib"}`, types.ErrInvalidNetworkConfig, []string{`dataDir "var/lib": want an absolute path`}},
		{"mtu small", `{"name":"n","podCIDR":"198.19.1.0/24","mtu":67}`, types.ErrInvalidNetworkConfig, []string{"mtu 67: want 68 to 65535"}},
		{"mtu big", `{"name":"n","podCIDR":"198.19.1.0/24","mtu":65536}`, types.ErrInvalidNetworkConfig, []string{"mtu 65536"}},
		{"mtu negative", `{"name":"n","podCIDR":"198.19.1.0/24","mtu":-1}`, types.ErrInvalidNetworkConfig, []string{"mtu -1"}},
		{"ipam", `{"name":"n","podCIDR":"198.19.1.0/24","ipam":{"type":"host-local"}}`, types.ErrInvalidNetworkConfig, []string{`remove the "ipam" section (type "host-local")`}},
		{"name missing", `{"podCIDR":"198.19.1.0/24"}`, types.ErrInvalidNetworkConfig, []string{"name: missing"}},
		{"name bad", `{"name":"../x","podCIDR":"198.19.1.0/24"}`, types.ErrInvalidNetworkConfig, []string{`name "../x"`}},
		{"every problem at once", `{"name":"n","podCIDR":"x","dataDir":"d","mtu":1}`, types.ErrInvalidNetworkConfig,
			[]string{"podCIDR", "dataDir", "mtu"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConf([]byte(c.conf))
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("ParseConf: %v, want a *types.Error", err)
			}
			if e.Code != c.code {
				t.Errorf("code %d, want %d (%s)", e.Code, c.code, e.Msg)
			}
			for _, w := range c.want {
				if !strings.Contains(e.Msg, w) {
					t.Errorf("message %q does not contain %q", e.Msg, w)
				}
			}
		})
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"rampart","type":"rampart-cni","podCIDR":"198.19.1.0/24","dataDir":"/d","mtu":1400}`))
	f.Add([]byte(`{"name":"n","podCIDR":"198.19.1.0/30"}`))
	f.Add([]byte(`{"name":"n","podCIDR":"fd00::/64","mtu":-5}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConf(data)
		if err != nil {
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *types.Error", err)
			}
			return
		}
		// Whatever is accepted, a Store takes.
		if !c.Prefix.Addr().Is4() || c.Prefix.Masked() != c.Prefix || c.Prefix.Bits() > maxPrefixBits ||
			c.MTU < minMTU || c.MTU > maxMTU || !strings.HasPrefix(c.DataDir, "/") || c.Name == "" {
			t.Fatalf("accepted an invalid configuration: %+v", c)
		}
	})
}

func TestHostVethName(t *testing.T) {
	a := HostVethName("c1", "eth0")
	if len(a) != 14 || !strings.HasPrefix(a, HostVethPrefix) {
		t.Errorf("HostVethName = %q, want rmp and 11 hex digits", a)
	}
	if a != HostVethName("c1", "eth0") {
		t.Error("HostVethName is not deterministic")
	}
	for _, other := range []string{HostVethName("c1", "eth1"), HostVethName("c2", "eth0"), HostVethName("c1/eth", "0")} {
		if other == a {
			t.Errorf("HostVethName collides: %q", other)
		}
	}
	// A known value (printf c1/eth0 | sha256sum), so the rule stays what
	// the node agent may compute on its own.
	if want := "rmpd72e032fedd"; a != want {
		t.Errorf("HostVethName = %q, want %q", a, want)
	}
}
