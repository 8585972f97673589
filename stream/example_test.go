package stream_test

import (
	"context"
	"fmt"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{Owner: "executor-1"})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})
	streams := stream.New(store)

	// The executor holds the session and streams its output.
	lk, _ := locker.Acquire(ctx, "session-1")
	defer lk.Release(ctx)
	for _, tok := range []string{"Hel", "lo, ", "world"} {
		streams.Append(ctx, "session-1", lk.Token(), []byte(tok))
	}
	streams.End(ctx, "session-1", lk.Token())

	// A client reads the first page, disconnects, and resumes.
	p, _ := streams.Read(ctx, "session-1", stream.Seq{}, 2)
	fmt.Printf("%q %s\n", data(p.Chunks), p.Status)
	p, _ = streams.Read(ctx, "session-1", p.Next, 2)
	fmt.Printf("%q %s\n", data(p.Chunks), p.Status)
	// Output:
	// ["Hel" "lo, "] running
	// ["world"] ended
}

func ExampleStreams_Follow() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{Owner: "executor-1"})
	defer locker.Close()
	store, _ := statestore.New(client, statestore.Options{})
	streams := stream.New(store)
	lk, _ := locker.Acquire(ctx, "session-1")
	defer lk.Release(ctx)

	streams.Append(ctx, "session-1", lk.Token(), []byte("step 0"))
	go func() {
		for i := 1; i < 3; i++ {
			streams.Append(ctx, "session-1", lk.Token(), fmt.Appendf(nil, "step %d", i))
		}
		streams.Fail(ctx, "session-1", lk.Token(), "tool timed out")
	}()

	// Blocking reads until the stream ends or fails.
	f := streams.Follow("session-1", stream.Seq{})
	for f.Next(ctx) {
		fmt.Println(f.Chunk().Seq.N(), string(f.Chunk().Data))
	}
	if err := f.Err(); err != nil {
		fmt.Println(err) // e.g. ErrUnknownStream before the first Append
		return
	}
	fmt.Println(f.Status(), f.Reason())
	// Output:
	// 1 step 0
	// 2 step 1
	// 3 step 2
	// failed tool timed out
}
