package statestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})

	lk, _ := locker.Acquire(ctx, "session-1")
	tok := lk.Token()
	_, _ = store.Create(ctx, "session-1", tok, statestore.State{AgentType: "coder", Status: statestore.StatusPending})
	r, _ := store.CompareAndSetStatus(ctx, "session-1", tok,
		[]statestore.Status{statestore.StatusPending}, statestore.StatusRunning)
	fmt.Println("running:", r.OK, "version", r.Version)
	_, _ = store.AppendMessages(ctx, "session-1", tok, json.RawMessage(`{"role":"user","content":"hi"}`))

	// The lease passes to another executor; the old token is refused.
	_ = lk.Release(ctx)
	next, _ := locker.Acquire(ctx, "session-1")
	defer next.Release(ctx)
	_, err := store.UpdateStatus(ctx, "session-1", tok, statestore.StatusFailed)
	fmt.Println("stale write refused:", errors.Is(err, fencing.ErrStaleToken))

	st, _ := store.Load(ctx, "session-1")
	fmt.Println(st.Status, st.MessageCount, "messages, version", st.Version)
	// Output:
	// running: true version 2
	// stale write refused: true
	// running 1 messages, version 3
}

func ExampleStore_Messages() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})
	lk, _ := locker.Acquire(ctx, "s")
	defer lk.Release(ctx)
	_, _ = store.Create(ctx, "s", lk.Token(), statestore.State{Status: statestore.StatusRunning})
	for i := range 5 {
		_, _ = store.AppendMessages(ctx, "s", lk.Token(), json.RawMessage(fmt.Sprint(i)))
	}
	cursor := ""
	for {
		page, err := store.Messages(ctx, "s", cursor, 2)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s ", page.Messages)
		if !page.HasMore {
			break
		}
		cursor = page.Next
	}
	fmt.Println()
	// Output:
	// [0 1] [2 3] [4]
}

// The event log is opt-in (Options.EventLog): with it every accepted write
// appends one typed event in the same script; without it Events and Watch
// return ErrEventLogOff.
func ExampleStore_Events() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{})
	defer locker.Close()
	lk, _ := locker.Acquire(ctx, "s")
	defer lk.Release(ctx)

	store, _ := statestore.New(client, statestore.Options{EventLog: true})
	_, _ = store.Create(ctx, "s", lk.Token(), statestore.State{Status: statestore.StatusPending})
	_, _ = store.UpdateStatus(ctx, "s", lk.Token(), statestore.StatusRunning)
	evs, _, _ := store.Events(ctx, "s", "", 0)
	for _, ev := range evs {
		fmt.Println(ev.Version, ev.Type, ev.Fields["status"])
	}

	quiet, _ := statestore.New(client, statestore.Options{})
	_, _, err := quiet.Events(ctx, "s", "", 0)
	fmt.Println(errors.Is(err, statestore.ErrEventLogOff))
	// Output:
	// 1 created pending
	// 2 status running
	// true
}
