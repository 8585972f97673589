package history

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Final is what the surviving store holds for one session after the run:
// read once per session after every fault is healed (and, in the durable
// mode, after WAIT), and recorded as the Data of a "final" [Op]. The
// checkers treat it as the history the store vouches for.
//
// Fill every list completely and in server order: Events in log order
// (statestore.Store.Events from the start until it returns none), Stream in
// stream order (stream.Streams.Read from the start, every kind of entry),
// Checkpoints in any order (checkpoint.Store.List, every page). The event
// log keeps only about the newest 10,000 events; keep sessions below that
// (or start new session ids) so the log covers the whole run.
type Final struct {
	// Found is false when the session does not exist (then only Err or
	// nothing is set).
	Found bool `json:"found"`
	// State is the session's state (statestore.Store.Load).
	State FinalState `json:"state"`
	// Events is the session's whole event log. Lock events (type
	// "lock_...", Version 0, logged when the Locker has EventLog) may be
	// included; the checkers skip them.
	Events []FinalEvent `json:"events"`
	// Stream is the session's output stream.
	Stream []FinalChunk `json:"stream"`
	// StreamToken is the highest token the stream accepted (its metadata
	// hash), 0 if unknown.
	StreamToken uint64 `json:"stream_tok,omitempty"`
	// Checkpoints lists the session's checkpoints.
	Checkpoints []FinalCheckpoint `json:"cps"`
	// Usage is the session's usage (package usage), nil when the run
	// recorded none.
	Usage *FinalUsage `json:"usage,omitempty"`
	// Err is set when the runner could not read all of the above; the
	// checkers report it and do not trust the rest.
	Err string `json:"err,omitempty"`
}

// FinalUsage is what package usage holds for one session after the run.
type FinalUsage struct {
	// Entries are the ids of the session's entries in stored order
	// (usage.Store.Entries from the start), and EntryTokens their total
	// tokens, in the same order.
	Entries     []string `json:"ids"`
	EntryTokens []int64  `json:"toks"`
	// RollupEntries and RollupTokens are the rollup's entry count and
	// total tokens (usage.Store.Rollup); 0 without a rollup.
	RollupEntries int64 `json:"r_n"`
	RollupTokens  int64 `json:"r_tok"`
	// Budget is the session's own budget, Scope the budget of the scope
	// every budget op reserved on (the same in every session's final);
	// nil when absent.
	Budget *FinalBudget `json:"budget,omitempty"`
	Scope  *FinalBudget `json:"scope,omitempty"`
}

// FinalBudget is a budget's token figures (usage.BudgetState).
type FinalBudget struct {
	Limit int64 `json:"limit"`
	Spent int64 `json:"spent"`
	Held  int64 `json:"held"`
}

// FinalState is the part of statestore.State the checkers use.
type FinalState struct {
	Version int64  `json:"v"`
	Token   uint64 `json:"tok"`    // State.Fence
	Value   string `json:"val"`    // the save marker, as a load records it in Op.Out
	Status  string `json:"status"` // State.Status
	Step    int64  `json:"step,omitempty"`
}

// FinalEvent is one entry of the session's event log (statestore.Event).
type FinalEvent struct {
	Version int64             `json:"v"`
	Token   uint64            `json:"tok"`
	Type    string            `json:"type"`
	Fields  map[string]string `json:"f,omitempty"` // Event.Fields as logged
}

// FinalChunk is one entry of the session's output stream (stream.Chunk).
type FinalChunk struct {
	Seq  string `json:"seq"`  // Chunk.Seq.String(), "<ms>-<n>"
	Kind string `json:"kind"` // "c" (a chunk), "end" or "fail"
	Data string `json:"data"`
}

// FinalCheckpoint is one checkpoint of the session (checkpoint.Checkpoint).
type FinalCheckpoint struct {
	ID    string `json:"id"`
	Seq   int64  `json:"seq"`
	Token uint64 `json:"tok"`
	Step  int64  `json:"step"`
}

// ErrNotFinal is returned by [Op.Final] for an op of another kind.
var ErrNotFinal = errors.New("history: not a final op")

// ErrCorrupt matches the errors of records that cannot be decoded.
var ErrCorrupt = errors.New("history: corrupt record")

// NewFinal returns the "final" Op of session with f as its Data, at time at
// (CLOCK_MONOTONIC ns), Status OK. It returns an error only if f cannot be
// encoded.
func NewFinal(session string, at int64, f Final) (Op, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return Op{}, fmt.Errorf("history: final %q: %w", session, err)
	}
	return Op{Session: session, Kind: KindFinal, Status: OK, Call: at, Return: at, Data: b}, nil
}

// Final decodes the Data of a "final" op: ErrNotFinal for another kind, an
// error matching ErrCorrupt for bad Data.
func (op *Op) Final() (Final, error) {
	var f Final
	if op.Kind != KindFinal {
		return f, fmt.Errorf("%w: %q", ErrNotFinal, op.Kind)
	}
	if err := json.Unmarshal(op.Data, &f); err != nil {
		return f, fmt.Errorf("%w: final of %q: %v", ErrCorrupt, op.Session, err)
	}
	return f, nil
}
