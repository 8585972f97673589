package usage

import (
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/fencing"
)

// Errors of package usage. Fenced writes (Record, Delete) also return
// [fencing.ErrStaleToken] (as a [*fencing.StaleTokenError]) and
// [fencing.ErrNotHolder] (as a [*NotHolderError]), both matching
// [fencing.ErrFenced]; a call without a reply returns an error matching
// [fencing.ErrNoReply], and a server refusing writes one matching
// [fencing.ErrWriteRefused]. The shared sentinels are the values of package
// statestore, so errors.Is works across packages.
var (
	// ErrInvalidArgument: an argument is out of range (a negative amount, an
	// unknown kind, a name with '|', a zero token without
	// Options.AllowUnfenced, ...). Nothing was sent.
	ErrInvalidArgument = fencing.ErrInvalidArgument
	// ErrInvalidID: a session id, entry id or scope that cannot be used in a key.
	ErrInvalidID = fencing.ErrInvalidID
	// ErrTooLarge: an entry is larger than Options.MaxEntryBytes.
	ErrTooLarge = fencing.ErrTooLarge
	// ErrInvalidCursor: a cursor not issued for this session (or for
	// Sessions), or issued before the session's usage was deleted.
	ErrInvalidCursor = fencing.ErrInvalidCursor
	// ErrNotFound: the session has no usage, or the scope no budget.
	ErrNotFound = fencing.ErrNotFound
	// ErrCorrupt: a key holds data fencekit did not write.
	ErrCorrupt = fencing.ErrCorrupt
	// ErrProtocol: a script reply of an unexpected shape.
	ErrProtocol = fencing.ErrProtocol
	// ErrOverBudget: a reservation (or a commit whose hold expired) does not
	// fit in a budget. The concrete error is an [*OverBudgetError].
	ErrOverBudget = errors.New("usage: over budget")
	// ErrAboveReservation: Commit was given more than was reserved. Nothing
	// was settled; reserve the difference first.
	ErrAboveReservation = errors.New("usage: commit above the reservation")
)

// NotHolderError is the detailed form of [fencing.ErrNotHolder] for writes
// in strict mode: the lock record does not carry the writer's token.
type NotHolderError = fencing.NotHolderError

// OverBudgetError says which budget refused an amount and why. It matches
// [ErrOverBudget].
type OverBudgetError struct {
	// Budget names the budget: "session:<id>" or "scope:<scope>".
	Budget string
	// Unit is "tokens" or "cost" (micro-units).
	Unit string
	// Limit, Spent and Held are the budget's figures in Unit when it
	// refused; Requested is what did not fit.
	Limit, Spent, Held, Requested int64
}

// Error implements error.
func (e *OverBudgetError) Error() string {
	return fmt.Sprintf("usage: over budget: %s: %d %s requested, %d spent and %d held of %d",
		e.Budget, e.Requested, e.Unit, e.Spent, e.Held, e.Limit)
}

// Is makes errors.Is(err, ErrOverBudget) true.
func (e *OverBudgetError) Is(target error) bool { return target == ErrOverBudget }
