package fencing

import (
	"errors"
	"fmt"
)

// ErrFenced matches every write refused by fencing: [ErrStaleToken] (a newer
// token was issued, accepted or holds the lock) and [ErrNotHolder] (the lock
// no longer names the writer). Which one a late writer gets depends only on
// whether someone has taken over yet; both mean the same thing to it: it is
// no longer the holder, and nothing was written.
var ErrFenced = errors.New("fencing: fenced out")

// ErrStaleToken reports a write rejected because a newer token has already
// been accepted (or issued) for the resource. The concrete error is usually a
// [*StaleTokenError] carrying both tokens. It matches [ErrFenced].
var ErrStaleToken error = &fencedError{"fencing: stale token"}

// ErrNotHolder reports a write rejected because the lock no longer names the
// writer: it expired, was released, or was taken over. Strict-mode writes
// return it even when the writer's token is not (yet) older than the highest
// one accepted. It matches [ErrFenced].
var ErrNotHolder error = &fencedError{"fencing: not the lock holder"}

// fencedError is a sentinel that also matches ErrFenced.
type fencedError struct{ msg string }

func (e *fencedError) Error() string        { return e.msg }
func (e *fencedError) Is(target error) bool { return target == ErrFenced }

// ErrWriteRefused matches errors of writes that Redis refused before
// changing anything because it does not accept writes at the moment: out
// of memory (OOM), a read-only replica such as a primary demoted by a
// failover (READONLY), too few replicas for min-replicas-to-write
// (NOREPLICAS), or a failed snapshot with stop-writes-on-bgsave-error
// (MISCONF). The server's reply is wrapped too. Nothing was written, and
// no waiter was told of a grant; the call may succeed once the server
// accepts writes again.
var ErrWriteRefused = errors.New("fencekit: redis refused the write")

// ErrNoReply matches errors of calls that got no reply from Redis: a
// broken or refused connection, a timeout (the caller's context or the
// bound every fencekit call puts on itself), a closed client. A write that
// fails with it may or may not have been applied: its outcome is unknown.
// Every other error of a write means the write was refused and nothing was
// written (a fencing refusal matching [ErrFenced], [ErrWriteRefused], a
// failed precondition, invalid input). The transport or context error is
// wrapped too.
var ErrNoReply = errors.New("fencekit: no reply from redis")

// NotHolderError is the detailed form of [ErrNotHolder] for writes in
// strict mode (statestore, staging, checkpoint, stream, memory): the lock
// record does not carry the writer's token. It matches [ErrNotHolder] and
// [ErrFenced].
type NotHolderError struct {
	// ID names what was written: a session id, or the lock of a memory
	// scope root.
	ID string
	// Presented is the token the refused writer carried.
	Presented Token
	// Holder is the token the lock record carries; 0 when nobody holds
	// the lock.
	Holder Token
}

// Error implements error.
func (e *NotHolderError) Error() string {
	if e.Holder == 0 {
		return fmt.Sprintf("fencing: token %d does not hold session %q (no lock holder)", e.Presented, e.ID)
	}
	return fmt.Sprintf("fencing: token %d does not hold session %q (holder's token %d)", e.Presented, e.ID, e.Holder)
}

// Is makes errors.Is(err, ErrNotHolder) and errors.Is(err, ErrFenced) true.
func (e *NotHolderError) Is(target error) bool {
	return target == ErrNotHolder || target == ErrFenced
}

// StaleTokenError is the detailed form of [ErrStaleToken].
type StaleTokenError struct {
	// Resource names what was written (a lock name, a session id, a table row).
	Resource string
	// Presented is the token the rejected writer carried.
	Presented Token
	// Highest is the highest token the resource had accepted or issued.
	Highest Token
}

// Error implements error.
func (e *StaleTokenError) Error() string {
	if e.Resource == "" {
		return fmt.Sprintf("fencing: stale token %d (highest %d)", e.Presented, e.Highest)
	}
	return fmt.Sprintf("fencing: stale token %d for %q (highest %d)", e.Presented, e.Resource, e.Highest)
}

// Is makes errors.Is(err, ErrStaleToken) and errors.Is(err, ErrFenced)
// true for a *StaleTokenError.
func (e *StaleTokenError) Is(target error) bool {
	return target == ErrStaleToken || target == ErrFenced
}

// Errors shared by the stores built on fencing (statestore, staging,
// checkpoint, stream, memory, usage). Each store re-exports those it
// returns under its own name (statestore.ErrNotFound is ErrNotFound), so
// errors.Is works whichever name the caller tests against; the stores
// wrap them with the operation and id.
var (
	// ErrNotFound: the session, record, checkpoint or stream does not
	// exist (or has expired).
	ErrNotFound = errors.New("fencekit: not found")
	// ErrExists: a create found the session already there.
	ErrExists = errors.New("fencekit: already exists")
	// ErrConflict: the stored version is not the one the caller expected.
	ErrConflict = errors.New("fencekit: version conflict")
	// ErrTooLarge: a value or a batch is over a documented size limit.
	ErrTooLarge = errors.New("fencekit: too large")
	// ErrInvalidDocument: a document is not valid JSON (or not an object
	// where one is required).
	ErrInvalidDocument = errors.New("fencekit: invalid document")
	// ErrInvalidCursor: a cursor or position is malformed or belongs to
	// another session or listing.
	ErrInvalidCursor = errors.New("fencekit: invalid cursor")
	// ErrInvalidArgument: an argument is out of its documented range.
	ErrInvalidArgument = errors.New("fencekit: invalid argument")
	// ErrSessionReplaced: a position, cursor or expected state belongs to
	// an earlier incarnation of a session that was deleted and created
	// again under the same id.
	ErrSessionReplaced = errors.New("fencekit: session replaced")
)

// More errors every fencekit package returns, re-exported under its own
// names like those above.
var (
	// ErrInvalidID: a session id, lock or semaphore name, scope or
	// prefix is empty, too long, or holds characters fencekit does not
	// allow in a key (braces, spaces, control characters).
	ErrInvalidID = errors.New("fencekit: invalid id")
	// ErrCorrupt: a key holds data fencekit did not write (or of another
	// type): the script refused it before writing anything.
	ErrCorrupt = errors.New("fencekit: corrupt data")
	// ErrProtocol: a script replied in a shape the client does not know,
	// as when clients and scripts of different fencekit versions meet.
	ErrProtocol = errors.New("fencekit: unexpected script reply")
)
