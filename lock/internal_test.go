package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
)

func newTestLocker(t *testing.T, s *redistest.Server, opts Options) *Locker {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = s.Prefix(t)
	}
	l, err := New(s.NewClient(t), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestAcquireRetryIsIdempotent: a retried acquire of the same attempt (as
// after a timeout whose reply was lost) gets the same token and lease, not
// a second grant.
func TestAcquireRetryIsIdempotent(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		l := newTestLocker(t, s, Options{TTL: 10 * time.Second})
		k := keys.ForLock(l.opts.Prefix, "i")
		holder := l.newHolder()
		first, err := l.runAcquire(ctx, &k, holder, false)
		require.NoError(t, err)
		require.True(t, first.granted)
		for range 3 {
			again, err := l.runAcquire(ctx, &k, holder, true)
			require.NoError(t, err)
			assert.True(t, again.granted)
			assert.Equal(t, first.token, again.token)
			assert.Equal(t, first.at, again.at)
		}
		// Another attempt of the same Locker is another holder.
		other, err := l.runAcquire(ctx, &k, l.newHolder(), false)
		require.NoError(t, err)
		assert.False(t, other.granted)
		assert.Equal(t, first.token, other.token)

		// A retried release is harmless: the first frees the lock, the
		// retry finds nothing to do, and a later holder is never touched.
		tok := first.token.String()
		r, err := l.runRelease(ctx, &k, holder, tok)
		require.NoError(t, err)
		assert.Equal(t, int64(1), r.status)
		next, err := l.runAcquire(ctx, &k, l.newHolder(), false)
		require.NoError(t, err)
		require.True(t, next.granted)
		r, err = l.runRelease(ctx, &k, holder, tok)
		require.NoError(t, err)
		assert.Equal(t, int64(-1), r.status, "retry must see another holder")
		assert.Equal(t, next.token, r.token)
		info, err := l.Inspect(ctx, "i")
		require.NoError(t, err)
		assert.Equal(t, next.token, info.Token)
	})
}

// TestReplyDecoding feeds replies of the wrong shape to the decoders; they
// must return ErrProtocol, never panic. The replies are real RESP arrays
// read back from a list.
func TestReplyDecoding(t *testing.T) {
	s := redistest.NewMini(t)
	reply := func(items ...string) []rueidis.RedisMessage {
		key := s.Prefix(t)
		if len(items) > 0 {
			args := append([]string{"RPUSH", key}, items...)
			s.Do(t, args...)
		}
		m := s.Do(t, "LRANGE", key, "0", "-1")
		arr, err := m.ToArray()
		require.NoError(t, err)
		return arr
	}
	for _, items := range [][]string{
		{},
		{"1", "2", "3"},
		{"1", "not-a-token", "100", "5"},
		{"1", "0", "100", "5"},
		{"1", "12", "x", "5"},
		{"7", "12", "100", "5"},
		{"0", "12", "100", "5"}, // no holder
	} {
		var r acquireReply
		err := r.decode(reply(items...))
		assert.ErrorIs(t, err, ErrProtocol, "acquire %q", items)
	}
	var ok acquireReply
	require.NoError(t, ok.decode(reply("0", "12", "100", "5", "me|1")))
	assert.Equal(t, "me|1", ok.holder)

	for _, items := range [][]string{
		{},
		{"1", "", ""},
		{"1", "", "", "0", "extra"},
		{"1", "", "x", "0"},
		{"2", "", "", "0"},
		{"1", "h|1", "12", "ttl"},
	} {
		var r releaseReply
		assert.ErrorIs(t, r.decode(reply(items...)), ErrProtocol, "release %q", items)
	}
	var rel releaseReply
	require.NoError(t, rel.decode(reply("1", "", "", "0")))
	assert.Equal(t, int64(1), rel.status)
}

// TestMinReplicas: with a replica WAIT is satisfied; without, the grant is
// given back and ErrNotReplicated returned.
func TestMinReplicas(t *testing.T) {
	primary, stopReplica := redistest.NewRedisWithReplica(t)
	ctx := context.Background()
	l := newTestLocker(t, primary, Options{TTL: 10 * time.Second, MinReplicas: 1, ReplicaTimeout: 200 * time.Millisecond})
	lk, err := l.TryAcquire(ctx, "dur")
	require.NoError(t, err)
	require.NoError(t, lk.Refresh(ctx))
	require.NoError(t, lk.Release(ctx))
	lk, err = l.Acquire(ctx, "dur")
	require.NoError(t, err)
	require.NoError(t, lk.Release(ctx))

	stopReplica()
	_, err = l.TryAcquire(ctx, "dur")
	var nr *NotReplicatedError
	require.ErrorAs(t, err, &nr)
	assert.ErrorIs(t, err, ErrNotReplicated)
	assert.Equal(t, 1, nr.Want)
	assert.Zero(t, nr.Acked)
	info, err := l.Inspect(ctx, "dur")
	require.NoError(t, err)
	assert.False(t, info.Held, "an unreplicated grant must be given back")
	_, err = l.Acquire(ctx, "dur")
	assert.ErrorIs(t, err, ErrNotReplicated)
	info, err = l.Inspect(ctx, "dur")
	require.NoError(t, err)
	assert.False(t, info.Held)
}

func TestMinReplicasMiniredis(t *testing.T) {
	// miniredis has no replicas: WAIT answers 0.
	s := redistest.NewMini(t)
	l := newTestLocker(t, s, Options{MinReplicas: 1, ReplicaTimeout: 10 * time.Millisecond})
	_, err := l.TryAcquire(context.Background(), "x")
	assert.True(t, errors.Is(err, ErrNotReplicated), "got %v", err)
}

// TestMinReplicasGiveBackFirstUse: with no replica and a ReplicaTimeout
// longer than a second, an unreplicated grant is still given back, also on
// a server that has not cached the release script yet (its NOSCRIPT
// round costs a whole WAIT before the script runs).
func TestMinReplicasGiveBackFirstUse(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	ctx := context.Background()
	l := newTestLocker(t, s, Options{TTL: time.Minute, MinReplicas: 1, ReplicaTimeout: 1500 * time.Millisecond})
	_, err := l.TryAcquire(ctx, "first")
	require.ErrorIs(t, err, ErrNotReplicated)
	info, err := l.Inspect(ctx, "first")
	require.NoError(t, err)
	assert.False(t, info.Held, "the unreplicated grant must be given back")
}
