package lua_test

// Table tests of the semaphore and election scripts: one row per outcome,
// run on miniredis, a real redis-server and the Cluster with the same
// expectations; error rows check that no key changed.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
)

// semEnv runs semaphore scripts against the keys of one name.
type semEnv struct {
	t *testing.T
	s *redistest.Server
	c rueidis.Client
	k keys.Semaphore
	// prefix is the key prefix of the case, for RequireExpiring.
	prefix string
}

func newSemEnv(t *testing.T, s *redistest.Server) *semEnv {
	p := s.Prefix(t)
	return &semEnv{t: t, s: s, c: s.NewClient(t), k: keys.ForSemaphore(p, "sem"), prefix: p}
}

func (e *semEnv) keyv() []string {
	return []string{e.k.Holders, e.k.HolderInfo, e.k.Queue, e.k.QueueInfo, e.k.Fence, e.k.Limit}
}

func (e *semEnv) do(args ...string) {
	e.t.Helper()
	for i, a := range args {
		args[i] = strings.NewReplacer("$h", e.k.Holders, "$hi", e.k.HolderInfo, "$q", e.k.Queue,
			"$qi", e.k.QueueInfo, "$fence", e.k.Fence, "$limit", e.k.Limit).Replace(a)
	}
	m := e.s.Do(e.t, args...)
	require.NoError(e.t, m.Error(), "%v", args)
}

func (e *semEnv) run(sc *lua.Script, keyv []string, argv ...string) ([]rueidis.RedisMessage, error) {
	return sc.Exec(context.Background(), e.c, keyv, argv).ToArray()
}

// acquire runs sem_acquire.lua: holder, n, ttl 30000, wait, lease 5000,
// fence ttl 1 day, default limit, no channel.
func (e *semEnv) acquire(holder string, n int, wait bool, limit int) ([]rueidis.RedisMessage, error) {
	w := "0"
	if wait {
		w = "1"
	}
	return e.run(lua.SemAcquire, e.keyv(), holder, strconv.Itoa(n), "30000", w, "5000", "86400000", strconv.Itoa(limit), "", "P", "")
}

func (e *semEnv) release(holder, token string, limit int) ([]rueidis.RedisMessage, error) {
	return e.run(lua.SemRelease, e.keyv(), holder, token, "86400000", strconv.Itoa(limit), "", "P", "")
}

func ints(t *testing.T, arr []rueidis.RedisMessage) []string {
	t.Helper()
	out := make([]string, len(arr))
	for i, m := range arr {
		if n, err := m.AsInt64(); err == nil {
			out[i] = strconv.FormatInt(n, 10)
			continue
		}
		s, err := m.ToString()
		require.NoError(t, err)
		out[i] = s
	}
	return out
}

// unchanged runs fn and checks that no key of the semaphore changed and
// that fn's error is the fencekit error code (or a Redis error when code
// is "").
func (e *semEnv) unchanged(code string, fn func() error) {
	e.t.Helper()
	before := e.s.Snapshot(e.t, e.keyv()...)
	err := fn()
	require.Error(e.t, err)
	if code != "" {
		got, _, ok := scripterr.Parse(err)
		assert.True(e.t, ok && got == code, "error %v, want FENCEKIT_%s", err, code)
	} else {
		assert.True(e.t, scripterr.IsRedis(err), "error %v, want a Redis error reply", err)
	}
	assert.Equal(e.t, before, e.s.Snapshot(e.t, e.keyv()...), "an error changed a key")
}

// same runs fn and checks that no key of the semaphore changed.
func (e *semEnv) same(fn func()) {
	e.t.Helper()
	before := e.s.Snapshot(e.t, e.keyv()...)
	fn()
	assert.Equal(e.t, before, e.s.Snapshot(e.t, e.keyv()...), "a key changed")
}

func TestSemAcquireScript(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		t.Run("bad arguments change nothing", func(t *testing.T) {
			e := newSemEnv(t, s)
			e.do("SET", "$fence", "5")
			for _, argv := range [][]string{
				{"nobar", "1", "30000", "0", "5000", "0", "3"},
				{"a|1", "0", "30000", "0", "5000", "0", "3"},
				{"a|1", "1", "0", "0", "5000", "0", "3"},
				{"a|1", "1", "30000", "2", "5000", "0", "3"},
				{"a|1", "1", "30000", "0", "0", "0", "3"},
				{"a|1", "1", "30000", "0", "5000", "x", "3"},
				{"a|1", "1", "30000", "0", "5000", "0", "0"},
				{"a|1", "1", "30000", "0", "5000", "0", "3", "", "X"},
			} {
				e.unchanged(scripterr.BadArg, func() error { _, err := e.run(lua.SemAcquire, e.keyv(), argv...); return err })
			}
		})
		t.Run("corrupt limit, fence, holder info; wrong types change nothing", func(t *testing.T) {
			e := newSemEnv(t, s)
			e.do("SET", "$limit", "junk")
			e.unchanged(scripterr.Corrupt, func() error { _, err := e.acquire("a|1", 1, true, 3); return err })
			e.do("DEL", "$limit")
			e.do("SET", "$fence", "9007199254740991")
			e.unchanged(scripterr.Corrupt, func() error { _, err := e.acquire("a|1", 1, true, 3); return err })
			e.do("DEL", "$fence")
			e.do("ZADD", "$h", strconv.FormatInt(time.Now().UnixMilli()+60000, 10), "b|1")
			e.do("HSET", "$hi", "b|1", "junk")
			e.unchanged(scripterr.Corrupt, func() error { _, err := e.acquire("a|1", 1, true, 3); return err })
			e.do("DEL", "$h", "$hi")
			e.do("SET", "$q", "x")
			e.unchanged("", func() error { _, err := e.acquire("a|1", 1, true, 3); return err })
		})
		t.Run("grant, retry, queue, too many", func(t *testing.T) {
			e := newSemEnv(t, s)
			t0 := time.Now()
			r, err := e.acquire("a|1", 2, false, 3)
			require.NoError(t, err)
			got := ints(t, r)
			require.Len(t, got, 5)
			assert.Equal(t, "1", got[0])
			assert.Equal(t, got[1], got[4], "the fence is the new token")
			tok, _ := strconv.ParseInt(got[1], 10, 64)
			assert.InDelta(t, t0.UnixMicro(), tok, float64(2*time.Second/time.Microsecond), "time-seeded token")
			assert.Equal(t, "30000", got[2])
			snap := e.s.Snapshot(t, e.k.Fence)
			assert.Equal(t, "string:"+got[1], snap[e.k.Fence], "the fence keeps the token")

			r2, err := e.acquire("a|1", 2, false, 3)
			require.NoError(t, err)
			assert.Equal(t, got[1], ints(t, r2)[1], "a retry returns the same token")

			// 1 of 3 free, 2 asked: not granted; queued with wait.
			r3, err := e.acquire("b|1", 2, true, 3)
			require.NoError(t, err)
			assert.Equal(t, []string{"0", "2", "3"}, ints(t, r3)[:3])
			soon, _ := strconv.Atoi(ints(t, r3)[3])
			assert.InDelta(t, 30000, soon, 2000, "ms until the soonest lease ends")
			// A later small request does not overtake the queued large one.
			e.same(func() {
				r, err := e.acquire("c|1", 1, false, 3)
				require.NoError(t, err)
				assert.Equal(t, []string{"0", "2", "3"}, ints(t, r)[:3])
			})
			// More than the limit: never granted, nothing written.
			e.same(func() {
				r, err := e.acquire("d|1", 4, true, 3)
				require.NoError(t, err)
				assert.Equal(t, []string{"2", "3"}, ints(t, r))
			})
			// The release hands 2 permits to b in the same script.
			rel, err := e.release("a|1", got[1], 3)
			require.NoError(t, err)
			rg := ints(t, rel)
			require.Len(t, rg, 4)
			assert.Equal(t, "1", rg[0])
			assert.Equal(t, "b|1", rg[1])
			assert.Greater(t, rg[2], got[1], "the hand-off has a larger token")
			assert.Equal(t, "30000", rg[3])
			rb, err := e.acquire("b|1", 2, true, 3)
			require.NoError(t, err)
			assert.Equal(t, []string{"1", rg[2]}, ints(t, rb)[:2], "b finds its grant")
			// Releasing again: status 0, nothing held.
			rel2, err := e.release("a|1", got[1], 3)
			require.NoError(t, err)
			assert.Equal(t, []string{"0"}, ints(t, rel2))
			// Wrong token: -1, b's permits stay.
			rel3, err := e.release("b|1", "123", 3)
			require.NoError(t, err)
			assert.Equal(t, []string{"-1"}, ints(t, rel3))
			info, err := e.acquire("z|1", 2, false, 3)
			require.NoError(t, err)
			assert.Equal(t, []string{"0", "2", "3"}, ints(t, info)[:3])
			s.RequireExpiring(t, e.prefix)
		})
		t.Run("ended leases are swept and their permits reused", func(t *testing.T) {
			e := newSemEnv(t, s)
			past := strconv.FormatInt(time.Now().UnixMilli()-1, 10)
			e.do("ZADD", "$h", past, "dead|1", past, "dead|2")
			e.do("HSET", "$hi", "dead|1", "5|2|1", "dead|2", "6|1|1")
			e.do("SET", "$fence", "6")
			r, err := e.acquire("a|1", 3, false, 3)
			require.NoError(t, err)
			assert.Equal(t, "1", ints(t, r)[0])
			snap := e.s.Snapshot(t, e.k.HolderInfo)
			assert.NotContains(t, snap[e.k.HolderInfo], "dead|", "swept")
		})
		t.Run("dead waiters are skipped", func(t *testing.T) {
			e := newSemEnv(t, s)
			stale := strconv.FormatInt(time.Now().UnixMilli()-1000, 10)
			e.do("ZADD", "$q", "1", "gone|1")
			e.do("HSET", "$qi", "gone|1", stale+"|30000|1")
			e.do("PEXPIRE", "$q", "60000")
			e.do("PEXPIRE", "$qi", "60000")
			r, err := e.acquire("a|1", 1, false, 1)
			require.NoError(t, err)
			assert.Equal(t, "1", ints(t, r)[0], "a waiter that stopped polling holds nobody back")
			snap := e.s.Snapshot(t, e.k.Queue)
			assert.Empty(t, snap[e.k.Queue])
		})
	})
}

func TestSemRefreshAndLimitScripts(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newSemEnv(t, s)
		r, err := e.acquire("a|1", 1, false, 1)
		require.NoError(t, err)
		tok := ints(t, r)[1]
		hk := []string{e.k.Holders, e.k.HolderInfo}
		ok, err := e.run(lua.SemRefresh, hk, "a|1", tok, "60000")
		require.NoError(t, err)
		assert.Equal(t, []string{"1", "60000"}, ints(t, ok))
		wrong, err := e.run(lua.SemRefresh, hk, "a|1", "77", "60000")
		require.NoError(t, err)
		assert.Equal(t, []string{"-1", tok}, ints(t, wrong))
		none, err := e.run(lua.SemRefresh, hk, "x|1", tok, "60000")
		require.NoError(t, err)
		assert.Equal(t, []string{"0"}, ints(t, none))
		e.unchanged(scripterr.BadArg, func() error { _, err := e.run(lua.SemRefresh, hk, "a|1", tok, "0"); return err })

		// An ended lease is not brought back.
		e.do("ZADD", "$h", "XX", strconv.FormatInt(time.Now().UnixMilli()-1, 10), "a|1")
		ended, err := e.run(lua.SemRefresh, hk, "a|1", tok, "60000")
		require.NoError(t, err)
		assert.Equal(t, []string{"0"}, ints(t, ended))

		// The limit: a waiter is served when it grows.
		_, err = e.acquire("b|1", 1, false, 1) // sweeps a, takes the permit
		require.NoError(t, err)
		q, err := e.acquire("c|1", 1, true, 1)
		require.NoError(t, err)
		assert.Equal(t, "0", ints(t, q)[0])
		e.unchanged(scripterr.BadArg, func() error { _, err := e.run(lua.SemLimit, e.keyv(), "0", "0", "", "P", ""); return err })
		lim, err := e.run(lua.SemLimit, e.keyv(), "2", "0", "", "P", "")
		require.NoError(t, err)
		got := ints(t, lim)
		require.Len(t, got, 4)
		assert.Equal(t, []string{"0", "c|1"}, got[:2], "previous limit none; c granted")
		lim2, err := e.run(lua.SemLimit, e.keyv(), "1", "0", "", "P", "")
		require.NoError(t, err)
		assert.Equal(t, []string{"2"}, ints(t, lim2), "lowering grants nothing, takes nothing")
		r4, err := e.acquire("d|1", 1, false, 5)
		require.NoError(t, err)
		assert.Equal(t, []string{"0", "2", "1"}, ints(t, r4)[:3], "the stored limit wins over the caller's")
	})
}

func TestElectScripts(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		prefix := s.Prefix(t)
		lk, ek := keys.ForLock(prefix, "el"), keys.ForElection(prefix, "el")
		c := s.NewClient(t)
		ctx := context.Background()
		kv := []string{lk.Lock, ek.Value, lk.Events}
		all := []string{lk.Lock, ek.Value, lk.Events}
		unchanged := func(code string, argv ...string) {
			t.Helper()
			before := s.Snapshot(t, all...)
			err := lua.ElectProclaim.Exec(ctx, c, kv, argv).Error()
			got, _, ok := scripterr.Parse(err)
			assert.True(t, ok && got == code, "error %v, want FENCEKIT_%s", err, code)
			assert.Equal(t, before, s.Snapshot(t, all...))
		}
		unchanged(scripterr.BadArg, "0", "v", "60000")
		unchanged(scripterr.BadArg, "5", "v", "0")
		unchanged(scripterr.NotHolder, "5", "v", "60000") // no leader
		s.Do(t, "SET", lk.Lock, "7|1000|a|1", "PX", "60000")
		unchanged(scripterr.Stale, "5", "v", "60000")
		unchanged(scripterr.NotHolder, "9", "v", "60000")
		s.Do(t, "SET", lk.Lock, "junk", "PX", "60000")
		unchanged(scripterr.Corrupt, "7", "v", "60000")
		s.Do(t, "SET", lk.Lock, "7|1000|a|1", "PX", "60000")

		r, err := lua.ElectProclaim.Exec(ctx, c, kv, []string{"7", "hello", "60000"}).ToArray()
		require.NoError(t, err)
		assert.Equal(t, "7", ints(t, r)[0])
		rd, err := lua.ElectLeader.Exec(ctx, c, kv, nil).ToArray()
		require.NoError(t, err)
		got := ints(t, rd)
		assert.Equal(t, "7|1000|a|1", got[0])
		assert.Equal(t, "7|hello", got[2])
		assert.NotEmpty(t, got[3], "the newest event id")
		s.RequireExpiring(t, prefix)
	})
}
