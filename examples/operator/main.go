// Command operator leaves behind what the fencekit CLI walkthrough of
// docs/OPERATIONS.md inspects: under the key prefix "demo", a session held
// by executor-a with messages, checkpoints and a staged change, a lock held
// by executor-b, an election led by replica-a and a semaphore with three
// of its four permits taken. Every key expires within an hour.
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/operator
//	fencekit --url redis://127.0.0.1:6379/0 --prefix demo locks
//
// Without REDIS_URL it starts an in-process miniredis, prints its URL and
// serves it until interrupted, so the CLI can be run from another
// terminal. The holders never release: the leases run out after ten
// minutes, as those of a crashed executor would.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/semaphore"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/usage"
)

const (
	prefix = "demo"
	lease  = 10 * time.Minute // every lock, leadership and permit
	keep   = time.Hour        // sessions, fences, usage
)

func main() {
	srv, err := embedded.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		os.Exit(2)
	}
	defer srv.Close()
	c, err := srv.NewClient()
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = seed(ctx, c, os.Stdout)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		os.Exit(1)
	}
	url := os.Getenv("REDIS_URL")
	if srv.Mini != nil {
		url = "redis://" + srv.Mini.Addr()
	}
	fmt.Printf("\nserver: %s\nnow try:\n", srv.Description)
	for _, cmd := range []string{"locks", "session session-42", "checkpoints session-42 --limit 2",
		"election scheduler", "semaphore llm-slots", "usage session-42", "doctor"} {
		fmt.Printf("  fencekit --url %s --prefix %s %s\n", embedded.RedactURL(url), prefix, cmd)
	}
	if srv.Mini == nil {
		return // the keys stay on the server, the leases run out
	}
	fmt.Println("serving the in-process server until interrupted (Ctrl-C)")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
}

// seed writes what the walkthrough inspects and prints a line for each.
func seed(ctx context.Context, c rueidis.Client, out io.Writer) error {
	a, err := lock.New(c, lock.Options{Prefix: prefix, Owner: "executor-a", TTL: lease, FenceTTL: keep})
	if err != nil {
		return err
	}
	b, err := lock.New(c, lock.Options{Prefix: prefix, Owner: "executor-b", TTL: lease, FenceTTL: keep})
	if err != nil {
		return err
	}
	store, err := statestore.New(c, statestore.Options{Prefix: prefix, TTL: keep})
	if err != nil {
		return err
	}

	// executor-a works on session-42: three steps, a checkpoint after
	// each, two messages, and a tool call of step 4 staged.
	const id = "session-42"
	lk, err := a.Acquire(ctx, id)
	if err != nil {
		return err
	}
	tok := lk.Token()
	if _, err := store.Create(ctx, id, tok, statestore.State{AgentType: "coder", Status: statestore.StatusRunning,
		Data: json.RawMessage(`{"files":["main.go"]}`)}); err != nil {
		return err
	}
	if _, err := store.AppendMessages(ctx, id, tok,
		json.RawMessage(`{"role":"user","content":"fix the build"}`),
		json.RawMessage(`{"role":"assistant","content":"on it"}`)); err != nil {
		return err
	}
	cps := checkpoint.New(store)
	for step := int64(1); step <= 3; step++ {
		if _, err := store.IncrementStep(ctx, id, tok); err != nil {
			return err
		}
		doc := fmt.Sprintf(`{"files":["main.go"],"step":%d}`, step)
		if _, err := cps.Save(ctx, id, tok, checkpoint.Checkpoint{Step: step, State: json.RawMessage(doc), MessageCount: 2}); err != nil {
			return err
		}
	}
	if _, err := staging.New(store).Stage(ctx, id, 4, tok, staging.Change{ToolCallID: "call-7",
		Merge: json.RawMessage(`{"tests":"passing"}`)}); err != nil {
		return err
	}
	u, err := usage.New(c, usage.Options{Prefix: prefix, EntryTTL: keep})
	if err != nil {
		return err
	}
	cost, err := usage.CostOf(0.0045)
	if err != nil {
		return err
	}
	if _, err := u.Record(ctx, id, tok, usage.Entry{ID: "step-3-llm", Kind: usage.KindTokens, Step: 3, Model: "model-x",
		Tokens: usage.Tokens{Prompt: 1200, Completion: 300}, Cost: cost}); err != nil {
		return err
	}
	fmt.Fprintf(out, "executor-a holds %s (token %d): step 3, 2 messages, 3 checkpoints, 1 staged change\n", id, tok)

	job, err := b.Acquire(ctx, "nightly-report")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "executor-b holds nightly-report (token %d)\n", job.Token())

	e, err := election.New(c, "scheduler", election.Options{Lock: lock.Options{Prefix: prefix, Owner: "replica-a", TTL: lease, FenceTTL: keep}})
	if err != nil {
		return err
	}
	lead, err := e.Campaign(ctx, "10.0.0.1:8080")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "replica-a leads scheduler (term %d)\n", lead.Term())

	for _, h := range []struct {
		owner string
		n     int64
	}{{"executor-a", 1}, {"executor-b", 2}} {
		s, err := semaphore.New(c, "llm-slots", semaphore.Options{Prefix: prefix, Owner: h.owner, Limit: 4, TTL: lease})
		if err != nil {
			return err
		}
		if _, err := s.SetLimit(ctx, 4); err != nil { // stored for every process
			return err
		}
		p, err := s.Acquire(ctx, h.n)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s holds %d of the 4 llm-slots (token %d)\n", h.owner, h.n, p.Token())
	}
	fmt.Fprintf(out, "prefix: %s\n", prefix)
	return nil
}
