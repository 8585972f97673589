// Package check judges the merged history of a fault-suite run (package
// history) and says whether fencekit kept its promises under the faults.
//
//	ops, _, err := history.ReadFiles(paths...)      // every executor's lines, merged
//	rep, err := check.Check(ops, check.Config{Mode: check.Durable})
//	fmt.Print(rep)                                   // summary, one line per checker
//	if !rep.OK() { rep.WriteArtifacts(dir) }         // porcupine HTML + offending ops
//
// The history must hold, per session, every operation on it (see the
// history package doc for the fields of each kind) and one final op whose
// Data is a [history.Final]: the state, whole event log, stream and
// checkpoint list (and usage, when the run recorded any) read from the
// surviving store after the run.
//
// # What the surviving store vouches for
//
// Every fenced write of fencekit appends one event (version, token, type)
// to the session's event log in the same script, so the final log is the
// exact sequence of writes the surviving store accepted. The checkers
// classify each operation against it:
//
//   - An ok write is vouched for when the log holds its event: the
//     version it reported with its token and a type it writes (save:
//     created/saved, cas: status, stage: staged, promote: promoted); a
//     checkpoint by its id. Of several ok writes that claim one event the
//     last acknowledged owns it. An ok write that is not vouched for is
//     lost. Versions below the log's first entry (a trimmed log) cannot be
//     checked and count as vouched (below_horizon).
//   - An observation (an ok load's version, token, status and value; a
//     refused cas's reported version and status) is vouched for when the log
//     shows that state at that version (the token of the event, the status
//     the log's created/saved/status events left, the value where the
//     final state has it) and it did not return before the write that made
//     that version was called. One that is not is dirty when a write that
//     may have taken effect unseen explains it, begun before the
//     observation returned: for a load, an unknown write with its token, or
//     a lost acknowledgement with its token and version (a lost checkpoint,
//     which reports no version, with its token), and only if some save not
//     refused wrote the value and status it saw; for a refused cas, any
//     unknown or lost write. The reader saw a state that a failover or
//     restart later threw away. Dirty observations are left out of the
//     models and counted (dirty_reads); unexplained ones stay in (and fail
//     the model) and are counted (unexplained_reads).
//   - A vouched observation of version v is stale when a write the log
//     holds above v had been acknowledged before the observation began (a
//     read served by a demoted primary). Stale observations are judged
//     against the states the register went through before they returned
//     instead of real time, and counted (stale_reads).
//
// Unknown writes are matched to the events no ok write owns, by token and
// kind. One that is the only candidate of the only such event of its token
// and kind is pinned: modelled as acknowledged at that event's version
// (unknown_pinned). With a complete log (it starts at version 1), one that
// matches no event did not take effect on the surviving store: it is left
// out of the models (unknown_absent). Any other stays indeterminate: it
// forks the model state into "applied here" and "not applied", with Return
// at the end of the history, as porcupine's convention for indeterminate
// operations asks.
//
// In the durable mode a lost write stays an acknowledged write in the
// models (and fails C3). In the fast mode it is left out of the models
// (lost_left_out): an acknowledged write may vanish with its slot in a
// failover, and that is C3's business, not a fencing violation. Leaving it
// out is what "indeterminate" resolves to here: the log proves it did not
// take effect on the surviving store (it is not at the version it reported,
// and one write has one version). This is sound for C2 because the log
// itself is checked directly: every write the surviving store accepted is
// in it, in order, and a lower token accepted after a higher one is a
// violation whether or not any client saw it; what the fast mode gives up
// is only the check of writes the surviving store never had.
//
// # C1 tokens
//
// Per session, the tokens of ok acquires are unique (duplicates) and
// increase in real time: an acquire that returned before another was called
// has the lower token (order_violations, with max_regression). A
// duplicate of a token already returned counts in both. Unknown and failed
// acquires are not looked at. Each is attributed (ByFault) to the fault
// whose window holds the later acquire's call, else the last fault before
// it. Fails the run in the durable mode; counted in the fast mode. It proves the lock's grants are ordered as the
// clients saw them; it does not prove that only one client believed it held
// the lock (a paused holder still believes it does).
//
// # C2 fencing
//
// Two parts, both failing the run in every mode:
//
//   - On the final log: versions contiguous (log_gaps), tokens never
//     decreasing along versions (token_regressions: the store accepted a
//     token below one it had accepted), the state's version and token equal
//     to the newest event (state_mismatch), and every event explained by a
//     recorded write — owned by an ok write, or matched by token and kind to
//     a distinct unknown write or ok write that owns no event (one that
//     reported no version, or below the horizon) (unexplained_events: a
//     write nobody recorded, or a refused write that took effect).
//   - Porcupine, per session, with the fenced-register model: state (token,
//     version, value). An ok write is legal iff its token is at least the
//     state's, and its reported version is the state's plus one; it sets
//     the token, the version and (save) the value. A refused write leaves
//     the state as it is and is always legal (a refusal is always safe),
//     except that a cas refused with a conflict reports the version it saw,
//     which must be the state's. An unknown write forks the state (applied
//     where it could be, or not). A load must see the state (a load that
//     found no session, Version 0, only that the version is 0). A promote
//     that wrote nothing changes nothing. Check uses
//     CheckOperationsTimeout; Unknown (out of time) fails like Illegal.
//
// It proves that no stale executor's write was accepted over a newer one by
// the store the run ended with, and that what clients saw is one order of
// those writes. It does not judge writes a failover threw away (C3 counts
// them), nor read freshness (stale reads are counted).
//
// # C3 lost writes
//
// Every ok save, cas, stage, promote (that wrote) and checkpoint is vouched
// for by the final log (lost_<kind>), and every ok append is in the final
// stream (lost_append). Lost writes are attributed (ByFault) to the
// first fault that can lose data — its name contains "restart",
// "failover", "kill9", "kill-9", "takeover", "flush" or "rollback" — whose
// window holds the acknowledgement or that began after it; without one, to
// the fault whose window holds it, else the next fault. Fails
// the run in the durable mode; counted in the fast mode. A write is never
// superseded in the log (it only grows), so no write is excused, but only
// the log's window is checked (below_horizon).
//
// # C4 CAS status and checkpoints
//
// Porcupine per session with the CAS-register model: state (version,
// status). A cas from→to acknowledged is legal iff the status is from (and
// its version is the state's plus one); refused with a conflict, iff the
// status is not from and the reported version and status are the state's;
// refused otherwise (stale, not holder), always. A save sets the status it
// wrote; every other write bumps the version; unknown writes as in C2;
// loads see (version, status).
//
// Checkpoints: ids and seqs unique in the final list, tokens not decreasing
// in seq order, the log's checkpoint events in acceptance order with
// strictly increasing seqs and agreeing with the list (seq, token), and in
// real time a checkpoint acknowledged before another was requested has the
// lower seq. An acknowledged checkpoint missing from the end state is C3's
// (lost_checkpoint). C4 fails the run in every mode.
//
// # Stream
//
// Every chunk of the final stream appears once (duplicates: the signature
// of a non-idempotent append retried), was appended by a recorded append
// (phantom_chunks) that was not refused (refused_present: a stale holder's
// chunk), sits where its append was acknowledged (moved), and chunks carry
// non-decreasing tokens in stream order (token_regressions). A chunk
// acknowledged before another was appended comes first (order). Fails the
// run in every mode; lost chunks are C3's.
//
// # Recreate
//
// With the recreate workload (history.RecreatePrefix sessions, deleted and
// created again on purpose, without a final state), each ok rc-read saw
// one incarnation: it must hold every message and chunk acknowledged in
// that incarnation before the read began (missing_message, missing_chunk:
// fail the durable mode, counted in the fast one) and nothing appended in
// another incarnation (foreign_*), refused (refused_*) or never appended
// (phantom_*), which fail every mode. reads counts the checked reads,
// replaced_reads those that saw the session replaced and were skipped.
//
// # Usage
//
// For the usage workload (package usage; history kinds usage and budget,
// history.FinalUsage in the final op): no entry stored twice
// (counted_twice), rollup equal to the recount of the entries
// (rollup_mismatch), no entry that no Record wrote or that only refused
// Records wrote (phantom_entry, fenced_entry), no budget whose spent
// exceeds its limit or the commits that may have run (budget_overrun,
// phantom_charge): these fail every mode. Acknowledged Records missing
// (lost_entry), acknowledged commits not charged (lost_commit) and
// acknowledged commits above a limit (budget_overrun_acked, possible only
// after lost commits) fail the durable mode and are counted in the fast
// mode. The scope budget's figures are judged once, against the commits of
// every session.
//
// # Semaphore and election
//
// For the semaphore workload (history.SemPrefix names; see
// checkSemaphore): no grant made while other grants surely held by live
// leases, with it, exceed every limit that can have been in effect then
// (over_limit; fails the durable mode, counted in the fast one); after the
// run, with every lease ended, all the permits of the limit in effect can
// be taken at once (lost_permits; fails every mode). A grant happened
// between the start of its lease by its holder's clock (SemGrant.From) and
// the return of its Acquire; another grant counts only when it was
// acknowledged before that window and its lease (From + TTL less 1% and
// 2 ms, extended from each acknowledged Refresh's call) neither ended nor
// was released before the window ended; leases overlapping a clock-jump
// fault (or, after one, any server fault) are never counted. FIFO order is not checked (a waiter's place is
// taken at an unknown moment inside its Acquire, and a paused waiter
// loses it by design).
//
// For the election workload (history.ElectPrefix names; see
// checkElection): no term won twice (dup_term), terms growing in
// real-time order (term_order), no accepted write under a term its
// process did not win (foreign_write) and no accepted write under a term
// below one already won or written when it was called (stale_write). All
// fail the durable mode and are counted in the fast one; on amnesia the
// runner fails them in every mode, like C1.
//
// # What none of this proves
//
// Histories come from client clocks (CLOCK_MONOTONIC on one host), so real
// time is the clients' view; the final state is trusted as read; the
// checkers see only recorded operations on the sessions of the run; the
// lease overlap of two believing holders (mutual exclusion of beliefs) is
// not checked.
package check
