package lock_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

func TestNewRejectsBadOptions(t *testing.T) {
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	_, err := lock.New(nil, lock.Options{})
	assert.ErrorIs(t, err, lock.ErrNilClient)

	for name, o := range map[string]lock.Options{
		"negative TTL":           {TTL: -time.Second},
		"TTL below minimum":      {TTL: 5 * time.Millisecond},
		"TTL not whole ms":       {TTL: 15*time.Millisecond + 500*time.Microsecond},
		"refresh not below TTL":  {TTL: time.Second, RefreshInterval: time.Second},
		"negative refresh":       {RefreshInterval: -1},
		"negative retry":         {RetryInterval: -1},
		"retry below 1ms":        {RetryInterval: time.Microsecond},
		"negative replicas":      {MinReplicas: -1},
		"negative replica wait":  {ReplicaTimeout: -1},
		"sub-ms replica wait":    {ReplicaTimeout: 500 * time.Microsecond}, // WAIT 0 would wait forever
		"prefix with brace":      {Prefix: "a{b"},
		"prefix with colon":      {Prefix: "a:b"},
		"owner with bar":         {Owner: "a|b"},
		"owner with space":       {Owner: "a b"},
		"tiny fence ttl":         {FenceTTL: time.Microsecond},
		"owner control char":     {Owner: "a\x00"},
		"prefix with newline":    {Prefix: "a\nb"},
		"prefix invalid utf8":    {Prefix: "\xff"},
		"owner far too long":     {Owner: strings.Repeat("o", 300)},
		"refresh equals default": {RefreshInterval: lock.DefaultTTL},
	} {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, o.Validate(), lock.ErrInvalidOptions)
			l, err := lock.New(c, o)
			assert.ErrorIs(t, err, lock.ErrInvalidOptions)
			assert.Nil(t, l)
		})
	}

	l, err := lock.New(c, lock.Options{})
	require.NoError(t, err)
	o := l.Options()
	assert.Equal(t, lock.DefaultPrefix, o.Prefix)
	assert.Equal(t, lock.DefaultTTL, o.TTL)
	assert.Equal(t, lock.DefaultTTL/3, o.RefreshInterval)
	assert.Equal(t, lock.DefaultRetryInterval, o.RetryInterval)
	assert.Equal(t, lock.DefaultFenceTTL, o.FenceTTL)
	assert.NotEmpty(t, o.Owner)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")
	var nilLocker *lock.Locker
	require.NoError(t, nilLocker.Close())
	var nilLock *lock.Lock
	require.NoError(t, nilLock.Release(t.Context()))
	// A nil Lock (a failed acquisition's) holds nothing and does not panic.
	assert.Zero(t, nilLock.Token())
	assert.Empty(t, nilLock.Name())
	assert.Empty(t, nilLock.Owner())
	assert.True(t, nilLock.AcquiredAt().IsZero())
	assert.True(t, nilLock.Deadline().IsZero())
	assert.Zero(t, nilLock.TTL())
	assert.ErrorIs(t, nilLock.Err(), lock.ErrReleased)
	assert.ErrorIs(t, nilLock.Refresh(t.Context()), lock.ErrReleased)
	select {
	case <-nilLock.Done():
	default:
		t.Error("Done of a nil Lock is not closed")
	}
	assert.ErrorIs(t, context.Cause(nilLock.Context()), lock.ErrReleased)
	wctx, cancel := nilLock.WithContext(t.Context())
	defer cancel()
	assert.ErrorIs(t, context.Cause(wctx), lock.ErrReleased)
}

func TestBadNames(t *testing.T) {
	s := redistest.NewMini(t)
	l := newLocker(t, s, lock.Options{})
	ctx := t.Context()
	for _, name := range []string{"", "a{b", "a}b", "a|b", "a\nb", "\x7f", "\xff\xfe", strings.Repeat("n", 257)} {
		_, err := l.TryAcquire(ctx, name)
		assert.ErrorIs(t, err, lock.ErrInvalidName, "TryAcquire(%q)", name)
		_, err = l.Acquire(ctx, name)
		assert.ErrorIs(t, err, lock.ErrInvalidName, "Acquire(%q)", name)
		_, err = l.Inspect(ctx, name)
		assert.ErrorIs(t, err, lock.ErrInvalidName, "Inspect(%q)", name)
	}
	assert.Empty(t, s.Mini.Keys(), "bad names must not reach Redis")
	lk, err := l.TryAcquire(ctx, strings.Repeat("n", 256))
	require.NoError(t, err, "256 bytes is allowed")
	require.NoError(t, lk.Release(ctx))
	lk, err = l.TryAcquire(ctx, "agent/session:42 ünïcode")
	require.NoError(t, err)
	require.NoError(t, lk.Release(ctx))
}

// TestForeignData: keys of a lock that hold data fencekit did not write get
// a typed error, and the failed call changes nothing.
func TestForeignData(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := t.Context()
		prefix := s.Prefix(t)
		l := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Second})
		k := keys.ForLock(prefix, "x")
		for _, tc := range []struct {
			name  string
			setup [][]string
			want  error // nil: a *rueidis.RedisError (WRONGTYPE)
		}{
			{"garbage record", [][]string{{"SET", k.Lock, "garbage"}}, lock.ErrCorrupt},
			{"record with bad token", [][]string{{"SET", k.Lock, "01|5|o|a"}}, lock.ErrCorrupt},
			{"record is a hash", [][]string{{"HSET", k.Lock, "f", "v"}}, nil},
			{"fence not a number", [][]string{{"SET", k.Fence, "12abc"}}, lock.ErrCorrupt},
			{"fence is a list", [][]string{{"RPUSH", k.Fence, "1"}}, nil},
			{"queue is a string", [][]string{{"SET", k.Queue, "q"}}, nil},
			{"queue info is a list", [][]string{{"ZADD", k.Queue, "1", "o|1"}, {"RPUSH", k.QueueInfo, "x"}}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, key := range []string{k.Lock, k.Fence, k.Queue, k.QueueInfo} {
					s.Do(t, "DEL", key)
				}
				for _, cmd := range tc.setup {
					m := s.Do(t, cmd...)
					require.NoError(t, m.Error())
				}
				before := snapshot(t, s, prefix, "x")
				check := func(op string, err error) {
					t.Helper()
					require.Error(t, err, op)
					if tc.want != nil {
						assert.ErrorIs(t, err, tc.want, op)
					} else {
						var re *rueidis.RedisError
						assert.True(t, errors.As(err, &re), "%s: want a Redis error, got %T %v", op, err, err)
					}
					assert.Equal(t, before, snapshot(t, s, prefix, "x"), "%s changed state", op)
				}
				_, err := l.TryAcquire(ctx, "x")
				check("TryAcquire", err)
				_, err = l.Acquire(ctx, "x")
				check("Acquire", err)
			})
		}
	})
}
