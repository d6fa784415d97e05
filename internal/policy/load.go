package policy

import (
	"errors"

	"github.com/rampartnet/rampart/internal/cluster"
)

// ErrInvalid means the input has errors that the API server would refuse;
// the diagnostics say which.
var ErrInvalid = errors.New("the input has errors")

// FromSnapshot validates a snapshot and builds its model. It returns every
// diagnostic of reading and validation, sorted. When there are errors it
// refuses with ErrInvalid, unless skipInvalid is set: then the objects with
// errors are left out, as the API server would have refused them, and the
// model is built from the rest. An analysis must never quietly run on
// input it could not read.
func FromSnapshot(s *cluster.Snapshot, skipInvalid bool) (*Model, []cluster.Diagnostic, error) {
	diags := append(append([]cluster.Diagnostic(nil), s.Diagnostics...), Validate(s)...)
	if cluster.HasErrors(diags) {
		if !skipInvalid {
			cluster.SortDiagnostics(diags)
			return nil, diags, ErrInvalid
		}
		s = withoutInvalid(s, diags)
	}
	m, more := NewModel(s)
	diags = append(diags, more...)
	cluster.SortDiagnostics(diags)
	return m, diags, nil
}

// withoutInvalid returns a copy of s without the objects that have an
// error diagnostic.
func withoutInvalid(s *cluster.Snapshot, diags []cluster.Diagnostic) *cluster.Snapshot {
	bad := map[string]bool{}
	for _, d := range diags {
		if d.Severity == cluster.Error && d.Object != "" {
			bad[d.Object] = true
		}
	}
	out := &cluster.Snapshot{Diagnostics: s.Diagnostics}
	for _, n := range s.Namespaces {
		if !bad[cluster.ObjectName("Namespace", "", n.Name)] {
			out.Namespaces = append(out.Namespaces, n)
		}
	}
	for _, p := range s.Pods {
		if !bad[cluster.ObjectName(p.Kind, p.Namespace, p.Name)] {
			out.Pods = append(out.Pods, p)
		}
	}
	for _, n := range s.Nodes {
		if !bad[cluster.ObjectName("Node", "", n.Name)] {
			out.Nodes = append(out.Nodes, n)
		}
	}
	for _, sv := range s.Services {
		if !bad[cluster.ObjectName("Service", sv.Namespace, sv.Name)] {
			out.Services = append(out.Services, sv)
		}
	}
	for _, np := range s.NetworkPolicies {
		if !bad[cluster.ObjectName("NetworkPolicy", np.Namespace, np.Name)] {
			out.NetworkPolicies = append(out.NetworkPolicies, np)
		}
	}
	for _, p := range s.ClusterNetworkPolicies {
		if !bad[cluster.ObjectName(KindClusterNetworkPolicy, "", p.Name)] {
			out.ClusterNetworkPolicies = append(out.ClusterNetworkPolicies, p)
		}
	}
	for _, p := range s.AdminNetworkPolicies {
		if !bad[cluster.ObjectName(KindAdminNetworkPolicy, "", p.Name)] {
			out.AdminNetworkPolicies = append(out.AdminNetworkPolicies, p)
		}
	}
	for _, p := range s.BaselineAdminNetworkPolicies {
		if !bad[cluster.ObjectName(KindBaselineAdminNetworkPolicy, "", p.Name)] {
			out.BaselineAdminNetworkPolicies = append(out.BaselineAdminNetworkPolicies, p)
		}
	}
	return out
}
