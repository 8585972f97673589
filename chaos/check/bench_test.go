package check

import (
	"fmt"
	"testing"

	"github.com/anishathalye/porcupine"
)

// BenchmarkCheck: 100,000 generated legal operations over 50 sessions (4
// processes each, 2% indeterminate), and 20,000 on one session; the whole
// Check (index, C1-C4, stream, both porcupine models).
func BenchmarkCheck(b *testing.B) {
	cases := []struct {
		sessions, ops int
		mode          Mode
		failover      float64
	}{
		{50, 2000, Durable, 0},
		{50, 2000, Durable, 0.0005},
		{50, 2000, Fast, 0.0005},
		{1, 20000, Durable, 0},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/%dx%d/failover=%v", c.mode, c.sessions, c.ops, c.failover)
		b.Run(name, func(b *testing.B) {
			ops := gen(simConfig{Seed: 1, Mode: c.mode, Sessions: c.sessions, Procs: 4, Ops: c.ops, PUnknown: 0.02, PFailover: c.failover})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := Check(ops, Config{Mode: c.mode})
				if err != nil {
					b.Fatal(err)
				}
				if !r.OK() || r.C2.Linearizable != porcupine.Ok || r.C4.Linearizable != porcupine.Ok {
					b.Fatalf("legal history rejected:\n%s", r)
				}
				if i == 0 {
					b.ReportMetric(float64(r.Ops), "ops/history")
					b.ReportMetric(float64(r.Faults), "faults")
				}
			}
		})
	}
}
