package semaphore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/semaphore"
)

// A server that refuses writes (min-replicas-to-write without replicas:
// NOREPLICAS) refuses every semaphore script at its first write: the
// caller gets fencing.ErrWriteRefused, nothing is written, and no waiter
// is handed a permit. miniredis cannot refuse writes, so this runs on a
// private redis-server.
func TestWritesRefused(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	ctx := ctxT(t, 30*time.Second)
	prefix := s.Prefix(t)
	opts := semaphore.Options{Prefix: prefix, Limit: 1, RetryInterval: 20 * time.Millisecond}
	a := newSem(t, s, "r", opts)
	b := newSem(t, s, "r", opts)
	k := keys.ForSemaphore(prefix, "r")
	all := []string{k.Holders, k.HolderInfo, k.Queue, k.QueueInfo, k.Fence, k.Limit}
	refuse := func(on bool) {
		v := "0"
		if on {
			v = "1"
		}
		m := s.Do(t, "CONFIG", "SET", "min-replicas-to-write", v)
		require.NoError(t, m.Error())
	}

	refuse(true)
	_, err := a.TryAcquire(ctx, 1)
	require.ErrorIs(t, err, fencing.ErrWriteRefused)
	assert.Empty(t, s.Snapshot(t, all...), "nothing written")
	refuse(false)

	held, err := a.TryAcquire(ctx, 1)
	require.NoError(t, err)
	got := acquireAsync(ctx, b, 1)
	require.Eventually(t, func() bool {
		info, err := a.Inspect(ctx)
		return err == nil && len(info.Waiters) == 1
	}, 5*time.Second, 5*time.Millisecond)
	before := s.Snapshot(t, all...)
	refuse(true)
	err = held.Release(ctx)
	require.ErrorIs(t, err, fencing.ErrWriteRefused)
	_, err = a.SetLimit(ctx, 2)
	require.ErrorIs(t, err, fencing.ErrWriteRefused)
	select {
	case r := <-got:
		t.Fatalf("a waiter was granted while writes were refused: %v %v", r.p, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	after := s.Snapshot(t, all...)
	// The waiter's own re-polls are refused too: nothing changed but
	// nothing can (its liveness refresh is a write).
	assert.Equal(t, before[k.Holders], after[k.Holders])
	assert.Equal(t, before[k.HolderInfo], after[k.HolderInfo])
	assert.NoError(t, held.Err(), "the lease goes on after a refused release")
	refuse(false)
	require.NoError(t, held.Release(ctx), "the next call tries again")
	p := (<-got).get(t)
	assert.Greater(t, p.Token(), held.Token())
	require.NoError(t, p.Release(ctx))
}

// Every call returns in bounded time whatever the context: a frozen
// server gives fencing.ErrNoReply after CallTimeout.
func TestNoReplyBounded(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	sem := newSem(t, s, "n", semaphore.Options{Limit: 1, CallTimeout: 300 * time.Millisecond})
	ctx := context.Background() // never ends
	p, err := sem.TryAcquire(ctx, 1)
	require.NoError(t, err)
	resume := s.Pause(t)
	defer resume()
	for name, call := range map[string]func() error{
		"TryAcquire": func() error { _, err := sem.TryAcquire(ctx, 1); return err },
		"Acquire":    func() error { _, err := sem.Acquire(ctx, 1); return err },
		"Refresh":    func() error { return p.Refresh(ctx) },
		"Inspect":    func() error { _, err := sem.Inspect(ctx); return err },
		"SetLimit":   func() error { _, err := sem.SetLimit(ctx, 2); return err },
	} {
		start := time.Now()
		err := call()
		assert.ErrorIs(t, err, fencing.ErrNoReply, name)
		assert.Less(t, time.Since(start), 5*time.Second, name)
	}
	resume()
	require.NoError(t, p.Release(ctx))
}
