package checkpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{Owner: "executor-a"})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})
	cps := checkpoint.New(store)

	lk, err := locker.Acquire(ctx, "session-42")
	if err != nil {
		panic(err)
	}
	defer lk.Release(ctx)
	tok := lk.Token()
	_, _ = store.Create(ctx, "session-42", tok, statestore.State{Status: statestore.StatusRunning, Data: json.RawMessage(`{"plan":"v1"}`)})
	_, _ = store.AppendMessages(ctx, "session-42", tok, json.RawMessage(`{"role":"user","text":"hi"}`))

	// Step 1 is done: checkpoint it.
	cpid, err := cps.Save(ctx, "session-42", tok, checkpoint.Checkpoint{
		Step: 1, State: json.RawMessage(`{"plan":"v1"}`), MessageCount: 1,
		Metadata: json.RawMessage(`{"reason":"step done"}`),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("saved:", strings.HasPrefix(cpid, "cpv1-session-42-s1-t"))

	// Step 2 goes wrong.
	_, _ = store.Save(ctx, "session-42", tok, statestore.State{Status: statestore.StatusRunning, Step: 2, Data: json.RawMessage(`{"plan":"broken"}`)})
	_, _ = store.AppendMessages(ctx, "session-42", tok, json.RawMessage(`{"role":"tool","text":"error"}`))

	// Go back to the latest checkpoint.
	latest, err := cps.Latest(ctx, "session-42")
	if err != nil {
		panic(err)
	}
	if _, err := cps.Restore(ctx, "session-42", tok, latest.ID); err != nil {
		panic(err)
	}
	st, _ := store.Load(ctx, "session-42")
	fmt.Printf("step %d, data %s, %d message(s), metadata %s\n", st.Step, st.Data, st.MessageCount, latest.Metadata)
	// Output:
	// saved: true
	// step 1, data {"plan":"v1"}, 1 message(s), metadata {"reason":"step done"}
}

func ExampleStore_List() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})
	cps := checkpoint.New(store)
	lk, _ := locker.Acquire(ctx, "session-42")
	defer lk.Release(ctx)
	_, _ = store.Create(ctx, "session-42", lk.Token(), statestore.State{Status: statestore.StatusRunning})
	for step := range int64(5) {
		_, _ = cps.Save(ctx, "session-42", lk.Token(), checkpoint.Checkpoint{Step: step})
	}

	// Newest first, two at a time.
	cursor := ""
	for {
		page, err := cps.List(ctx, "session-42", cursor, 2)
		if err != nil {
			panic(err)
		}
		for _, cp := range page.Checkpoints {
			fmt.Printf("seq %d step %d\n", cp.Seq, cp.Step)
		}
		if !page.HasMore {
			break
		}
		cursor = page.Next
	}
	// Output:
	// seq 5 step 4
	// seq 4 step 3
	// seq 3 step 2
	// seq 2 step 1
	// seq 1 step 0
}

// A checkpoint write from an executor that lost its lock is refused.
func ExampleStore_Save_stale() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	a, _ := lock.New(client, lock.Options{Owner: "executor-a"})
	b, _ := lock.New(client, lock.Options{Owner: "executor-b"})
	defer a.Close()
	defer b.Close()
	store, _ := statestore.New(client, statestore.Options{})
	cps := checkpoint.New(store)

	la, _ := a.Acquire(ctx, "session-42")
	_, _ = store.Create(ctx, "session-42", la.Token(), statestore.State{Status: statestore.StatusRunning})
	_ = la.Release(ctx) // or: its lease ran out while it was paused
	lb, _ := b.Acquire(ctx, "session-42")
	defer lb.Release(ctx)

	_, err := cps.Save(ctx, "session-42", la.Token(), checkpoint.Checkpoint{Step: 7})
	fmt.Println("stale:", errors.Is(err, fencing.ErrStaleToken))
	_, err = cps.Save(ctx, "session-42", lb.Token(), checkpoint.Checkpoint{Step: 7})
	fmt.Println("holder:", err)
	// Output:
	// stale: true
	// holder: <nil>
}
