package ikecrypto

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	ok := write("psk", 0o600, "correct horse battery staple\n")
	got, err := ReadSecretFile(ok)
	if err != nil || string(got) != "correct horse battery staple\n" {
		t.Errorf("0600: %q %v", got, err)
	}
	if got, err := ReadSecretFile(write("ro", 0o400, "k")); err != nil || string(got) != "k" {
		t.Errorf("0400: %q %v", got, err)
	}
	if got, err := ReadSecretFile(write("empty", 0o600, "")); err != nil || len(got) != 0 {
		t.Errorf("empty: %q %v", got, err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o620, 0o602} {
		p := write("loose", mode, "secret")
		_, err := ReadSecretFile(p)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+p) || strings.Contains(err.Error(), "secret\"") {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if _, err := ReadSecretFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
	big := write("big", 0o600, strings.Repeat("x", maxSecretFile+1))
	if _, err := ReadSecretFile(big); err == nil {
		t.Error("oversized file: no error")
	}
}
