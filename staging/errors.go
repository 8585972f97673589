package staging

import (
	"errors"
	"fmt"
)

// ErrInvalidPatch reports a change that is not a valid RFC 6902 patch or
// RFC 7386 merge patch (Stage), or one that cannot be applied to the state
// document (Promote, SaveStateAndPromote): a failing "test" operation, a
// path that does not exist, a document a patch cannot address. The
// concrete error is a [*PatchError].
var ErrInvalidPatch = errors.New("staging: invalid patch")

// PatchError is the detailed form of [ErrInvalidPatch]: which change of
// which session is at fault, and why. Err is the error of the JSON patch
// library (github.com/evanphx/json-patch/v5, e.g. jsonpatch.ErrTestFailed or
// jsonpatch.ErrMissing) or a description of the problem.
type PatchError struct {
	ID         string // session id
	Step       int64
	ToolCallID string
	Err        error
}

// Error implements error.
func (e *PatchError) Error() string {
	return fmt.Sprintf("staging: invalid patch: session %q step %d tool call %q: %v", e.ID, e.Step, e.ToolCallID, e.Err)
}

// Is makes errors.Is(err, ErrInvalidPatch) true.
func (e *PatchError) Is(target error) bool { return target == ErrInvalidPatch }

// Unwrap returns Err.
func (e *PatchError) Unwrap() error { return e.Err }
