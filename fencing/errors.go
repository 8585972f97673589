package fencing

import (
	"errors"
	"fmt"
)

// ErrStaleToken reports a write rejected because a newer token has already
// been accepted (or issued) for the resource. The concrete error is usually a
// [*StaleTokenError] carrying both tokens.
var ErrStaleToken = errors.New("fencing: stale token")

// ErrNotHolder reports a write rejected because the lock no longer names the
// writer: it expired, was released, or was taken over. Strict-mode writes
// return it even when the writer's token is not (yet) older than the highest
// one accepted.
var ErrNotHolder = errors.New("fencing: not the lock holder")

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

// Is makes errors.Is(err, ErrStaleToken) true for a *StaleTokenError.
func (e *StaleTokenError) Is(target error) bool { return target == ErrStaleToken }
