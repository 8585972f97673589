package fencing_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/fencing"
)

// row stands in for one row of a SQL table agent_state(id, doc, fence); its
// ExecContext does what the UPDATE below does in a real database.
type row struct {
	doc   string
	fence int64
}

type rowsAffected int64

func (n rowsAffected) LastInsertId() (int64, error) { return 0, errors.New("not supported") }
func (n rowsAffected) RowsAffected() (int64, error) { return int64(n), nil }

// ExecContext runs "UPDATE agent_state SET doc = $2, fence = $1 WHERE id = $3
// AND fence <= $1" on the row.
func (r *row) ExecContext(_ context.Context, _ string, args ...any) (sql.Result, error) {
	token, doc := args[0].(int64), args[1].(string)
	if r.fence > token {
		return rowsAffected(0), nil
	}
	r.doc, r.fence = doc, token
	return rowsAffected(1), nil
}

func ExampleExecFenced() {
	const update = `UPDATE agent_state SET doc = $2, fence = $1 WHERE id = $3 AND fence <= $1`
	db := &row{} // with database/sql: db, _ := sql.Open(...)
	ctx := context.Background()

	// The new holder (token 200) writes first; the paused old holder
	// (token 100) wakes up and writes after it.
	fmt.Println(fencing.ExecFenced(ctx, db, 200, update, "step 2 by B", "session-42"))
	err := fencing.ExecFenced(ctx, db, 100, update, "step 2 by A", "session-42")
	fmt.Println(errors.Is(err, fencing.ErrStaleToken), db.doc)
	// Output:
	// <nil>
	// true step 2 by B
}
