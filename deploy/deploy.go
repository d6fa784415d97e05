// Package deploy holds the manifests that install Rampart in a cluster
// (`kubectl apply -k deploy/`, docs/deploy.md), embedded so that the
// programs that stand a cluster up themselves (`rampart lab up
// --apiserver`) give the agents and the controller exactly the
// identities and rights a real installation gives them.
package deploy

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

//go:embed agent/*.yaml controller/*.yaml
var manifests embed.FS

// Identities are the ServiceAccounts and RBAC objects of the agents and
// the controller (agent/ and controller/: serviceaccount.yaml, rbac*.yaml),
// in an order they can be created in, each as its k8s.io/api type.
func Identities() ([]any, error) {
	var out []any
	for _, dir := range []string{"agent", "controller"} {
		files, err := fs.Glob(manifests, dir+"/*.yaml")
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if !strings.HasSuffix(f, "/serviceaccount.yaml") && !strings.Contains(f, "/rbac") {
				continue
			}
			b, err := manifests.ReadFile(f)
			if err != nil {
				return nil, err
			}
			objs, err := DecodeIdentities("deploy/"+f, b)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

// DecodeIdentities decodes the documents of a manifest (named name in
// errors) that are ServiceAccounts and RBAC objects into their k8s.io/api
// types, strictly; documents of other kinds are skipped when skipOthers
// is set by IdentitiesIn, and refused here.
func DecodeIdentities(name string, data []byte) ([]any, error) {
	return decodeIdentities(name, data, false)
}

// IdentitiesIn is DecodeIdentities that skips documents of other kinds
// (a document, such as docs/security.md's, that shows more).
func IdentitiesIn(name string, data []byte) ([]any, error) {
	return decodeIdentities(name, data, true)
}

func decodeIdentities(name string, data []byte, skipOthers bool) ([]any, error) {
	var out []any
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		var obj any
		switch tm.Kind {
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "Role":
			obj = &rbacv1.Role{}
		case "RoleBinding":
			obj = &rbacv1.RoleBinding{}
		default:
			if skipOthers {
				continue
			}
			return nil, fmt.Errorf("%s: document %d: unexpected kind %q", name, i+1, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		out = append(out, obj)
	}
	return out, nil
}
