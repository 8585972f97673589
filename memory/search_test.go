package memory_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/memory"
)

// refNormalize is the reference L2 normalisation (the same arithmetic the
// store documents: float64 sum of squares, float32 result).
func refNormalize(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	inv := 1 / math.Sqrt(ss)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

func refDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func within(s, p string) bool {
	return s == p || (len(s) > len(p) && s[:len(p)+1] == p+"/")
}

// reference is a brute-force Search over recs (as read back from the store).
func reference(recs []memory.Record, q []float32, o memory.SearchOptions) []memory.Result {
	qn := refNormalize(q)
	var out []memory.Result
	for _, r := range recs {
		if r.Scope != o.Scope && !(o.IncludeDescendants && within(r.Scope, o.Scope)) {
			continue
		}
		if !o.CreatedAfter.IsZero() && !r.CreatedAt.After(o.CreatedAfter) {
			continue
		}
		if !o.CreatedBefore.IsZero() && !r.CreatedAt.Before(o.CreatedBefore) {
			continue
		}
		if r.Importance < o.MinImportance {
			continue
		}
		if len(o.Categories) > 0 {
			n := 0
			for _, w := range o.Categories {
				for _, c := range r.Categories {
					if c == w {
						n++
						break
					}
				}
			}
			if (o.Match == memory.MatchAny && n == 0) || (o.Match == memory.MatchAll && n < len(o.Categories)) {
				continue
			}
		}
		ok := true
		for k, v := range o.Metadata {
			if got, has := r.Metadata[k]; !has || got != v {
				ok = false
			}
		}
		if !ok {
			continue
		}
		sim := math.Max(-1, math.Min(1, refDot(qn, r.Embedding)))
		if o.MinSimilarity != nil && sim < *o.MinSimilarity {
			continue
		}
		out = append(out, memory.Result{Record: r, Similarity: sim})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Similarity != out[j].Similarity {
			return out[i].Similarity > out[j].Similarity
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > o.K {
		out = out[:o.K]
	}
	return out
}

const gdim = 16

func TestSearchGolden(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		golden(t, newEnv(t, s, memory.Options{Dim: gdim}))
	})
}

// golden compares the searches of e.store (Dim gdim, any backend) with a
// brute-force reference on 400 random records of scope "g" and below.
func golden(t *testing.T, e *env) {
	{
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		scopes := []string{"g", "g/a", "g/a/x", "g/b", "g/bb"}
		base := time.UnixMilli(1700000000000)
		var recs []memory.Record
		var ids []string
		for i := 0; i < 400; i++ {
			v := make([]float32, gdim)
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
			if i%10 == 9 { // ties: the same vector (scaled) as the previous record
				for j := range v {
					v[j] = recs[i-1].Embedding[j] * 3
				}
			}
			r := memory.Record{
				ID: fmt.Sprintf("id%03d", 399-i), Scope: scopes[rng.IntN(len(scopes))], Text: fmt.Sprint("memory ", i),
				Embedding: v, Importance: float64(rng.IntN(11)) / 10,
				CreatedAt: base.Add(time.Duration(rng.IntN(1000)) * time.Millisecond),
				Metadata:  map[string]string{"k": fmt.Sprint("v", rng.IntN(3))},
			}
			for c := 0; c < 5; c++ {
				if rng.IntN(3) == 0 {
					r.Categories = append(r.Categories, fmt.Sprint("c", c))
				}
			}
			recs = append(recs, r)
			ids = append(ids, r.ID)
		}
		for i := 0; i < len(recs); i += 100 {
			require.NoError(t, e.store.Put(ctx, recs[i:i+100]))
		}
		stored, err := e.store.GetMany(ctx, "g", ids)
		require.NoError(t, err)
		require.Len(t, stored, len(recs))

		half := 0.5
		neg := -0.2
		impossible := 1.01
		cases := []memory.SearchOptions{
			{K: 10, Scope: "g"},
			{K: 10, Scope: "g", IncludeDescendants: true},
			{K: 400, Scope: "g", IncludeDescendants: true},
			{K: 7, Scope: "g/a", IncludeDescendants: true},
			{K: 7, Scope: "g/b", IncludeDescendants: true}, // not g/bb
			{K: 5, Scope: "g/a/x"},
			{K: 10, Scope: "g", IncludeDescendants: true, Categories: []string{"c1", "c3"}},
			{K: 10, Scope: "g", IncludeDescendants: true, Categories: []string{"c1", "c3"}, Match: memory.MatchAll},
			{K: 10, Scope: "g", IncludeDescendants: true, Metadata: map[string]string{"k": "v2"}},
			{K: 10, Scope: "g", IncludeDescendants: true, MinImportance: 0.7},
			{K: 10, Scope: "g", IncludeDescendants: true, CreatedAfter: base.Add(200 * time.Millisecond), CreatedBefore: base.Add(600 * time.Millisecond)},
			{K: 50, Scope: "g", IncludeDescendants: true, MinSimilarity: &half},
			{K: 50, Scope: "g", IncludeDescendants: true, MinSimilarity: &neg, Categories: []string{"c0"}, Metadata: map[string]string{"k": "v0"}},
			// Filters that exclude everything.
			{K: 10, Scope: "g", IncludeDescendants: true, Categories: []string{"nope"}},
			{K: 10, Scope: "g", IncludeDescendants: true, Metadata: map[string]string{"k": "v9"}},
			{K: 10, Scope: "g", IncludeDescendants: true, MinSimilarity: &impossible},
			{K: 10, Scope: "g", IncludeDescendants: true, CreatedBefore: base},
			{K: 10, Scope: "g/none", IncludeDescendants: true},
		}
		for i, o := range cases {
			for qi := 0; qi < 3; qi++ {
				q := make([]float32, gdim)
				for j := range q {
					q[j] = float32(rng.NormFloat64())
				}
				if qi == 2 { // a query equal to a stored vector: exact ties at the top
					copy(q, recs[9].Embedding)
				}
				got, err := e.store.Search(ctx, q, o)
				require.NoError(t, err, "case %d", i)
				want := reference(stored, q, o)
				require.Equal(t, len(want), len(got), "case %d query %d", i, qi)
				for j := range want {
					assert.Equal(t, want[j].ID, got[j].ID, "case %d query %d rank %d", i, qi, j)
					assert.InDelta(t, want[j].Similarity, got[j].Similarity, 1e-12, "case %d query %d rank %d", i, qi, j)
					assert.Equal(t, want[j].Text, got[j].Text)
				}
				if qi == 2 && o.K >= 2 && len(got) >= 2 && o.Scope == "g" && o.IncludeDescendants && len(o.Categories) == 0 && o.MinSimilarity == nil && o.CreatedAfter.IsZero() && o.Metadata == nil && o.MinImportance == 0 {
					// recs[8] and recs[9] share a direction: both at similarity 1, ordered by id.
					assert.InDelta(t, 1, got[0].Similarity, 1e-6)
					assert.InDelta(t, 1, got[1].Similarity, 1e-6)
					assert.Less(t, got[0].ID, got[1].ID)
				}
			}
		}

		// The scan limit.
		small, err := memory.New(e.client, memory.Options{Prefix: e.prefix, Dim: gdim, ScanLimit: 50, Backend: memory.BackendScan})
		require.NoError(t, err)
		_, err = small.Search(ctx, recs[0].Embedding, memory.SearchOptions{K: 1, Scope: "g", IncludeDescendants: true})
		var sl *memory.ScanLimitError
		require.ErrorAs(t, err, &sl)
		assert.ErrorIs(t, err, memory.ErrScanLimit)
		assert.Equal(t, 400, sl.Candidates)

		cats, err := e.store.Categories(ctx, "g", true)
		require.NoError(t, err)
		wantCats := map[string]int{}
		for _, r := range stored {
			for _, c := range r.Categories {
				wantCats[c]++
			}
		}
		gotCats := map[string]int{}
		for _, c := range cats {
			gotCats[c.Category] = c.Count
		}
		assert.Equal(t, wantCats, gotCats)
	}
}

func TestRoundTrips(t *testing.T) {
	s := redistest.NewMini(t)
	cc := redistest.Counting(s.NewClient(t))
	st, err := memory.New(cc, memory.Options{Prefix: s.Prefix(t), Dim: dim})
	require.NoError(t, err)
	ctx := context.Background()
	var recs []memory.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, rec(fmt.Sprint("r", i), fmt.Sprintf("rt/%d", i%5), vec(1, float32(i))))
	}
	// Warm the script cache (EVALSHA falls back to EVAL once per script).
	require.NoError(t, st.Put(ctx, recs[:1]))
	_, _ = st.List(ctx, "rt/0", memory.ListOptions{})
	_, _ = st.Count(ctx, "rt", true)
	_, _ = st.Delete(ctx, "rt", []string{"none"})
	_, _ = st.Reset(ctx, "rt/none")

	trips := func(name string, want int64, fn func() error) {
		t.Helper()
		var err error
		n := cc.Count(func() { err = fn() })
		require.NoError(t, err, name)
		assert.Equal(t, want, n, name)
	}
	trips("Put 50", 1, func() error { return st.Put(ctx, recs) })
	trips("Get", 1, func() error { _, err := st.Get(ctx, "rt", "r7"); return err })
	trips("GetMany", 1, func() error { _, err := st.GetMany(ctx, "rt", []string{"r1", "r2", "r3"}); return err })
	trips("Search", 5, func() error { _, err := st.Search(ctx, vec(1), memory.SearchOptions{K: 5, Scope: "rt/1"}); return err })
	trips("Search descendants", 5, func() error {
		_, err := st.Search(ctx, vec(1), memory.SearchOptions{K: 5, Scope: "rt", IncludeDescendants: true})
		return err
	})
	trips("Search empty scope", 1, func() error {
		_, err := st.Search(ctx, vec(1), memory.SearchOptions{K: 5, Scope: "rt/none"})
		return err
	})
	trips("List", 1, func() error { _, err := st.List(ctx, "rt/1", memory.ListOptions{Limit: 3}); return err })
	trips("Count", 1, func() error { _, err := st.Count(ctx, "rt", true); return err })
	trips("Delete", 1, func() error { _, err := st.Delete(ctx, "rt", []string{"r1", "r2"}); return err })
	trips("Reset", 1, func() error { _, err := st.Reset(ctx, "rt/3"); return err })
}

// hmgetCalls returns the server's count of HMGET calls (INFO commandstats).
func hmgetCalls(t *testing.T, s *redistest.Server) int {
	t.Helper()
	m := s.Do(t, "INFO", "commandstats")
	info, err := m.ToString()
	require.NoError(t, err)
	mm := regexp.MustCompile(`cmdstat_hmget:calls=(\d+)`).FindStringSubmatch(info)
	if mm == nil {
		return 0
	}
	n, _ := strconv.Atoi(mm[1])
	return n
}

func TestClientSideCaching(t *testing.T) {
	s := redistest.NewRedis(t)
	ctx := context.Background()
	prefix := s.Prefix(t)
	// The scan backend is the one that reads through the client-side
	// cache (ft and vset ask the server on every search), so it is chosen
	// explicitly: BackendAuto picks vset on Redis 8.
	reader, err := memory.New(s.NewClient(t), memory.Options{Prefix: prefix, Dim: dim, Backend: memory.BackendScan})
	require.NoError(t, err)
	writer, err := memory.New(s.NewClient(t), memory.Options{Prefix: prefix, Dim: dim, Backend: memory.BackendScan})
	require.NoError(t, err)
	var recs []memory.Record
	for i := 0; i < 200; i++ {
		recs = append(recs, rec(fmt.Sprint("c", i), "cache/a", vec(1, float32(i)/100)))
	}
	require.NoError(t, writer.Put(ctx, recs))
	o := memory.SearchOptions{K: 3, Scope: "cache", IncludeDescendants: true}
	first, err := reader.Search(ctx, vec(1), o)
	require.NoError(t, err)
	require.Len(t, first, 3)
	assert.Equal(t, "c0", first[0].ID)

	// Warm: no HMGET reaches the server.
	before := hmgetCalls(t, s)
	again, err := reader.Search(ctx, vec(1), o)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Equal(t, before, hmgetCalls(t, s), "a warm search must be served from the client-side cache")

	// A write by another client is seen by the next search: a new record
	// (invalidates the index) and a changed vector (invalidates a record).
	require.NoError(t, writer.Put(ctx, []memory.Record{rec("new", "cache/a/b", vec(1, -0.001))}))
	got, err := reader.Search(ctx, vec(1), o)
	require.NoError(t, err)
	assert.Equal(t, "new", got[1].ID, "results %v", ids(got))
	require.NoError(t, writer.Put(ctx, []memory.Record{rec("c150", "cache/a", vec(1, 0))}))
	got, err = reader.Search(ctx, vec(1), o)
	require.NoError(t, err)
	assert.Equal(t, []string{"c0", "c150", "new"}, ids(got))
	_, err = writer.Delete(ctx, "cache", []string{"c0"})
	require.NoError(t, err)
	got, err = reader.Search(ctx, vec(1), o)
	require.NoError(t, err)
	assert.Equal(t, []string{"c150", "new", "c1"}, ids(got))
}

func ids(rs []memory.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// TestSearchGoldenParallel runs the golden searches with scoring split
// over several goroutines.
func TestSearchGoldenParallel(t *testing.T) {
	defer memory.SetParallelScoreMin(8)()
	golden(t, newEnv(t, redistest.NewMini(t), memory.Options{Dim: gdim}))
}
