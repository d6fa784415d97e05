package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// controllerGenArgs are the arguments of `make generate` (Makefile,
// target generate) with the outputs sent to dir instead of the tree: keep
// the two in step.
func controllerGenArgs(dir string) []string {
	return []string{
		"object", "paths=./api/v1alpha1/...", "output:object:dir=" + filepath.Join(dir, "object"),
		"crd", "output:crd:dir=" + filepath.Join(dir, "crds"),
	}
}

// TestGeneratedUpToDate runs controller-gen into a temporary directory and
// compares its output with the committed zz_generated.deepcopy.go and
// deploy/crds, so that a change to the types without `make generate`
// fails here rather than in a cluster. It needs bin/controller-gen, which
// `make generate` builds from tools/controller-gen; without it the test
// skips, since the main module deliberately does not depend on
// controller-tools.
func TestGeneratedUpToDate(t *testing.T) {
	root := repoRoot(t)
	gen := filepath.Join(root, "bin", "controller-gen")
	if fi, err := os.Stat(gen); err != nil || fi.Mode()&0o111 == 0 {
		t.Skipf("%s not found: `make generate` builds it (tools/controller-gen) and regenerates; this test then checks the committed output", gen)
	}
	tmp := t.TempDir()
	cmd := exec.Command(gen, controllerGenArgs(tmp)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", gen, strings.Join(controllerGenArgs(tmp), " "), err, out)
	}

	compare := func(generated, committed string) {
		t.Helper()
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(committed)
		if err != nil {
			t.Errorf("%s: %v; run `make generate` and commit the result", rel(root, committed), err)
			return
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what controller-gen makes of the types now (first difference at line %d): run `make generate` and commit the result",
				rel(root, committed), firstDiffLine(got, want))
		}
	}
	compare(filepath.Join(tmp, "object", "zz_generated.deepcopy.go"), filepath.Join(root, "api", "v1alpha1", "zz_generated.deepcopy.go"))

	generated := yamlNames(t, filepath.Join(tmp, "crds"))
	committed := yamlNames(t, filepath.Join(root, "deploy", "crds"))
	for _, name := range generated {
		compare(filepath.Join(tmp, "crds", name), filepath.Join(root, "deploy", "crds", name))
	}
	for _, name := range committed {
		if !slices.Contains(generated, name) {
			t.Errorf("deploy/crds/%s is no longer generated (its type was removed or renamed): delete it", name)
		}
	}
}

func yamlNames(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	return names
}

// firstDiffLine is the 1-based number of the first line where a and b
// differ.
func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

// repoRoot is the directory of the main module's go.mod, above the test's
// working directory (go test runs in the package's directory).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/rampartnet/rampart\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of github.com/rampartnet/rampart above the working directory")
		}
		dir = parent
	}
}
