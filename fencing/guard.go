package fencing

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Guard enforces fencing tokens for resources that live in process memory
// (and in tests). For each resource it remembers the highest token that
// completed a write and rejects older ones. The zero Guard is ready to use and
// is safe for concurrent use.
type Guard struct {
	mu      sync.Mutex
	highest map[string]Token
}

// Apply runs write for resource if token is at least as new as every token
// that completed a write there before, and records token when write returns
// nil. The check, the write and the record happen under one mutex, so a stale
// writer can never interleave with a newer one. Equal tokens are accepted: a
// holder may write many times under one token.
//
// Apply returns a [*StaleTokenError] (matching [ErrStaleToken]) without
// calling write when token is older, an error matching [ErrInvalidToken] for
// an invalid token, and otherwise whatever write returns.
func (g *Guard) Apply(resource string, token Token, write func() error) error {
	if !token.Valid() {
		return fmt.Errorf("%w: %d", ErrInvalidToken, token)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if h := g.highest[resource]; token < h {
		return &StaleTokenError{Resource: resource, Presented: token, Highest: h}
	}
	if err := write(); err != nil {
		return err
	}
	if g.highest == nil {
		g.highest = make(map[string]Token)
	}
	g.highest[resource] = token
	return nil
}

// Highest returns the highest token that completed a write to resource, or 0.
func (g *Guard) Highest(resource string) Token {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.highest[resource]
}

// Execer is the subset of *sql.DB, *sql.Conn and *sql.Tx that [ExecFenced]
// needs.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ExecFenced runs a fenced SQL write: query must be a single-row UPDATE whose
// WHERE clause admits the row only when the stored fence is not newer than
// the presented token, and which stores the token, for example
//
//	UPDATE agent_state SET doc = $2, fence = $1 WHERE id = $3 AND fence <= $1
//
// with token passed as the first argument. The database evaluates the check
// and the write atomically, so no separate read is needed. When the statement
// updates no row, ExecFenced returns a [*StaleTokenError] whose Highest is 0
// (the database did not say which token won); the row must therefore exist
// before the first fenced write (insert it with fence 0). Errors from the
// driver are returned unchanged.
//
// The driver's RowsAffected must count the rows the UPDATE matched, not
// only those it changed: otherwise a holder that writes the same values
// twice under one token gets a false [*StaleTokenError] for the second
// write. PostgreSQL (lib/pq, pgx) and SQLite count matched rows;
// go-sql-driver/mysql (MySQL, MariaDB) counts changed rows unless the DSN
// sets clientFoundRows=true. [CheckFoundRows] tells at startup
// ([ErrChangedRowsOnly]). A statement that changes the row on every write,
// for example with "writes = writes + 1" in its SET list, is correct with
// either count.
func ExecFenced(ctx context.Context, db Execer, token Token, query string, args ...any) error {
	if !token.Valid() {
		return fmt.Errorf("%w: %d", ErrInvalidToken, token)
	}
	res, err := db.ExecContext(ctx, query, append([]any{int64(token)}, args...)...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return &StaleTokenError{Presented: token}
	}
	return nil
}
