// Command memory stores a few hundred agent memories with deterministic
// synthetic embeddings (no model download), then searches them with
// filters and prints the top results.
//
// Embeddings are built from topic directions plus seeded noise, so that
// memories about one topic are close to each other and to a query about
// that topic. The writes are fenced: the example holds the lock named
// after the scope root (memory.Store.LockName) and passes its token.
//
// It runs on an embedded miniredis unless REDIS_URL names a real server
// (for example redis://127.0.0.1:6379/0); on a real server it first
// deletes what an earlier run left under its scope. Exit status 1 on
// failure.
//
//	go run ./examples/memory
//	REDIS_URL=redis://127.0.0.1:6379 go run ./examples/memory
package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/memory"
)

const (
	dim    = 64
	prefix = "fkdemo"
	root   = "demo-user"
)

var topics = []string{"programming", "cooking", "travel", "music", "health"}

var phrases = map[string][]string{
	"programming": {"prefers Go for services", "uses table-driven tests", "dislikes global state", "reviews PRs in the morning"},
	"cooking":     {"bakes sourdough on Sundays", "is allergic to peanuts", "likes spicy ramen", "owns a cast-iron pan"},
	"travel":      {"flies out of Berlin", "prefers aisle seats", "visited Japan in spring", "collects train tickets"},
	"music":       {"plays jazz piano", "listens to Bach while coding", "went to a techno festival", "tunes guitars by ear"},
	"health":      {"runs 5k three times a week", "sleeps at 11pm", "drinks green tea", "does yoga on Fridays"},
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

func connect() (rueidis.Client, func(), string, error) {
	srv, err := embedded.Start()
	if err != nil {
		return nil, nil, "", err
	}
	c, err := srv.NewClient()
	if err != nil {
		srv.Close()
		return nil, nil, "", err
	}
	return c, func() { c.Close(); srv.Close() }, srv.Description, nil
}

// direction returns the unit-ish direction of a topic: a fixed pseudo-random
// vector seeded by the topic's index.
func direction(t int) []float32 {
	rng := rand.New(rand.NewPCG(uint64(t)+1, 99))
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// embed is the synthetic embedding of a memory about topic t: the topic's
// direction plus noise of the given strength.
func embed(rng *rand.Rand, t int, noise float64) []float32 {
	v := direction(t)
	for i := range v {
		v[i] += float32(noise * rng.NormFloat64())
	}
	return v
}

func run(w io.Writer) error {
	client, stop, desc, err := connect()
	if err != nil {
		return err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Fprintln(w, "server:", desc)

	store, err := memory.New(client, memory.Options{Prefix: prefix, Dim: dim})
	if err != nil {
		return err
	}
	locker, err := lock.New(client, lock.Options{Prefix: prefix})
	if err != nil {
		return err
	}
	defer locker.Close()
	name, err := store.LockName(root)
	if err != nil {
		return err
	}
	lk, err := locker.Acquire(ctx, name)
	if err != nil {
		return err
	}
	defer lk.Release(context.Background())
	fenced := memory.WithToken(lk.Token())
	if _, err := store.Reset(ctx, root, fenced); err != nil {
		return err
	}

	// 300 memories in three scopes, written in batches of 100 (one script each).
	rng := rand.New(rand.NewPCG(7, 7))
	scopes := []string{root, root + "/project/api", root + "/project/app"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []memory.Record
	for i := 0; i < 300; i++ {
		t := rng.IntN(len(topics))
		ph := phrases[topics[t]]
		src := []string{"chat", "doc"}[rng.IntN(2)]
		batch = append(batch, memory.Record{
			ID:         fmt.Sprintf("m%03d", i),
			Scope:      scopes[rng.IntN(len(scopes))],
			Text:       fmt.Sprintf("%s (#%d)", ph[rng.IntN(len(ph))], i),
			Embedding:  embed(rng, t, 0.6),
			Categories: []string{topics[t]},
			Metadata:   map[string]string{"source": src},
			Importance: math.Round(rng.Float64()*100) / 100,
			CreatedAt:  base.Add(time.Duration(i) * time.Hour),
		})
		if len(batch) == 100 {
			if err := store.Put(ctx, batch, fenced); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	sc, err := store.Scopes(ctx, root)
	if err != nil {
		return err
	}
	for _, s := range sc {
		fmt.Fprintf(w, "scope %-28s %3d records\n", s.Scope, s.Count)
	}

	query := embed(rand.New(rand.NewPCG(1, 1)), 0, 0.3) // "what do I know about their programming habits?"
	show := func(title string, o memory.SearchOptions) error {
		res, err := store.Search(ctx, query, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%s (%d results)\n", title, len(res))
		for _, r := range res {
			fmt.Fprintf(w, "  %.3f  %-4s %-22s imp=%.2f %-6s %s\n", r.Similarity, r.ID, r.Scope, r.Importance, r.Metadata["source"], r.Text)
		}
		return nil
	}
	if err := show("top 5 in the whole tree", memory.SearchOptions{K: 5, Scope: root, IncludeDescendants: true}); err != nil {
		return err
	}
	if err := show("top 3 in project/api, importance >= 0.5, from docs", memory.SearchOptions{
		K: 3, Scope: root + "/project/api", MinImportance: 0.5, Metadata: map[string]string{"source": "doc"},
	}); err != nil {
		return err
	}
	if err := show("top 3 about music or travel", memory.SearchOptions{
		K: 3, Scope: root, IncludeDescendants: true, Categories: []string{"music", "travel"},
	}); err != nil {
		return err
	}
	min := 0.99
	if err := show("similarity >= 0.99 (none expected)", memory.SearchOptions{
		K: 3, Scope: root, IncludeDescendants: true, MinSimilarity: &min,
	}); err != nil {
		return err
	}
	page, err := store.List(ctx, root+"/project/app", memory.ListOptions{Limit: 3})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nnewest 3 in project/app:")
	for _, r := range page.Records {
		fmt.Fprintf(w, "  %s %s %s\n", r.CreatedAt.UTC().Format(time.RFC3339), r.ID, r.Text)
	}
	return nil
}
