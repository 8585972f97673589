package usage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/usage"
)

func sub(id, child string) usage.Entry {
	return usage.Entry{ID: id, Kind: usage.KindSubAgent, SubAgent: child}
}

// TestSubAgentCycles links root -> a -> b -> root (a cycle), a -> b twice
// (two paths), b -> ghost (never recorded): each session is summed once
// and the walk costs one round trip per level.
func TestSubAgentCycles(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := redistest.Counting(s.NewClient(t))
		prefix := s.Prefix(t)
		st, err := usage.New(c, usage.Options{Prefix: prefix, AllowUnfenced: true})
		require.NoError(t, err)
		ctx := t.Context()
		rec := func(id string, es ...usage.Entry) {
			_, err := st.Record(ctx, id, 0, es...)
			require.NoError(t, err)
		}
		rec("root", llm("l", 0, "m", 10, 0, 1), sub("s1", "a"))
		rec("a", llm("l", 0, "m", 100, 0, 10), sub("s1", "b"), sub("s2", "b"))
		rec("b", llm("l", 0, "m", 1000, 0, 100), sub("s1", "root"), sub("s2", "ghost"), sub("s3", "a"))

		own, err := st.Rollup(ctx, "root")
		require.NoError(t, err)
		assert.Equal(t, int64(10), own.Prompt)
		assert.Equal(t, []string{"root"}, own.Sessions)
		assert.Equal(t, []string{"a"}, own.Children)

		var all *usage.Rollup
		trips := c.Count(func() { all, err = st.Rollup(ctx, "root", usage.IncludeSubAgents) })
		require.NoError(t, err)
		assert.Equal(t, int64(1110), all.Prompt)
		assert.Equal(t, usage.Cost(111), all.Cost)
		assert.Equal(t, []string{"root", "a", "b"}, all.Sessions)
		assert.Equal(t, []string{"ghost"}, all.Missing)
		assert.False(t, all.Truncated)
		assert.LessOrEqual(t, trips, int64(4), "one round trip per level (root, a, b, ghost)")

		// A depth bound cuts the walk and says so.
		short, err := usage.New(c, usage.Options{Prefix: prefix, MaxSubAgentDepth: 1})
		require.NoError(t, err)
		cut, err := short.Rollup(ctx, "root", usage.IncludeSubAgents)
		require.NoError(t, err)
		assert.Equal(t, []string{"root", "a"}, cut.Sessions)
		assert.True(t, cut.Truncated)
		assert.Equal(t, int64(110), cut.Prompt)
	})
}

// TestLostReply freezes a real redis-server while Record is in flight: the
// call fails with fencing.ErrNoReply within CallTimeout, the server runs
// it when it wakes, and the retry counts nothing twice.
func TestLostReply(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	e := newEnv(t, s, usage.Options{CallTimeout: 300 * time.Millisecond})
	ctx := t.Context()
	tok := e.acquire(t, "lr").Token()
	entry := llm("call-1", 1, "m", 50, 5, 20)
	resume := s.Pause(t)
	start := time.Now()
	_, err := e.store.Record(ctx, "lr", tok, entry)
	require.ErrorIs(t, err, fencing.ErrNoReply)
	assert.Less(t, time.Since(start), 2*time.Second)
	resume()
	var r usage.RecordResult
	require.Eventually(t, func() bool {
		r, err = e.store.Record(context.Background(), "lr", tok, entry)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	ru, err := e.store.Rollup(ctx, "lr")
	require.NoError(t, err)
	assert.Equal(t, int64(1), ru.Entries, "recorded once, whichever call did it")
	assert.Equal(t, int64(55), ru.Total)
	assert.Equal(t, int64(1), r.Count)
}

// TestDeleteInvalidatesCursors: a cursor issued before Delete does not
// point into usage recorded after it.
func TestDeleteInvalidatesCursors(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{})
		ctx := t.Context()
		tok := e.acquire(t, "d1").Token()
		_, err := e.store.Record(ctx, "d1", tok, llm("a", 0, "m", 1, 1, 0), llm("b", 0, "m", 1, 1, 0))
		require.NoError(t, err)
		p, err := e.store.Entries(ctx, "d1", usage.Query{Limit: 1})
		require.NoError(t, err)
		require.True(t, p.HasMore)
		ok, err := e.store.Delete(ctx, "d1", tok)
		require.NoError(t, err)
		assert.True(t, ok)
		ok, err = e.store.Delete(ctx, "d1", tok)
		require.NoError(t, err)
		assert.False(t, ok)
		time.Sleep(2 * time.Millisecond) // a new epoch (µs) for the new rollup
		_, err = e.store.Record(ctx, "d1", tok, llm("c", 0, "m", 1, 1, 0), llm("a", 0, "m", 1, 1, 0))
		require.NoError(t, err)
		_, err = e.store.Entries(ctx, "d1", usage.Query{Cursor: p.Next})
		assert.ErrorIs(t, err, usage.ErrInvalidCursor)
		n, err := e.store.Count(ctx, "d1")
		require.NoError(t, err)
		assert.Equal(t, int64(2), n, "ids are forgotten with the entries")
	})
}

func TestSessionsPaging(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{AllowUnfenced: true})
		ctx := t.Context()
		want := []string{"s-a", "s-b", "s-c", "s-d", "s-e"}
		for _, id := range want {
			_, err := e.store.Record(ctx, id, 0, llm("x", 0, "m", 1, 0, 0))
			require.NoError(t, err)
		}
		var got []string
		cur := ""
		for i := 0; ; i++ {
			p, err := e.store.Sessions(ctx, cur, 2)
			require.NoError(t, err)
			got = append(got, p.IDs...)
			if i == 0 {
				_, err := e.store.Record(ctx, "s-0", 0, llm("x", 0, "m", 1, 0, 0)) // before the cursor: not listed
				require.NoError(t, err)
			}
			if !p.HasMore {
				break
			}
			cur = p.Next
		}
		assert.Equal(t, want, got)
		_, err := e.store.Sessions(ctx, "!!", 2)
		assert.ErrorIs(t, err, usage.ErrInvalidCursor)
		s.RequireExpiring(t, e.prefix+":")
	})
}
