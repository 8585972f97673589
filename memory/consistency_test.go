package memory_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/memory"
)

// clock lets records expire: on miniredis it moves the script clock (TIME)
// and the key clock together; on real servers it sleeps.
type clock struct {
	s   *redistest.Server
	now time.Time // miniredis only
}

func newClock(s *redistest.Server) *clock {
	c := &clock{s: s, now: time.Now()}
	if s.Mini != nil {
		s.Mini.SetTime(c.now)
	}
	return c
}

func (c *clock) advance(d time.Duration) {
	if c.s.Mini != nil {
		c.now = c.now.Add(d)
		c.s.Mini.SetTime(c.now)
		c.s.FastForward(d)
		return
	}
	time.Sleep(d)
}

// truthRec is a record as read back from its hash.
type truthRec struct {
	scope string
	cats  []string
	ts    int64
}

// truth reads every record of ids that exists, straight from the hashes.
func truth(t *testing.T, c rueidis.Client, prefix, root string, ids []string) map[string]truthRec {
	t.Helper()
	k := keys.ForMemory(prefix, root)
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = c.B().Hmget().Key(k.Record(id)).Field("scope", "cats", "ts").Build()
	}
	out := map[string]truthRec{}
	for i, res := range c.DoMulti(context.Background(), cmds...) {
		vals, err := res.ToArray()
		require.NoError(t, err)
		sc, err := vals[0].ToString()
		if err != nil {
			continue // no such record
		}
		cs, _ := vals[1].ToString()
		var cats []string
		for _, h := range strings.Split(cs, ",") {
			if h == "" {
				continue
			}
			b, err := hex.DecodeString(h)
			require.NoError(t, err)
			cats = append(cats, string(b))
		}
		tss, _ := vals[2].ToString()
		ts, err := strconv.ParseInt(tss, 10, 64)
		require.NoError(t, err)
		out[ids[i]] = truthRec{sc, cats, ts}
	}
	return out
}

// checkAgainst compares Count, Scopes, Categories, List and Search of the
// store with a recount of the records that exist. It returns the number of
// disagreements (each is reported).
func checkAgainst(t *testing.T, st, searcher *memory.Store, scopes []string, tr map[string]truthRec) int {
	t.Helper()
	ctx := context.Background()
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		bad++
		t.Errorf(format, args...)
	}
	for _, sc := range scopes {
		for _, desc := range []bool{false, true} {
			want := map[string]bool{}
			cats := map[string]int{}
			for id, r := range tr {
				if r.scope == sc || (desc && within(r.scope, sc)) {
					want[id] = true
					for _, c := range r.cats {
						cats[c]++
					}
				}
			}
			n, err := st.Count(ctx, sc, desc)
			require.NoError(t, err)
			if int(n) != len(want) {
				fail("Count(%s, %v) = %d, records: %d", sc, desc, n, len(want))
			}
			cc, err := st.Categories(ctx, sc, desc)
			require.NoError(t, err)
			got := map[string]int{}
			for _, c := range cc {
				got[c.Category] = c.Count
			}
			if fmt.Sprint(got) != fmt.Sprint(cats) {
				fail("Categories(%s, %v) = %v, records: %v", sc, desc, got, cats)
			}
			res, err := searcher.Search(ctx, vec(1), memory.SearchOptions{K: memory.MaxK, Scope: sc, IncludeDescendants: desc})
			require.NoError(t, err)
			gotIDs := map[string]bool{}
			for _, r := range res {
				gotIDs[r.ID] = true
			}
			if fmt.Sprint(gotIDs) != fmt.Sprint(want) {
				fail("Search(%s, %v) = %v, records: %v", sc, desc, sortedKeys(gotIDs), sortedKeys(want))
			}
			res, err = searcher.Search(ctx, vec(1), memory.SearchOptions{K: memory.MaxK, Scope: sc, IncludeDescendants: desc, Categories: []string{"p"}})
			require.NoError(t, err)
			for _, r := range res {
				if !want[r.ID] || !contains(tr[r.ID].cats, "p") {
					fail("Search(%s, %v, category p) returned %s (%+v)", sc, desc, r.ID, tr[r.ID])
				}
			}
		}
		// List: the records of the scope, newest first, ties by id descending.
		var want []string
		for id, r := range tr {
			if r.scope == sc {
				want = append(want, id)
			}
		}
		sort.Slice(want, func(i, j int) bool {
			a, b := tr[want[i]], tr[want[j]]
			if a.ts != b.ts {
				return a.ts > b.ts
			}
			return want[i] > want[j]
		})
		var got []string
		cursor := ""
		for {
			p, err := st.List(ctx, sc, memory.ListOptions{Cursor: cursor, Limit: 3})
			require.NoError(t, err)
			for _, r := range p.Records {
				got = append(got, r.ID)
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			fail("List(%s) = %v, records: %v", sc, got, want)
		}
	}
	sc, err := st.Scopes(ctx, scopes[0])
	require.NoError(t, err)
	perScope := map[string]int64{}
	for _, r := range tr {
		perScope[r.scope]++
	}
	got := map[string]int64{}
	for _, c := range sc {
		got[c.Scope] = c.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(perScope) {
		fail("Scopes(%s) = %v, records: %v", scopes[0], got, perScope)
	}
	return bad
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestIndexMatchesRecords runs random puts (batches, with and without
// TTLs, re-puts of live and of expired ids, moves between scopes),
// deletes, resets, clock advances and bursts (1400 records with a short
// TTL in two batches, left to expire together, so that more than one
// sweep's worth of expired entries waits and later puts re-put ids whose
// entries the next sweep does not reach), and regularly compares Count,
// Scopes, Categories, List and Search with a recount of the records that
// exist (and that recount with a model of what must exist).
func TestIndexMatchesRecords(t *testing.T) {
	const ops, every = 600, 30
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		// The writes go through the server's default backend (vset on
		// Redis 8: the scripts then maintain vector sets too); the searches
		// through the scan backend, which reads the same index and records
		// (vset searches are approximate: their agreement with scan is what
		// TestVSetRecall measures).
		e := newEnv(t, s, memory.Options{})
		searcher, err := memory.New(e.client, memory.Options{Prefix: e.prefix, Dim: dim, Backend: memory.BackendScan})
		require.NoError(t, err)
		clk := newClock(s)
		rng := rand.New(rand.NewSource(20))
		scopes := []string{"cr", "cr/a", "cr/a/b", "cr/c", "cr/d/e"}
		var pool, pool2 []string
		for i := range 40 {
			pool = append(pool, fmt.Sprint("x", i))
		}
		for i := range 2000 {
			pool2 = append(pool2, fmt.Sprint("b", i))
		}
		all := append(append([]string(nil), pool...), pool2...)
		pick := func() string {
			if rng.Intn(3) == 0 {
				return pool2[rng.Intn(len(pool2))]
			}
			return pool[rng.Intn(len(pool))]
		}
		short := 40 * time.Millisecond
		type life struct {
			scope    string
			deadline time.Time // zero: no TTL that can pass during the test
		}
		model := map[string]life{}
		var lastShort time.Time
		now := func() time.Time {
			if s.Mini != nil {
				return clk.now
			}
			return time.Now()
		}
		stats := map[string]int{}
		checks, bad := 0, 0
		for op := 1; op <= ops; op++ {
			switch x := rng.Intn(100); {
			case x < 3:
				perm := rng.Perm(len(pool2))[:1400]
				t0 := now()
				for half := range 2 {
					var recs []memory.Record
					for _, i := range perm[half*700 : (half+1)*700] {
						r := rec(pool2[i], scopes[1+rng.Intn(len(scopes)-1)], vec(1, float32(rng.Intn(5))))
						r.TTL = short
						recs = append(recs, r)
						model[r.ID] = life{scope: r.Scope, deadline: t0.Add(short)}
					}
					require.NoError(t, e.store.Put(ctx, recs))
				}
				lastShort = time.Now()
				clk.advance(2 * short)
				// Re-put some of them at once: the sweep of this Put
				// reaches only the first MEM_SWEEP expired entries.
				var recs []memory.Record
				for _, i := range perm[len(perm)-10:] {
					r := rec(pool2[i], scopes[1+rng.Intn(len(scopes)-1)], vec(1, float32(rng.Intn(5))))
					if rng.Intn(2) == 0 {
						r.TTL = time.Hour
					}
					recs = append(recs, r)
					model[r.ID] = life{scope: r.Scope}
					stats["re-put expired"]++
				}
				require.NoError(t, e.store.Put(ctx, recs))
				stats["bursts"]++
			case x < 55:
				var recs []memory.Record
				for range 1 + rng.Intn(3) {
					id := pick()
					r := rec(id, scopes[1+rng.Intn(len(scopes)-1)], vec(1, float32(rng.Intn(5))))
					for _, c := range []string{"p", "q", "r"} {
						if rng.Intn(2) == 0 {
							r.Categories = append(r.Categories, c)
						}
					}
					switch rng.Intn(3) {
					case 0:
						r.TTL = short
					case 1:
						r.TTL = time.Hour
					}
					if old, ok := model[id]; ok {
						if old.deadline.IsZero() || now().Before(old.deadline) {
							stats["re-put live"]++
						} else {
							stats["re-put expired"]++
						}
						if old.scope != r.Scope {
							stats["moves"]++
						}
					}
					recs = append(recs, r)
				}
				t0 := now()
				require.NoError(t, e.store.Put(ctx, recs))
				for _, r := range recs {
					l := life{scope: r.Scope}
					if r.TTL == short {
						l.deadline = t0.Add(short)
						lastShort = time.Now()
					}
					model[r.ID] = l
				}
				stats["puts"]++
			case x < 75:
				sc := scopes[rng.Intn(len(scopes))]
				var ids []string
				for range 1 + rng.Intn(3) {
					ids = append(ids, pick())
				}
				_, err := e.store.Delete(ctx, sc, ids)
				require.NoError(t, err)
				for _, id := range ids {
					if l, ok := model[id]; ok && within(l.scope, sc) {
						delete(model, id)
					}
				}
				stats["deletes"]++
			case x < 80:
				sc := scopes[1+rng.Intn(len(scopes)-1)]
				_, err := e.store.Reset(ctx, sc)
				require.NoError(t, err)
				for id, l := range model {
					if within(l.scope, sc) {
						delete(model, id)
					}
				}
				stats["resets"]++
			default:
				clk.advance(time.Duration(rng.Intn(30)) * time.Millisecond)
			}
			if op%every != 0 {
				continue
			}
			// Let every short TTL pass, so what exists is settled.
			if s.Mini != nil {
				clk.advance(2 * short)
			} else if d := time.Until(lastShort.Add(short + 30*time.Millisecond)); d > 0 {
				time.Sleep(d)
			}
			for id, l := range model {
				if !l.deadline.IsZero() {
					delete(model, id)
				}
			}
			tr := truth(t, e.client, e.prefix, "cr", all)
			for id, l := range model {
				if r, ok := tr[id]; !ok || r.scope != l.scope {
					bad++
					t.Errorf("record %s: model says scope %s, the server has %+v (exists %v)", id, l.scope, r, ok)
				}
			}
			for id := range tr {
				if _, ok := model[id]; !ok {
					bad++
					t.Errorf("record %s exists, the model says it does not", id)
				}
			}
			bad += checkAgainst(t, e.store, searcher, scopes, tr)
			checks++
		}
		t.Logf("%s (writes: %s backend): %d ops (%v), %d checks of %d scopes, %d disagreements", s.Name(), e.store.Backend(), ops, stats, checks, len(scopes), bad)
	})
}
