// Command splitbrain shows the failure fencekit exists for, and that fencing
// stops it.
//
// Executor A takes the lease on a session, then pauses (a GC pause, a VM
// stall, SIGSTOP) for longer than its lease. Executor B takes over and
// writes. A wakes up still believing it holds the session and writes too.
// An unfenced store takes A's stale write and loses B's work; a store that
// checks fencing tokens rejects it with fencing.ErrStaleToken.
//
// It runs on an embedded miniredis unless REDIS_URL names a real server
// (for example redis://127.0.0.1:6379/0). It exits with status 1 if the
// fenced store ever accepts the stale write, and 2 on any other failure.
//
//	go run ./examples/splitbrain
//	REDIS_URL=redis://127.0.0.1:6379 go run ./examples/splitbrain
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
)

const (
	session = "session-42"
	ttl     = 500 * time.Millisecond
)

func main() {
	stale, err := run(os.Stdout)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "splitbrain:", err)
		os.Exit(2)
	case stale:
		fmt.Println("FAIL: the fenced store accepted a stale write")
		os.Exit(1)
	}
}

// executor is one process of the fleet: its own client and Locker.
type executor struct {
	name   string
	client rueidis.Client
	locker *lock.Locker
}

func newExecutor(s *embedded.Server, name string) (*executor, error) {
	c, err := s.NewClient()
	if err != nil {
		return nil, err
	}
	l, err := lock.New(c, lock.Options{Prefix: "splitbrain", Owner: name, TTL: ttl})
	if err != nil {
		c.Close()
		return nil, err
	}
	return &executor{name: name, client: c, locker: l}, nil
}

func (e *executor) close() {
	_ = e.locker.Close()
	e.client.Close()
}

// unfenced is a store that trusts whoever writes: the last write wins.
type unfenced struct {
	mu  sync.Mutex
	doc string
}

func (u *unfenced) write(doc string) {
	u.mu.Lock()
	u.doc = doc
	u.mu.Unlock()
}

// fenced is the same store behind a fencing.Guard: a write carries the
// writer's token and is refused if a newer token already wrote.
type fenced struct {
	guard fencing.Guard
	mu    sync.Mutex
	doc   string
}

func (f *fenced) write(token fencing.Token, doc string) error {
	return f.guard.Apply(session, token, func() error {
		f.mu.Lock()
		f.doc = doc
		f.mu.Unlock()
		return nil
	})
}

func run(out io.Writer) (staleAccepted bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start()
	if err != nil {
		return false, err
	}
	defer srv.Close()
	fmt.Fprintf(out, "server: %s; lease %v\n\n", srv.Description, ttl)

	a, err := newExecutor(srv, "executor-A")
	if err != nil {
		return false, err
	}
	defer a.close()
	b, err := newExecutor(srv, "executor-B")
	if err != nil {
		return false, err
	}
	defer b.close()
	var plain unfenced
	var safe fenced

	lockA, err := a.locker.Acquire(ctx, session)
	if err != nil {
		return false, fmt.Errorf("A acquire: %w", err)
	}
	fmt.Fprintf(out, "A  acquired %s with token %d\n", session, lockA.Token())
	if err := safe.write(lockA.Token(), "step 1 by A"); err != nil {
		return false, fmt.Errorf("A's first write: %w", err)
	}
	plain.write("step 1 by A")
	fmt.Fprintln(out, "A  wrote step 1")

	fmt.Fprintf(out, "A  pauses for %v (GC, VM stall, SIGSTOP) ...\n", 3*ttl)
	srv.Sleep(3 * ttl)

	lockB, err := b.locker.Acquire(ctx, session)
	if err != nil {
		return false, fmt.Errorf("B acquire: %w", err)
	}
	fmt.Fprintf(out, "B  acquired %s with token %d after A's lease ran out\n", session, lockB.Token())
	if err := safe.write(lockB.Token(), "step 2 by B"); err != nil {
		return false, fmt.Errorf("B's write: %w", err)
	}
	plain.write("step 2 by B")
	fmt.Fprintln(out, "B  wrote step 2")

	// A wakes up and, like a real executor in the middle of a step,
	// writes before it checks anything.
	fmt.Fprintf(out, "A  wakes up and writes its step 2 with token %d\n\n", lockA.Token())
	plain.write("step 2 by A (stale)")
	werr := safe.write(lockA.Token(), "step 2 by A (stale)")

	fmt.Fprintf(out, "unfenced store: %q  <- B's work is lost\n", plain.doc)
	fmt.Fprintf(out, "fenced store:   %q\n", safe.doc)
	var se *fencing.StaleTokenError
	switch {
	case errors.As(werr, &se):
		fmt.Fprintf(out, "                A's write rejected: %v\n", werr)
	case werr == nil:
		staleAccepted = true
	default:
		return false, fmt.Errorf("A's stale write: unexpected error %w", werr)
	}
	if safe.doc != "step 2 by B" {
		staleAccepted = true
	}

	// The lock itself knew: A's lease is over, and its release cannot
	// touch B's lock.
	fmt.Fprintf(out, "\nA's lock:   Err() = %v\n", lockA.Err())
	fmt.Fprintf(out, "A releases: %v\n", lockA.Release(ctx))
	info, err := b.locker.Inspect(ctx, session)
	if err != nil {
		return staleAccepted, err
	}
	fmt.Fprintf(out, "holder now: %s, token %d\n", info.Owner, info.Token)
	if info.Owner != "executor-B" || info.Token != lockB.Token() {
		return staleAccepted, errors.New("A's release disturbed B's lock")
	}
	if err := lockB.Release(ctx); err != nil {
		return staleAccepted, fmt.Errorf("B release: %w", err)
	}
	if !staleAccepted {
		fmt.Fprintln(out, "\nOK: the stale executor could not corrupt the fenced state")
	}
	return staleAccepted, nil
}
