// Package statestore keeps the state of agent sessions in Redis so that a
// stale executor can never corrupt it.
//
//	store, err := statestore.New(client, statestore.Options{}) // same Prefix as the lock.Locker
//	lk, err := locker.Acquire(ctx, "session-1")
//	_, err = store.Create(ctx, "session-1", lk.Token(), statestore.State{Status: statestore.StatusRunning})
//	_, err = store.AppendMessages(ctx, "session-1", lk.Token(), msg)
//	// a writer whose lease was taken over is refused: errors.Is(err, fencing.ErrFenced)
//	st, err := store.Load(ctx, "session-1")
//
// (the package Example runs this on an in-process server).
//
// Every mutation of a [Store] is one Lua script that, before it writes
// anything, checks the writer's fencing token (from lock.Lock.Token) against
// the session's lock and the highest token the session has accepted:
//
//   - strict mode (the default): the lock record "<prefix>:{<id>}:lock" must
//     still carry the token, so a writer whose lease ended is refused
//     ([*NotHolderError], matching fencing.ErrNotHolder) even before anyone
//     else takes over;
//   - relaxed mode (Options.Relaxed): the token must be the newest issued
//     for the lock, lease or not;
//   - both: a token older than one the session or its lock has seen is
//     refused with a [*fencing.StaleTokenError].
//
// The script then checks the operation's own preconditions (expected
// version, expected statuses, the session exists), and only then writes,
// records the token, bumps the version and keeps every key of the session
// alive for Options.TTL (to TTL + 1%, all keys one deadline). A rejected
// write leaves every byte as it was.
//
// Sessions and locks share names and a key prefix: the lock of session id
// is the lock.Locker lock named id, with the same Prefix, so every key of a
// session and its lock hash to one Redis Cluster slot.
//
// # Event log
//
// The event log is opt-in: [Options.EventLog] (default off since issue 22;
// before, every store kept it). It is the biggest piece of a small
// session's Redis memory (a stream preallocates a node: about 4.7 KB at
// the server's default stream-node-max-bytes of 4096, against ~3 KB a
// session with a 1 KiB document, five messages and a checkpoint holds)
// and costs an XADD per write. Without it no script writes the log,
// [Store.Events] and [Store.Watch] return [ErrEventLogOff], and nothing
// else changes: fencing, versions, incarnations and TTLs are the same.
// Turning it on for a running deployment starts each session's log at the
// next write. Every store, stager and checkpoint store writing a session
// should agree on the setting (one writing without the log leaves gaps in
// the versions of the log another keeps).
//
// With it, every write that changes a session's version also appends one typed
// [Event] to the session's event log "<prefix>:{<id>}:events" (a Redis
// stream), in the same script, after every precondition held: the log and
// the state cannot disagree, versions in the log strictly increase and
// match the accepted writes one to one, and a rejected write (stale token,
// conflict, a compare-and-set that did not match, a discard or prune with
// nothing to remove) appends nothing. This covers the Store, staging
// (staged, promoted, discarded) and checkpoint (checkpoint, restored,
// pruned) writes. With lock.Options.EventLog the lock named like the
// session logs its own transitions there too, from its own scripts
// (lock_acquired, lock_released, lock_lost, lock_force_released; Version 0,
// see [EventType.IsLock]); a lease that expires unreleased is logged as
// lock_lost by the next lock script that finds the lock free, so it
// appears just before the next grant. [Store.Delete]
// deletes the log with the other keys (a session created again starts a
// new log at version 1, with ids above the deleted log's). The log is trimmed to about the newest 10,000
// events (XADD MAXLEN ~). Read it with [Store.Events] (pages) or
// [Store.Watch] (follow).
//
// # Delete and incarnations: what a position means across Delete
//
// [Store.Delete] followed by [Store.Create] under the same id makes a new
// session, a new incarnation ([State.Incarnation]): it is minted when the
// state is created as max(previous incarnation + 1, server time in µs,
// (floor + 1) × 1000), where the previous incarnation and the floor (a time
// in ms at or above every event and output-stream id of the deleted
// session) come from the one key Delete writes instead of deleting,
// "<prefix>:{<id>}:inc", kept for the session TTL and consumed by the next
// create. Two creates in one millisecond therefore get different, growing
// incarnations, and once that key has expired the server time alone keeps
// them growing (as for fencing tokens, unless the server clock steps back).
//
// A position of one incarnation never silently means something in the
// next:
//
//   - message cursors ([Store.Messages]) and checkpoint cursors carry the
//     incarnation; one of a deleted incarnation gets a [*ReplacedError]
//     matching [ErrSessionReplaced] and [ErrInvalidCursor];
//   - [Store.Save] with a Version and the Incarnation Load filled in, and
//     [Store.Update], refuse a session of another incarnation with a
//     [*ReplacedError] matching ErrSessionReplaced and [ErrConflict]
//     (Update starts over on the new one; staging's Promote refuses);
//   - event ids keep growing: the new log's first event ("created") gets an
//     id above the deleted log's last one, even in the same millisecond, so
//     [Store.Events] and [Store.Watch] after an id of the deleted log return
//     the new log from its start, never skipping an entry, and every event
//     says which incarnation it belongs to ([Event.Incarnation]);
//   - output stream positions (package stream) are refused by Read and
//     Follow once the stream was deleted, whose new ids follow the old.
//
// Delete is not retried after a lost reply (a retry could delete the
// session the same holder created in between); the error then matches
// [ErrOutcomeUnknown].
//
// Each method costs one round trip ([Store.Update]: two per attempt).
// Messages are paged with opaque cursors (see [Store.Messages]). The staging
// and checkpoint packages build on a Store and follow the same rules.
package statestore
