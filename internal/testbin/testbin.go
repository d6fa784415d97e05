// Package testbin gives end-to-end tests the binaries they run: the ones
// `make build` made ($RAMPART_BIN, with rampart-cni beside it), or, when a
// test runs alone, ones built for it.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Path returns the binary cmd/<name> of this module ("rampart" or
// "rampart-cni"): $RAMPART_BIN for rampart and the file of that name
// beside it for the others, or one built into the test's temporary
// directory.
func Path(t testing.TB, name string) string {
	t.Helper()
	if b := os.Getenv("RAMPART_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		if name == "rampart" {
			return abs
		}
		return filepath.Join(filepath.Dir(abs), name)
	}
	bin := filepath.Join(t.TempDir(), name)
	// By import path, so that it builds from any package's directory.
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/rampartnet/rampart/cmd/"+name).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}
