package semaphore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/semaphore"
)

// A notice of a grant older than the waiter's last answered look (a
// notice delayed past a look, as in a process paused and resumed) is not
// taken as a grant: its lease may have run out already. The waiter looks
// again and keeps waiting.
func TestStaleNoticeIsNotAGrant(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		opts := semaphore.Options{Prefix: prefix, Limit: 1, RetryInterval: 50 * time.Millisecond}
		a := newSem(t, s, "n", opts)
		b := newSem(t, s, "n", opts)
		held, err := a.TryAcquire(ctx, 1)
		require.NoError(t, err)
		got := acquireAsync(ctx, b, 1)
		k := keys.ForSemaphore(prefix, "n")
		var waiter string
		require.Eventually(t, func() bool {
			m := s.Do(t, "ZRANGE", k.Queue, "0", "-1")
			ids, err := m.AsStrSlice()
			if err == nil && len(ids) == 1 {
				waiter = ids[0]
			}
			return waiter != ""
		}, 5*time.Second, 5*time.Millisecond)
		time.Sleep(150 * time.Millisecond) // the waiter has looked (and subscribed) by now

		// A notice naming the waiter with a token issued before its look.
		c := s.NewClient(t)
		msg := waiter + " " + held.Token().String() + " 60000"
		for i := 0; i < 5; i++ {
			var err error
			if s.Kind == redistest.Cluster {
				err = c.Do(ctx, c.B().Spublish().Channel(k.Wake).Message(msg).Build()).Error()
			} else {
				err = c.Do(ctx, c.B().Publish().Channel(k.Wake).Message(msg).Build()).Error()
			}
			require.NoError(t, err)
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case r := <-got:
			t.Fatalf("a stale notice was taken as a grant: %v %v", r.p, r.err)
		case <-time.After(300 * time.Millisecond):
		}
		require.NoError(t, held.Release(ctx))
		p := (<-got).get(t)
		require.Greater(t, p.Token(), held.Token())
		require.NoError(t, p.Release(ctx))
	})
}
