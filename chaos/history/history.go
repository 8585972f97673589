// Package history is the record format of fencekit's fault suite: every
// operation an executor performs is one JSON line (an [Op]), written as it
// returns; the checkers (package check) read the merged lines of every
// executor of a run.
//
// Times are CLOCK_MONOTONIC nanoseconds, which every process on the host
// shares, so histories of different processes merge on one time line.
//
// Op kinds ([KindAcquire] ...) and the fields they use:
//
//	acquire     Token = the token granted (ok only)
//	release     Token
//	save        Token, In = the value written; Version = the version produced (ok);
//	            SessionStatus = the status the save wrote. "The value" is a
//	            marker of the runner's choosing that only save changes (e.g. one
//	            member of State.Data that the staged patches never touch).
//	            A Create is recorded as a save.
//	load        Token = the accepted token read (State.Fence), Out = the value
//	            read, Version, SessionStatus = the status read; a load that
//	            found no session is ok with Version 0
//	cas         Token, In = "<from>><to>"; Out = the status found, Version (ok:
//	            the version produced; refused with ErrKind conflict: the
//	            current version and status the script reported)
//	stage       Token, In = "<step>/<call>"; Version (ok)
//	promote     Token, In = "<step>"; Version (ok); Out = "noop" when the
//	            promote wrote nothing (nothing staged under the step)
//	append      Token, In = the chunk (unique per run); Out = the stream sequence (ok)
//	checkpoint  Token, In = "<step>"; Out = the checkpoint id (ok)
//	usage       Token, In = the usage entry id (unique per entry; a retry
//	            records the same id again); Out = its total tokens
//	budget      Token, In = the tokens committed; Out = "no-commit" when the
//	            reservation failed before any commit was sent (nothing can
//	            have been charged), else the reservation id. Refused with
//	            ErrKind over_budget when a budget refused the reservation
//	final       written once per session after the run by the runner's
//	            reader: Data holds a [Final] (see [NewFinal], [Op.Final])
//	nemesis     one injected fault: In = its name, Out = details, Call = when
//	            it began, Return = when it was healed; Session and Process unset
//
// The recreate workload (run.Config.Recreate) uses sessions whose id starts
// with [RecreatePrefix], kept apart from the others by the checkers:
//
//	recreate    Delete, then Create, then Load of the session by the lock
//	            holder: Token, Out = the new incarnation (ok)
//	rc-msg      AppendMessages of one message: Token, In = the message
//	            (unique per run), Out = the incarnation of the recreate
//	            before it in the same round (set before the call)
//	rc-chunk    stream Append of one chunk: as rc-msg
//	rc-read     a reader without the lock: Load, every page of Messages and
//	            of the stream, Load again; ok only when both loads and every
//	            page saw one incarnation: Data = a [RecreateRead]
//
// The semaphore workload (run.Config.Semaphore) uses names starting with
// [SemPrefix], the election workload (run.Config.Election) names starting
// with [ElectPrefix]; both are kept apart from the sessions' checkers:
//
//	sem-acquire  semaphore.Acquire of n permits: In = n, Data = a [SemGrant]
//	             (ok: Token, and where the grant can have happened)
//	sem-refresh  Permits.Refresh: Token (ok: the lease was extended)
//	sem-release  Permits.Release: Token (ok: released while held; a refusal
//	             says the lease had ended)
//	sem-limit    SetLimit: In = the new limit
//	sem-drain    written by the runner after every executor stopped and
//	             every lease ended: TryAcquire of all permits (In = the
//	             limit in effect, read just before); ok when all were free
//	el-campaign  election Campaign: In = the value proclaimed; ok: Token =
//	             the term
//	el-write     Leadership.Proclaim: Token = the term, In = the value
//	             (unique per run); ok: the server accepted it
//	el-resign    Leadership.Resign: Token = the term
//
// Every write to a session (anything that bumps its version) must be
// recorded: the checkers match the final event log against the history, and
// an event no operation explains is a violation.
//
// # Invocations
//
// An executor killed with SIGKILL never writes the completion of the
// operation it was in. To keep such operations in the history, an executor
// may write an invocation record (Status [Invoke], same Process and Seq,
// Kind, Session, Token, In, Call) before each call; [Complete] drops the
// invocations whose completion was written and turns the others into
// Unknown operations (ErrKind [ErrKilled]) that never returned. Use
// [Writer], which writes each record with one write(2) and no buffering, so
// a killed process loses no record it wrote.
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
	// Invoke marks an invocation record, written before the call (see
	// the package doc); [Complete] resolves it.
	Invoke Status = "invoke"
)

// Op kinds (Op.Kind).
const (
	KindAcquire    = "acquire"
	KindRelease    = "release"
	KindSave       = "save"
	KindLoad       = "load"
	KindCAS        = "cas"
	KindStage      = "stage"
	KindPromote    = "promote"
	KindAppend     = "append"
	KindCheckpoint = "checkpoint"
	KindUsage      = "usage"
	KindBudget     = "budget"
	KindFinal      = "final"
	KindNemesis    = "nemesis"

	KindRecreate = "recreate"
	KindRcMsg    = "rc-msg"
	KindRcChunk  = "rc-chunk"
	KindRcRead   = "rc-read"
)

// RecreatePrefix starts the ids of the recreate workload's sessions.
const RecreatePrefix = "rc-"

// The semaphore and election workloads' kinds (see the package doc).
const (
	KindSemAcquire = "sem-acquire"
	KindSemRefresh = "sem-refresh"
	KindSemRelease = "sem-release"
	KindSemLimit   = "sem-limit"
	KindSemDrain   = "sem-drain"
	KindElCampaign = "el-campaign"
	KindElWrite    = "el-write"
	KindElResign   = "el-resign"
)

// SemPrefix starts the names of the semaphore workload's semaphores;
// ElectPrefix those of the election workload's elections.
const (
	SemPrefix   = "sem-"
	ElectPrefix = "el-"
)

// SemGrant is the Data of a sem-acquire op.
type SemGrant struct {
	// Limit is the semaphore's Options.Limit (in effect while no limit
	// is stored).
	Limit int64 `json:"limit"`
	// TTL is the lease in ns.
	TTL int64 `json:"ttl"`
	// From (ok only) is the start of the lease by the holder's clock
	// (CLOCK_MONOTONIC ns): the send time of the look that saw the grant
	// or of the last answered look before the notice of it. The server
	// granted the permits between From and the op's Return, and the
	// lease lasts at least until From + TTL.
	From int64 `json:"from,omitempty"`
}

// RecreateRead is the Data of an ok rc-read op: what one reader saw of one
// incarnation.
type RecreateRead struct {
	Incarnation string   `json:"inc"`
	Messages    []string `json:"msgs"`
	Chunks      []string `json:"chunks"`
}

// OutNoop is the Out of a promote that wrote nothing.
const OutNoop = "noop"

// OutNoCommit is the Out of a budget op whose reservation failed: no commit
// was sent.
const OutNoCommit = "no-commit"

// Error kinds (Op.ErrKind).
const (
	ErrStale      = "stale"      // fencing.ErrStaleToken
	ErrNotHolder  = "not_holder" // fencing.ErrNotHolder
	ErrConflict   = "conflict"   // a version or status precondition failed
	ErrTimeout    = "timeout"    // context deadline, i/o timeout (Status Unknown)
	ErrConn       = "conn"       // connection refused/reset (Unknown unless surely unsent)
	ErrOther      = "other"
	ErrKilled     = "killed"      // an invocation whose completion was never written (Status Unknown)
	ErrOverBudget = "over_budget" // usage.ErrOverBudget: a budget refused a reservation (Status Fail)
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

	// Seq numbers the operations of one Process (from 1); it pairs an
	// invocation record with its completion.
	Seq int64 `json:"n,omitempty"`
	// SessionStatus is the session status a save wrote or a load read.
	SessionStatus string `json:"ss,omitempty"`
}
