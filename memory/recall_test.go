package memory_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/memory"
)

// TestVSetRecall measures the vset backend (HNSW, approximate) against the
// exact scan backend on the same records, on a real server with vector
// sets (Redis 8): 10,000 random unit vectors of 768 dimensions under one
// scope, top-10 searches with and without filters (categories, minimum
// importance, a time window; the filters run inside VSIM with FILTER-EF),
// recall@10 at least 0.95 for each kind with the default VSetEF (the
// server's default EF of 100 gave 0.46 without filters, EF 500 0.91, EF
// 1000 0.97 and more, EF 2000 0.99). On a server without vector sets
// it is skipped (the backend cannot run there; TestBadInput checks that
// it fails with ErrUnsupportedBackend). -short uses 2,000 records.
func TestVSetRecall(t *testing.T) {
	s := redistest.NewRedis(t)
	if !s.HasCommand(t, "VSIM") {
		t.Skipf("%s %s has no vector sets (VSIM): the vset backend does not run on it", s.Info(t).Name, s.Info(t).Version)
	}
	const dim, k, queries = 768, 10, 40
	n := 10000
	if testing.Short() {
		n = 2000
	}
	ctx := context.Background()
	c := s.NewClient(t)
	prefix := s.Prefix(t)
	vs, err := memory.New(c, memory.Options{Prefix: prefix, Dim: dim, Backend: memory.BackendVSet})
	require.NoError(t, err)
	scan, err := memory.New(c, memory.Options{Prefix: prefix, Dim: dim, Backend: memory.BackendScan, ScanLimit: n})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = vs.Reset(context.Background(), "recall") })

	rng := rand.New(rand.NewPCG(14, 768))
	unit := func() []float32 {
		v := make([]float32, dim)
		var norm float64
		for i := range v {
			x := rng.NormFloat64()
			v[i], norm = float32(x), norm+x*x
		}
		for i := range v {
			v[i] /= float32(math.Sqrt(norm))
		}
		return v
	}
	base := time.UnixMilli(1700000000000)
	start := time.Now()
	const batch = 50
	for i := 0; i < n; i += batch {
		recs := make([]memory.Record, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			r := memory.Record{
				ID: fmt.Sprint("r", j), Scope: "recall", Embedding: unit(),
				Importance: float64(rng.IntN(11)) / 10,
				CreatedAt:  base.Add(time.Duration(rng.IntN(100000)) * time.Millisecond),
			}
			for cat := 0; cat < 4; cat++ {
				if rng.IntN(4) == 0 {
					r.Categories = append(r.Categories, fmt.Sprint("c", cat))
				}
			}
			recs = append(recs, r)
		}
		require.NoError(t, vs.Put(ctx, recs))
	}
	t.Logf("put %d records of %d dimensions in %v", n, dim, time.Since(start).Round(time.Millisecond))

	kinds := []struct {
		name string
		o    memory.SearchOptions
	}{
		{"no filter", memory.SearchOptions{K: k, Scope: "recall"}},
		{"category", memory.SearchOptions{K: k, Scope: "recall", Categories: []string{"c1"}}},
		{"two categories, all", memory.SearchOptions{K: k, Scope: "recall", Categories: []string{"c0", "c2"}, Match: memory.MatchAll}},
		{"importance", memory.SearchOptions{K: k, Scope: "recall", MinImportance: 0.8}},
		{"time window", memory.SearchOptions{K: k, Scope: "recall", CreatedAfter: base.Add(20 * time.Second), CreatedBefore: base.Add(40 * time.Second)}},
	}
	for _, kind := range kinds {
		found, total := 0, 0
		var lat []time.Duration
		for range queries {
			q := unit()
			want, err := scan.Search(ctx, q, kind.o)
			require.NoError(t, err, kind.name)
			require.Len(t, want, k, "%s: the exact search must find %d records", kind.name, k)
			t0 := time.Now()
			got, err := vs.Search(ctx, q, kind.o)
			lat = append(lat, time.Since(t0))
			require.NoError(t, err, kind.name)
			ids := map[string]bool{}
			for _, r := range got {
				ids[r.ID] = true
			}
			for _, r := range want {
				if ids[r.ID] {
					found++
				}
			}
			total += len(want)
		}
		recall := float64(found) / float64(total)
		t.Logf("%-20s recall@%d %.3f over %d queries (vset search median %v)", kind.name, k, recall, queries, median(lat))
		if recall < 0.95 {
			t.Errorf("%s: recall@%d %.3f < 0.95", kind.name, k, recall)
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2].Round(time.Microsecond)
}
