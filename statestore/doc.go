// Package statestore keeps the state of agent sessions in Redis so that a
// stale executor can never corrupt it.
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
// records the token, bumps the version and refreshes the session's TTL on
// every key of the session. A rejected write leaves every byte as it was.
//
// Sessions and locks share names and a key prefix: the lock of session id
// is the lock.Locker lock named id, with the same Prefix, so every key of a
// session and its lock hash to one Redis Cluster slot.
//
// # Event log
//
// Every write that changes a session's version also appends one typed
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
// new log at version 1). The log is trimmed to about the newest 10,000
// events (XADD MAXLEN ~). Read it with [Store.Events] (pages) or
// [Store.Watch] (follow).
//
// Each method costs one round trip ([Store.Update]: two per attempt).
// Messages are paged with opaque cursors (see [Store.Messages]). The staging
// and checkpoint packages build on a Store and follow the same rules.
package statestore
