package lock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()

	locker, err := lock.New(client, lock.Options{TTL: 10 * time.Second, Owner: "executor-a"})
	if err != nil {
		panic(err)
	}
	defer locker.Close()

	lk, err := locker.Acquire(ctx, "session-42")
	if err != nil {
		panic(err)
	}
	// Work under lk.Context() and pass lk.Token() to every write.
	fmt.Println("held:", lk.Err() == nil, "token valid:", lk.Token().Valid())
	if err := lk.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Println("after release:", lk.Err())
	// Output:
	// held: true token valid: true
	// after release: lock: released
}

func ExampleLocker_TryAcquire() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	a, _ := lock.New(client, lock.Options{Owner: "executor-a"})
	b, _ := lock.New(client, lock.Options{Owner: "executor-b"})
	defer a.Close()
	defer b.Close()

	first, err := a.TryAcquire(ctx, "session-42")
	if err != nil {
		panic(err)
	}
	defer first.Release(ctx)

	_, err = b.TryAcquire(ctx, "session-42")
	var held *lock.NotAcquiredError
	if errors.As(err, &held) {
		fmt.Println("held by", held.Owner, "with the same token:", held.Token == first.Token())
	}
	// Output:
	// held by executor-a with the same token: true
}

// Tokens only grow: a later holder always has a larger token, so a resource
// that remembers the highest token it saw can refuse a paused old holder.
func ExampleLock_Token() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	l, _ := lock.New(client, lock.Options{})
	defer l.Close()

	var guard fencing.Guard
	old, _ := l.TryAcquire(ctx, "doc")
	_ = old.Release(ctx)
	current, _ := l.TryAcquire(ctx, "doc")
	defer current.Release(ctx)

	fmt.Println(guard.Apply("doc", current.Token(), func() error { return nil }))
	err := guard.Apply("doc", old.Token(), func() error { return nil })
	fmt.Println(errors.Is(err, fencing.ErrStaleToken))
	// Output:
	// <nil>
	// true
}

func ExampleLocker_Inspect() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	l, _ := lock.New(client, lock.Options{Owner: "executor-a", TTL: 30 * time.Second})
	defer l.Close()
	lk, _ := l.TryAcquire(ctx, "session-7")
	defer lk.Release(ctx)

	info, err := l.Inspect(ctx, "session-7")
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Held, info.Owner, info.Token == lk.Token(), info.TTL <= 30*time.Second)
	// Output:
	// true executor-a true true
}

// An operator takes a lock from an executor that is stuck: the executor's
// token is fenced out, so its later writes are refused as stale.
func ExampleForceRelease() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()

	locker, _ := lock.New(client, lock.Options{Owner: "executor-7"})
	defer locker.Close()
	lk, _ := locker.TryAcquire(ctx, "session-42")

	res, err := lock.ForceRelease(ctx, client, "session-42", lock.ForceOptions{
		Reason: "executor-7 stopped answering", By: "oncall",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("removed:", res.Owner, res.Released)
	fmt.Println("old token fenced out:", res.Fence > lk.Token())
	fmt.Println("executor sees:", errors.Is(lk.Refresh(ctx), lock.ErrLockLost))
	// Output:
	// removed: executor-7 true
	// old token fenced out: true
	// executor sees: true
}
