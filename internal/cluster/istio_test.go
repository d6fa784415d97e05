package cluster

import (
	"strings"
	"testing"
)

func TestLoadIstioAndRampartKinds(t *testing.T) {
	s := &Snapshot{}
	LoadBytes("in.yaml", []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a, namespace: prod}
spec: {action: DENY, rules: [{}]}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: b}
spec: {}
---
apiVersion: security.istio.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: c, namespace: prod}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: d, namespace: prod}
spec: {rule: []}
---
apiVersion: rampart.dev/v1alpha1
kind: EncryptionConfig
metadata: {name: default}
spec: {mode: ipsec}
---
apiVersion: rampart.dev/v1alpha1
kind: IPsecPeer
metadata: {name: branch}
spec: {nodeName: node-1, address: 203.0.113.10, auth: {psk: {name: s, key: psk}}}
`), s)
	s.Finish()
	if len(s.AuthorizationPolicies) != 2 || s.AuthorizationPolicies[0].Namespace != "default" || s.AuthorizationPolicies[1].Spec.Action != "DENY" {
		t.Errorf("authorization policies: %+v", s.AuthorizationPolicies)
	}
	if len(s.EncryptionConfigs) != 1 || s.EncryptionConfigs[0].Spec.Mode != "ipsec" || len(s.IPsecPeers) != 1 || s.IPsecPeers[0].Spec.NodeName != "node-1" {
		t.Errorf("rampart resources: %+v %+v", s.EncryptionConfigs, s.IPsecPeers)
	}
	want := map[string]string{
		"AuthorizationPolicy c": "use apiVersion: security.istio.io/v1 (or security.istio.io/v1beta1",
		"AuthorizationPolicy d": `unknown field "rule"`,
	}
	for _, d := range s.Diagnostics {
		if d.Severity != Error {
			continue
		}
		w, ok := want[d.Object]
		if !ok || !strings.Contains(d.Message+" "+d.Hint, w) || d.Line == 0 {
			t.Errorf("unexpected: %v (hint %q)", d, d.Hint)
			continue
		}
		delete(want, d.Object)
	}
	for obj, w := range want {
		t.Errorf("no error for %s: %q", obj, w)
	}
}
