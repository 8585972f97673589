// Package sqltest runs fencing.ExecFenced, the SQL form of fencing, and
// fencing.CheckFoundRows on real databases: SQLite (in process), and
// PostgreSQL and MariaDB servers that the tests start on loopback ports in
// temporary directories and stop when they end.
//
// It is a module of its own so that the fencekit module does not depend
// on SQL drivers. Run it with
//
//	cd fencing/sqltest && go test ./...
//
// The servers need Debian's postgresql and mariadb-server packages (initdb,
// postgres, mariadb-install-db, mariadbd in PATH or their usual places).
// Without them the PostgreSQL and MariaDB tests skip with a message;
// FENCEKIT_REQUIRE_REDIS=1 (set by CI, as for the Redis tests) turns the
// skips into failures.
package sqltest
