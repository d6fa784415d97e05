package deploy_test

// The subset of `kustomize build` (kubectl apply -k) that deploy/ uses:
// resources (files, and directories with a kustomization.yaml of their
// own), then namespace, then images, each kustomization applying its
// fields to what its resources built. The kustomization files are read
// strictly, so a field this subset does not implement (patches, labels,
// generators...) fails the tests instead of being silently ignored.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize.config.k8s.io/v1beta1
// Kustomization that deploy/ uses.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []image  `json:"images,omitempty"`
}

// image is one entry of images: the containers whose image is Name get
// NewName, NewTag or Digest instead.
type image struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// object is one document of a manifest, and where it comes from.
type object struct {
	file string // relative to deploy/
	doc  int    // 1-based, in the file
	*unstructured.Unstructured
}

func (o object) String() string {
	ns := o.GetNamespace()
	if ns != "" {
		ns += "/"
	}
	return fmt.Sprintf("%s %s%s (deploy/%s, document %d)", o.GetKind(), ns, o.GetName(), o.file, o.doc)
}

// kindInfo is what the tests need of a kind: its resource (for the
// dynamic client) and whether it is namespaced (for the namespace field).
type kindInfo struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// kinds are the kinds deploy/ may hold, by apiVersion and kind. One that
// is missing here fails the tests: add it with its resource and scope.
var kinds = map[string]kindInfo{
	"v1/Namespace":      {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	"v1/ServiceAccount": {schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true},
	"v1/ConfigMap":      {schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true},
	"apps/v1/DaemonSet": {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, true},
	"apps/v1/Deployment": {
		schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
	"rbac.authorization.k8s.io/v1/ClusterRole": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, false},
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, false},
	"rbac.authorization.k8s.io/v1/Role": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, true},
	"rbac.authorization.k8s.io/v1/RoleBinding": {
		schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, true},
	"apiextensions.k8s.io/v1/CustomResourceDefinition": {
		schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, false},
}

func kindOf(t testing.TB, o object) kindInfo {
	t.Helper()
	k, ok := kinds[o.GetAPIVersion()+"/"+o.GetKind()]
	if !ok {
		t.Fatalf("%s: apiVersion %q kind %q is not in the tests' table of kinds (deploy/kustomize_test.go): add it with its resource and scope",
			o, o.GetAPIVersion(), o.GetKind())
	}
	return k
}

// deployDir is the directory of this file: deploy/.
func deployDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate deploy/")
	}
	return filepath.Dir(file)
}

// build is `kustomize build deploy/` for the subset above. files gets
// every file that a kustomization named, relative to deploy/.
func build(t testing.TB) (objs []object, top kustomization, files []string) {
	t.Helper()
	return buildAt(t, "")
}

// gatewaysDir is the kustomization applied apart, for IPsecPeers'
// Secrets (deploy/gateways/kustomization.yaml says why).
const gatewaysDir = "gateways"

// buildAt is `kustomize build deploy/<dir>`; files are relative to
// deploy/.
func buildAt(t testing.TB, dir string) (objs []object, top kustomization, files []string) {
	t.Helper()
	root := deployDir(t)
	var walk func(dir string) ([]object, kustomization)
	walk = func(dir string) ([]object, kustomization) {
		kpath := filepath.Join(dir, "kustomization.yaml")
		k := readKustomization(t, root, kpath)
		files = append(files, rel(root, kpath))
		var out []object
		for _, r := range k.Resources {
			p := filepath.Join(dir, r)
			if !strings.HasPrefix(p, root+string(filepath.Separator)) {
				t.Fatalf("%s: resource %q is outside deploy/", rel(root, kpath), r)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: resource %q: %v", rel(root, kpath), r, err)
			}
			if fi.IsDir() {
				sub, _ := walk(p)
				out = append(out, sub...)
				continue
			}
			files = append(files, rel(root, p))
			out = append(out, readObjects(t, root, p)...)
		}
		if k.Namespace != "" {
			setNamespace(t, out, k.Namespace)
		}
		for _, img := range k.Images {
			setImage(out, img)
		}
		return out, k
	}
	objs, top = walk(filepath.Join(root, dir))
	seen := map[string]object{}
	for _, o := range objs {
		id := o.GetAPIVersion() + "/" + o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
		if prev, dup := seen[id]; dup {
			t.Fatalf("%s is also %s: kustomize refuses two objects with one identity", o, prev)
		}
		seen[id] = o
	}
	return objs, top, files
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

func readKustomization(t testing.TB, root, path string) kustomization {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (every directory in resources needs a kustomization.yaml)", err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s: %v (the tests implement namespace, resources and images only)", rel(root, path), err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s: apiVersion %q kind %q; want kustomize.config.k8s.io/v1beta1 Kustomization", rel(root, path), k.APIVersion, k.Kind)
	}
	return k
}

// readObjects reads the documents of a manifest file; documents with only
// comments are skipped, as kustomize does.
func readObjects(t testing.TB, root, path string) []object {
	t.Helper()
	docs := splitDocs(t, path)
	var out []object
	for i, doc := range docs {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("deploy/%s: document %d: %v", rel(root, path), i+1, err)
		}
		if m == nil {
			continue
		}
		out = append(out, object{file: rel(root, path), doc: i + 1, Unstructured: &unstructured.Unstructured{Object: m}})
	}
	return out
}

// splitDocs splits a multi-document YAML file at its "---" lines.
func splitDocs(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	var cur bytes.Buffer
	for line := range bytes.SplitAfterSeq(b, []byte("\n")) {
		if string(bytes.TrimRight(line, " \t\r\n")) == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

// setNamespace is kustomize's namespace field: every namespaced object
// moves into ns, a Namespace object is renamed to it, and the
// ServiceAccount subjects of role bindings that name a ServiceAccount of
// the build follow it.
func setNamespace(t testing.TB, objs []object, ns string) {
	t.Helper()
	sas := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" {
			sas[o.GetName()] = true
		}
	}
	for _, o := range objs {
		switch {
		case o.GetKind() == "Namespace":
			o.SetName(ns)
		case kindOf(t, o).namespaced:
			o.SetNamespace(ns)
		}
		if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, s := range subjects {
			if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" && sas[fmt.Sprint(m["name"])] {
				m["namespace"] = ns
			}
		}
		if err := unstructured.SetNestedSlice(o.Object, subjects, "subjects"); err != nil {
			t.Fatal(err)
		}
	}
}

// setImage is one entry of kustomize's images field, on the containers
// and init containers of pod templates.
func setImage(objs []object, img image) {
	for _, o := range objs {
		for _, field := range []string{"containers", "initContainers"} {
			path := []string{"spec", "template", "spec", field}
			cs, found, _ := unstructured.NestedSlice(o.Object, path...)
			if !found {
				continue
			}
			for _, c := range cs {
				m, ok := c.(map[string]any)
				if !ok {
					continue
				}
				ref, _ := m["image"].(string)
				name, tag, digest := splitImage(ref)
				if name != img.Name {
					continue
				}
				if img.NewName != "" {
					name = img.NewName
				}
				if img.NewTag != "" {
					tag, digest = img.NewTag, ""
				}
				if img.Digest != "" {
					tag, digest = "", img.Digest
				}
				m["image"] = joinImage(name, tag, digest)
			}
			_ = unstructured.SetNestedSlice(o.Object, cs, path...)
		}
	}
}

// splitImage splits an image reference into its name, tag and digest.
func splitImage(ref string) (name, tag, digest string) {
	name, digest, _ = strings.Cut(ref, "@")
	// A colon after the last slash starts the tag; one before it is a
	// registry's port.
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

func joinImage(name, tag, digest string) string {
	if tag != "" {
		name += ":" + tag
	}
	if digest != "" {
		name += "@" + digest
	}
	return name
}

// images lists every container image of the build, with where it is.
func images(objs []object) map[string][]string {
	out := map[string][]string{}
	for _, o := range objs {
		for _, field := range []string{"containers", "initContainers"} {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
			for _, c := range cs {
				if m, ok := c.(map[string]any); ok {
					ref, _ := m["image"].(string)
					out[ref] = append(out[ref], fmt.Sprintf("%s container %v", o, m["name"]))
				}
			}
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}
