package memory

import (
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/fencing"
)

// Errors of package memory. Every error a method returns for bad input
// matches one of them with errors.Is, and nothing is written. Fenced writes
// also return [fencing.ErrStaleToken] (as a [*fencing.StaleTokenError]) and
// [fencing.ErrNotHolder] (as a [*NotHolderError]).
var (
	// ErrInvalidArgument: an option or argument is out of range (a negative
	// limit, an importance outside [0, 1], a zero token, ...).
	// ErrInvalidScope, ErrDimension, ErrInvalidVector, ErrInvalidK and
	// ErrCrossSlot also match it; ErrInvalidID and ErrTooLarge do not.
	ErrInvalidArgument = fencing.ErrInvalidArgument
	// ErrInvalidID: a record id that cannot be used in a key (empty, longer
	// than 256 bytes, invalid UTF-8, '{', '}', '|' or control characters).
	ErrInvalidID = fencing.ErrInvalidID
	// ErrInvalidScope: a scope that is empty, has an empty segment, contains
	// a brace or a control character, is too long, or has fewer segments
	// than Options.TagDepth.
	ErrInvalidScope = fmt.Errorf("memory: invalid scope (%w)", ErrInvalidArgument)
	// ErrDimension: a vector whose length is not Options.Dim.
	ErrDimension = fmt.Errorf("memory: vector dimension mismatch (%w)", ErrInvalidArgument)
	// ErrInvalidVector: a vector with a NaN or infinite component, or the
	// zero vector (it has no direction).
	ErrInvalidVector = fmt.Errorf("memory: invalid vector (%w)", ErrInvalidArgument)
	// ErrInvalidK: SearchOptions.K is not in [1, MaxK].
	ErrInvalidK = fmt.Errorf("memory: invalid k (%w)", ErrInvalidArgument)
	// ErrTooLarge: a text, metadata map, category list or batch larger than
	// the documented limits.
	ErrTooLarge = fencing.ErrTooLarge
	// ErrCrossSlot: the records of one Put do not share a scope root (the
	// first Options.TagDepth segments of their scopes), so they cannot be
	// written by one script.
	ErrCrossSlot = fmt.Errorf("memory: records of one call must share a scope root (%w)", ErrInvalidArgument)
	// ErrNotFound: Get found no record with that id in the scope.
	ErrNotFound = fencing.ErrNotFound
	// ErrInvalidCursor: a List cursor that this package did not issue for
	// that scope.
	ErrInvalidCursor = fencing.ErrInvalidCursor
	// ErrScanLimit: a scan search would score more records than
	// Options.ScanLimit. The concrete error is a [*ScanLimitError].
	ErrScanLimit = errors.New("memory: scan limit exceeded")
	// ErrUnsupportedBackend: the server lacks the backend the Store uses
	// (FT.CREATE, FT.SEARCH or VSIM answered "unknown command").
	ErrUnsupportedBackend = errors.New("memory: unsupported backend")
	// ErrCorrupt: a key holds data this package did not write.
	ErrCorrupt = fencing.ErrCorrupt
	// ErrProtocol: a reply of an unexpected shape.
	ErrProtocol = fencing.ErrProtocol
)

// NotHolderError is the detailed form of [fencing.ErrNotHolder] for fenced
// writes in strict mode: the lock named after the scope root's tag (see
// [LockName]) does not carry the writer's token. Its ID is the lock name.
type NotHolderError = fencing.NotHolderError

// ScanLimitError is the detailed form of [ErrScanLimit].
type ScanLimitError struct {
	Scope      string
	Candidates int // records the search would have scored
	Limit      int // Options.ScanLimit
}

// Error implements error.
func (e *ScanLimitError) Error() string {
	return fmt.Sprintf("memory: search of scope %q would score %d records, above the scan limit %d (use a narrower scope, a time window, or the ft/vset backend)",
		e.Scope, e.Candidates, e.Limit)
}

// Is makes errors.Is(err, ErrScanLimit) true.
func (e *ScanLimitError) Is(target error) bool { return target == ErrScanLimit }
