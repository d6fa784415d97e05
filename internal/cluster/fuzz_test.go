package cluster

import "testing"

// The loader reads files that anyone may hand it: it must never panic, and
// every object it keeps must have an origin that answers LineOf.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}\n"))
	f.Add([]byte("---\n---\napiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, metadata: {name: a}}]\n"))
	f.Add([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[]}}}}`))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {a: [1]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Snapshot{}
		LoadBytes("fuzz.yaml", data, s)
		s.Finish()
		for _, np := range s.NetworkPolicies {
			np.Origin.LineOf("spec.ingress[0].from[1].podSelector.matchLabels[a.b/c]")
		}
		for _, p := range s.Pods {
			p.Origin.LineOf(p.SpecPath + ".containers[0].ports[0]")
		}
	})
}
