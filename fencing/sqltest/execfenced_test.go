package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"
	_ "github.com/mattn/go-sqlite3"

	"github.com/fencekit/fencekit/fencing"
)

// dialect is one database as ExecFenced sees it: how to open it and the
// fenced UPDATE in its placeholder syntax. ExecFenced passes the token as
// the first argument; update takes (token, doc, id) as written by write.
type dialect struct {
	name   string
	open   func(t *testing.T) *sql.DB
	update string
	// twice is set when the placeholders cannot repeat the token (MySQL's
	// "?"): write then passes it again as the last argument.
	twice bool
	// foundRows is what CheckFoundRows must say.
	foundRows error
}

func (d dialect) write(ctx context.Context, db *sql.DB, token fencing.Token, doc, id string) error {
	args := []any{doc, id}
	if d.twice {
		args = append(args, int64(token))
	}
	return fencing.ExecFenced(ctx, db, token, d.update, args...)
}

const schema = "CREATE TABLE agent_state (id VARCHAR(64) PRIMARY KEY, doc VARCHAR(256) NOT NULL, fence BIGINT NOT NULL, writes BIGINT NOT NULL DEFAULT 0)"

func sqliteDB(t *testing.T) *sql.DB {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func postgresDB(t *testing.T) *sql.DB {
	db, err := sql.Open("postgres", startPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mariaDB returns a database on a fresh MariaDB server, opened with the
// DSN parameters params ("" for go-sql-driver/mysql's defaults).
func mariaDB(params string) func(t *testing.T) *sql.DB {
	return func(t *testing.T) *sql.DB {
		dsn := "root@tcp(" + startMariaDB(t) + ")/fencekit"
		if params != "" {
			dsn += "?" + params
		}
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

const (
	sqliteUpdate = "UPDATE agent_state SET doc = ?2, fence = ?1 WHERE id = ?3 AND fence <= ?1"
	pgUpdate     = "UPDATE agent_state SET doc = $2, fence = $1 WHERE id = $3 AND fence <= $1"
	mysqlUpdate  = "UPDATE agent_state SET fence = ?, doc = ? WHERE id = ? AND fence <= ?"
	// mysqlCounted changes the row on every write, so that even a driver
	// that counts changed rows reports it.
	mysqlCounted = "UPDATE agent_state SET fence = ?, doc = ?, writes = writes + 1 WHERE id = ? AND fence <= ?"
)

// dialects are the databases and statements ExecFenced is documented to
// work with.
var dialects = []dialect{
	{name: "sqlite", open: sqliteDB, update: sqliteUpdate},
	{name: "postgresql", open: postgresDB, update: pgUpdate},
	{name: "mariadb-clientFoundRows", open: mariaDB("clientFoundRows=true"), update: mysqlUpdate, twice: true},
	{name: "mariadb-writes-counter", open: mariaDB(""), update: mysqlCounted, twice: true, foundRows: fencing.ErrChangedRowsOnly},
}

// TestExecFenced runs the fenced-write story on every database: writes in
// token order are accepted, a same-token rewrite of identical values too,
// an older token is refused with a *fencing.StaleTokenError and changes
// nothing, a missing row is refused.
func TestExecFenced(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			db := d.open(t)
			if err := fencing.CheckFoundRows(ctx, db); !errors.Is(err, d.foundRows) || (d.foundRows == nil && err != nil) {
				t.Fatalf("CheckFoundRows: %v, want %v", err, d.foundRows)
			}
			if _, err := db.ExecContext(ctx, schema); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO agent_state (id, doc, fence) VALUES ('s1', '', 0)"); err != nil {
				t.Fatal(err)
			}
			row := func() (string, int64) {
				t.Helper()
				var doc string
				var fence int64
				if err := db.QueryRowContext(ctx, "SELECT doc, fence FROM agent_state WHERE id = 's1'").Scan(&doc, &fence); err != nil {
					t.Fatal(err)
				}
				return doc, fence
			}
			steps := []struct {
				what  string
				token fencing.Token
				doc   string
				id    string
				stale bool
				// after is the row after the step.
				afterDoc   string
				afterFence int64
			}{
				{"first write", 200, "a", "s1", false, "a", 200},
				{"same token, same values", 200, "a", "s1", false, "a", 200},
				{"same token, new values", 200, "b", "s1", false, "b", 200},
				{"newer token", 300, "c", "s1", false, "c", 300},
				{"newer token, same values", 300, "c", "s1", false, "c", 300},
				{"older token refused", 200, "stale", "s1", true, "c", 300},
				{"older token with the row's values refused", 200, "c", "s1", true, "c", 300},
				{"missing row refused", 400, "x", "nope", true, "c", 300},
			}
			for _, s := range steps {
				err := d.write(ctx, db, s.token, s.doc, s.id)
				var ste *fencing.StaleTokenError
				switch {
				case s.stale && (!errors.As(err, &ste) || !errors.Is(err, fencing.ErrStaleToken) || ste.Presented != s.token):
					t.Errorf("%s: %v, want a *StaleTokenError for token %d", s.what, err, s.token)
				case !s.stale && err != nil:
					t.Errorf("%s: %v, want it accepted", s.what, err)
				}
				if doc, fence := row(); doc != s.afterDoc || fence != s.afterFence {
					t.Errorf("%s: row is (%q, %d), want (%q, %d)", s.what, doc, fence, s.afterDoc, s.afterFence)
				}
			}
		})
	}
}

// TestMySQLChangedRows checks the hazard ExecFenced documents: with
// go-sql-driver/mysql's default DSN, an UPDATE that matches the row but
// changes nothing reports 0 rows, so the plain statement turns a
// same-token rewrite of identical values into a false stale error.
// CheckFoundRows must say so, and clientFoundRows=true must cure it.
func TestMySQLChangedRows(t *testing.T) {
	ctx := context.Background()
	addr := startMariaDB(t)
	for _, tc := range []struct {
		params    string
		foundRows error
		sameErr   error // of the same-token identical rewrite
	}{
		{"", fencing.ErrChangedRowsOnly, fencing.ErrStaleToken},
		{"clientFoundRows=false", fencing.ErrChangedRowsOnly, fencing.ErrStaleToken},
		{"clientFoundRows=true", nil, nil},
	} {
		dsn := "root@tcp(" + addr + ")/fencekit"
		if tc.params != "" {
			dsn += "?" + tc.params
		}
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := fencing.CheckFoundRows(ctx, db); !errors.Is(err, tc.foundRows) || (tc.foundRows == nil && err != nil) {
			t.Errorf("%q: CheckFoundRows: %v, want %v", tc.params, err, tc.foundRows)
		}
		// The probe leaves no table behind on the pooled connection.
		if err := fencing.CheckFoundRows(ctx, db); !errors.Is(err, tc.foundRows) || (tc.foundRows == nil && err != nil) {
			t.Errorf("%q: CheckFoundRows again: %v, want %v", tc.params, err, tc.foundRows)
		}
		for _, q := range []string{"DROP TABLE IF EXISTS agent_state", schema, "INSERT INTO agent_state (id, doc, fence) VALUES ('s1', '', 0)"} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if err := fencing.ExecFenced(ctx, db, 200, mysqlUpdate, "a", "s1", int64(200)); err != nil {
			t.Fatalf("%q: first write: %v", tc.params, err)
		}
		err = fencing.ExecFenced(ctx, db, 200, mysqlUpdate, "a", "s1", int64(200))
		if !errors.Is(err, tc.sameErr) || (tc.sameErr == nil && err != nil) {
			t.Errorf("%q: same-token rewrite of identical values: %v, want %v", tc.params, err, tc.sameErr)
		}
	}
}
