package fencing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrChangedRowsOnly reports a database driver whose RowsAffected counts
// the rows an UPDATE changed instead of the rows it matched. [ExecFenced]
// would report a same-token rewrite of identical values as stale on it.
// go-sql-driver/mysql (MySQL, MariaDB) does this unless the DSN sets
// clientFoundRows=true.
var ErrChangedRowsOnly = errors.New("fencing: the driver's RowsAffected counts changed rows, not matched rows (go-sql-driver/mysql: add clientFoundRows=true to the DSN)")

// probeTable is the temporary table CheckFoundRows creates on one
// connection; temporary tables are private to it in MySQL, MariaDB,
// PostgreSQL and SQLite.
const probeTable = "fencekit_found_rows_probe"

// CheckFoundRows finds out whether db's driver reports matched rows as
// RowsAffected, as [ExecFenced] needs: on one connection it creates a
// temporary table with one row, updates the row to the value it already
// has, and drops the table. Call it once at startup.
//
// It returns nil when the UPDATE counted the row, [ErrChangedRowsOnly]
// when it did not, and the database's error (wrapped) when the probe could
// not run, for example without the privilege to create temporary tables.
func CheckFoundRows(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("fencing: found-rows probe: %w", err)
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE TEMPORARY TABLE IF NOT EXISTS " + probeTable + " (x INTEGER)",
		"DELETE FROM " + probeTable,
		"INSERT INTO " + probeTable + " (x) VALUES (1)",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("fencing: found-rows probe: %w", err)
		}
	}
	// The connection goes back to the pool: leave nothing behind on it.
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE "+probeTable) }()
	res, err := conn.ExecContext(ctx, "UPDATE "+probeTable+" SET x = 1 WHERE x = 1")
	if err != nil {
		return fmt.Errorf("fencing: found-rows probe: %w", err)
	}
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return fmt.Errorf("fencing: found-rows probe: %w", err)
	case n == 0:
		return ErrChangedRowsOnly
	case n != 1:
		return fmt.Errorf("fencing: found-rows probe: an UPDATE of one row reported %d rows", n)
	}
	return nil
}
