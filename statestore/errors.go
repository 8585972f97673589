package statestore

import (
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/fenced"
)

// Errors of the state store. They are shared with the staging and
// checkpoint packages (the same values), and fenced writes also return
// [fencing.ErrStaleToken] (as a [*fencing.StaleTokenError]) and
// [fencing.ErrNotHolder] (as a [*NotHolderError]).
var (
	// ErrNotFound: the session (or the checkpoint, stage, ...) does not exist.
	ErrNotFound = fencing.ErrNotFound
	// ErrExists: Create found the session already there.
	ErrExists = fencing.ErrExists
	// ErrConflict: the state is not at the version the caller expected. The
	// concrete error is a [*ConflictError].
	ErrConflict = fencing.ErrConflict
	// ErrTooLarge: a document, message or change is larger than
	// Options.MaxDocumentBytes.
	ErrTooLarge = fencing.ErrTooLarge
	// ErrInvalidDocument: a document or message is not valid JSON, or a
	// status is empty or malformed.
	ErrInvalidDocument = fencing.ErrInvalidDocument
	// ErrInvalidCursor: a cursor was not issued by this package for this
	// session, or the data it points into was rewritten since.
	ErrInvalidCursor = fencing.ErrInvalidCursor
	// ErrSessionReplaced: a cursor, position or expected state belongs to an
	// incarnation of the session that was deleted since (Delete, then
	// Create under the same id). The concrete error is a [*ReplacedError];
	// it also matches ErrInvalidCursor (cursors) or ErrConflict (writes
	// with an expected version).
	ErrSessionReplaced = fencing.ErrSessionReplaced
	// ErrOutcomeUnknown is fencing.ErrNoReply: a write got no reply (a
	// transport error, a timeout, an ended context; wrapped too), so it may
	// or may not have been applied. Delete, which is not retried, returns
	// it after a lost reply: Load to find out.
	ErrOutcomeUnknown = fencing.ErrNoReply
	// ErrInvalidArgument: an argument is out of range (a negative limit, a
	// zero token, ...).
	ErrInvalidArgument = fencing.ErrInvalidArgument
	// ErrInvalidID: a session id that cannot be used in a key (see lock.ErrInvalidName).
	ErrInvalidID = fencing.ErrInvalidID
	// ErrCorrupt: a key of the session holds data fencekit did not write.
	ErrCorrupt = fencing.ErrCorrupt
	// ErrEventLogOff: Store.Events or Store.Watch on a Store without
	// Options.EventLog.
	ErrEventLogOff = errors.New("statestore: event log off (Options.EventLog)")
	// ErrProtocol: a script reply of an unexpected shape.
	ErrProtocol = fencing.ErrProtocol
)

// ConflictError is the detailed form of [ErrConflict]: a write expected
// one version of the session and found another. It matches ErrConflict.
type ConflictError struct {
	// ID is the session id.
	ID string
	// Expected is the version the caller expected.
	Expected int64
	// Current is the version found.
	Current int64
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("fencekit: session %q is at version %d, not %d", e.ID, e.Current, e.Expected)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ReplacedError is the detailed form of [ErrSessionReplaced]: a position
// (a cursor, a stream position, a promote's read) or an expected
// incarnation belongs to an incarnation of the session that was deleted
// since; the session under that id now is another one. It matches
// ErrSessionReplaced and Also.
type ReplacedError struct {
	// ID is the session id.
	ID string
	// What was presented: "cursor", "stream position" or "state".
	What string
	// Current is the session's incarnation now (0: unknown, or a stream
	// position, which the stream's first entry bounds instead).
	Current int64
	// Also is the sentinel the error matches besides ErrSessionReplaced:
	// ErrInvalidCursor for positions, ErrConflict for writes.
	Also error
}

// Error implements error.
func (e *ReplacedError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("fencekit: %s of session %q is from an incarnation that was deleted", e.What, e.ID)
	}
	return fmt.Sprintf("fencekit: %s of session %q is from an incarnation that was deleted (the session now is incarnation %d)", e.What, e.ID, e.Current)
}

// Is makes errors.Is(err, ErrSessionReplaced) true, and errors.Is(err,
// e.Also).
func (e *ReplacedError) Is(target error) bool {
	return target == ErrSessionReplaced || (e.Also != nil && target == e.Also)
}

// NotHolderError is the detailed form of [fencing.ErrNotHolder] for writes
// in strict mode: the lock record does not carry the writer's token. It is
// [fencing.NotHolderError].
type NotHolderError = fencing.NotHolderError

func init() {
	fenced.NewConflictError = func(id string, expected, current int64) error {
		return &ConflictError{ID: id, Expected: expected, Current: current}
	}
	fenced.NewReplacedError = func(id, what string, current int64, also error) error {
		return &ReplacedError{ID: id, What: what, Current: current, Also: also}
	}
	fenced.StoreConfig = func(store any) *fenced.Config { return &store.(*Store).cfg }
}
