// Package stream keeps the output of agent sessions in Redis Streams:
// resumable, fenced, bounded.
//
//	streams := stream.New(store) // a statestore.Store
//	_, err := streams.Append(ctx, "session-1", lk.Token(), []byte("Hel"))
//	_, err = streams.End(ctx, "session-1", lk.Token())
//	page, err := streams.Read(ctx, "session-1", stream.Seq{}, 100) // resume later from page.Next
//
// (the package Example runs this on an in-process server).
//
// An executor appends chunks (tokens, tool progress) to its session's output
// stream with [Streams.Append], and finishes it with [Streams.End] or
// [Streams.Fail]. Clients read it from any server: [Streams.Read] returns a
// page after a sequence number (an SSE Last-Event-ID), [Streams.Follow]
// iterates with blocking reads until the stream ends, and consumer groups
// ([Streams.Group], [Streams.ReadGroup], [Streams.Ack], [Streams.Claim])
// fan a stream out to server-side workers.
//
// # Fencing
//
// Every write is one Lua script that checks the writer's fencing token
// before it writes, exactly like the state store ([statestore.Store]): a
// token older than one issued for the session's lock, accepted by the
// session's state or accepted by the stream gets a
// [*fencing.StaleTokenError]; in strict mode (the default) a token the lock
// record does not carry gets a [*NotHolderError] (matching
// [fencing.ErrNotHolder]). A paused executor whose lease was taken over can
// therefore never interleave chunks into the new holder's output.
//
// # Keys and entries
//
// The stream is the session's key "<prefix>:{<id>}:out"; a metadata hash
// "<prefix>:{<id>}:outmeta" (see [MetaKey])
// keeps the highest token the stream accepted, its status, failure reason
// and times. Both share the session's hash slot, so everything runs on
// Redis Cluster.
//
// Entry ids are "<ms>-<n>": n numbers the stream's entries 1, 2, 3, ...
// without gaps and ms is the server time (never below the previous
// entry's). A [Seq] is such an id. Because n has no gaps, a reader knows
// when entries it has not seen were trimmed away ([Page.Skipped],
// [ErrTrimmed]). Each entry has one field: "c" (a chunk), "end" (the
// terminal marker of [Streams.End]) or "fail" (that of [Streams.Fail], the
// value is the reason). The status of a stream is its last entry, so
// readers see End and Fail in order, after every chunk.
//
// # Across Delete
//
// statestore.Store.Delete deletes the stream with its session (and a stream
// expires by its TTL). The ids of the stream written next under the same
// id are above every id of the deleted one, even in the same millisecond
// (ms comes from the session's incarnation, see package statestore), and n
// starts again at 1. The metadata hash records the id of the stream's first
// entry (its origin): [Streams.Read] and [Streams.Follow] refuse a position
// below it with a [*ReplacedError] matching [ErrSessionReplaced] — the
// entries there now are not a continuation of what the reader saw — so a
// reader neither skips the new stream nor believes itself caught up. A
// follower blocked across the Delete sees the gap in n and stops the same
// way. Start again from the zero Seq to read the new stream.
//
// # Bounded growth
//
// Append trims with XADD MAXLEN ~ [Options.MaxLen]. "~" lets Redis trim
// only whole internal nodes (up to stream-node-max-entries, default 100,
// entries or stream-node-max-bytes, default 4 KiB, each), so a stream holds
// at least MaxLen entries and usually somewhat more; miniredis ignores "~"
// and trims to exactly MaxLen. The newest entry (and so the terminal
// marker) is never trimmed.
//
// Trimming ignores consumer groups: an entry delivered to a group but not
// acknowledged is trimmed like any other once at least MaxLen newer entries
// exist (and, on Redis, its whole node is older than the newest MaxLen
// entries). Its id stays in the group's pending list; on Redis 7+
// [Streams.Claim] reports it in [Claimed.Deleted] and removes it from the
// pending list. miniredis (v2.40.0) does not: its XAUTOCLAIM skips such
// entries without reporting them, and its XPENDING (so [Streams.Pending])
// no longer counts them. Entries the group has not been delivered
// yet are skipped silently by XREADGROUP; [Chunk.Seq] gaps show them. To
// never lose unacknowledged entries, size MaxLen above the most entries a
// group may lag behind, or set it negative (no trimming) and rely on TTLs.
//
// TTLs: while a stream runs, each Append gives its keys the running TTL
// ([Options.RunningTTL]) if they have less, never shortening it; End and
// Fail set the finished TTL ([Options.FinishedTTL], shorter by default).
// Every Append, End and Fail is also a write of the session: it gives the
// session's other keys (state, messages, stage, checkpoints, event log) the
// state store's TTL, so a session whose stream is being written does not
// expire under it. Note that the state store's writes refresh every data
// key of a session, the stream and its metadata hash included, to the
// session TTL, and that statestore.Store.Delete deletes both.
package stream
