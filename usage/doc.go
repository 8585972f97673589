// Package usage records what agent sessions spend - LLM tokens, tool
// calls, sub-agents, custom amounts and their cost - counts every entry
// once, keeps per-session rollups, and caps spending with budgets that
// hold across executors.
//
//	store, err := usage.New(client, usage.Options{}) // same Prefix as the lock.Locker
//	res, err := store.Reserve(ctx, "session-1", usage.Amount{Tokens: 1500}, "tenant-acme") // before the LLM call
//	err = res.Commit(ctx, usage.Amount{Tokens: 1200})                                      // after it
//	_, err = store.Record(ctx, "session-1", lk.Token(), usage.Entry{ID: "step-1-llm", Kind: usage.KindTokens})
//	rollup, err := store.Rollup(ctx, "session-1")
//
// (the package Example runs this on an in-process server).
//
// # Recording
//
// [Store.Record] adds [Entry] values to a session in one Lua script that
// also updates the session's rollup, so [Store.Rollup] reads totals in one
// round trip without scanning entries. Like every session write in
// fencekit, Record is fenced: it carries the session lock's token and the
// script refuses it, writing nothing, when a newer token exists
// ([fencing.ErrStaleToken]) or, in strict mode, when the lock no longer
// carries it ([fencing.ErrNotHolder]); both match [fencing.ErrFenced].
// Entries are keyed by [Entry].ID: recording an id twice - a retry after a
// lost reply, or an executor resumed after a crash redoing its last step
// - counts it once ([RecordResult].Recorded says which were new).
//
// Costs are integer micro-units ([Cost], [CostOf]) and token counts
// integers; the scripts add them with HINCRBY, so sums are exact.
//
// Every key of a session's usage shares the session's hash tag {id} with
// its lock and state, so one script sees them all, on Redis Cluster too:
//
//	<prefix>:{<id>}:umeta  rollup (hash): totals per kind, model, tool, source, custom name
//	<prefix>:{<id>}:ulog   entries (list, JSON), in the order recorded
//	<prefix>:{<id>}:uids   entry id -> position (hash): idempotency
//	<prefix>:{<id>}:ukids  sub-agent session ids (set)
//
// [Store.Entries] pages through entries with filters (kinds, steps, time)
// and cursors that stay valid while entries are appended; [Store.Count],
// [Store.Exists], [Store.Delete] (fenced) and [Store.Sessions] (an index
// of sessions, paged without KEYS or SCAN) complete the set.
//
// # Sub-agents
//
// An entry of [KindSubAgent] links the session to the sub-agent's session.
// [Store.Rollup] with [IncludeSubAgents] follows the links breadth first,
// one round trip per level (pipelined, across cluster slots), summing each
// session once however many paths reach it: cycles add nothing, missing
// sessions are listed in [Rollup].Missing, and [Options].MaxSubAgentDepth
// and MaxSubAgentSessions bound the walk ([Rollup].Truncated).
//
// # Budgets
//
// A budget caps tokens and/or cost for a session ([Store.SetSessionBudget])
// or a named scope ([Store.SetBudget]: a tenant, a user, a day).
// [Store.Reserve] holds an amount on every budget that applies before an
// LLM call; [Reservation.Commit] charges what was really spent (at most
// what was held) and [Reservation.Release] gives it back. Each hold is one
// script that checks limit >= spent + live holds + amount, so no set of
// executors can commit past a budget; a refusal is an [*OverBudgetError]
// naming the budget, its limit, and what is spent and held. A hold whose
// holder dies expires after [Options].HoldTTL.
//
// A scope budget has its own hash slot, so on a Cluster it cannot be
// checked in the session's script. Reserve takes the holds one budget at a
// time (scopes first, then the session) and releases those it took when a
// later one refuses. Every budget stays safe by itself at every moment:
// the only effect of the two steps is a short window in which a hold that
// is about to be released refuses another reservation.
//
// # Retention
//
// Nothing lives forever unless asked: entries expire [Options].EntryTTL
// and rollups [Options].RollupTTL after the session's last Record, and a
// budget its TTL ([Limit].TTL or [Options].BudgetTTL) after its last
// write; every Record refreshes all of the session's usage keys.
package usage
