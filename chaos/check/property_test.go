package check

import (
	"fmt"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/fencekit/fencekit/chaos/history"
)

func mustCheck(t testing.TB, ops []history.Op, mode Mode) *Report {
	t.Helper()
	r, err := Check(ops, Config{Mode: mode, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Generated legal histories, with concurrency, unknowns and failovers, pass
// every checker (C1/C3 may count in the fast mode).
func TestGeneratedLegalHistoriesPass(t *testing.T) {
	for _, mode := range []Mode{Durable, Fast} {
		for seed := uint64(1); seed <= 12; seed++ {
			cfg := simConfig{Seed: seed, Mode: mode, Sessions: 3, Procs: 4, Ops: 300, PUnknown: 0.05, PFailover: 0.004}
			t.Run(fmt.Sprintf("%s/seed%d", mode, seed), func(t *testing.T) {
				ops := gen(cfg)
				r := mustCheck(t, ops, mode)
				if !r.OK() {
					t.Fatalf("legal history rejected:\n%s", r)
				}
				if r.C2.Linearizable != porcupine.Ok || r.C4.Linearizable != porcupine.Ok {
					t.Fatalf("porcupine: C2 %s C4 %s", r.C2.Linearizable, r.C4.Linearizable)
				}
				if mode == Durable && r.C3.Violations != 0 {
					t.Fatalf("durable simulation lost writes:\n%s", r)
				}
				t.Logf("faults=%d lost=%d %v %v", r.Faults, r.C3.Violations, r.C2.Counts, r.C3.ByFault)
			})
		}
	}
}
