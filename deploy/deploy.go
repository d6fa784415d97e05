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
			for i, doc := range strings.Split(string(b), "\n---\n") {
				var tm metav1.TypeMeta
				if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
					return nil, fmt.Errorf("deploy/%s: document %d: %w", f, i+1, err)
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
					return nil, fmt.Errorf("deploy/%s: document %d: unexpected kind %q", f, i+1, tm.Kind)
				}
				if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
					return nil, fmt.Errorf("deploy/%s: document %d: %w", f, i+1, err)
				}
				out = append(out, obj)
			}
		}
	}
	return out, nil
}
