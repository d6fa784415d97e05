package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadString(t *testing.T, files map[string]string) *Snapshot {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadKinds(t *testing.T) {
	s := loadString(t, map[string]string{
		"a.yaml": `apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {team: red}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: wordpress, namespace: web}
spec:
  selector: {matchLabels: {app: wp}}
  template:
    metadata: {labels: {app: wp}}
    spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup, namespace: data}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: backup}}
        spec: {containers: [{name: c}], restartPolicy: Never}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
`,
		"sub/b.json": `{"apiVersion":"v1","kind":"List","items":[
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"x"}},
  "spec":{"containers":[{"name":"c"}]},"status":{"podIP":"198.18.0.5"}},
 {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"deny","namespace":"web"},
  "spec":{"podSelector":{}}}]}`,
	})
	if len(s.Pods) != 3 || len(s.NetworkPolicies) != 1 {
		t.Fatalf("pods %d policies %d; diags %v", len(s.Pods), len(s.NetworkPolicies), s.Diagnostics)
	}
	byName := map[string]*Pod{}
	for _, p := range s.Pods {
		byName[p.Namespace+"/"+p.Name] = p
	}
	if p := byName["data/backup"]; p == nil || p.Kind != "CronJob" || p.Labels["app"] != "backup" ||
		p.SpecPath != "spec.jobTemplate.spec.template.spec" {
		t.Errorf("cronjob endpoint = %+v", p)
	}
	if p := byName["default/p"]; p == nil || p.Status.PodIP != "198.18.0.5" {
		t.Errorf("bare pod = %+v", p)
	}
	if p := byName["web/wordpress"]; p == nil || p.Origin.Line != 5 || !strings.HasSuffix(p.Origin.File, "a.yaml") {
		t.Errorf("deployment origin = %+v", p.Origin)
	}
	ns := map[string]*Namespace{}
	for _, n := range s.Namespaces {
		ns[n.Name] = n
	}
	if n := ns["web"]; n == nil || !n.Declared || n.Labels["kubernetes.io/metadata.name"] != "web" || n.Labels["team"] != "red" {
		t.Errorf("web = %+v", n)
	}
	if n := ns["data"]; n == nil || n.Declared || len(n.Labels) != 1 {
		t.Errorf("undeclared data = %+v", n)
	}
	if len(s.Diagnostics) != 1 || s.Diagnostics[0].Severity != Note || !strings.Contains(s.Diagnostics[0].Message, "ConfigMap") {
		t.Errorf("diagnostics = %v", s.Diagnostics)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		line      int
		path      string
		contains  string
	}{
		{"unknown field", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingress:
  - form: []
`, 7, "spec.ingress[0].form", `unknown field "form"`},
		{"policy spec under the wrong kind", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: p}
spec:
  podSelector: {}
`, 2, "kind", "did you mean apiVersion: networking.k8s.io/v1, kind: NetworkPolicy"},
		{"old apiVersion", `apiVersion: extensions/v1beta1
kind: NetworkPolicy
metadata: {name: p}
spec: {podSelector: {}}
`, 1, "apiVersion", "use apiVersion: networking.k8s.io/v1"},
		{"wrong type", `apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, ports: [{containerPort: [1]}]}]}
`, 4, "", "wrong type"},
		{"no kind", `metadata: {name: p}
`, 1, "", "missing apiVersion or kind"},
		{"syntax", "apiVersion: v1\nkind: Pod\n  bad: [\n", 0, "", "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadString(t, map[string]string{"x.yaml": tc.doc})
			if len(s.Diagnostics) != 1 {
				t.Fatalf("diagnostics = %v", s.Diagnostics)
			}
			d := s.Diagnostics[0]
			if d.Severity != Error || !strings.Contains(d.String(), tc.contains) ||
				(tc.line > 0 && d.Line != tc.line) || (tc.path != "" && d.Path != tc.path) {
				t.Errorf("got %s (line %d, path %q)", d, d.Line, d.Path)
			}
			if len(s.NetworkPolicies)+len(s.Pods) != 0 {
				t.Errorf("an invalid object was kept")
			}
		})
	}
}

func TestLoadDuplicates(t *testing.T) {
	s := loadString(t, map[string]string{"x.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {selector: {}, template: {spec: {containers: [{name: c}]}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: shop}
spec: {selector: {}, template: {spec: {containers: [{name: c}]}}}
`})
	if len(s.Pods) != 1 || s.Pods[0].Kind != "Deployment" || len(s.Diagnostics) != 1 ||
		!strings.Contains(s.Diagnostics[0].Message, "x.yaml:3") || s.Diagnostics[0].Line != 8 {
		t.Errorf("pods %d, diagnostics %v", len(s.Pods), s.Diagnostics)
	}
}

func TestLineOf(t *testing.T) {
	s := loadString(t, map[string]string{"x.yaml": `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: n}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: web
  ingress:
  - from:
    - podSelector: {}
    - namespaceSelector:
        matchLabels: {a: b}
`})
	o := s.NetworkPolicies[0].Origin
	for path, want := range map[string]int{
		"":     1,
		"spec": 5,
		"spec.podSelector.matchLabels[app.kubernetes.io/name]":  7,
		"spec.ingress[0].from[1]":                               11,
		"spec.ingress[0].from[1].namespaceSelector.matchLabels": 12,
		"spec.ingress[0].from[0].podSelector":                   10,
		"spec.ingress[3].from":                                  9, // deepest existing ancestor: the list
		"spec.egress":                                           5,
	} {
		if got := o.LineOf(path); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", path, got, want)
		}
	}
}
