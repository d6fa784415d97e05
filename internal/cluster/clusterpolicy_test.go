package cluster

import (
	"strings"
	"testing"
)

// The three kinds of sigs.k8s.io/network-policy-api are read with their
// origin, strictly, and sorted by name.
func TestLoadClusterPolicies(t *testing.T) {
	s := loadString(t, map[string]string{"guard.yaml": `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: z-last}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {}}
  egress:
  - name: no-kube-system
    action: Deny
    to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: a-first}
spec: {tier: Baseline, priority: 0, subject: {namespaces: {}}}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: anp}
spec:
  priority: 3
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: x}}}}
  ingress:
  - action: Allow
    from: [{namespaces: {}}]
    ports: [{portNumber: {port: 80}}, {namedPort: http}, {portRange: {protocol: UDP, start: 1000, end: 2000}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{networks: [203.0.113.0/24]}]}]
`})
	if len(s.Diagnostics) != 0 {
		t.Fatalf("diagnostics: %v", s.Diagnostics)
	}
	if len(s.ClusterNetworkPolicies) != 2 || s.ClusterNetworkPolicies[0].Name != "a-first" || s.ClusterNetworkPolicies[1].Name != "z-last" {
		t.Fatalf("cluster network policies: %v", s.ClusterNetworkPolicies)
	}
	cnp := s.ClusterNetworkPolicies[1]
	if cnp.Spec.Priority != 10 || cnp.Spec.Tier != "Admin" || len(cnp.Spec.Egress) != 1 || cnp.Spec.Egress[0].Name != "no-kube-system" {
		t.Errorf("ClusterNetworkPolicy z-last = %+v", cnp.Spec)
	}
	if got := cnp.Origin.LineOf("spec.egress[0].to[0].namespaces"); got != 11 {
		t.Errorf("line of spec.egress[0].to[0].namespaces = %d, want 11", got)
	}
	if len(s.AdminNetworkPolicies) != 1 || len(s.BaselineAdminNetworkPolicies) != 1 {
		t.Fatalf("v1alpha1 kinds: %d ANP, %d BANP", len(s.AdminNetworkPolicies), len(s.BaselineAdminNetworkPolicies))
	}
	anp := s.AdminNetworkPolicies[0]
	if ports := *anp.Spec.Ingress[0].Ports; len(ports) != 3 || ports[1].NamedPort == nil || *ports[1].NamedPort != "http" ||
		ports[2].PortRange == nil || ports[2].PortRange.End != 2000 {
		t.Errorf("ANP ports = %+v", ports)
	}
	if anp.Origin.LineOf("spec.ingress[0].ports") != 27 {
		t.Errorf("ANP origin: line %d", anp.Origin.LineOf("spec.ingress[0].ports"))
	}
	// A field present with the value 0 is there; one left out is not.
	if !s.ClusterNetworkPolicies[0].Origin.Has("spec.priority") || s.ClusterNetworkPolicies[0].Origin.Has("spec.ingress") {
		t.Error("Has: priority 0 must be present, ingress absent")
	}
	if !s.BaselineAdminNetworkPolicies[0].Origin.Has("spec.egress[0].to[0].networks[0]") ||
		s.BaselineAdminNetworkPolicies[0].Origin.Has("spec.egress[1]") {
		t.Error("Has on list elements")
	}
}

// A field written with no value is null: absent, for a required field,
// as the API server reads it.
func TestHasNull(t *testing.T) {
	s := loadString(t, map[string]string{"x.yaml": `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: p}
spec:
  tier: Admin
  priority:
  subject: {namespaces: {}}
`})
	if len(s.ClusterNetworkPolicies) != 1 {
		t.Fatalf("diagnostics: %v", s.Diagnostics)
	}
	o := s.ClusterNetworkPolicies[0].Origin
	if o.Has("spec.priority") || !o.Has("spec.tier") || !o.Has("spec.subject.namespaces") {
		t.Error("Has: null priority must be absent, tier and subject present")
	}
	if !NewOrigin("live", nil).Has("spec.priority") {
		t.Error("an object not read from a file cannot tell: Has must say true")
	}
}

func TestLoadClusterPolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		path      string
		contains  []string
	}{
		{"ANP under v1alpha2", `apiVersion: policy.networking.k8s.io/v1alpha2
kind: AdminNetworkPolicy
metadata: {name: p}
spec: {priority: 1, subject: {namespaces: {}}}
`, "apiVersion", []string{"serves only ClusterNetworkPolicy", "use apiVersion: policy.networking.k8s.io/v1alpha1", "spec.tier: Admin"}},
		{"BANP under v1alpha2", `apiVersion: policy.networking.k8s.io/v1alpha2
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec: {subject: {namespaces: {}}}
`, "apiVersion", []string{"spec.tier: Baseline"}},
		{"CNP under v1alpha1", `apiVersion: policy.networking.k8s.io/v1alpha1
kind: ClusterNetworkPolicy
metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}
`, "apiVersion", []string{"exists only in v1alpha2", "use apiVersion: policy.networking.k8s.io/v1alpha2"}},
		{"CNP under another group", `apiVersion: networking.k8s.io/v1
kind: ClusterNetworkPolicy
metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}
`, "apiVersion", []string{"use apiVersion: policy.networking.k8s.io/v1alpha2"}},
		{"cluster policy spec under an unknown kind", `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicies
metadata: {name: p}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: []}
`, "kind", []string{"did you mean apiVersion: policy.networking.k8s.io/v1alpha2, kind: ClusterNetworkPolicy"}},
		{"unknown field", `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{namespace: {}}]}]
`, "spec.egress[0].to[0].namespace", []string{`unknown field "namespace"`}},
		{"v1alpha1 field in a v1alpha2 rule", `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{namespaces: {}}], ports: [{portNumber: {port: 80}}]}]
`, "spec.egress[0].ports", []string{`unknown field "ports"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadString(t, map[string]string{"x.yaml": tc.doc})
			if len(s.Diagnostics) != 1 {
				t.Fatalf("diagnostics = %v", s.Diagnostics)
			}
			d := s.Diagnostics[0]
			if d.Severity != Error || d.Path != tc.path {
				t.Errorf("got %s (path %q, want %q)", d, d.Path, tc.path)
			}
			for _, c := range tc.contains {
				if !strings.Contains(d.String(), c) {
					t.Errorf("%q does not say %q", d, c)
				}
			}
			if n := len(s.ClusterNetworkPolicies) + len(s.AdminNetworkPolicies) + len(s.BaselineAdminNetworkPolicies); n != 0 {
				t.Errorf("an invalid object was kept")
			}
		})
	}
}

func TestLoadClusterPolicyDuplicates(t *testing.T) {
	doc := `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: same}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}
`
	// The same name under another kind is another object.
	other := `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: same}
spec: {priority: 1, subject: {namespaces: {}}}
`
	s := loadString(t, map[string]string{"a.yaml": doc, "b.yaml": doc + "---\n" + other})
	if len(s.ClusterNetworkPolicies) != 1 || len(s.AdminNetworkPolicies) != 1 || len(s.Diagnostics) != 1 ||
		!strings.Contains(s.Diagnostics[0].Message, "declared twice") || s.Diagnostics[0].Object != "ClusterNetworkPolicy same" {
		t.Errorf("policies %d/%d, diagnostics %v", len(s.ClusterNetworkPolicies), len(s.AdminNetworkPolicies), s.Diagnostics)
	}
}
