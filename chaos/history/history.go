// Package history is the record format of fencekit's fault suite: every
// operation an executor performs is one JSON line (an [Op]), written as it
// returns; the checkers (package check) read the merged lines of every
// executor of a run.
//
// Times are CLOCK_MONOTONIC nanoseconds, which every process on the host
// shares, so histories of different processes merge on one time line.
//
// Op kinds and the fields they use:
//
//	acquire     Token = the token granted (ok only)
//	release     Token
//	save        Token, In = the value written; Version = the version produced (ok)
//	load        Token = the accepted token read, Out = the value read, Version
//	cas         Token, In = "<from>><to>"; Out = the status found, Version (ok)
//	stage       Token, In = "<step>/<call>"
//	promote     Token, In = "<step>"; Version (ok)
//	append      Token, In = the chunk (unique per run); Out = the stream sequence (ok)
//	checkpoint  Token, In = "<step>"; Out = the checkpoint id (ok)
//	final       written once per session after the run by the checker's
//	            reader: Data holds the session's final state (see package check)
//
// Status is "ok" (the server acknowledged), "fail" (the operation
// certainly did not take effect: the server refused it) or "unknown" (a
// timeout or a broken connection: it may or may not have taken effect).
// Unknown operations are never counted as failures.
//
// Fields may be added; none is renamed or removed.
package history

import "encoding/json"

// Status is the outcome of an operation as its caller saw it.
type Status string

// The outcomes.
const (
	OK      Status = "ok"
	Fail    Status = "fail"
	Unknown Status = "unknown"
)

// Error kinds (Op.ErrKind).
const (
	ErrStale     = "stale"      // fencing.ErrStaleToken
	ErrNotHolder = "not_holder" // fencing.ErrNotHolder
	ErrConflict  = "conflict"   // a version or status precondition failed
	ErrTimeout   = "timeout"    // context deadline, i/o timeout (Status Unknown)
	ErrConn      = "conn"       // connection refused/reset (Unknown unless surely unsent)
	ErrOther     = "other"
)

// Op is one operation of one executor process.
type Op struct {
	Process int             `json:"p"`  // executor number; a restarted executor gets a new one
	Session string          `json:"s"`  // session (and lock) id
	Kind    string          `json:"op"` // see the package doc
	Token   uint64          `json:"tok,omitempty"`
	In      string          `json:"in,omitempty"`
	Out     string          `json:"out,omitempty"`
	Version int64           `json:"v,omitempty"`
	Status  Status          `json:"st"`
	ErrKind string          `json:"ek,omitempty"`
	Err     string          `json:"err,omitempty"`
	Call    int64           `json:"call"` // CLOCK_MONOTONIC ns when the call began
	Return  int64           `json:"ret"`  // CLOCK_MONOTONIC ns when it returned (or was given up)
	Data    json.RawMessage `json:"data,omitempty"`
}
