package bench

import (
	"context"
	"testing"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
)

// pipelineBatch is how many commands pipelinedCPU sends at once: enough to
// amortise the per-command network cost, which dominates one-at-a-time
// calls, as it is amortised under load.
const pipelineBatch = 100

// pipelinedCPU runs b.N ops on c in pipelines of pipelineBatch commands and
// reports srv-cpu-µs/op, the server's used_cpu delta per op. One op is the
// commands op returns (built anew for every op: rueidis recycles a
// Completed once sent). A nil reply counts as an answer; any other error
// reply fails the benchmark.
func pipelinedCPU(b *testing.B, s *redistest.Server, c rueidis.Client, op func() []rueidis.Completed) {
	ctx := context.Background()
	per := max(1, pipelineBatch/len(op()))
	run := func(n int) {
		for n > 0 {
			k := min(n, per)
			cmds := make([]rueidis.Completed, 0, k*2)
			for range k {
				cmds = append(cmds, op()...)
			}
			for _, r := range c.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
					b.Fatal(err)
				}
			}
			n -= k
		}
	}
	run(1)
	cpu0, ok0 := serverCPUOf(b, s)
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	if cpu1, ok := serverCPUOf(b, s); ok && ok0 && b.N > 0 {
		b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "srv-cpu-µs/op")
	}
}
