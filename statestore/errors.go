package statestore

import (
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/scripterr"
)

// Errors of the state store. They are shared with the staging and
// checkpoint packages (the same values), and fenced writes also return
// [fencing.ErrStaleToken] (as a [*fencing.StaleTokenError]) and
// [fencing.ErrNotHolder] (as a [*NotHolderError]).
var (
	// ErrNotFound: the session (or the checkpoint, stage, ...) does not exist.
	ErrNotFound = fenced.ErrNotFound
	// ErrExists: Create found the session already there.
	ErrExists = fenced.ErrExists
	// ErrConflict: the state is not at the version the caller expected. The
	// concrete error is a [*ConflictError].
	ErrConflict = fenced.ErrConflict
	// ErrTooLarge: a document, message or change is larger than
	// Options.MaxDocumentBytes.
	ErrTooLarge = fenced.ErrTooLarge
	// ErrInvalidDocument: a document or message is not valid JSON, or a
	// status is empty or malformed.
	ErrInvalidDocument = fenced.ErrInvalidDocument
	// ErrInvalidCursor: a cursor was not issued by this package for this
	// session, or the data it points into was rewritten since.
	ErrInvalidCursor = fenced.ErrInvalidCursor
	// ErrSessionReplaced: a cursor, position or expected state belongs to an
	// incarnation of the session that was deleted since (Delete, then
	// Create under the same id). The concrete error is a [*ReplacedError];
	// it also matches ErrInvalidCursor (cursors) or ErrConflict (writes
	// with an expected version).
	ErrSessionReplaced = fenced.ErrSessionReplaced
	// ErrOutcomeUnknown is fencing.ErrNoReply: a write got no reply (a
	// transport error, a timeout, an ended context; wrapped too), so it may
	// or may not have been applied. Delete, which is not retried, returns
	// it after a lost reply: Load to find out.
	ErrOutcomeUnknown = fenced.ErrOutcomeUnknown
	// ErrInvalidArgument: an argument is out of range (a negative limit, a
	// zero token, ...).
	ErrInvalidArgument = fenced.ErrInvalidArgument
	// ErrInvalidID: a session id that cannot be used in a key (see lock.ErrInvalidName).
	ErrInvalidID = keys.ErrInvalidID
	// ErrCorrupt: a key of the session holds data fencekit did not write.
	ErrCorrupt = scripterr.ErrCorrupt
	// ErrProtocol: a script reply of an unexpected shape.
	ErrProtocol = scripterr.ErrProtocol
)

// ConflictError is the detailed form of [ErrConflict].
type ConflictError = fenced.ConflictError

// ReplacedError is the detailed form of [ErrSessionReplaced].
type ReplacedError = fenced.ReplacedError

// NotHolderError is the detailed form of [fencing.ErrNotHolder] for writes
// in strict mode: the lock record does not carry the writer's token.
type NotHolderError = fenced.NotHolderError
