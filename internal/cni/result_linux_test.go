package cni

import (
	"bytes"
	"encoding/json"
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// TestPrintResult: ADD's result converts to every version the plugin
// claims, with the pod's /32 and gateway intact.
func TestPrintResult(t *testing.T) {
	r := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{{Name: "rmp0"}, {Name: "eth0", Sandbox: "/run/netns/p"}},
		IPs: []*types100.IPConfig{{Interface: types100.Int(1),
			Address: net.IPNet{IP: net.ParseIP("198.19.1.2").To4(), Mask: net.CIDRMask(32, 32)}, Gateway: Gateway.AsSlice()}},
		Routes: []*types.Route{{Dst: *defaultNet, GW: Gateway.AsSlice()}},
	}
	for _, v := range VersionInfo.SupportedVersions() {
		var out bytes.Buffer
		if err := printResult(r, v, &out); err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		var got struct {
			CNIVersion string `json:"cniVersion"`
			IPs        []struct {
				Address, Gateway string
			} `json:"ips"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v\n%s", v, err, out.String())
		}
		if got.CNIVersion != v || len(got.IPs) != 1 || got.IPs[0].Address != "198.19.1.2/32" || got.IPs[0].Gateway != "169.254.1.1" {
			t.Errorf("%s: %s", v, out.String())
		}
	}
}
