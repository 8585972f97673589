package leakcheck

import (
	"io"
	"time"
)

// SetCheckOutput makes Check write to w and wait at most wait, until the
// returned function restores the defaults.
func SetCheckOutput(w io.Writer, wait time.Duration) (restore func()) {
	oldStderr, oldWait := stderr, checkWait
	stderr, checkWait = w, wait
	return func() { stderr, checkWait = oldStderr, oldWait }
}
