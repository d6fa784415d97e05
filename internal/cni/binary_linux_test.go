package cni

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// runPlugin runs the built plugin as a runtime does: the command and its
// arguments in the environment, the configuration on stdin.
func runPlugin(t *testing.T, env []string, stdin string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir(t), "rampart-cni"))
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestBinary checks cmd/rampart-cni's wiring through skel without root:
// VERSION, the about text, and errors as CNI error JSON.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	out, _, err := runPlugin(t, []string{"CNI_COMMAND=VERSION"}, `{"cniVersion":"1.0.0"}`)
	if err != nil {
		t.Fatalf("VERSION: %v\n%s", err, out)
	}
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("VERSION: %v\n%s", err, out)
	}
	if !slices.Contains(v.SupportedVersions, "1.0.0") || !slices.Contains(v.SupportedVersions, "0.4.0") {
		t.Errorf("VERSION: supported %v, want 1.0.0 and 0.4.0 among them", v.SupportedVersions)
	}

	_, stderr, err := runPlugin(t, nil, "")
	if err != nil || !strings.Contains(stderr, "Rampart CNI plugin") || !strings.Contains(stderr, "1.0.0") {
		t.Errorf("no command: %v, stderr %q; want the about text and the versions", err, stderr)
	}

	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/run/netns/none", "CNI_IFNAME=eth0", "CNI_PATH=/none"}
	for _, c := range []struct {
		name, conf string
		code       uint
		want       string
	}{
		{"bad mtu", `{"cniVersion":"1.0.0","name":"rampart","type":"rampart-cni","podCIDR":"198.19.1.0/24","mtu":1}`, types.ErrInvalidNetworkConfig, "mtu 1: want 68 to 65535"},
		{"bad podCIDR", `{"cniVersion":"1.0.0","name":"rampart","type":"rampart-cni","podCIDR":"198.19.1.1/24"}`, types.ErrInvalidNetworkConfig, `did you mean "198.19.1.0/24"`},
		{"bad version", `{"cniVersion":"9.9.9","name":"rampart","type":"rampart-cni","podCIDR":"198.19.1.0/24"}`, types.ErrIncompatibleCNIVersion, "incompatible"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := runPlugin(t, env, c.conf)
			if err == nil {
				t.Fatalf("ADD: no error\n%s", out)
			}
			var e types.Error
			if jerr := json.Unmarshal([]byte(out), &e); jerr != nil {
				t.Fatalf("ADD: stdout is not CNI error JSON: %v\n%s", jerr, out)
			}
			if e.Code != c.code || !strings.Contains(e.Msg, c.want) {
				t.Errorf("ADD: code %d %q, want code %d with %q", e.Code, e.Msg, c.code, c.want)
			}
		})
	}
}
