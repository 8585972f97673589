package memory_test

import (
	"context"
	"fmt"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/memory"
)

func Example() {
	client, stop := embedded.MustClient()
	defer stop()
	ctx := context.Background()
	store, err := memory.New(client, memory.Options{Dim: 3})
	if err != nil {
		panic(err)
	}
	err = store.Put(ctx, []memory.Record{
		{ID: "tea", Scope: "user/42", Text: "prefers green tea", Embedding: []float32{1, 0.1, 0}, Categories: []string{"preference"}, Importance: 0.8},
		{ID: "go", Scope: "user/42/project/7", Text: "project is written in Go", Embedding: []float32{0, 1, 0}, Categories: []string{"fact"}, Importance: 0.6},
		{ID: "coffee", Scope: "user/42/project/7", Text: "drinks coffee at work", Embedding: []float32{0.9, 0, 0.3}, Categories: []string{"preference"}, Importance: 0.4},
	})
	if err != nil {
		panic(err)
	}
	res, err := store.Search(ctx, []float32{1, 0, 0}, memory.SearchOptions{
		K: 2, Scope: "user/42", IncludeDescendants: true, Categories: []string{"preference"},
	})
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		fmt.Printf("%s %.3f %s\n", r.ID, r.Similarity, r.Text)
	}
	n, _ := store.Count(ctx, "user/42", true)
	fmt.Println("records:", n, "backend:", store.Backend())
	// Output:
	// tea 0.995 prefers green tea
	// coffee 0.949 drinks coffee at work
	// records: 3 backend: scan
}
