// Package fencing defines fencing tokens and the rules for enforcing them.
//
// A lease-based lock cannot by itself protect shared state: a holder can pause
// (GC, VM stall, SIGSTOP) past its lease, another executor acquires the lock,
// and the first one wakes up and writes. Every acquisition therefore carries a
// [Token] that is larger than every token issued before it for the same
// resource, and every guarded write is checked against the highest token the
// resource has accepted. A write with a smaller token is rejected with a
// [*StaleTokenError], which matches [ErrStaleToken] via [errors.Is].
//
// fencekit checks tokens inside the same Lua script that performs each Redis
// write (see the lock and statestore packages). For resources outside Redis,
// [Guard] enforces tokens in memory and [ExecFenced] maps the result of a SQL
// statement of the form
//
//	UPDATE t SET ..., fence = $1 WHERE id = $2 AND fence <= $1
//
// to the same errors. It needs a driver whose RowsAffected counts matched
// rows (MySQL and MariaDB: clientFoundRows=true), which [CheckFoundRows]
// verifies; the module fencing/sqltest runs the pattern on SQLite,
// PostgreSQL and MariaDB.
//
// Every fencekit write fails in one of three ways, told apart with
// [errors.Is]:
//   - [ErrFenced]: a newer holder exists ([ErrStaleToken]) or the lock no
//     longer names the writer ([ErrNotHolder]); nothing was written, and
//     the writer should stop working on the resource;
//   - [ErrNoReply]: no reply from Redis (transport error, timeout); the
//     write may or may not have been applied;
//   - anything else: refused, nothing written ([ErrWriteRefused] when the
//     server does not take writes at the moment, a failed precondition,
//     invalid input).
//
// Tokens are minted by the lock's acquire script as
// max(previous token + 1, server time in microseconds), so they stay monotonic
// even when the counter is lost (see the lock package). They are exact in Lua
// (whose numbers are doubles) up to [MaxToken].
package fencing
