package fencing

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
)

func TestGuardRejectsOlderTokens(t *testing.T) {
	var g Guard
	var value string
	write := func(v string) func() error { return func() error { value = v; return nil } }

	if err := g.Apply("doc", 10, write("a")); err != nil {
		t.Fatal(err)
	}
	if err := g.Apply("doc", 10, write("b")); err != nil {
		t.Fatalf("equal token rejected: %v", err)
	}
	err := g.Apply("doc", 9, write("stale"))
	var ste *StaleTokenError
	if !errors.As(err, &ste) || ste.Presented != 9 || ste.Highest != 10 || ste.Resource != "doc" {
		t.Fatalf("stale write: err = %v", err)
	}
	if value != "b" {
		t.Fatalf("value = %q after stale write", value)
	}
	if err := g.Apply("other", 1, write("c")); err != nil {
		t.Fatalf("resources are independent: %v", err)
	}
	if err := g.Apply("doc", 0, write("zero")); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("zero token: %v", err)
	}
	if g.Highest("doc") != 10 || g.Highest("none") != 0 {
		t.Fatal("Highest is wrong")
	}
}

func TestGuardFailedWriteDoesNotRecord(t *testing.T) {
	var g Guard
	boom := errors.New("boom")
	if err := g.Apply("r", 5, func() error { return boom }); err != boom {
		t.Fatalf("err = %v", err)
	}
	if g.Highest("r") != 0 {
		t.Fatal("failed write recorded its token")
	}
	if err := g.Apply("r", 4, func() error { return nil }); err != nil {
		t.Fatalf("older token after a failed newer write: %v", err)
	}
}

func TestGuardConcurrentWritersNeverGoBackwards(t *testing.T) {
	var g Guard
	var mu sync.Mutex
	var applied []Token
	var wg sync.WaitGroup
	for w := 1; w <= 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				tok := Token(i*8 + w)
				err := g.Apply("r", tok, func() error {
					mu.Lock()
					applied = append(applied, tok)
					mu.Unlock()
					return nil
				})
				if err != nil && !errors.Is(err, ErrStaleToken) {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	for i := 1; i < len(applied); i++ {
		if applied[i] < applied[i-1] {
			t.Fatalf("write %d applied token %d after %d", i, applied[i], applied[i-1])
		}
	}
}

// fakeTable is an in-memory stand-in for a SQL table with a fence column: it
// evaluates "UPDATE ... WHERE id = ? AND fence <= ?" the way a database would.
type fakeTable struct {
	fence map[string]int64
	doc   map[string]string
}

type fakeResult int64

func (r fakeResult) LastInsertId() (int64, error) { return 0, errors.New("unsupported") }
func (r fakeResult) RowsAffected() (int64, error) { return int64(r), nil }

// ExecContext understands one statement shape, with args (token, doc, id).
func (f *fakeTable) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	if query != "UPDATE agent_state SET doc = $2, fence = $1 WHERE id = $3 AND fence <= $1" {
		return nil, errors.New("fake: unsupported statement")
	}
	token, doc, id := args[0].(int64), args[1].(string), args[2].(string)
	cur, ok := f.fence[id]
	if !ok || cur > token {
		return fakeResult(0), nil
	}
	f.fence[id], f.doc[id] = token, doc
	return fakeResult(1), nil
}

func TestExecFenced(t *testing.T) {
	db := &fakeTable{fence: map[string]int64{"s1": 0}, doc: map[string]string{"s1": ""}}
	const q = "UPDATE agent_state SET doc = $2, fence = $1 WHERE id = $3 AND fence <= $1"
	ctx := context.Background()
	if err := ExecFenced(ctx, db, 20, q, "new", "s1"); err != nil {
		t.Fatal(err)
	}
	err := ExecFenced(ctx, db, 10, q, "stale", "s1")
	var ste *StaleTokenError
	if !errors.As(err, &ste) || ste.Presented != 10 {
		t.Fatalf("stale write: %v", err)
	}
	if db.doc["s1"] != "new" || db.fence["s1"] != 20 {
		t.Fatalf("row = %q/%d", db.doc["s1"], db.fence["s1"])
	}
	if err := ExecFenced(ctx, db, 0, q, "x", "s1"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("zero token: %v", err)
	}
	if err := ExecFenced(ctx, db, 30, "DELETE", "x"); err == nil || errors.Is(err, ErrStaleToken) {
		t.Fatalf("driver error: %v", err)
	}
}
