package semaphore

import (
	"errors"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/scripterr"
)

var (
	// ErrNotAcquired reports that the permits asked for are not free (or
	// are promised to earlier waiters). TryAcquire returns it as a
	// [*NotAcquiredError]; Acquire returns it joined with the context's
	// error when it gives up.
	ErrNotAcquired = errors.New("semaphore: permits not available")

	// ErrTooMany reports a request for more permits than the limit of the
	// name: it could never be granted. The concrete error is a
	// [*TooManyError].
	ErrTooMany = errors.New("semaphore: more permits asked than the limit")

	// ErrLost reports that a permit lease ended without Release: it
	// expired by the holder's own clock, was found gone, or could not be
	// renewed in time. It matches [fencing.ErrNotHolder] too. The concrete
	// error is a [*LostError].
	ErrLost = errors.New("semaphore: permits lost")

	// ErrNotReplicated reports that fewer than Options.MinReplicas
	// replicas acknowledged a grant or renewal within
	// Options.ReplicaTimeout. The concrete error is a
	// [*NotReplicatedError].
	ErrNotReplicated = errors.New("semaphore: not replicated")

	// ErrReleased is what [Permits.Err] reports after a successful Release.
	ErrReleased = errors.New("semaphore: released")

	// ErrClosed reports a call on a closed Semaphore.
	ErrClosed = errors.New("semaphore: closed")

	// ErrNilClient is returned by New for a nil client.
	ErrNilClient = errors.New("semaphore: nil client")

	// ErrInvalidName reports a name that cannot be used in a key (the same
	// value as lock.ErrInvalidName).
	ErrInvalidName = fencing.ErrInvalidID

	// ErrCorrupt reports a semaphore key holding data fencekit did not write.
	ErrCorrupt = fencing.ErrCorrupt

	// ErrProtocol reports a script reply of an unexpected shape.
	ErrProtocol = fencing.ErrProtocol
)

// NotReplicatedError is the detailed form of [ErrNotReplicated].
type NotReplicatedError struct {
	Name  string
	Acked int64 // replicas that acknowledged
	Want  int   // Options.MinReplicas
}

// Error implements error.
func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("semaphore: %q: %d of %d replicas acknowledged", e.Name, e.Acked, e.Want)
}

// Is makes errors.Is(err, ErrNotReplicated) true.
func (e *NotReplicatedError) Is(target error) bool { return target == ErrNotReplicated }

// NotAcquiredError is the detailed form of [ErrNotAcquired].
type NotAcquiredError struct {
	Name  string
	N     int64 // permits asked for
	Used  int64 // permits held by live leases
	Limit int64 // the name's limit
}

// Error implements error.
func (e *NotAcquiredError) Error() string {
	return fmt.Sprintf("semaphore: %q: %d permits not available (%d of %d in use)", e.Name, e.N, e.Used, e.Limit)
}

// Is makes errors.Is(err, ErrNotAcquired) true.
func (e *NotAcquiredError) Is(target error) bool { return target == ErrNotAcquired }

// TooManyError is the detailed form of [ErrTooMany].
type TooManyError struct {
	Name  string
	N     int64
	Limit int64
}

// Error implements error.
func (e *TooManyError) Error() string {
	return fmt.Sprintf("semaphore: %q: %d permits asked, limit %d", e.Name, e.N, e.Limit)
}

// Is makes errors.Is(err, ErrTooMany) true.
func (e *TooManyError) Is(target error) bool { return target == ErrTooMany }

// LostCause says how a permit lease was lost.
type LostCause string

// The causes of a [LostError].
const (
	// CauseExpired: the lease ran out by the holder's own clock.
	CauseExpired LostCause = "expired"
	// CauseGone: a renewal or release found the grant gone.
	CauseGone LostCause = "gone"
	// CauseRefreshFailed: renewals failed until the lease ran out; the
	// last renewal error is wrapped.
	CauseRefreshFailed LostCause = "refresh-failed"
)

// LostError is the detailed form of [ErrLost].
type LostError struct {
	Name  string
	Token fencing.Token
	Cause LostCause
	// Err is the last renewal error when Cause is CauseRefreshFailed.
	Err error
	// Since is how long the lease had been held, by the holder's clock.
	Since time.Duration
}

// Error implements error.
func (e *LostError) Error() string {
	if e.Cause == CauseRefreshFailed {
		return fmt.Sprintf("semaphore: permits lost: %q token %d: renewal failed: %v", e.Name, e.Token, e.Err)
	}
	return fmt.Sprintf("semaphore: permits lost: %q token %d %s", e.Name, e.Token, e.Cause)
}

// Is makes errors.Is(err, ErrLost) and errors.Is(err, fencing.ErrNotHolder)
// true.
func (e *LostError) Is(target error) bool {
	return target == ErrLost || target == fencing.ErrNotHolder || target == fencing.ErrFenced
}

// Unwrap returns the renewal error of CauseRefreshFailed.
func (e *LostError) Unwrap() error { return e.Err }

// scriptError turns an error of a semaphore script into a package error,
// keeping Redis and transport errors (wrapped with the name): refusals to
// write match [fencing.ErrWriteRefused], missing replies
// [fencing.ErrNoReply].
func scriptError(op, name string, err error) error {
	if code, detail, ok := scripterr.Parse(err); ok && code == scripterr.Corrupt {
		return fmt.Errorf("%w: semaphore %q: %s", ErrCorrupt, name, detail)
	}
	if scripterr.IsRefused(err) {
		err = scripterr.Refused(err)
	}
	return fmt.Errorf("semaphore: %s %q: %w", op, name, err)
}
