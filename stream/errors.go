package stream

import (
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/statestore"
)

// Errors of package stream. Fenced writes also return
// [fencing.ErrStaleToken] (as a [*fencing.StaleTokenError]) and
// [fencing.ErrNotHolder] (as a [*NotHolderError]).
var (
	// ErrTooLarge: a chunk or failure reason is longer than
	// Options.MaxChunkBytes. It is statestore.ErrTooLarge.
	ErrTooLarge = fencing.ErrTooLarge
	// ErrInvalidArgument: an argument is out of range (a zero token, a
	// count below 1, an empty group name, ...). It is
	// statestore.ErrInvalidArgument.
	ErrInvalidArgument = fencing.ErrInvalidArgument
	// ErrInvalidSeq: a sequence string that is not an entry id. It matches
	// ErrInvalidArgument too.
	ErrInvalidSeq = fmt.Errorf("%w: invalid sequence", fencing.ErrInvalidArgument)
	// ErrNotFound is statestore.ErrNotFound.
	ErrNotFound = fencing.ErrNotFound
	// ErrUnknownStream: the session has no output stream (never written,
	// or expired). It matches ErrNotFound too.
	ErrUnknownStream = fmt.Errorf("%w: unknown stream", fencing.ErrNotFound)
	// ErrUnknownGroup: the consumer group does not exist (see
	// [Streams.Group]). It matches ErrNotFound too.
	ErrUnknownGroup = fmt.Errorf("%w: unknown consumer group", fencing.ErrNotFound)
	// ErrEnded: an append to a stream that has its terminal marker (End or
	// Fail was called). The concrete error is an [*EndedError].
	ErrEnded = errors.New("stream: stream ended")
	// ErrTrimmed: a follower found that entries after its position were
	// trimmed (MAXLEN) before it read them. The concrete error is a
	// [*TrimmedError].
	ErrTrimmed = errors.New("stream: entries trimmed before they were read")
	// ErrSessionReplaced: a position passed to Read or Follow is in a
	// stream that was deleted since (statestore.Store.Delete, or expired)
	// and written again: the entries there now are not a continuation. The
	// concrete error is a [*ReplacedError].
	// It is statestore.ErrSessionReplaced.
	ErrSessionReplaced = fencing.ErrSessionReplaced
	// ErrInvalidID: a session id that cannot be used in a key.
	ErrInvalidID = fencing.ErrInvalidID
	// ErrCorrupt: a key of the stream holds data fencekit did not write.
	ErrCorrupt = fencing.ErrCorrupt
	// ErrProtocol: a reply of an unexpected shape.
	ErrProtocol = fencing.ErrProtocol
)

// NotHolderError is the detailed form of [fencing.ErrNotHolder] for writes
// in strict mode: the lock record does not carry the writer's token.
type NotHolderError = fencing.NotHolderError

// ReplacedError is the detailed form of [ErrSessionReplaced].
type ReplacedError = statestore.ReplacedError

// EndedError is the detailed form of [ErrEnded].
type EndedError struct {
	ID     string
	Status Status // StatusEnded or StatusFailed
}

// Error implements error.
func (e *EndedError) Error() string {
	return fmt.Sprintf("stream: stream of session %q is %s", e.ID, e.Status)
}

// Is makes errors.Is(err, ErrEnded) true.
func (e *EndedError) Is(target error) bool { return target == ErrEnded }

// TrimmedError is the detailed form of [ErrTrimmed].
type TrimmedError struct {
	ID     string
	After  Seq   // the reader's position
	Next   Seq   // the first entry still there after it
	Missed int64 // how many entries between them were trimmed
}

// Error implements error.
func (e *TrimmedError) Error() string {
	return fmt.Sprintf("stream: %d entries of session %q after %s were trimmed before they were read (next is %s)",
		e.Missed, e.ID, e.After, e.Next)
}

// Is makes errors.Is(err, ErrTrimmed) true.
func (e *TrimmedError) Is(target error) bool { return target == ErrTrimmed }

// scriptError maps the error of a stream script, including the codes only
// stream scripts use, to the package's errors.
func scriptError(op, id string, err error) error {
	code, detail, ok := scripterr.Parse(err)
	if ok {
		switch {
		case code == "ENDED":
			return fmt.Errorf("stream: %s %q: %w", op, id, &EndedError{ID: id, Status: Status(detail)})
		case code == scripterr.NotFound && detail == "stream":
			return fmt.Errorf("stream: %s %q: %w", op, id, ErrUnknownStream)
		case code == scripterr.Replaced:
			return fenced.Wrap("stream", op, id, &ReplacedError{ID: id, What: "stream position"})
		}
	}
	if rerr, isRedis := redisErr(err); isRedis && len(rerr) >= 7 && rerr[:7] == "NOGROUP" {
		return fmt.Errorf("stream: %s %q: %w: %s", op, id, ErrUnknownGroup, rerr)
	}
	return fenced.Error("stream", op, id, err)
}
