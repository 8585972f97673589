module github.com/fencekit/fencekit/fencing/sqltest

go 1.25.0

replace github.com/fencekit/fencekit => ../..

require (
	github.com/fencekit/fencekit v0.0.0-00010101000000-000000000000
	github.com/go-sql-driver/mysql v1.9.3
	github.com/lib/pq v1.10.9
	github.com/mattn/go-sqlite3 v1.14.32
)

require filippo.io/edwards25519 v1.1.0 // indirect
