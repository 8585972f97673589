package check_test

import (
	"fmt"
	"strings"

	"github.com/fencekit/fencekit/chaos/check"
	"github.com/fencekit/fencekit/chaos/history"
)

// Kleppmann's scenario: executor 1 takes token 33 and stalls, executor 2
// takes 34 and writes, executor 1 wakes up and writes with 33. The store
// refused the stale write, so the history passes; had it accepted it, C2
// would find the token regression in the final event log and porcupine
// would find no linearization.
func ExampleCheck() {
	op := func(p int, kind string, tok uint64, in string, v int64, st history.Status, call, ret int64) history.Op {
		return history.Op{Process: p, Session: "s", Kind: kind, Token: tok, In: in, Version: v,
			SessionStatus: "running", Status: st, Call: call, Return: ret}
	}
	ops := []history.Op{
		op(1, history.KindAcquire, 33, "", 0, history.OK, 10, 20),
		op(1, history.KindSave, 33, "a", 1, history.OK, 30, 40),
		op(2, history.KindAcquire, 34, "", 0, history.OK, 100, 110),
		op(2, history.KindSave, 34, "b", 2, history.OK, 120, 130),
		op(1, history.KindSave, 33, "c", 0, history.Fail, 140, 150), // refused: stale
	}
	final, _ := history.NewFinal("s", 200, history.Final{
		Found: true,
		State: history.FinalState{Version: 2, Token: 34, Value: "b", Status: "running"},
		Events: []history.FinalEvent{
			{Version: 1, Token: 33, Type: "created", Fields: map[string]string{"status": "running"}},
			{Version: 2, Token: 34, Type: "saved", Fields: map[string]string{"status": "running"}},
		},
	})
	ops = append(ops, final)

	rep, err := check.Check(ops, check.Config{Mode: check.Durable})
	if err != nil {
		panic(err)
	}
	fmt.Println("ok:", rep.OK())
	for _, res := range rep.Results() {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s: %d violations %s", res.Name, res.Violations, res.Linearizable)))
	}

	// The mutant store: the stale write accepted as version 3.
	ops[4] = op(1, history.KindSave, 33, "c", 3, history.OK, 140, 150)
	final, _ = history.NewFinal("s", 200, history.Final{
		Found: true,
		State: history.FinalState{Version: 3, Token: 33, Value: "c", Status: "running"},
		Events: []history.FinalEvent{
			{Version: 1, Token: 33, Type: "created", Fields: map[string]string{"status": "running"}},
			{Version: 2, Token: 34, Type: "saved", Fields: map[string]string{"status": "running"}},
			{Version: 3, Token: 33, Type: "saved", Fields: map[string]string{"status": "running"}},
		},
	})
	ops[5] = final
	rep, _ = check.Check(ops, check.Config{Mode: check.Durable})
	fmt.Println("ok:", rep.OK(), "C2:", rep.C2.Linearizable, rep.C2.Details[0].What)
	// Output:
	// ok: true
	// C1 tokens: 0 violations
	// C2 fencing: 0 violations Ok
	// C3 lost writes: 0 violations
	// C4 cas+checkpoints: 0 violations Ok
	// stream: 0 violations
	// recreate: 0 violations
	// usage: 0 violations
	// semaphore: 0 violations
	// election: 0 violations
	// ok: false C2: Illegal token_regressions: the store accepted token 33 (v3 saved) after token 34 (v2 saved)
}
