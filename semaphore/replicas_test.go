package semaphore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/semaphore"
)

// TestMinReplicas: with a replica, WAIT is satisfied for every grant,
// renewal, limit change and hand-off (in memory and announced); without
// it, a grant is given back and ErrNotReplicated returned.
func TestMinReplicas(t *testing.T) {
	primary, stopReplica := redistest.NewRedisWithReplica(t)
	ctx := ctxT(t, 30*time.Second)
	opts := semaphore.Options{Limit: 2, TTL: 10 * time.Second, MinReplicas: 1, ReplicaTimeout: 200 * time.Millisecond}
	sem := newSem(t, primary, "dur", opts)
	opts.Prefix = sem.Options().Prefix
	other := newSem(t, primary, "dur", opts) // another process: hears of hand-offs by pub/sub

	a, err := sem.TryAcquire(ctx, 2)
	require.NoError(t, err)
	require.NoError(t, a.Refresh(ctx))
	_, err = sem.SetLimit(ctx, 2)
	require.NoError(t, err)

	local := acquireAsync(ctx, sem, 1)    // handed over in memory
	remote := acquireAsync(ctx, other, 1) // announced: looks again, WAIT covers it
	waitFor(t, "two waiters", func() bool {
		info, err := sem.Inspect(ctx)
		return err == nil && len(info.Waiters) == 2
	})
	require.NoError(t, a.Release(ctx))
	b, c := (<-local).get(t), (<-remote).get(t)
	require.NoError(t, b.Release(ctx))
	require.NoError(t, c.Release(ctx))

	stopReplica()
	_, err = sem.TryAcquire(ctx, 1)
	var nr *semaphore.NotReplicatedError
	require.ErrorAs(t, err, &nr)
	assert.ErrorIs(t, err, semaphore.ErrNotReplicated)
	assert.Equal(t, 1, nr.Want)
	assert.Zero(t, nr.Acked)
	info, err := sem.Inspect(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Used, "an unreplicated grant must be given back")
	_, err = sem.Acquire(ctx, 1)
	assert.ErrorIs(t, err, semaphore.ErrNotReplicated)
	info, err = sem.Inspect(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Used)
	assert.Empty(t, info.Waiters)
}

// TestMinReplicasRefresh: a renewal too few replicas acknowledged reports
// ErrNotReplicated and still extends the lease on the primary.
func TestMinReplicasRefresh(t *testing.T) {
	primary, stopReplica := redistest.NewRedisWithReplica(t)
	ctx := ctxT(t, 30*time.Second)
	sem := newSem(t, primary, "ref", semaphore.Options{TTL: 10 * time.Second, MinReplicas: 1, ReplicaTimeout: 200 * time.Millisecond})
	p, err := sem.TryAcquire(ctx, 1)
	require.NoError(t, err)
	stopReplica()
	before := p.Deadline()
	err = p.Refresh(ctx)
	assert.ErrorIs(t, err, semaphore.ErrNotReplicated)
	assert.True(t, p.Deadline().After(before), "the lease was extended on the primary")
	assert.NoError(t, p.Err())
	require.NoError(t, p.Release(ctx))
}

func TestMinReplicasMiniredis(t *testing.T) {
	// miniredis has no replicas: WAIT answers 0.
	s := redistest.NewMini(t)
	sem := newSem(t, s, "x", semaphore.Options{MinReplicas: 1, ReplicaTimeout: 10 * time.Millisecond})
	ctx := ctxT(t, 10*time.Second)
	_, err := sem.TryAcquire(ctx, 1)
	assert.ErrorIs(t, err, semaphore.ErrNotReplicated)
	info, err := sem.Inspect(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Used)
}

// TestMinReplicasGiveBackFirstUse: with no replica and a ReplicaTimeout
// longer than a second, an unreplicated grant is still given back, also on
// a server that has not cached the release script yet (its NOSCRIPT round
// costs a whole WAIT before the script runs).
func TestMinReplicasGiveBackFirstUse(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	ctx := ctxT(t, 30*time.Second)
	sem := newSem(t, s, "first", semaphore.Options{TTL: time.Minute, MinReplicas: 1, ReplicaTimeout: 1500 * time.Millisecond})
	_, err := sem.TryAcquire(ctx, 1)
	require.ErrorIs(t, err, semaphore.ErrNotReplicated)
	info, err := sem.Inspect(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Used, "the unreplicated grant must be given back")
}
