package authz

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rampartnet/rampart/internal/cluster"
)

// Lint reports what in the engine's policies is valid but can never match
// in this cluster: principals of another trust domain, of a ServiceAccount
// name no ServiceAccount can have, or of a namespace that does not exist;
// namespaces that do not exist; selectors and Services that pick no
// workload. namespaces are the cluster's namespaces, workloads its pods.
func Lint(e *Engine, namespaces map[string]bool, workloads []Workload) []cluster.Diagnostic {
	var ds []cluster.Diagnostic
	for _, p := range e.policies {
		obj := cluster.ObjectName("AuthorizationPolicy", p.Namespace, p.Name)
		warn := func(path, format string, args ...any) {
			ds = append(ds, cluster.At(cluster.Warning, p.Origin, obj, path, format, args...))
		}
		if !namespaces[p.Namespace] && p.Namespace != e.opts.RootNamespace {
			warn("metadata.namespace", "namespace %q does not exist: the policy applies to nothing", p.Namespace)
		}
		picked := false
		for _, w := range workloads {
			if p.applies(w, e.opts.RootNamespace) {
				picked = true
				break
			}
		}
		if !picked && namespaces[p.Namespace] {
			switch {
			case len(p.Services) > 0:
				warn("spec.targetRefs", "no pod is behind the Services %s: the policy applies to nothing", strings.Join(p.Services, ", "))
			case p.HasSelector:
				warn("spec.selector", "the selector picks no pod of namespace %s: the policy applies to nothing", p.Namespace)
			}
		}
		for i, r := range p.Rules {
			for j, s := range r.From {
				path := fmt.Sprintf("spec.rules[%d].from[%d].source", i, j)
				for k, pr := range s.Principals {
					if msg := e.principalProblem(pr, namespaces); msg != "" {
						warn(fmt.Sprintf("%s.principals[%d]", path, k), "%s", msg)
					}
				}
				for k, pr := range s.NotPrincipals {
					if msg := e.principalProblem(pr, namespaces); msg != "" {
						warn(fmt.Sprintf("%s.notPrincipals[%d]", path, k), "%s: excluding it excludes nobody", msg)
					}
				}
				for k, ns := range s.Namespaces {
					if !strings.Contains(ns, "*") && !namespaces[ns] {
						warn(fmt.Sprintf("%s.namespaces[%d]", path, k), "namespace %q does not exist: no caller can come from it", ns)
					}
				}
				for k, sa := range s.ServiceAccounts {
					if ns, _, _ := strings.Cut(sa, "/"); !namespaces[ns] {
						warn(fmt.Sprintf("%s.serviceAccounts[%d]", path, k), "namespace %q does not exist: no caller can be %s", ns, sa)
					}
				}
			}
		}
	}
	cluster.SortDiagnostics(ds)
	return ds
}

// principalProblem says why principal can never be a caller's ("" when
// it can). Principals are <trust domain>/ns/<namespace>/sa/<name>; a
// pattern with '*' is checked only in its literal parts.
func (e *Engine) principalProblem(principal string, namespaces map[string]bool) string {
	if strings.Contains(principal, "*") {
		return ""
	}
	parts := strings.Split(principal, "/")
	if len(parts) != 5 || parts[1] != "ns" || parts[3] != "sa" {
		return fmt.Sprintf("%q is not a workload principal (%s/ns/NAMESPACE/sa/SERVICEACCOUNT): it matches no caller", principal, e.opts.TrustDomain)
	}
	td, ns, sa := parts[0], parts[2], parts[4]
	switch {
	case td != e.opts.TrustDomain:
		return fmt.Sprintf("%q is of trust domain %q, not the mesh's %q: it matches no caller", principal, td, e.opts.TrustDomain)
	case len(validation.IsDNS1123Subdomain(sa)) > 0:
		return fmt.Sprintf("%q: %q is not a valid ServiceAccount name, so no caller has it", principal, sa)
	case !namespaces[ns]:
		return fmt.Sprintf("%q: namespace %q does not exist", principal, ns)
	}
	return ""
}
