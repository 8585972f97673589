// Package scripterr classifies the error replies of fencekit's Lua scripts.
//
// Scripts fail with replies of the form "FENCEKIT_<CODE> <detail>" (see
// package scripts/lua). rueidis returns them as *rueidis.RedisError values,
// which must be recognised before they are wrapped: rueidis.IsRedisErr uses
// a type assertion and does not see through wrapping.
package scripterr

import (
	"strings"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
)

// Codes used by the scripts.
const (
	BadArg    = "BADARG"
	Corrupt   = "CORRUPT"
	Stale     = "STALE"
	NotHolder = "NOT_HOLDER"
	Conflict  = "CONFLICT"
	Exists    = "EXISTS"
	NotFound  = "NOT_FOUND"
	Cursor    = "CURSOR"
	Replaced  = "REPLACED"
)

// ErrCorrupt reports a key holding data that fencekit did not write.
var ErrCorrupt = fencing.ErrCorrupt

// ErrProtocol reports a script reply of an unexpected shape or type: a
// different script answered under the same SHA-1, or a proxy mangled it.
var ErrProtocol = fencing.ErrProtocol

// Parse returns the code and detail of a fencekit error reply. ok is false
// for nil, for transport errors and for other Redis errors.
func Parse(err error) (code, detail string, ok bool) {
	rerr, isRedis := rueidis.IsRedisErr(err)
	if !isRedis {
		return "", "", false
	}
	msg := rerr.Error()
	rest, found := strings.CutPrefix(msg, "FENCEKIT_")
	if !found {
		return "", "", false
	}
	code, detail, _ = strings.Cut(rest, " ")
	return code, detail, true
}

// refusals are the codes of error replies by which a server refuses a
// write for its own state, not for the command: out of memory, a read-only
// replica, too few replicas, a failed snapshot.
var refusals = [...]string{"OOM", "READONLY", "NOREPLICAS", "MISCONF"}

// IsRefused reports whether err is an error reply by which the server
// refused to write (OOM, READONLY, NOREPLICAS, MISCONF). A script gets it
// at its first write, and fencekit's scripts write only after every
// precondition holds, so nothing was written. Only the code is compared:
// servers word these replies differently (and Redis adds "script: ..."
// inside a script).
func IsRefused(err error) bool {
	rerr, ok := rueidis.IsRedisErr(err)
	if !ok {
		return false
	}
	msg := rerr.Error()
	code, _, _ := strings.Cut(msg, " ")
	for _, c := range refusals {
		if code == c {
			return true
		}
	}
	return false
}

// Refused wraps err, which IsRefused, so that it matches
// fencing.ErrWriteRefused and still unwraps to the server's reply.
func Refused(err error) error {
	return &refusedError{err: err}
}

type refusedError struct{ err error }

func (e *refusedError) Error() string { return "redis refused the write: " + e.err.Error() }
func (e *refusedError) Unwrap() []error {
	return []error{fencing.ErrWriteRefused, e.err}
}

// IsRedis reports whether err is an error reply from the server (as opposed
// to a transport error or a context error). Redis nil replies are not errors
// here.
func IsRedis(err error) bool {
	_, ok := rueidis.IsRedisErr(err)
	return ok && !rueidis.IsRedisNil(err)
}
