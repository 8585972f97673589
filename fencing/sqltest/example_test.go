package sqltest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"

	_ "github.com/mattn/go-sqlite3"

	"github.com/fencekit/fencekit/fencing"
)

// The SQL form of fencing on SQLite: the row keeps the highest token that
// wrote it, and the UPDATE admits only a token at least as high. With
// PostgreSQL the statement is the same with $1..$3; with MySQL or MariaDB
// open the DSN with clientFoundRows=true (CheckFoundRows says whether the
// driver counts matched rows) and write "?" placeholders, passing the token
// again for the WHERE clause.
func Example_sqlite() {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:fencekit-example?mode=memory&cache=shared")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := fencing.CheckFoundRows(ctx, db); err != nil {
		log.Fatal(err) // errors.Is(err, fencing.ErrChangedRowsOnly): fix the DSN
	}
	for _, q := range []string{
		`CREATE TABLE agent_state (id TEXT PRIMARY KEY, doc TEXT NOT NULL, fence INTEGER NOT NULL)`,
		`INSERT INTO agent_state VALUES ('session-42', '', 0)`, // the row exists before the first fenced write
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
	const update = `UPDATE agent_state SET doc = ?2, fence = ?1 WHERE id = ?3 AND fence <= ?1`

	// B (token 200) took over and writes; A (token 100) was paused past its
	// lease, wakes up and writes after B.
	fmt.Println("B:", fencing.ExecFenced(ctx, db, 200, update, "step 2 by B", "session-42"))
	fmt.Println("B again:", fencing.ExecFenced(ctx, db, 200, update, "step 2 by B", "session-42"))
	err = fencing.ExecFenced(ctx, db, 100, update, "step 2 by A", "session-42")
	fmt.Println("A:", err, errors.Is(err, fencing.ErrStaleToken))

	var doc string
	var fence int64
	if err := db.QueryRowContext(ctx, `SELECT doc, fence FROM agent_state WHERE id = 'session-42'`).Scan(&doc, &fence); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("row: %q, fence %d\n", doc, fence)
	// Output:
	// B: <nil>
	// B again: <nil>
	// A: fencing: stale token 100 (highest 0) true
	// row: "step 2 by B", fence 200
}
