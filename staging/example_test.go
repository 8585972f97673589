package staging_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{Owner: "executor-a"})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})
	stager := staging.New(store)

	lk, err := locker.Acquire(ctx, "session-42")
	if err != nil {
		panic(err)
	}
	defer lk.Release(ctx)
	tok := lk.Token()
	if _, err := store.Create(ctx, "session-42", tok, statestore.State{Status: statestore.StatusRunning,
		Data: json.RawMessage(`{"files":[]}`)}); err != nil {
		panic(err)
	}

	// Two tool calls of step 1 finish in any order; each stages its change.
	t0 := time.UnixMilli(1_700_000_000_000)
	_, _ = stager.Stage(ctx, "session-42", 1, tok, staging.Change{
		ToolCallID: "call-2",
		Merge:      json.RawMessage(`{"summary":"two files"}`),
		Timestamp:  t0.Add(time.Second),
	})
	_, _ = stager.Stage(ctx, "session-42", 1, tok, staging.Change{
		ToolCallID: "call-1",
		Patches:    json.RawMessage(`[{"op":"add","path":"/files/-","value":"a.go"},{"op":"add","path":"/files/-","value":"b.go"}]`),
		Timestamp:  t0,
	})

	// The step is done: apply both, in timestamp order, in one write.
	res, err := stager.Promote(ctx, "session-42", 1, tok)
	if err != nil {
		panic(err)
	}
	for _, c := range res.Applied {
		fmt.Println("applied", c.ToolCallID)
	}
	fmt.Println(string(res.Data))
	// Output:
	// applied call-1
	// applied call-2
	// {"files":["a.go","b.go"],"summary":"two files"}
}

// A paused executor's late tool result: it stages under its old token
// after another executor took the session over. The stage is refused, and
// what it staged before the takeover is not promoted by the new holder
// unless adopted.
func ExampleStager_Promote_takeover() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	lockerA, _ := lock.New(client, lock.Options{Owner: "executor-a"})
	lockerB, _ := lock.New(client, lock.Options{Owner: "executor-b"})
	defer lockerA.Close()
	defer lockerB.Close()
	store, _ := statestore.New(client, statestore.Options{})
	stager := staging.New(store)

	a, _ := lockerA.Acquire(ctx, "s")
	_, _ = store.Create(ctx, "s", a.Token(), statestore.State{Status: statestore.StatusRunning})
	_, _ = stager.Stage(ctx, "s", 1, a.Token(), staging.Change{ToolCallID: "early", Merge: json.RawMessage(`{"early":1}`)})

	// A's lease ends (here: released); B takes over.
	_ = a.Release(ctx)
	b, _ := lockerB.Acquire(ctx, "s")
	defer b.Release(ctx)

	_, err := stager.Stage(ctx, "s", 1, a.Token(), staging.Change{ToolCallID: "late", Merge: json.RawMessage(`{"late":1}`)})
	fmt.Println("late stage refused:", errors.Is(err, fencing.ErrStaleToken))

	res, _ := stager.Promote(ctx, "s", 1, b.Token())
	fmt.Println("applied:", len(res.Applied), "skipped:", res.Skipped[0].ToolCallID)
	fmt.Println("document:", string(res.Data))
	// Output:
	// late stage refused: true
	// applied: 0 skipped: early
	// document:
}

// A State loaded before a promote is stale afterwards: ApplyTo brings it up
// to date, so a Save that expects its version goes through.
func ExamplePromoteResult_ApplyTo() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{Owner: "executor-a"})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})
	stager := staging.New(store)
	lk, _ := locker.Acquire(ctx, "session-7")
	defer lk.Release(ctx)
	tok := lk.Token()
	_, _ = store.Create(ctx, "session-7", tok, statestore.State{Status: statestore.StatusRunning, Data: json.RawMessage(`{"n":1}`)})

	st, _ := store.Load(ctx, "session-7")
	_, _ = stager.Stage(ctx, "session-7", 1, tok, staging.Change{ToolCallID: "call-1", Merge: json.RawMessage(`{"n":2}`)})
	res, _ := stager.Promote(ctx, "session-7", 1, tok)

	st.Status = statestore.StatusCompleted
	_, err := store.Save(ctx, "session-7", tok, st)
	fmt.Println("stale state:", errors.Is(err, statestore.ErrConflict))
	res.ApplyTo(&st)
	v, err := store.Save(ctx, "session-7", tok, st)
	fmt.Println("after ApplyTo:", err == nil, "version", v, string(st.Data))
	// Output:
	// stale state: true
	// after ApplyTo: true version 4 {"n":2}
}
