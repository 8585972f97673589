package election_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()

	e, err := election.New(client, "scheduler", election.Options{Lock: lock.Options{Owner: "replica-a"}})
	if err != nil {
		panic(err)
	}
	defer e.Close()

	lead, err := e.Campaign(ctx, "10.0.0.1:8080")
	if err != nil {
		panic(err)
	}
	// Schedule under lead.Context(); pass lead.Term() to every write.
	ld, _ := e.Leader(ctx)
	fmt.Println("leader:", ld.Owner, ld.Value, "term matches:", ld.Term == lead.Term())
	if err := lead.Resign(ctx); err != nil {
		panic(err)
	}
	err = lead.Proclaim(ctx, "late")
	fmt.Println("after resign:", errors.Is(err, fencing.ErrFenced))
	// Output:
	// leader: replica-a 10.0.0.1:8080 term matches: true
	// after resign: true
}

func ExampleElection_Observe() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	e, err := election.New(client, "scheduler", election.Options{Lock: lock.Options{Owner: "replica-b"}})
	if err != nil {
		panic(err)
	}
	defer e.Close()

	changes := make(chan election.Leader)
	go func() {
		defer close(changes)
		for ld, err := range e.Observe(ctx) {
			if err != nil {
				return
			}
			changes <- ld
		}
	}()
	fmt.Println("at start, held:", (<-changes).Held)
	lead, err := e.Campaign(ctx, "v1")
	if err != nil {
		panic(err)
	}
	_ = lead.Proclaim(ctx, "v2")
	_ = lead.Resign(ctx)
	for i := 0; i < 4; i++ {
		ld := <-changes
		fmt.Printf("%s %s %q\n", ld.Change, ld.Owner, ld.Value)
	}
	cancel()
	for range changes {
	}
	// Output:
	// at start, held: false
	// elected replica-b ""
	// proclaimed replica-b "v1"
	// proclaimed replica-b "v2"
	// resigned replica-b ""
}
