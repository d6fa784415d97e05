package policy

import (
	"strings"
	"testing"

	"github.com/rampartnet/rampart/internal/cluster"
)

// Each case is one policy (in namespace x of the e2e model) and the one
// diagnostic it must produce.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		sev          cluster.Severity
		path         string
		contains     string
	}{
		{"bad name", `
metadata: {name: Bad_Name, namespace: x}
spec: {podSelector: {}}`, cluster.Error, "metadata.name", "RFC 1123"},
		{"In without values", `
metadata: {name: p, namespace: x}
spec: {podSelector: {matchExpressions: [{key: pod, operator: In}]}}`, cluster.Error, "spec.podSelector.matchExpressions[0].values", "must be specified"},
		{"Exists with values", `
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchExpressions: [{key: pod, operator: Exists, values: [a]}]}}]}]`,
			cluster.Error, "spec.ingress[0].from[0].podSelector.matchExpressions[0].values", "may not be specified"},
		{"empty peer", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{from: [{}]}]}`, cluster.Error, "spec.ingress[0].from[0]", "must specify a peer"},
		{"ipBlock with a selector", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 198.18.0.0/15}, podSelector: {}}]}]}`,
			cluster.Error, "spec.ingress[0].from[0]", "may not specify more than 1 peer"},
		{"bad cidr", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 198.18.0.0/33}}]}]}`, cluster.Error, "spec.egress[0].to[0].ipBlock.cidr", "valid CIDR"},
		{"except outside cidr", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 198.18.0.0/16, except: [203.0.113.0/24]}}]}]}`,
			cluster.Error, "spec.egress[0].to[0].ipBlock.except[0]", "strict subset"},
		{"host bits", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 198.18.0.1/16}}]}]}`, cluster.Warning, "spec.egress[0].to[0].ipBlock.cidr", "host bits"},
		{"port out of range", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: 70000}]}]}`, cluster.Error, "spec.ingress[0].ports[0].port", "between 1 and 65535"},
		{"bad port name", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: Serve_80}]}]}`, cluster.Error, "spec.ingress[0].ports[0].port", ""},
		{"protocol", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: ICMP}]}]}`, cluster.Error, "spec.ingress[0].ports[0].protocol", "supported values"},
		{"endPort without port", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{endPort: 90}]}]}`, cluster.Error, "spec.ingress[0].ports[0].endPort", "not specified"},
		{"endPort with a named port", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}`, cluster.Error, "spec.ingress[0].ports[0].endPort", "non-numeric"},
		{"endPort below port", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, ingress: [{ports: [{port: 90, endPort: 80}]}]}`, cluster.Error, "spec.ingress[0].ports[0].endPort", "greater than or equal"},
		{"policyTypes value", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, policyTypes: [ingress]}`, cluster.Error, "spec.policyTypes[0]", "supported values"},
		{"policyTypes duplicate", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress, Ingress]}`, cluster.Error, "spec.policyTypes[1]", "duplicate"},
		{"dead egress rules", `
metadata: {name: p, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress], egress: [{}]}`, cluster.Warning, "spec.egress", "ignored"},
		{"selects nothing", `
metadata: {name: p, namespace: x}
spec: {podSelector: {matchLabels: {pod: nope}}}`, cluster.Warning, "spec.podSelector", "selects no pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags := Validate(e2eSnapshot(t, tc.policy))
			if len(diags) != 1 {
				t.Fatalf("diagnostics = %v", diags)
			}
			d := diags[0]
			if d.Severity != tc.sev || d.Path != tc.path || !strings.Contains(d.Message, tc.contains) || d.Object != "NetworkPolicy x/p" && tc.name != "bad name" {
				t.Errorf("got %s", d)
			}
		})
	}
}

func TestValidateCleanAndSkipInvalid(t *testing.T) {
	s := e2eSnapshot(t, `
metadata: {name: good, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}`, `
metadata: {name: bad, namespace: x}
spec: {podSelector: {}, ingress: [{from: [{}]}]}`)
	if _, _, err := FromSnapshot(s, false); err != ErrInvalid {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	m, _, err := FromSnapshot(s, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Policies) != 1 || m.Policies[0].Name != "good" {
		t.Errorf("policies after --skip-invalid: %v", m.Policies)
	}
}
