package usage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/usage"
)

// TestScriptsRefuseBadArguments sends the scripts what the Go side never
// would (NaN, infinities, negative and float amounts, unknown kinds, huge
// names): each call is refused with FENCEKIT_BADARG and writes nothing.
func TestScriptsRefuseBadArguments(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{AllowUnfenced: true})
		ctx := t.Context()
		c := s.NewClient(t)
		_, err := e.store.Record(ctx, "x1", 0, llm("ok", 0, "m", 1, 1, 1))
		require.NoError(t, err)
		require.NoError(t, e.store.SetBudget(ctx, "sc", usage.Limit{Tokens: 10}))
		k := keys.ForUsage(e.prefix, "x1")
		b := keys.ForBudget(e.prefix, "sc")
		snapKeys := append(e.sessionKeys("x1"), b.All()...)
		before := s.Snapshot(t, snapKeys...)
		rkeys := []string{k.Lock, k.Fence, k.State, k.Meta, k.Log, k.IDs, k.Kids, k.Budget.Limits, k.Budget.Holds, k.Budget.Amounts, k.Budget.Done}
		entry := func(mod func(f []string)) []string {
			f := []string{"id2", "tokens", "1", "1700000000000", "", "m", "1", "1", "0", "2", "", "0", "", "", "", "0", "5", `{"id":"id2"}`}
			mod(f)
			return append([]string{"0", "N", "60000", "60000", "65536"}, f...)
		}
		cases := map[string][]string{
			"nan cost":      entry(func(f []string) { f[16] = "nan" }),
			"inf cost":      entry(func(f []string) { f[16] = "inf" }),
			"negative cost": entry(func(f []string) { f[16] = "-1" }),
			"float tokens":  entry(func(f []string) { f[6] = "1.5" }),
			"exp tokens":    entry(func(f []string) { f[6] = "1e3" }),
			"huge tokens":   entry(func(f []string) { f[6] = "99999999999999999" }),
			"unknown kind":  entry(func(f []string) { f[1] = "llm" }),
			"huge model":    entry(func(f []string) { f[5] = strings.Repeat("m", 300) }),
			"pipe in model": entry(func(f []string) { f[5] = "a|b" }),
			"tool no name":  entry(func(f []string) { f[1] = "tool" }),
			"huge entry":    entry(func(f []string) { f[17] = strings.Repeat("x", 70000) }),
			"no entries":    {"0", "N", "60000", "60000", "65536"},
			"token in N":    append([]string{"5", "N"}, entry(func([]string) {})[2:]...),
		}
		for name, argv := range cases {
			err := lua.UsageRecord.Exec(ctx, c, rkeys, argv).Error()
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), "FENCEKIT_BADARG", name)
		}
		for name, argv := range map[string][]string{
			"nan tokens":  {"r1", "nan", "0", "1000", "1000", "scope:sc"},
			"neg cost":    {"r1", "1", "-1", "1000", "1000", "scope:sc"},
			"zero hold":   {"r1", "1", "0", "0", "1000", "scope:sc"},
			"pipe in id":  {"r|1", "1", "0", "1000", "1000", "scope:sc"},
			"float token": {"r1", "0.5", "0", "1000", "1000", "scope:sc"},
		} {
			err := lua.BudgetReserve.Exec(ctx, c, b.All(), argv).Error()
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), "FENCEKIT_BADARG", name)
		}
		for name, argv := range map[string][]string{
			"bad op":   {"r1", "X", "0", "0", "1000", "scope:sc"},
			"nan cost": {"r1", "C", "0", "nan", "1000", "scope:sc"},
		} {
			err := lua.BudgetSettle.Exec(ctx, c, b.All(), argv).Error()
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), "FENCEKIT_BADARG", name)
		}
		assert.Equal(t, before, s.Snapshot(t, snapKeys...))
	})
}

// TestRetention: every key gets its TTL, a Record refreshes them all, and
// usage left alone expires.
func TestRetention(t *testing.T) {
	s := redistest.NewMini(t)
	e := newEnv(t, s, usage.Options{EntryTTL: time.Hour, RollupTTL: 2 * time.Hour, BudgetTTL: 3 * time.Hour})
	ctx := t.Context()
	tok := e.acquire(t, "ret").Token()
	require.NoError(t, e.store.SetSessionBudget(ctx, "ret", usage.Limit{Tokens: 100}))
	r, err := e.store.Reserve(ctx, "ret", usage.Amount{Tokens: 10})
	require.NoError(t, err)
	require.NoError(t, r.Commit(ctx, usage.Amount{Tokens: 10}))
	_, err = e.store.Record(ctx, "ret", tok, llm("a", 0, "m", 1, 1, 0), sub("b", "kid"))
	require.NoError(t, err)
	k := keys.ForUsage(e.prefix, "ret")
	ttl := func(key string) time.Duration { return s.Mini.TTL(key) }
	assert.Equal(t, time.Hour, ttl(k.Log))
	assert.Equal(t, time.Hour, ttl(k.IDs))
	assert.Equal(t, 2*time.Hour, ttl(k.Meta))
	assert.Equal(t, 2*time.Hour, ttl(k.Kids))
	assert.Equal(t, 3*time.Hour, ttl(k.Budget.Limits))
	assert.Equal(t, 3*time.Hour, ttl(k.Budget.Done))
	s.RequireExpiring(t, e.prefix+":")
	s.FastForward(50 * time.Minute)
	tok = e.acquire(t, "ret").Token() // the 30 s lease ran out meanwhile
	_, err = e.store.Record(ctx, "ret", tok, llm("c", 0, "m", 1, 1, 0))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, ttl(k.Log), "refreshed by the Record")
	assert.Equal(t, 3*time.Hour, ttl(k.Budget.Limits), "refreshed by the Record")
	s.FastForward(61 * time.Minute)
	n, err := e.store.Count(ctx, "ret")
	require.NoError(t, err)
	assert.Zero(t, n, "entries expired")
	ru, err := e.store.Rollup(ctx, "ret")
	require.NoError(t, err, "the rollup outlives the entries")
	assert.Equal(t, int64(3), ru.Entries)
	s.FastForward(2 * time.Hour)
	_, err = e.store.Rollup(ctx, "ret")
	assert.ErrorIs(t, err, usage.ErrNotFound)
}

// TestWriteRefused: a server that refuses writes (OOM, READONLY...) gets
// an error matching fencing.ErrWriteRefused from every write.
func TestWriteRefused(t *testing.T) {
	s := redistest.NewMini(t)
	e := newEnv(t, s, usage.Options{})
	ctx := t.Context()
	tok := e.acquire(t, "w").Token()
	require.NoError(t, e.store.SetBudget(ctx, "sc", usage.Limit{Tokens: 10}))
	s.Mini.SetError("OOM command not allowed when used memory > 'maxmemory'.")
	defer s.Mini.SetError("")
	_, err := e.store.Record(ctx, "w", tok, llm("a", 0, "m", 1, 1, 0))
	assert.ErrorIs(t, err, fencing.ErrWriteRefused)
	_, err = e.store.Delete(ctx, "w", tok)
	assert.ErrorIs(t, err, fencing.ErrWriteRefused)
	_, err = e.store.Reserve(ctx, "w", usage.Amount{Tokens: 1}, "sc")
	assert.ErrorIs(t, err, fencing.ErrWriteRefused)
	assert.ErrorIs(t, e.store.SetBudget(ctx, "sc", usage.Limit{Tokens: 5}), fencing.ErrWriteRefused)
}
