// Package checkpoint saves and restores checkpoints of the agent sessions
// of a [statestore.Store]: the session's state document and step at some
// point, and how many of its messages existed then.
//
// A [Store] is made from a statestore.Store with [New] and shares its
// client, key prefix, TTL, fencing mode and size limit:
//
//	cps := checkpoint.New(store)
//	cpid, err := cps.Save(ctx, id, lk.Token(), checkpoint.Checkpoint{Step: 3, State: doc, MessageCount: n})
//	...
//	latest, err := cps.Latest(ctx, id)
//	version, err := cps.Restore(ctx, id, lk.Token(), latest.ID)
//
// # Costs and atomicity
//
// Every method is one round trip: one Lua script, which for [Store.Save],
// [Store.Restore] and [Store.Prune] also checks the writer's fencing token
// against the session's lock and the highest token the session accepted
// before it writes anything (as every write of package statestore does), so
// an executor that lost its lock cannot save, restore or prune. Each write bumps the session's version
// (Prune only when it deletes something) and refreshes the session's TTL.
//
// # Storage
//
// A session's checkpoints live in two keys of its hash slot: an index
// (sorted set, member = checkpoint id, score = sequence) and a hash of
// payloads (checkpoint id → payload). The sequence comes from the state
// field cp_seq, so it is unique within the session and orders checkpoints
// by save; checkpoint ids ("cpv1-<session>-s<step>-t<ms>-<6 hex>") are
// never parsed for order. A payload is a short text header (sequence,
// time, token, step, message count, message epoch, state length) followed
// by the state and metadata bytes exactly as saved.
//
// Messages are stored once, in the session's message list, and a
// checkpoint records only their count. [Store.Restore] trims the list to
// that count and starts a new message epoch, so message cursors issued
// before fail with [statestore.ErrInvalidCursor]. Checkpoints saved after
// the restored one stay; one whose messages were trimmed away can no longer
// be restored ([ErrMessagesTrimmed]) — messages appended after the restore
// never stand in for the ones it saw.
//
// # Across Delete
//
// [statestore.Store.Delete] deletes every checkpoint with the session. A
// session created again under the same id is a new incarnation
// (statestore.State.Incarnation) whose sequences start again at 1: a
// [Store.List] cursor carries the incarnation it was issued in, and one of
// a deleted incarnation gets a [*statestore.ReplacedError] (matching
// statestore.ErrSessionReplaced and ErrInvalidCursor) rather than paging
// the new session's checkpoints. Checkpoint ids of a deleted incarnation
// are simply not found (their payloads were deleted).
//
// # Errors
//
// Methods return the errors of package statestore (the same values):
// ErrNotFound, ErrInvalidID, ErrInvalidArgument, ErrInvalidDocument,
// ErrTooLarge, ErrInvalidCursor, ErrSessionReplaced, ErrCorrupt; fenced writes also
// [*fencing.StaleTokenError] (matching [fencing.ErrStaleToken]) and
// [*statestore.NotHolderError] (matching [fencing.ErrNotHolder]).
package checkpoint
