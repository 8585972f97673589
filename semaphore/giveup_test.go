package semaphore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/semaphore"
)

// slowReplyClient runs sem_acquire.lua at once but hands its reply back
// only after delay: a look in flight when the caller gives up, injected
// deterministically instead of by load.
type slowReplyClient struct {
	rueidis.Client
	delay time.Duration
	slow  atomic.Bool
	// sent, if set, is called once Redis has run a slow look (the caller
	// gives up then, deterministically while the look is in flight).
	sent atomic.Pointer[func()]
}

func (c *slowReplyClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	args := cmd.Commands()
	isAcquire := len(args) > 1 && ((args[0] == "EVALSHA" && args[1] == lua.SemAcquire.SHA1()) ||
		(args[0] == "EVAL" && args[1] == lua.SemAcquire.Source()))
	// The command goes out on a context the caller cannot end, as a
	// command already written to the connection would.
	res := c.Client.Do(context.WithoutCancel(ctx), cmd)
	if isAcquire && c.slow.Load() {
		if f := c.sent.Load(); f != nil {
			(*f)()
		}
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return rueidis.RedisResult{} // never reached: the look's context cannot end
		}
	}
	return res
}

// A caller that gives up while its look is in flight is never left
// holding permits: the look is waited for, and what it took is given back.
func TestGiveUpWaitsForTheLookInFlight(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		prefix := s.Prefix(t)
		slow := &slowReplyClient{Client: s.NewClient(t), delay: 300 * time.Millisecond}
		sem := newSemOn(t, slow, s, "g", semaphore.Options{Prefix: prefix, Limit: 2})
		check := newSem(t, s, "g", semaphore.Options{Prefix: prefix, Limit: 2})
		bg := context.Background()
		_, err := sem.TryAcquire(bg, 1) // load the script first
		require.NoError(t, err)
		info, err := check.Inspect(bg)
		require.NoError(t, err)
		require.Equal(t, int64(1), info.Used)
		slow.slow.Store(true)

		for _, try := range []func(ctx context.Context) (*semaphore.Permits, error){
			func(ctx context.Context) (*semaphore.Permits, error) { return sem.TryAcquire(ctx, 1) },
			func(ctx context.Context) (*semaphore.Permits, error) { return sem.Acquire(ctx, 1) },
		} {
			ctx, cancel := context.WithCancel(bg)
			f := func() { cancel() }
			slow.sent.Store(&f)
			start := time.Now()
			p, err := try(ctx)
			cancel()
			slow.sent.Store(nil)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, context.Canceled)
			assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "the look in flight was waited for")
			info, err := check.Inspect(bg)
			require.NoError(t, err)
			assert.Equal(t, int64(1), info.Used, "the permit granted to the look was given back")
			assert.Empty(t, info.Waiters)
		}
	})
}
