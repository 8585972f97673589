package fencing_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fencekit/fencekit/fencing"
)

// TestErrFenced: both refusals a late writer can get match ErrFenced, and
// nothing else does.
func TestErrFenced(t *testing.T) {
	for _, err := range []error{
		fencing.ErrStaleToken,
		fencing.ErrNotHolder,
		&fencing.StaleTokenError{Presented: 1, Highest: 2},
		fmt.Errorf("statestore: save %q: %w", "s", &fencing.StaleTokenError{Presented: 1, Highest: 2}),
		fmt.Errorf("wrapped: %w", fencing.ErrNotHolder),
	} {
		if !errors.Is(err, fencing.ErrFenced) {
			t.Errorf("%v does not match ErrFenced", err)
		}
		if errors.Is(err, fencing.ErrNoReply) || errors.Is(err, fencing.ErrWriteRefused) {
			t.Errorf("%v matches an outcome it is not", err)
		}
	}
	for _, err := range []error{fencing.ErrWriteRefused, fencing.ErrNoReply, fencing.ErrInvalidToken} {
		if errors.Is(err, fencing.ErrFenced) {
			t.Errorf("%v matches ErrFenced", err)
		}
	}
	if errors.Is(fencing.ErrStaleToken, fencing.ErrNotHolder) || errors.Is(fencing.ErrNotHolder, fencing.ErrStaleToken) {
		t.Error("the two refusals match each other")
	}
	if got := fencing.ErrStaleToken.Error(); got != "fencing: stale token" {
		t.Errorf("ErrStaleToken says %q", got)
	}
}

// ExampleErrFenced tells the outcomes of a write apart.
func ExampleErrFenced() {
	outcome := func(err error) string {
		switch {
		case err == nil:
			return "written"
		case errors.Is(err, fencing.ErrFenced):
			return "fenced out: stop, nothing was written"
		case errors.Is(err, fencing.ErrNoReply):
			return "unknown: read back or retry with the same token"
		default:
			return "refused: nothing was written"
		}
	}
	fmt.Println(outcome(nil))
	fmt.Println(outcome(&fencing.StaleTokenError{Resource: "s", Presented: 5, Highest: 7}))
	fmt.Println(outcome(fmt.Errorf("save: %w", fencing.ErrNotHolder)))
	fmt.Println(outcome(fmt.Errorf("save: %w", fencing.ErrNoReply)))
	fmt.Println(outcome(fmt.Errorf("save: %w", fencing.ErrWriteRefused)))
	// Output:
	// written
	// fenced out: stop, nothing was written
	// fenced out: stop, nothing was written
	// unknown: read back or retry with the same token
	// refused: nothing was written
}
