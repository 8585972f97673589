package run

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fencekit/fencekit/internal/resp"
)

// The raw RESP2 client (one connection per call, for admin commands) is
// package resp's, shared with the test helpers.
type respError = resp.Error

var (
	rawDo     = resp.Do
	rawString = resp.String
)

// infoField returns field of INFO section from the server at addr; the
// section "cluster" reads CLUSTER INFO instead (INFO cluster has no state).
func infoField(addr, section, field string) string {
	args := []string{"INFO", section}
	if section == "cluster" {
		args = []string{"CLUSTER", "INFO"}
	}
	s, err := rawString(addr, time.Second, args...)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			return v
		}
	}
	return ""
}

// giveUp wraps an error of a waitFor check that waiting longer cannot fix
// (the process exited): waitFor returns it at once.
type giveUp struct{ error }

func (g giveUp) Unwrap() error { return g.error }

// waitFor polls check every 50ms until it returns nil or timeout passes,
// or check returns a giveUp.
func waitFor(timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		var g giveUp
		if errors.As(err, &g) {
			return fmt.Errorf("run: gave up waiting for %s: %w", what, g.error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run: timed out after %v waiting for %s: %w", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
