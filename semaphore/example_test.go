package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/semaphore"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()

	// Four LLM slots shared by every executor.
	slots, err := semaphore.New(client, "llm-slots", semaphore.Options{Limit: 4, TTL: 30 * time.Second, AutoRefresh: true})
	if err != nil {
		panic(err)
	}
	defer slots.Close()

	p, err := slots.Acquire(ctx, 1)
	if err != nil {
		panic(err)
	}
	// Call the model under p.Context(); pass p.Token() to fenced writes.
	fmt.Println("held:", p.N(), "token valid:", p.Token().Valid())
	if err := p.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Println("after release:", p.Err())
	// Output:
	// held: 1 token valid: true
	// after release: semaphore: released
}

func ExampleSemaphore_TryAcquire() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()

	sem, err := semaphore.New(client, "sandboxes", semaphore.Options{Limit: 3})
	if err != nil {
		panic(err)
	}
	defer sem.Close()

	big, _ := sem.TryAcquire(ctx, 2)
	_, err = sem.TryAcquire(ctx, 2)
	var na *semaphore.NotAcquiredError
	if errors.As(err, &na) {
		fmt.Printf("not acquired: %d of %d in use\n", na.Used, na.Limit)
	}
	_, err = sem.TryAcquire(ctx, 5)
	fmt.Println("too many:", errors.Is(err, semaphore.ErrTooMany))
	_ = big.Release(ctx)
	// Output:
	// not acquired: 2 of 3 in use
	// too many: true
}

func ExampleSemaphore_SetLimit() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()

	sem, err := semaphore.New(client, "workers", semaphore.Options{Limit: 1})
	if err != nil {
		panic(err)
	}
	defer sem.Close()

	p1, _ := sem.TryAcquire(ctx, 1)
	if _, err := sem.SetLimit(ctx, 2); err != nil { // for every process
		panic(err)
	}
	p2, err := sem.TryAcquire(ctx, 1)
	fmt.Println("second permit:", err == nil)
	info, _ := sem.Inspect(ctx)
	fmt.Printf("limit %d, used %d, holders %d\n", info.Limit, info.Used, len(info.Holders))
	_ = p1.Release(ctx)
	_ = p2.Release(ctx)
	// Output:
	// second permit: true
	// limit 2, used 2, holders 2
}
