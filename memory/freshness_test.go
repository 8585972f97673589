package memory_test

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/memory"
)

// TestSearchSeesCompletedWrites checks read-after-write across two clients
// while the reading client searches on other goroutines too (the searches
// share in-flight reads and cache entries) and the writing client also
// writes elsewhere in the root: after a write by client B returned, a
// search started on client A must see it. Each round checks a
// put in a new scope (the search must find it), a re-put with a new text
// (the new text) and a delete (gone). Every miss is an anomaly; there must
// be none.
func TestSearchSeesCompletedWrites(t *testing.T) {
	rounds := map[redistest.Kind]int{redistest.Mini: 100, redistest.Redis: 1000, redistest.Cluster: 1000}
	if testing.Short() {
		rounds = map[redistest.Kind]int{redistest.Mini: 20, redistest.Redis: 200, redistest.Cluster: 200}
	}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		prefix := s.Prefix(t)
		a, err := memory.New(s.NewClient(t), memory.Options{Prefix: prefix, Dim: dim, Backend: memory.BackendScan})
		require.NoError(t, err)
		b, err := memory.New(s.NewClient(t), memory.Options{Prefix: prefix, Dim: dim, Backend: memory.BackendScan})
		require.NoError(t, err)
		rng := rand.New(rand.NewSource(1))
		randVec := func() []float32 {
			v := make([]float32, dim)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			return v
		}
		// Some records to search among.
		var seed []memory.Record
		for i := range 50 {
			seed = append(seed, rec(fmt.Sprint("seed", i), fmt.Sprintf("fr/s%d", i%5), randVec()))
		}
		require.NoError(t, b.Put(ctx, seed))

		desc := memory.SearchOptions{K: 1, Scope: "fr", IncludeDescendants: true}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var bgErr atomic.Value
		for g := range 5 { // background searchers on client A
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := vec(1, float32(g))
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := a.Search(ctx, q, desc); err != nil {
						bgErr.Store(err)
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() { // a second writer on client B, in a scope of its own
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.Put(ctx, []memory.Record{rec(fmt.Sprint("bg", i%20), "fr/bg", vec(-1, float32(i%7)))}); err != nil {
					bgErr.Store(err)
					return
				}
			}
		}()
		defer func() { close(stop); wg.Wait() }()

		var missedPut, staleText, sawDeleted, checks int
		for i := range rounds[s.Kind] {
			r := rec(fmt.Sprint("x", i), fmt.Sprintf("fr/n%d", i), randVec())
			require.NoError(t, b.Put(ctx, []memory.Record{r}))
			got, err := a.Search(ctx, r.Embedding, desc)
			require.NoError(t, err)
			checks++
			if len(got) != 1 || got[0].ID != r.ID {
				missedPut++
			}
			r.Text = "second version"
			require.NoError(t, b.Put(ctx, []memory.Record{r}))
			got, err = a.Search(ctx, r.Embedding, desc)
			require.NoError(t, err)
			checks++
			if len(got) != 1 || got[0].ID != r.ID || got[0].Text != r.Text {
				staleText++
			}
			_, err = b.Delete(ctx, "fr", []string{r.ID})
			require.NoError(t, err)
			got, err = a.Search(ctx, r.Embedding, desc)
			require.NoError(t, err)
			checks++
			if len(got) == 1 && got[0].ID == r.ID {
				sawDeleted++
			}
		}
		if err, _ := bgErr.Load().(error); err != nil {
			t.Fatalf("background search: %v", err)
		}
		t.Logf("%s: %d checks: %d missed puts, %d stale versions, %d deleted records returned", s.Name(), checks, missedPut, staleText, sawDeleted)
		require.Zero(t, missedPut+staleText+sawDeleted, "anomalies")
	})
}
