package policy_test

import (
	"testing"

	"github.com/rampartnet/rampart/internal/policy"
	"github.com/rampartnet/rampart/internal/policy/policytest"
)

// The scale target of issue 2: 10,000 pods in 500 namespaces with 2,000
// policies. Each iteration builds the model (and its classes) from the
// snapshot and computes the class matrix for one probe.
func BenchmarkMatrixLarge(b *testing.B) {
	snap := policytest.Generate(1, policytest.Options{Namespaces: 500, Workloads: 10000, Policies: 2000, PodIPs: true})
	pr, _ := policy.ParseProbe("80/TCP")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m, _ := policy.NewModel(snap)
		mx := m.Matrix(pr)
		if i == 0 {
			b.ReportMetric(float64(len(mx.Classes)), "classes")
		}
	}
}
