// Package outage holds only tests: every public call of every fencekit
// package, made with context.Background() while Redis does not answer,
// must return within its store's call timeout with an error matching
// fencing.ErrNoReply (issue 12 §5).
package outage
