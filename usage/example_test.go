package usage_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/usage"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	locker, _ := lock.New(client, lock.Options{})
	defer locker.Close()
	store, _ := usage.New(client, usage.Options{}) // same Prefix as the Locker

	_ = store.SetBudget(ctx, "tenant-acme", usage.Limit{Tokens: 2000})
	lk, _ := locker.Acquire(ctx, "session-1")
	defer lk.Release(ctx)

	// Before the LLM call: hold its worst case on every budget.
	res, err := store.Reserve(ctx, "session-1", usage.Amount{Tokens: 1500}, "tenant-acme")
	fmt.Println("reserved:", err == nil)
	_, err = store.Reserve(ctx, "session-1", usage.Amount{Tokens: 1000}, "tenant-acme")
	var ob *usage.OverBudgetError
	if errors.As(err, &ob) {
		fmt.Printf("refused by %s: %d spent, %d held of %d\n", ob.Budget, ob.Spent, ob.Held, ob.Limit)
	}

	// After it: charge what it really used, and record it (once, by id).
	_ = res.Commit(ctx, usage.Amount{Tokens: 1200})
	call := usage.Entry{ID: "step-1-llm", Kind: usage.KindTokens, Step: 1, Model: "gpt-x",
		Tokens: usage.Tokens{Prompt: 1000, Completion: 200}, Cost: 3600}
	_, _ = store.Record(ctx, "session-1", lk.Token(), call)
	r, _ := store.Record(ctx, "session-1", lk.Token(), call) // a retry
	fmt.Println("counted again:", r.Recorded[0])

	ru, _ := store.Rollup(ctx, "session-1")
	fmt.Println("tokens:", ru.Total, "cost:", ru.Cost, "entries:", ru.Entries)
	b, _ := store.Budget(ctx, "tenant-acme")
	fmt.Println("tenant spent:", b.Spent.Tokens, "of", b.Limit.Tokens)
	// Output:
	// reserved: true
	// refused by scope:tenant-acme: 0 spent, 1500 held of 2000
	// counted again: false
	// tokens: 1200 cost: 0.003600 entries: 1
	// tenant spent: 1200 of 2000
}
