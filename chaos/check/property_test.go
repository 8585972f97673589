package check

import (
	"fmt"
	"math/rand/v2"
	"strings"
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

// finalOf returns the index of session id's final op and its Final.
func finalOf(t *testing.T, ops []history.Op, id string) (int, history.Final) {
	t.Helper()
	for i := range ops {
		if ops[i].Kind == history.KindFinal && ops[i].Session == id {
			f, err := ops[i].Final()
			if err != nil {
				t.Fatal(err)
			}
			return i, f
		}
	}
	t.Fatalf("no final op for %q", id)
	return 0, history.Final{}
}

func setFinal(t *testing.T, ops []history.Op, i int, f history.Final) {
	t.Helper()
	op, err := history.NewFinal(ops[i].Session, ops[i].Call, f)
	if err != nil {
		t.Fatal(err)
	}
	ops[i] = op
}

// mutation changes a legal history into one a checker must reject; it
// returns false when the history offers nothing to change.
type mutation struct {
	name  string
	modes []Mode
	fails func(r *Report) *Result
	apply func(t *testing.T, ops []history.Op, rng *rand.Rand) bool
}

var mutations = []mutation{
	{
		// The value a load returned was never the state at its version.
		name: "load value", modes: []Mode{Durable, Fast}, fails: func(r *Report) *Result { return r.C2 },
		apply: func(t *testing.T, ops []history.Op, rng *rand.Rand) bool {
			var cands []int
			for i, op := range ops {
				if op.Kind == history.KindLoad && op.Status == history.OK && op.Version > 0 {
					cands = append(cands, i)
				}
			}
			if len(cands) == 0 {
				return false
			}
			ops[cands[rng.IntN(len(cands))]].Out = "tampered"
			return true
		},
	},
	{
		// A cas acknowledged from a status the session never had.
		name: "cas from", modes: []Mode{Durable, Fast}, fails: func(r *Report) *Result { return r.C4 },
		apply: func(t *testing.T, ops []history.Op, rng *rand.Rand) bool {
			var cands []int
			for i, op := range ops {
				if op.Kind == history.KindCAS && op.Status == history.OK {
					cands = append(cands, i)
				}
			}
			if len(cands) == 0 {
				return false
			}
			op := &ops[cands[rng.IntN(len(cands))]]
			_, to, _ := strings.Cut(op.In, ">")
			op.In = "never>" + to
			return true
		},
	},
	{
		// A token granted again after it was returned (counter loss).
		name: "duplicate token", modes: []Mode{Durable}, fails: func(r *Report) *Result { return r.C1 },
		apply: func(t *testing.T, ops []history.Op, rng *rand.Rand) bool {
			var acq []int
			for i, op := range ops {
				if op.Kind == history.KindAcquire && op.Status == history.OK {
					acq = append(acq, i)
				}
			}
			for _, k := range rng.Perm(len(acq)) {
				b := &ops[acq[k]]
				for _, a := range acq {
					if ops[a].Session == b.Session && ops[a].Return < b.Call {
						b.Token = ops[a].Token
						return true
					}
				}
			}
			return false
		},
	},
	{
		// The newest acknowledged write of a session is missing at the end
		// (acknowledged before WAIT).
		name: "lost write", modes: []Mode{Durable}, fails: func(r *Report) *Result { return r.C3 },
		apply: func(t *testing.T, ops []history.Op, rng *rand.Rand) bool {
			i, f := finalOf(t, ops, fmt.Sprintf("s%d", rng.IntN(3)))
			n := len(f.Events)
			if n < 2 {
				return false
			}
			last := f.Events[n-1]
			acked := false
			for _, op := range ops {
				acked = acked || (op.Status == history.OK && isWrite(op.Kind) && op.Token == last.Token && op.Session == ops[i].Session &&
					(op.Version == last.Version || (op.Kind == history.KindCheckpoint && op.Out == last.Fields["id"])))
			}
			if !acked {
				return false
			}
			f.Events = f.Events[:n-1]
			f.State.Version, f.State.Token = f.Events[n-2].Version, f.Events[n-2].Token
			if last.Type == "checkpoint" {
				f.Checkpoints = f.Checkpoints[:len(f.Checkpoints)-1]
			}
			setFinal(t, ops, i, f)
			return true
		},
	},
	{
		// One append, two entries.
		name: "duplicate chunk", modes: []Mode{Durable, Fast}, fails: func(r *Report) *Result { return r.Stream },
		apply: func(t *testing.T, ops []history.Op, rng *rand.Rand) bool {
			i, f := finalOf(t, ops, fmt.Sprintf("s%d", rng.IntN(3)))
			if len(f.Stream) == 0 {
				return false
			}
			k := rng.IntN(len(f.Stream))
			f.Stream = append(f.Stream[:k+1], f.Stream[k:]...)
			setFinal(t, ops, i, f)
			return true
		},
	},
}

// One injected illegal operation in a generated legal history is caught,
// by the checker it concerns, for every seed where it applies.
func TestGeneratedMutantsCaught(t *testing.T) {
	for _, m := range mutations {
		for _, mode := range m.modes {
			t.Run(m.name+"/"+string(mode), func(t *testing.T) {
				applied := 0
				for seed := uint64(1); seed <= 10; seed++ {
					ops := gen(simConfig{Seed: seed, Mode: mode, Sessions: 3, Procs: 4, Ops: 200, PUnknown: 0.05, PFailover: 0.004})
					if !m.apply(t, ops, rand.New(rand.NewPCG(seed, 99))) {
						continue
					}
					applied++
					r := mustCheck(t, ops, mode)
					if res := m.fails(r); r.OK() || !res.Fails {
						t.Errorf("seed %d: %s not caught by %s:\n%s", seed, m.name, res.Name, r)
					}
				}
				if applied < 9 {
					t.Fatalf("mutation applied in %d of 10 seeds", applied)
				}
			})
		}
	}
}

// The mutant store: the fencing comparison skipped once.
func TestGeneratedFencingBypassCaught(t *testing.T) {
	applied := 0
	for seed := uint64(1); seed <= 10; seed++ {
		ops, s := genSim(simConfig{Seed: seed, Mode: Durable, Sessions: 3, Procs: 4, Ops: 200, PUnknown: 0.05, PFailover: 0.004, BypassFence: true})
		if s.bypassed == nil {
			continue
		}
		applied++
		r := mustCheck(t, ops, Durable)
		if r.OK() || !r.C2.Fails || r.C2.Counts["token_regressions"] == 0 {
			t.Errorf("seed %d: stale save accepted (%+v) not caught:\n%s", seed, *s.bypassed, r)
		}
	}
	if applied < 9 {
		t.Fatalf("bypass happened in %d of 10 seeds", applied)
	}
}
