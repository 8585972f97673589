package lock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// TestRefreshIfeq: renewals use SET ... IFEQ where the server has it
// (Valkey >= 8.1; DELIFEQ, from Valkey 9.0, is how the test tells) and
// refresh.lua elsewhere, with the same outcomes: the lease extended, a
// record gone (CauseGone), taken (CauseTaken, naming the holder and its
// token) or corrupt (ErrCorrupt), and never a record brought back. A
// private server, so that its command counts are the test's own.
func TestRefreshIfeq(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	ifeq := s.HasCommand(t, "DELIFEQ")
	ctx := ctxT(t, 20*time.Second)
	prefix := s.Prefix(t)
	a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: 10 * time.Second})
	b := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "b", TTL: 10 * time.Second})
	k := keys.ForLock(prefix, "r")
	do := func(args ...string) {
		t.Helper()
		m := s.Do(t, args...)
		require.NoError(t, m.Error(), "%v", args)
	}
	calls := func(cmd string) int64 {
		n, ok := s.CommandCalls(t, cmd)
		require.True(t, ok, "a private redis-server keeps command counts")
		return n
	}

	lk, err := a.TryAcquire(ctx, "r")
	require.NoError(t, err)
	do("PEXPIRE", k.Lock, "3000")
	set0, eval0 := calls("set"), calls("evalsha")+calls("eval")
	for range 3 {
		require.NoError(t, lk.Refresh(ctx))
	}
	m := s.Do(t, "PTTL", k.Lock)
	pttl, err := m.AsInt64()
	require.NoError(t, err)
	assert.Greater(t, pttl, int64(5000), "the lease was extended")
	set1, eval1 := calls("set"), calls("evalsha")+calls("eval")
	if ifeq {
		assert.False(t, lock.NoIfeq(a))
		assert.Equal(t, int64(3), set1-set0, "three renewals, three SET IFEQ")
		assert.Zero(t, eval1-eval0, "no script")
	} else {
		assert.True(t, lock.NoIfeq(a), "the server refused IFEQ: refresh.lua from then on")
		assert.LessOrEqual(t, set1-set0, int64(1), "SET IFEQ is tried once at most")
		// Three renewals, three scripts; the first one may go out twice,
		// as EVALSHA answered NOSCRIPT and then as EVAL.
		assert.Contains(t, []int64{3, 4}, eval1-eval0, "three renewals by refresh.lua")
	}

	// Taken: another grant's record, whatever path reads it.
	taken := "1796000000000001|1796000000000|b|x"
	do("SET", k.Lock, taken, "PX", "10000")
	err = lk.Refresh(ctx)
	var lost *lock.LostError
	require.ErrorAs(t, err, &lost)
	assert.Equal(t, lock.CauseTaken, lost.Cause)
	assert.Equal(t, "b", lost.Holder)
	assert.Equal(t, "1796000000000001", lost.HolderToken.String())
	m = s.Do(t, "GET", k.Lock)
	got, err := m.ToString()
	require.NoError(t, err)
	assert.Equal(t, taken, got, "the other holder's record is untouched")
	<-lk.Done()

	// Corrupt: a record fencekit did not write.
	do("DEL", k.Lock)
	lk, err = a.TryAcquire(ctx, "r")
	require.NoError(t, err)
	do("SET", k.Lock, "garbage", "PX", "10000")
	assert.ErrorIs(t, lk.Refresh(ctx), lock.ErrCorrupt)
	m = s.Do(t, "GET", k.Lock)
	got, err = m.ToString()
	require.NoError(t, err)
	assert.Equal(t, "garbage", got)

	// Gone: never brought back.
	do("DEL", k.Lock)
	err = lk.Refresh(ctx)
	require.ErrorAs(t, err, &lost)
	assert.Equal(t, lock.CauseGone, lost.Cause)
	m = s.Do(t, "EXISTS", k.Lock)
	n, err := m.AsInt64()
	require.NoError(t, err)
	assert.Zero(t, n, "Refresh brought the lock back")

	// A grant handed over by b's release, learned from its notice (the
	// acquisition time is unknown): renewed all the same.
	held, err := b.TryAcquire(ctx, "h")
	require.NoError(t, err)
	got2 := make(chan *lock.Lock, 1)
	go func() {
		w, err := a.Acquire(ctx, "h")
		assert.NoError(t, err)
		got2 <- w
	}()
	waitQueued(t, b, "h", 1)
	require.NoError(t, held.Release(ctx))
	w := <-got2
	require.NotNil(t, w)
	require.NoError(t, w.Refresh(ctx))
	require.NoError(t, w.Release(ctx))
}
