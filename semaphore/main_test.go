package semaphore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/semaphore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// newSem returns a Semaphore for name on its own client of s, with keys
// under a prefix other tests do not use (opts.Prefix, when set, is kept).
// Both are closed in t.Cleanup.
func newSem(t testing.TB, s *redistest.Server, name string, opts semaphore.Options) *semaphore.Semaphore {
	t.Helper()
	return newSemOn(t, s.NewClient(t), s, name, opts)
}

func newSemOn(t testing.TB, c rueidis.Client, s *redistest.Server, name string, opts semaphore.Options) *semaphore.Semaphore {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = s.Prefix(t)
	}
	sem, err := semaphore.New(c, name, opts)
	if err != nil {
		t.Fatalf("semaphore.New: %v", err)
	}
	t.Cleanup(func() { _ = sem.Close() })
	return sem
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond every 5ms until it holds or 5s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mutedClient is a rueidis.Client whose subscriptions never deliver a
// message: waiters must find their grants by looking again.
type mutedClient struct{ rueidis.Client }

func (c mutedClient) Receive(ctx context.Context, _ rueidis.Completed, _ func(rueidis.PubSubMessage)) error {
	<-ctx.Done()
	return ctx.Err()
}
