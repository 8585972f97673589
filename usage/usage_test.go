package usage_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/usage"
)

type env struct {
	s      *redistest.Server
	prefix string
	locker *lock.Locker
	store  *usage.Store
}

func newEnv(t *testing.T, s *redistest.Server, opts usage.Options) *env {
	t.Helper()
	c := s.NewClient(t)
	if opts.Prefix == "" {
		opts.Prefix = s.Prefix(t)
	}
	l, err := lock.New(c, lock.Options{Prefix: opts.Prefix, TTL: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	st, err := usage.New(c, opts)
	require.NoError(t, err)
	return &env{s: s, prefix: opts.Prefix, locker: l, store: st}
}

func (e *env) acquire(t *testing.T, id string) *lock.Lock {
	t.Helper()
	lk, err := e.locker.Acquire(t.Context(), id)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lk.Release(context.Background()) })
	return lk
}

// sessionKeys are every key of session id's usage, for snapshots.
func (e *env) sessionKeys(id string) []string {
	k := keys.ForUsage(e.prefix, id)
	return []string{k.Meta, k.Log, k.IDs, k.Kids, k.Budget.Limits, k.Budget.Holds, k.Budget.Amounts, k.Budget.Done}
}

func llm(id string, step int64, model string, p, c int64, cost usage.Cost) usage.Entry {
	return usage.Entry{ID: id, Kind: usage.KindTokens, Step: step, Model: model, Source: "planner",
		Tokens: usage.Tokens{Prompt: p, Completion: c}, Cost: cost}
}

func TestRecordRollupEntries(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{EntryTTL: time.Hour})
		ctx := t.Context()
		tok := e.acquire(t, "s1").Token()
		t0 := time.UnixMilli(1_700_000_000_000)
		entries := []usage.Entry{
			llm("e1", 1, "gpt", 100, 20, 1500),
			{ID: "e2", Kind: usage.KindTool, Step: 1, Time: t0, Tool: usage.ToolCall{Name: "grep", Duration: 30 * time.Millisecond}},
			{ID: "e3", Kind: usage.KindTool, Step: 2, Time: t0.Add(time.Second), Tool: usage.ToolCall{Name: "grep", Duration: 5 * time.Millisecond, Outcome: "timeout"}, Cost: 7},
			{ID: "e4", Kind: usage.KindSubAgent, Step: 2, SubAgent: "child-1"},
			{ID: "e5", Kind: usage.KindCustom, Step: 3, Custom: usage.Custom{Name: "searches", Value: 3}},
		}
		r, err := e.store.Record(ctx, "s1", tok, entries...)
		require.NoError(t, err)
		assert.Equal(t, int64(5), r.Count)
		assert.Equal(t, []bool{true, true, true, true, true}, r.Recorded)

		// The same ids again (a retry, another executor) and one new: only
		// the new one counts.
		r, err = e.store.Record(ctx, "s1", tok, entries[0], llm("e6", 3, "gpt", 10, 1, 100), entries[0])
		require.NoError(t, err)
		assert.Equal(t, int64(6), r.Count)
		assert.Equal(t, []bool{false, true, false}, r.Recorded)

		ru, err := e.store.Rollup(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, int64(6), ru.Entries)
		assert.Equal(t, int64(110), ru.Prompt)
		assert.Equal(t, int64(21), ru.Completion)
		assert.Equal(t, int64(131), ru.Total)
		assert.Equal(t, usage.Cost(1607), ru.Cost)
		assert.Equal(t, int64(2), ru.ToolCalls)
		assert.Equal(t, int64(1), ru.ToolErrors)
		assert.Equal(t, 35*time.Millisecond, ru.ToolTime)
		assert.Equal(t, int64(1), ru.SubAgents)
		assert.Equal(t, map[usage.Kind]int64{"tokens": 2, "tool": 2, "subagent": 1, "custom": 1}, ru.ByKind)
		assert.Equal(t, usage.Totals{Entries: 2, Prompt: 110, Completion: 21, Total: 131, Cost: 1600}, ru.ByModel["gpt"])
		assert.Equal(t, usage.ToolTotals{Calls: 2, Errors: 1, Time: 35 * time.Millisecond, Cost: 7}, ru.ByTool["grep"])
		assert.Equal(t, usage.Totals{Entries: 2, Total: 131, Cost: 1600}, ru.BySource["planner"])
		assert.Equal(t, map[string]int64{"searches": 3}, ru.Custom)
		assert.Equal(t, []string{"child-1"}, ru.Children)
		assert.Equal(t, int64(1), ru.MinStep)
		assert.Equal(t, int64(3), ru.MaxStep)
		assert.Equal(t, t0, ru.First)

		n, err := e.store.Count(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, int64(6), n)
		ok, err := e.store.Exists(ctx, "s1", "e3")
		require.NoError(t, err)
		assert.True(t, ok)
		ok, err = e.store.Exists(ctx, "s1", "nope")
		require.NoError(t, err)
		assert.False(t, ok)

		// Filters and paging.
		p, err := e.store.Entries(ctx, "s1", usage.Query{Kinds: []usage.Kind{usage.KindTool}})
		require.NoError(t, err)
		require.Len(t, p.Entries, 2)
		assert.Equal(t, "e2", p.Entries[0].ID)
		assert.Equal(t, usage.ToolCall{Name: "grep", Duration: 5 * time.Millisecond, Outcome: "timeout"}, p.Entries[1].Tool)
		assert.False(t, p.HasMore)
		p, err = e.store.Entries(ctx, "s1", usage.Query{Steps: &usage.Range{Min: 2, Max: 3}})
		require.NoError(t, err)
		assert.Equal(t, []string{"e3", "e4", "e5", "e6"}, ids(p.Entries))
		p, err = e.store.Entries(ctx, "s1", usage.Query{Since: t0, Until: t0.Add(time.Second)})
		require.NoError(t, err)
		assert.Equal(t, []string{"e2"}, ids(p.Entries))

		var got []string
		q := usage.Query{Limit: 4}
		for i := 0; ; i++ {
			p, err := e.store.Entries(ctx, "s1", q)
			require.NoError(t, err)
			got = append(got, ids(p.Entries)...)
			if i == 0 { // appended while paging: shows up on a later page
				_, err := e.store.Record(ctx, "s1", tok, llm("e7", 4, "gpt", 1, 1, 0))
				require.NoError(t, err)
			}
			if !p.HasMore {
				break
			}
			q.Cursor = p.Next
		}
		assert.Equal(t, []string{"e1", "e2", "e3", "e4", "e5", "e6", "e7"}, got)

		_, err = e.store.Entries(ctx, "other", usage.Query{Cursor: q.Cursor})
		assert.ErrorIs(t, err, usage.ErrInvalidCursor)
		_, err = e.store.Entries(ctx, "s1", usage.Query{Cursor: "garbage!"})
		assert.ErrorIs(t, err, usage.ErrInvalidCursor)

		sp, err := e.store.Sessions(ctx, "", 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"s1"}, sp.IDs)

		s.RequireExpiring(t, e.prefix+":")
	})
}

func ids(es []usage.Entry) []string {
	out := make([]string, len(es))
	for i := range es {
		out[i] = es[i].ID
	}
	return out
}

func TestFencing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "f1")
		old := lk.Token()
		_, err := e.store.Record(ctx, "f1", old, llm("a", 0, "m", 1, 1, 0))
		require.NoError(t, err)
		require.NoError(t, lk.Release(ctx))

		// Lease over, nobody else yet: not the holder.
		before := s.Snapshot(t, e.sessionKeys("f1")...)
		_, err = e.store.Record(ctx, "f1", old, llm("b", 0, "m", 1, 1, 0))
		assert.ErrorIs(t, err, fencing.ErrNotHolder)
		assert.ErrorIs(t, err, fencing.ErrFenced)

		// A newer holder: stale.
		lk2 := e.acquire(t, "f1")
		_, err = e.store.Record(ctx, "f1", old, llm("b", 0, "m", 1, 1, 0))
		var se *fencing.StaleTokenError
		require.ErrorAs(t, err, &se)
		assert.ErrorIs(t, err, fencing.ErrFenced)
		_, err = e.store.Delete(ctx, "f1", old)
		assert.ErrorIs(t, err, fencing.ErrFenced)
		// A retry of what the old holder recorded before it lost the lease
		// (its reply lost): not refused, not counted again, nothing written.
		r, err := e.store.Record(ctx, "f1", old, llm("a", 0, "m", 1, 1, 0))
		require.NoError(t, err)
		assert.Equal(t, []bool{false}, r.Recorded)
		// A batch with a new entry is refused whole.
		_, err = e.store.Record(ctx, "f1", old, llm("a", 0, "m", 1, 1, 0), llm("b", 0, "m", 1, 1, 0))
		assert.ErrorIs(t, err, fencing.ErrStaleToken)
		assert.Equal(t, before, s.Snapshot(t, e.sessionKeys("f1")...))

		// The zero token needs AllowUnfenced.
		_, err = e.store.Record(ctx, "f1", 0, llm("b", 0, "m", 1, 1, 0))
		assert.ErrorIs(t, err, usage.ErrInvalidArgument)
		assert.ErrorIs(t, err, fencing.ErrInvalidToken)
		un, err := usage.New(s.NewClient(t), usage.Options{Prefix: e.prefix, AllowUnfenced: true})
		require.NoError(t, err)
		_, err = un.Record(ctx, "f1", 0, llm("b", 0, "m", 1, 1, 0))
		require.NoError(t, err)

		ok, err := e.store.Delete(ctx, "f1", lk2.Token())
		require.NoError(t, err)
		assert.True(t, ok)
		ok, err = e.store.Delete(ctx, "f1", old) // nothing left: no refusal, nothing written
		require.NoError(t, err)
		assert.False(t, ok)
		_, err = e.store.Rollup(ctx, "f1")
		assert.ErrorIs(t, err, usage.ErrNotFound)
		sp, err := e.store.Sessions(ctx, "", 10)
		require.NoError(t, err)
		assert.Empty(t, sp.IDs)
	})
}

func TestBadInputWritesNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{MaxEntryBytes: 2048})
		ctx := t.Context()
		tok := e.acquire(t, "b1").Token()
		_, err := e.store.Record(ctx, "b1", tok, llm("ok", 0, "m", 1, 1, 0))
		require.NoError(t, err)
		before := s.Snapshot(t, e.sessionKeys("b1")...)
		good := llm("g", 0, "m", 1, 1, 0)
		huge := strings.Repeat("x", 300)
		for _, c := range []struct {
			name string
			e    usage.Entry
			want error
		}{
			{"negative tokens", llm("x", 0, "m", -1, 1, 0), usage.ErrInvalidArgument},
			{"negative cost", llm("x", 0, "m", 1, 1, -5), usage.ErrInvalidArgument},
			{"huge tokens", llm("x", 0, "m", math.MaxInt64, 1, 0), usage.ErrInvalidArgument},
			{"unknown kind", usage.Entry{ID: "x", Kind: "llm"}, usage.ErrInvalidArgument},
			{"empty id", usage.Entry{Kind: usage.KindCustom, Custom: usage.Custom{Name: "a"}}, usage.ErrInvalidID},
			{"id with braces", usage.Entry{ID: "{x}", Kind: usage.KindCustom, Custom: usage.Custom{Name: "a"}}, usage.ErrInvalidID},
			{"huge model name", llm("x", 0, huge, 1, 1, 0), usage.ErrInvalidArgument},
			{"pipe in tool", usage.Entry{ID: "x", Kind: usage.KindTool, Tool: usage.ToolCall{Name: "a|b"}}, usage.ErrInvalidArgument},
			{"tool without name", usage.Entry{ID: "x", Kind: usage.KindTool}, usage.ErrInvalidArgument},
			{"tokens on a tool", usage.Entry{ID: "x", Kind: usage.KindTool, Tool: usage.ToolCall{Name: "t"}, Tokens: usage.Tokens{Prompt: 1}}, usage.ErrInvalidArgument},
			{"bad sub-agent", usage.Entry{ID: "x", Kind: usage.KindSubAgent, SubAgent: "a{b"}, usage.ErrInvalidID},
			{"negative step", usage.Entry{ID: "x", Kind: usage.KindCustom, Step: -1, Custom: usage.Custom{Name: "a"}}, usage.ErrInvalidArgument},
		} {
			t.Run(c.name, func(t *testing.T) {
				// A bad entry in a batch refuses the whole batch.
				_, err := e.store.Record(ctx, "b1", tok, good, c.e)
				require.ErrorIs(t, err, c.want)
				assert.Equal(t, before, s.Snapshot(t, e.sessionKeys("b1")...))
			})
		}
		small := newEnv(t, s, usage.Options{Prefix: e.prefix, MaxEntryBytes: 100})
		_, err = small.store.Record(ctx, "b1", tok, good, usage.Entry{ID: "x", Kind: usage.KindCustom, Custom: usage.Custom{Name: huge[:200]}})
		assert.ErrorIs(t, err, usage.ErrTooLarge)
		assert.Equal(t, before, s.Snapshot(t, e.sessionKeys("b1")...))

		for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.5, 1e12} {
			_, err := usage.CostOf(f)
			assert.ErrorIs(t, err, usage.ErrInvalidArgument, "CostOf(%v)", f)
		}
		c, err := usage.CostOf(0.0125)
		require.NoError(t, err)
		assert.Equal(t, usage.Cost(12500), c)
		assert.Equal(t, "0.012500", c.String())

		// Budgets: bad amounts and scopes are refused before anything is sent.
		_, err = e.store.Reserve(ctx, "b1", usage.Amount{Tokens: -1})
		assert.ErrorIs(t, err, usage.ErrInvalidArgument)
		_, err = e.store.Reserve(ctx, "b1", usage.Amount{Tokens: 1}, "bad{scope}")
		assert.ErrorIs(t, err, usage.ErrInvalidID)
		assert.ErrorIs(t, e.store.SetBudget(ctx, "sc", usage.Limit{}), usage.ErrInvalidArgument)
		assert.ErrorIs(t, e.store.SetBudget(ctx, "sc", usage.Limit{Cost: -1}), usage.ErrInvalidArgument)
		assert.Equal(t, before, s.Snapshot(t, e.sessionKeys("b1")...))
	})
}
