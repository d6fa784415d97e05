package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rampartnet/rampart/internal/cni"
	"github.com/rampartnet/rampart/internal/datapath"
	"github.com/rampartnet/rampart/internal/nft"
	"github.com/rampartnet/rampart/ipsec/ike"
	"github.com/rampartnet/rampart/ipsec/ike/ikecrypto"
)

// CNIConfFile is the name of the network configuration Install writes.
const CNIConfFile = "10-rampart.conflist"

// PodMTU is the pods' MTU: the underlay's, less the outer IP and UDP
// headers and the most ESP that the node's proposals let IKE negotiate (37
// octets for AES-GCM, 57 for AES-CBC with HMAC-SHA-256), so that pods'
// packets to other nodes never need "fragmentation needed". The tunnel
// device gets the same MTU (datapath: UnderlayMTU less the overhead).
func PodMTU(c *Config) (int, error) {
	proposals := c.ESPProposals
	if len(proposals) == 0 {
		proposals, _ = ikecrypto.ParseESPProposals(agentESPProposals) // a constant that parses
	}
	esp, err := ike.MaxESPOverhead(proposals)
	if err != nil {
		return 0, fmt.Errorf("spec.encryption.espProposals: %w", err)
	}
	outer := 20 + 8
	if c.Address.Is6() {
		outer = 40 + 8
	}
	return datapath.DefaultUnderlayMTU - outer - esp, nil
}

// Install prepares a node before its agent first runs, as a CNI install
// step does: in enforce mode the guard table, so that pod traffic cannot
// leave in clear even before the agent starts, and the CNI network
// configuration that wires pods with rampart-cni. Both are idempotent.
func Install(c *Config) error {
	if c.Enforce {
		if err := nft.InstallGuard(c.guard()); err != nil {
			return err
		}
	}
	mtu, err := PodMTU(c)
	if err != nil {
		return err
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "rampart",
		"plugins": []map[string]any{{
			"type":    "rampart-cni",
			"podCIDR": c.PodCIDR.String(),
			"dataDir": c.CNIDataDir,
			"mtu":     mtu,
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if _, err := cni.ParseConf(flatten(conf)); err != nil {
		return fmt.Errorf("agent: install: the CNI configuration it would write is invalid: %w", err)
	}
	if err := os.MkdirAll(c.CNIConfDir, 0o755); err != nil {
		return fmt.Errorf("agent: install: %w", err)
	}
	path := filepath.Join(c.CNIConfDir, CNIConfFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("agent: install: %w", err)
	}
	return os.Rename(tmp, path)
}

func (c *Config) guard() nft.Guard {
	return nft.Guard{Local: c.PodCIDR, Cluster: c.ClusterCIDR, Device: c.Device}
}

// flatten is the plugin's view of a one-plugin conflist: the plugin's
// entry with the list's cniVersion and name.
func flatten(list map[string]any) []byte {
	p := map[string]any{"cniVersion": list["cniVersion"], "name": list["name"]}
	for k, v := range list["plugins"].([]map[string]any)[0] {
		p[k] = v
	}
	b, _ := json.Marshal(p)
	return b
}
