package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
)

// Defaults of the network configuration.
const (
	DefaultDataDir = "/var/lib/rampart/cni"
	DefaultMTU     = 1500
)

// Limits that the configuration is checked against.
const (
	// minMTU is the smallest datagram every IPv4 host must take without
	// fragmenting (RFC 791); maxMTU is the largest a veth takes
	// (ETH_MAX_MTU, drivers/net/veth.c).
	minMTU = 68
	maxMTU = 65535
	// maxPrefixBits: a /30 leaves one address for a pod once the network
	// address, the node's first address and the broadcast address are set
	// aside; a /31 or /32 leaves none.
	maxPrefixBits = 30
)

// NetConf is the plugin's network configuration as the runtime passes it
// on stdin (one entry of a CNI 1.0 conflist, with the list's cniVersion and
// name copied in):
//
//	{"cniVersion":"1.0.0","name":"rampart","type":"rampart-cni",
//	 "podCIDR":"198.19.1.0/24","dataDir":"/var/lib/rampart/cni","mtu":1400}
//
// Fields the runtime adds (runtimeConfig, args, prevResult) are accepted.
type NetConf struct {
	types.PluginConf

	// PodCIDR is the node's IPv4 pod CIDR; every pod of the node gets one
	// address of it. Required.
	PodCIDR string `json:"podCIDR"`
	// DataDir holds the address store, one directory per network name
	// (default DefaultDataDir). It must be absolute.
	DataDir string `json:"dataDir,omitempty"`
	// MTU of both ends of every pod's veth (default DefaultMTU).
	MTU int `json:"mtu,omitempty"`

	// Prefix is PodCIDR parsed.
	Prefix netip.Prefix `json:"-"`
}

// StoreDir is the directory of the network's address store.
func (c *NetConf) StoreDir() string { return filepath.Join(c.DataDir, c.Name) }

// ParseConf decodes and validates a network configuration, filling in the
// defaults. Its errors are *types.Error: ErrDecodingFailure for JSON that
// does not decode, ErrInvalidNetworkConfig (naming every field at fault)
// for a configuration that decodes but is wrong.
func ParseConf(data []byte) (*NetConf, error) {
	var c NetConf
	if err := json.Unmarshal(data, &c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, types.NewError(types.ErrDecodingFailure,
				fmt.Sprintf("network configuration: field %q: want a JSON value of Go type %s, got a JSON %s", te.Field, te.Type, te.Value), "")
		}
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("network configuration: %v", err), "")
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks every field and reports all problems at once, each
// naming its field, what is wrong and what would be right.
func (c *NetConf) validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if c.Name == "" {
		add(`name: missing; want the network's name, e.g. "rampart"`)
	} else if e := utils.ValidateNetworkName(c.Name); e != nil {
		add("name %q: want letters, digits, '_', '.' and '-', starting with a letter or digit", c.Name)
	}

	var err error
	switch c.PodCIDR {
	case "":
		add(`podCIDR: missing; want the node's IPv4 pod CIDR, e.g. "198.19.1.0/24"`)
	default:
		c.Prefix, err = netip.ParsePrefix(c.PodCIDR)
		switch {
		case err != nil:
			add(`podCIDR %q: not a CIDR; want e.g. "198.19.1.0/24"`, c.PodCIDR)
		case !c.Prefix.Addr().Is4():
			add("podCIDR %q: IPv6 is not supported; want an IPv4 CIDR", c.PodCIDR)
		case c.Prefix.Masked() != c.Prefix:
			add("podCIDR %q: host bits are set; did you mean %q?", c.PodCIDR, c.Prefix.Masked().String())
		case c.Prefix.Bits() > maxPrefixBits:
			add("podCIDR %q: too small; want /%d or shorter (the network, first and broadcast addresses are never handed out)", c.PodCIDR, maxPrefixBits)
		}
	}

	if !filepath.IsAbs(c.DataDir) {
		add("dataDir %q: want an absolute path", c.DataDir)
	}
	if c.MTU < minMTU || c.MTU > maxMTU {
		add("mtu %d: want %d to %d", c.MTU, minMTU, maxMTU)
	}
	if c.IPAM.Type != "" {
		add(`ipam: rampart-cni hands out addresses itself, from podCIDR; remove the "ipam" section (type %q)`, c.IPAM.Type)
	}

	if len(problems) == 0 {
		return nil
	}
	return types.NewError(types.ErrInvalidNetworkConfig, "network configuration: "+strings.Join(problems, "; "), "")
}
