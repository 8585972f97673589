package lock

import (
	"errors"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/scripterr"
)

var (
	// ErrNotAcquired reports that another holder has the lock. TryAcquire
	// returns it as a [*NotAcquiredError] with the holder's details; Acquire
	// returns it joined with the context's error when it gives up.
	ErrNotAcquired = errors.New("lock: held by another owner")

	// ErrLockLost reports that a lease ended without Release: it expired by
	// the holder's own clock, was found gone or taken over, or could not be
	// renewed in time. It matches [fencing.ErrNotHolder] too. The concrete
	// error is a [*LostError].
	ErrLockLost = errors.New("lock: lease lost")

	// ErrReleased is what [Lock.Err] reports after a successful Release.
	ErrReleased = errors.New("lock: released")

	// ErrNotReplicated reports that fewer than Options.MinReplicas replicas
	// acknowledged a write within Options.ReplicaTimeout. The concrete error
	// is a [*NotReplicatedError].
	ErrNotReplicated = errors.New("lock: not replicated")

	// ErrClosed reports a call on a closed Locker.
	ErrClosed = errors.New("lock: locker closed")

	// ErrNilClient is returned by New for a nil client.
	ErrNilClient = errors.New("lock: nil client")

	// ErrInvalidName reports a lock name that cannot be used in a key:
	// empty, longer than 256 bytes, not UTF-8, or containing '{', '}', '|'
	// or control characters. It is the same value as fencing.ErrInvalidID, so it
	// also matches the invalid-id errors of the other fencekit packages.
	ErrInvalidName = fencing.ErrInvalidID

	// ErrCorrupt reports a lock key holding data fencekit did not write.
	ErrCorrupt = fencing.ErrCorrupt

	// ErrProtocol reports a script reply of an unexpected shape.
	ErrProtocol = fencing.ErrProtocol
)

// NotAcquiredError is the detailed form of [ErrNotAcquired].
type NotAcquiredError struct {
	Name  string        // lock name
	Owner string        // the holder's Options.Owner
	Token fencing.Token // the holder's token
	TTL   time.Duration // the holder's remaining lease on the server
}

// Error implements error.
func (e *NotAcquiredError) Error() string {
	return fmt.Sprintf("lock: %q held by %s (token %d, %v left)", e.Name, e.Owner, e.Token, e.TTL)
}

// Is makes errors.Is(err, ErrNotAcquired) true.
func (e *NotAcquiredError) Is(target error) bool { return target == ErrNotAcquired }

// LostCause says how a lease was lost.
type LostCause string

// The causes of a [LostError].
const (
	// CauseExpired: the lease ran out by the holder's own monotonic clock
	// before it was renewed.
	CauseExpired LostCause = "expired"
	// CauseGone: a renewal or release found no lock record (it expired on
	// the server or was deleted).
	CauseGone LostCause = "gone"
	// CauseTaken: the lock record names another holder (a newer token).
	CauseTaken LostCause = "taken"
	// CauseRefreshFailed: renewals failed (errors, timeouts) until the
	// lease ran out; the last renewal error is wrapped.
	CauseRefreshFailed LostCause = "refresh-failed"
)

// LostError is the detailed form of [ErrLockLost].
type LostError struct {
	Name  string
	Token fencing.Token
	Cause LostCause
	// Holder is the owner named by the lock record when Cause is CauseTaken.
	Holder string
	// HolderToken is that holder's token when Cause is CauseTaken.
	HolderToken fencing.Token
	// Err is the last renewal error when Cause is CauseRefreshFailed.
	Err error
}

// Error implements error.
func (e *LostError) Error() string {
	switch e.Cause {
	case CauseTaken:
		return fmt.Sprintf("lock: lease lost: %q token %d taken over by %s (token %d)", e.Name, e.Token, e.Holder, e.HolderToken)
	case CauseRefreshFailed:
		return fmt.Sprintf("lock: lease lost: %q token %d: renewal failed: %v", e.Name, e.Token, e.Err)
	}
	return fmt.Sprintf("lock: lease lost: %q token %d %s", e.Name, e.Token, e.Cause)
}

// Is makes errors.Is(err, ErrLockLost) and errors.Is(err,
// fencing.ErrNotHolder) true.
func (e *LostError) Is(target error) bool {
	return target == ErrLockLost || target == fencing.ErrNotHolder || target == fencing.ErrFenced
}

// Unwrap returns the renewal error of CauseRefreshFailed.
func (e *LostError) Unwrap() error { return e.Err }

// NotReplicatedError is the detailed form of [ErrNotReplicated].
type NotReplicatedError struct {
	Name  string
	Acked int64 // replicas that acknowledged
	Want  int   // Options.MinReplicas
}

// Error implements error.
func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("lock: %q: %d of %d replicas acknowledged", e.Name, e.Acked, e.Want)
}

// Is makes errors.Is(err, ErrNotReplicated) true.
func (e *NotReplicatedError) Is(target error) bool { return target == ErrNotReplicated }

// scriptError turns an error of a lock script into a package error, keeping
// Redis and transport errors as they are (wrapped with the lock name).
func scriptError(op, name string, err error) error {
	if code, detail, ok := scripterr.Parse(err); ok && code == scripterr.Corrupt {
		return fmt.Errorf("%w: lock %q: %s", ErrCorrupt, name, detail)
	}
	if scripterr.IsRefused(err) {
		err = scripterr.Refused(err)
	}
	return fmt.Errorf("lock: %s %q: %w", op, name, err)
}
