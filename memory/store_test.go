package memory_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/memory"
)

const dim = 8

type env struct {
	s      *redistest.Server
	client rueidis.Client
	store  *memory.Store
	prefix string
}

func newEnv(t *testing.T, s *redistest.Server, o memory.Options) *env {
	t.Helper()
	c := s.NewClient(t)
	o.Prefix = s.Prefix(t)
	if o.Dim == 0 {
		o.Dim = dim
	}
	st, err := memory.New(c, o)
	require.NoError(t, err)
	return &env{s: s, client: c, store: st, prefix: o.Prefix}
}

// rootKeys lists every key of root the test may have written (for
// snapshots): the fixed ones, the records ids and the indexes of scopes.
func (e *env) rootKeys(root string, ids, scopes []string) []string {
	k := keys.ForMemory(e.prefix, root)
	out := []string{k.Lock, k.Fence, k.Meta, k.Exp, k.Scopes, k.TTLs}
	for _, id := range ids {
		out = append(out, k.Record(id))
	}
	for _, sc := range scopes {
		out = append(out, k.ScopeIndex(sc))
	}
	return out
}

func vec(xs ...float32) []float32 {
	v := make([]float32, dim)
	copy(v, xs)
	return v
}

func rec(id, scope string, v []float32) memory.Record {
	return memory.Record{ID: id, Scope: scope, Text: "text of " + id, Embedding: v, Importance: 0.5}
}

func TestCRUD(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, memory.Options{})
		ctx := context.Background()
		created := time.UnixMilli(1700000000123)
		r := memory.Record{
			ID: "m1", Scope: "user/42/project/7", Text: "likes tea", Embedding: vec(3, 4),
			Categories: []string{"pref", "drink", "pref"}, Metadata: map[string]string{"src": "chat"},
			Importance: 0.75, CreatedAt: created,
		}
		require.NoError(t, e.store.Put(ctx, []memory.Record{r}))
		got, err := e.store.Get(ctx, "user/42", "m1")
		require.NoError(t, err)
		assert.Equal(t, "likes tea", got.Text)
		assert.Equal(t, "user/42/project/7", got.Scope)
		assert.Equal(t, []string{"drink", "pref"}, got.Categories)
		assert.Equal(t, map[string]string{"src": "chat"}, got.Metadata)
		assert.Equal(t, 0.75, got.Importance)
		assert.True(t, got.CreatedAt.Equal(created), "created %v", got.CreatedAt)
		assert.InDelta(t, 0.6, got.Embedding[0], 1e-6)
		assert.InDelta(t, 0.8, got.Embedding[1], 1e-6)
		assert.Zero(t, got.TTL)

		// Not visible from an unrelated scope of the same root.
		_, err = e.store.Get(ctx, "user/43", "m1")
		assert.ErrorIs(t, err, memory.ErrNotFound)

		// Replace moves it to another scope.
		r.Scope, r.Text = "user/42", "likes green tea"
		require.NoError(t, e.store.Put(ctx, []memory.Record{r}))
		sc, err := e.store.Scopes(ctx, "user")
		require.NoError(t, err)
		assert.Equal(t, []memory.ScopeCount{{Scope: "user/42", Count: 1}}, sc)
		got, err = e.store.Get(ctx, "user/42", "m1")
		require.NoError(t, err)
		assert.Equal(t, "likes green tea", got.Text)

		// Server time when CreatedAt is zero.
		before := time.Now().Add(-time.Second)
		require.NoError(t, e.store.Put(ctx, []memory.Record{rec("m2", "user/42/x", vec(1))}))
		got, err = e.store.Get(ctx, "user", "m2")
		require.NoError(t, err)
		assert.True(t, got.CreatedAt.After(before), "created %v", got.CreatedAt)

		n, err := e.store.Count(ctx, "user/42", true)
		require.NoError(t, err)
		assert.EqualValues(t, 2, n)
		n, err = e.store.Count(ctx, "user/42", false)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)

		recs, err := e.store.GetMany(ctx, "user", []string{"m2", "nope", "m1"})
		require.NoError(t, err)
		require.Len(t, recs, 2)
		assert.Equal(t, "m2", recs[0].ID)
		assert.Equal(t, "m1", recs[1].ID)

		// Delete only within the given scope.
		d, err := e.store.Delete(ctx, "user/42/x", []string{"m1", "m2", "m2"})
		require.NoError(t, err)
		assert.Equal(t, 1, d)
		_, err = e.store.Get(ctx, "user", "m2")
		assert.ErrorIs(t, err, memory.ErrNotFound)
		n, err = e.store.Count(ctx, "user", true)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)

		// Reset removes the scope and its descendants, nothing else.
		require.NoError(t, e.store.Put(ctx, []memory.Record{rec("a", "user/42/p", vec(1)), rec("b", "user/42/p/q", vec(0, 1)), rec("c", "user/420", vec(1))}))
		d, err = e.store.Reset(ctx, "user/42")
		require.NoError(t, err)
		assert.Equal(t, 3, d)
		sc, err = e.store.Scopes(ctx, "user")
		require.NoError(t, err)
		assert.Equal(t, []memory.ScopeCount{{Scope: "user/420", Count: 1}}, sc)
		_, err = e.store.Get(ctx, "user", "a")
		assert.ErrorIs(t, err, memory.ErrNotFound)
		_, err = e.store.Get(ctx, "user", "c")
		assert.NoError(t, err)
	})
}

func TestBatchAtomic(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, memory.Options{})
		ctx := context.Background()
		require.NoError(t, e.store.Put(ctx, []memory.Record{rec("x", "u/a", vec(1))}))
		ids := []string{"x", "y", "z"}
		scopes := []string{"u/a", "u/b"}
		snap := e.s.Snapshot(t, e.rootKeys("u", ids, scopes)...)

		// One bad record: nothing written (validated in Go).
		bad := []memory.Record{rec("y", "u/b", vec(1)), rec("z", "u/b", vec(float32(math.NaN())))}
		assert.ErrorIs(t, e.store.Put(ctx, bad), memory.ErrInvalidVector)
		// A script-level failure (WRONGTYPE on the second record's key) also
		// leaves everything as it was.
		k := keys.ForMemory(e.prefix, "u")
		e.s.Do(t, "SET", k.Record("z"), "not a hash")
		snap2 := e.s.Snapshot(t, e.rootKeys("u", ids, scopes)...)
		err := e.store.Put(ctx, []memory.Record{rec("y", "u/b", vec(1)), rec("z", "u/b", vec(0, 1))})
		require.Error(t, err)
		assert.Contains(t, strings.ToUpper(err.Error()), "WRONGTYPE")
		assert.Equal(t, snap2, e.s.Snapshot(t, e.rootKeys("u", ids, scopes)...))
		e.s.Do(t, "DEL", k.Record("z"))
		assert.Equal(t, snap, e.s.Snapshot(t, e.rootKeys("u", ids, scopes)...))

		// A good batch lands whole, also with a repeated id (last wins).
		good := []memory.Record{rec("y", "u/b", vec(1)), rec("z", "u/b", vec(0, 1)), rec("y", "u/a", vec(0, 0, 1))}
		require.NoError(t, e.store.Put(ctx, good))
		sc, err := e.store.Scopes(ctx, "u")
		require.NoError(t, err)
		assert.Equal(t, []memory.ScopeCount{{Scope: "u/a", Count: 2}, {Scope: "u/b", Count: 1}}, sc)

		// Records of different roots cannot share a Put.
		err = e.store.Put(ctx, []memory.Record{rec("p", "u/a", vec(1)), rec("q", "v/a", vec(1))})
		assert.ErrorIs(t, err, memory.ErrCrossSlot)
	})
}

func TestFencing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, memory.Options{})
		ctx := context.Background()
		locker, err := lock.New(e.client, lock.Options{Prefix: e.prefix})
		require.NoError(t, err)
		defer locker.Close()
		name, err := e.store.LockName("team/7/notes")
		require.NoError(t, err)
		assert.Equal(t, "mem:team", name)

		old, err := locker.Acquire(ctx, name)
		require.NoError(t, err)
		require.NoError(t, e.store.Put(ctx, []memory.Record{rec("a", "team/7", vec(1))}, memory.WithToken(old.Token())))

		// Lease passes on: the old token is stale for every write.
		require.NoError(t, old.Release(ctx))
		// Without a holder, strict mode refuses the old token as not holding.
		err = e.store.Put(ctx, []memory.Record{rec("b", "team/7", vec(1))}, memory.WithToken(old.Token()))
		assert.ErrorIs(t, err, fencing.ErrNotHolder)
		var nh *memory.NotHolderError
		assert.ErrorAs(t, err, &nh)

		cur, err := locker.Acquire(ctx, name)
		require.NoError(t, err)
		defer cur.Release(ctx)
		ids := []string{"a", "b"}
		scopes := []string{"team/7"}
		snap := e.s.Snapshot(t, e.rootKeys("team", ids, scopes)...)
		writes := map[string]func(tok fencing.Token) error{
			"Put": func(tok fencing.Token) error {
				return e.store.Put(ctx, []memory.Record{rec("b", "team/7", vec(1))}, memory.WithToken(tok))
			},
			"Delete": func(tok fencing.Token) error {
				_, err := e.store.Delete(ctx, "team/7", []string{"a"}, memory.WithToken(tok))
				return err
			},
			"Reset": func(tok fencing.Token) error {
				_, err := e.store.Reset(ctx, "team", memory.WithToken(tok))
				return err
			},
		}
		for name, w := range writes {
			err := w(old.Token())
			assert.ErrorIs(t, err, fencing.ErrStaleToken, name)
			var st *fencing.StaleTokenError
			if assert.ErrorAs(t, err, &st, name) {
				assert.Equal(t, old.Token(), st.Presented)
			}
			assert.Equal(t, snap, e.s.Snapshot(t, e.rootKeys("team", ids, scopes)...), name)
		}
		// The holder's token works; a zero token is invalid input.
		require.NoError(t, writes["Put"](cur.Token()))
		n, err := e.store.Delete(ctx, "team", []string{"a"}, memory.WithToken(cur.Token()))
		require.NoError(t, err)
		assert.Equal(t, 1, n)

		// Relaxed mode: after the lease ended, the newest token still writes,
		// an older one does not.
		relaxed, err := memory.New(e.client, memory.Options{Prefix: e.prefix, Dim: dim, Relaxed: true, Backend: memory.BackendScan})
		require.NoError(t, err)
		require.NoError(t, cur.Release(ctx))
		require.NoError(t, relaxed.Put(ctx, []memory.Record{rec("c", "team/7", vec(1))}, memory.WithToken(cur.Token())))
		err = relaxed.Put(ctx, []memory.Record{rec("d", "team/7", vec(1))}, memory.WithToken(old.Token()))
		assert.ErrorIs(t, err, fencing.ErrStaleToken)
	})
}

func TestBadInput(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, memory.Options{MaxText: 10, MaxMetadata: 20, TagDepth: 2})
		ctx := context.Background()
		ok := rec("ok", "u/1", vec(1))
		require.NoError(t, e.store.Put(ctx, []memory.Record{ok}))
		all := e.rootKeys("u/1", []string{"ok", "x"}, []string{"u/1", "u/1/a"})
		snap := e.s.Snapshot(t, all...)

		mut := func(f func(r *memory.Record)) []memory.Record {
			r := rec("x", "u/1/a", vec(1))
			r.Text = "short"
			f(&r)
			return []memory.Record{r}
		}
		cases := map[string]struct {
			recs []memory.Record
			want error
		}{
			"dim":           {mut(func(r *memory.Record) { r.Embedding = []float32{1, 2} }), memory.ErrDimension},
			"nan":           {mut(func(r *memory.Record) { r.Embedding[2] = float32(math.NaN()) }), memory.ErrInvalidVector},
			"inf":           {mut(func(r *memory.Record) { r.Embedding[2] = float32(math.Inf(-1)) }), memory.ErrInvalidVector},
			"zero":          {mut(func(r *memory.Record) { r.Embedding = vec() }), memory.ErrInvalidVector},
			"empty scope":   {mut(func(r *memory.Record) { r.Scope = "" }), memory.ErrInvalidScope},
			"brace scope":   {mut(func(r *memory.Record) { r.Scope = "u/{1}" }), memory.ErrInvalidScope},
			"empty segment": {mut(func(r *memory.Record) { r.Scope = "u//1" }), memory.ErrInvalidScope},
			"shallow scope": {mut(func(r *memory.Record) { r.Scope = "u" }), memory.ErrInvalidScope},
			"long text":     {mut(func(r *memory.Record) { r.Text = strings.Repeat("x", 11) }), memory.ErrTooLarge},
			"big metadata":  {mut(func(r *memory.Record) { r.Metadata = map[string]string{"k": strings.Repeat("v", 20)} }), memory.ErrTooLarge},
			"bad id":        {mut(func(r *memory.Record) { r.ID = "a{b}" }), memory.ErrInvalidID},
			"empty id":      {mut(func(r *memory.Record) { r.ID = "" }), memory.ErrInvalidID},
			"importance":    {mut(func(r *memory.Record) { r.Importance = 1.5 }), memory.ErrInvalidArgument},
			"ttl":           {mut(func(r *memory.Record) { r.TTL = time.Microsecond }), memory.ErrInvalidArgument},
			"category":      {mut(func(r *memory.Record) { r.Categories = []string{""} }), memory.ErrInvalidArgument},
		}
		for name, c := range cases {
			if c.recs == nil {
				continue
			}
			err := e.store.Put(ctx, c.recs)
			assert.ErrorIs(t, err, c.want, name)
		}
		_, err := e.store.Search(ctx, []float32{1}, memory.SearchOptions{K: 1, Scope: "u/1"})
		assert.ErrorIs(t, err, memory.ErrDimension)
		_, err = e.store.Search(ctx, vec(), memory.SearchOptions{K: 1, Scope: "u/1"})
		assert.ErrorIs(t, err, memory.ErrInvalidVector)
		for _, k := range []int{0, -1, memory.MaxK + 1} {
			_, err = e.store.Search(ctx, vec(1), memory.SearchOptions{K: k, Scope: "u/1"})
			assert.ErrorIs(t, err, memory.ErrInvalidK, "k=%d", k)
		}
		_, err = e.store.Search(ctx, vec(1), memory.SearchOptions{K: 1, Scope: "u/{x}"})
		assert.ErrorIs(t, err, memory.ErrInvalidScope)
		_, err = e.store.Delete(ctx, "u/1", []string{"ok"}, memory.WithToken(0))
		assert.ErrorIs(t, err, memory.ErrInvalidArgument)
		_, err = e.store.Delete(ctx, "u/1", []string{"ok"}, memory.WithToken(fencing.MaxToken+1))
		assert.ErrorIs(t, err, memory.ErrInvalidArgument)
		_, err = e.store.List(ctx, "u/1", memory.ListOptions{Cursor: "garbage"})
		assert.ErrorIs(t, err, memory.ErrInvalidCursor)
		_, err = e.store.List(ctx, "u/1", memory.ListOptions{Limit: -1})
		assert.ErrorIs(t, err, memory.ErrInvalidArgument)
		assert.Equal(t, snap, e.s.Snapshot(t, all...))

		for name, o := range map[string]memory.Options{
			"no dim":   {},
			"prefix":   {Dim: 1, Prefix: "a:b"},
			"backend":  {Dim: 1, Backend: 9},
			"negative": {Dim: 1, MaxText: -1},
			"quant":    {Dim: 1, VSetQuant: "F16"},
			"ef":       {Dim: 1, VSetEF: -1},
			"index":    {Dim: 1, FTIndex: "a b"},
		} {
			_, err := memory.New(e.client, o)
			assert.ErrorIs(t, err, memory.ErrInvalidArgument, name)
		}
		// An explicit backend is accepted by New; on a server without its
		// commands (FT.* everywhere here, vector sets before Redis 8) the
		// first search fails with ErrUnsupportedBackend.
		has := map[memory.Backend]bool{memory.BackendFT: s.HasCommand(t, "FT.INFO"), memory.BackendVSet: s.HasCommand(t, "VCARD")}
		for _, b := range []memory.Backend{memory.BackendFT, memory.BackendVSet} {
			st, err := memory.New(e.client, memory.Options{Prefix: e.prefix + "x", Dim: 1, Backend: b})
			require.NoError(t, err, b.String())
			_, err = st.Search(ctx, []float32{1}, memory.SearchOptions{K: 1, Scope: "u/1"})
			if has[b] {
				assert.NoError(t, err, b.String())
			} else {
				assert.ErrorIs(t, err, memory.ErrUnsupportedBackend, b.String())
			}
		}
	})
}

func TestList(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, memory.Options{})
		ctx := context.Background()
		base := time.UnixMilli(1700000000000)
		var recs []memory.Record
		var want []string
		for i := 0; i < 23; i++ {
			r := rec(fmt.Sprintf("r%02d", i), "s/a", vec(1, float32(i)))
			r.CreatedAt = base.Add(time.Duration(i/3) * time.Millisecond) // ties of three
			recs = append(recs, r)
		}
		require.NoError(t, e.store.Put(ctx, recs))
		require.NoError(t, e.store.Put(ctx, []memory.Record{rec("other", "s/a/b", vec(1))}))
		for _, r := range recs {
			want = append(want, r.ID)
		}
		sort.Slice(want, func(i, j int) bool { // newest first, ties by id descending
			a, b := recs[indexOf(recs, want[i])], recs[indexOf(recs, want[j])]
			if !a.CreatedAt.Equal(b.CreatedAt) {
				return a.CreatedAt.After(b.CreatedAt)
			}
			return a.ID > b.ID
		})
		var got []string
		cursor, pages := "", 0
		for {
			p, err := e.store.List(ctx, "s/a", memory.ListOptions{Cursor: cursor, Limit: 4})
			require.NoError(t, err)
			pages++
			for _, r := range p.Records {
				got = append(got, r.ID)
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		assert.Equal(t, want, got)
		assert.Equal(t, 6, pages)
		// A cursor of another scope is refused.
		p, err := e.store.List(ctx, "s/a", memory.ListOptions{Limit: 1})
		require.NoError(t, err)
		_, err = e.store.List(ctx, "s/a/b", memory.ListOptions{Cursor: p.Next})
		assert.ErrorIs(t, err, memory.ErrInvalidCursor)
	})
}

func indexOf(recs []memory.Record, id string) int {
	for i, r := range recs {
		if r.ID == id {
			return i
		}
	}
	return -1
}

func TestTTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, memory.Options{})
		ctx := context.Background()
		short := rec("short", "t/a", vec(1))
		short.TTL = 300 * time.Millisecond
		require.NoError(t, e.store.Put(ctx, []memory.Record{short, rec("long", "t/a", vec(1, 1))}))
		got, err := e.store.Get(ctx, "t", "short")
		require.NoError(t, err)
		assert.True(t, got.TTL > 0 && got.TTL <= 300*time.Millisecond, "ttl %v", got.TTL)
		if s.Mini != nil {
			s.Mini.SetTime(time.Now().Add(time.Second)) // script TIME
			s.FastForward(time.Second)                  // key expiry
		} else {
			time.Sleep(400 * time.Millisecond)
		}
		_, err = e.store.Get(ctx, "t", "short")
		assert.ErrorIs(t, err, memory.ErrNotFound)
		res, err := e.store.Search(ctx, vec(1), memory.SearchOptions{K: 5, Scope: "t", IncludeDescendants: true})
		require.NoError(t, err)
		require.Len(t, res, 1)
		assert.Equal(t, "long", res[0].ID)
		p, err := e.store.List(ctx, "t/a", memory.ListOptions{})
		require.NoError(t, err)
		require.Len(t, p.Records, 1)
		n, err := e.store.Count(ctx, "t", true) // sweeps
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		// The sweep left no trace of the expired record.
		k := keys.ForMemory(e.prefix, "t")
		zr := e.s.Do(t, "ZRANGE", k.ScopeIndex("t/a"), "0", "-1")
		ids, err := zr.AsStrSlice()
		require.NoError(t, err)
		assert.Equal(t, []string{"long"}, ids)
		assert.EqualValues(t, 0, mustInt(t, e.s.Do(t, "EXISTS", k.Exp)))
	})
}

func mustInt(t *testing.T, m rueidis.RedisMessage) int64 {
	t.Helper()
	v, err := m.AsInt64()
	require.NoError(t, err)
	return v
}
