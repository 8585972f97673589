// Package lock provides leases on Redis that mint monotonic fencing tokens.
//
//	locker, err := lock.New(client, lock.Options{TTL: 10 * time.Second, Owner: "executor-a"})
//	...
//	lk, err := locker.Acquire(ctx, "session-42") // waits in a FIFO queue
//	...
//	defer lk.Release(ctx)
//	// work under lk.Context(); pass lk.Token() to every write it guards
//
// (the package Example runs this on an in-process server).
//
// A [Locker] acquires a [Lock] on a name with one Lua script run
// ([Locker.TryAcquire] does not wait, [Locker.Acquire] waits in a FIFO
// queue). Each acquisition gets a [fencing.Token] minted inside the script as
//
//	token = max(previous token + 1, server TIME in microseconds)
//
// so tokens grow with every acquisition and keep growing when the counter is
// lost: a Redis restart without persistence, a deleted key, or a failover to
// a replica that missed the last grants (as long as server clocks do not
// step back by more than the gap). Pass [Lock.Token] to every write the lock
// guards: the statestore package checks it inside the write's own script,
// and [fencing.Guard] or [fencing.ExecFenced] check it elsewhere.
//
// A lease alone never makes a write safe: the holder can pause past its
// TTL. The Lock therefore reports the end of its lease as early as it can
// (Done, Context, Err, OnLost), judged by the holder's own monotonic clock,
// and a renewal ([Lock.Refresh] or the AutoRefresh watchdog) never brings an
// expired lease back. The token is what keeps a holder that missed all that
// from corrupting state.
//
// A renewal is one round trip: refresh.lua, or on servers that have it
// (Valkey >= 8.1) the native SET <record> IFEQ <record> PX <ttl> GET, which
// extends only this grant's record and costs Redis about a fifth of the
// script's CPU (bench/README.md); a Locker finds out on its first renewal.
//
// # Keys
//
// Every key of a lock name shares the hash tag {name}, so each script runs
// on one Redis Cluster slot:
//
//	<prefix>:{<name>}:lock    "<token>|<acquired at ms>|<owner>|<attempt>", PX ttl
//	<prefix>:{<name>}:fence   highest token issued, PX FenceTTL
//	<prefix>:{<name>}:lockq   wait queue (zset), <prefix>:{<name>}:lockqi its details
//	<prefix>:{<name>}:wake    pub/sub channel announcing hand-offs
//	<prefix>:{<name>}:grant   open grant "<token>|<holder>" (EventLog only), PX FenceTTL
//	<prefix>:{<name>}:events  the session's event log (EventLog only)
//	<prefix>:{<name>}:inc     read only (EventLog only): the session's id floor
//	                          after a Delete; the first lock event above it
//	                          gets an id above it, so a reader that kept the
//	                          deleted log's last id skips none
//
// A session guarded by the statestore package uses its session id as the
// lock name, so its state keys share the lock's slot.
//
// # Waiting and hand-off
//
// Waiters queue in Redis in arrival order. Whoever frees the lock passes it
// to the longest-waiting live waiter with a new token inside the same
// script; a waiter in the same Locker is handed the lease in memory, others
// hear of it by pub/sub, and every waiter also looks again at least every
// RetryInterval (and when the holder's lease ends), so no notice can be
// missed for long. Client-side caching is not needed: clients of miniredis
// and of servers without CLIENT TRACKING work the same way.
//
// A notice is not a grant, so the scripts never send one for a grant that
// is not written: they announce after their writes, which a server that
// refuses writes (OOM, READONLY, NOREPLICAS, MISCONF) refuses at the
// first, before anything is written or announced. The waiter counts the
// lease of an announced grant from the last look Redis answered before
// the grant, so it never believes in a lease longer than the server's; a
// notice whose token is not above the holder that look saw is late (its
// lease is over) and only makes the waiter look again; and a grant whose
// lease is over when it arrives is not returned. A look at
// the lock, once sent, is always waited for (within Options.CallTimeout):
// a waiter that gives up does so after its last look is answered, and
// gives back its place and any grant before Acquire returns; Close returns
// after every pending call has done so.
//
// Every round trip is bounded by Options.CallTimeout whatever the
// context, and an error without a reply matches [fencing.ErrNoReply].
//
// # Event log and operators
//
// With [Options.EventLog] every grant, release, hand-off and expired lease
// is appended to the event log of the session named like the lock, by the
// same script that made the transition (statestore's Events and Watch read
// it; the event types are statestore.EventLock*). [ForceRelease] lets an
// operator take a lock from a stuck holder: it mints a token above every
// token issued so far and writes it to the fence, so the removed holder is
// refused by every fenced write from then on.
//
// # Errors
//
// [ErrNotAcquired] ([*NotAcquiredError]) means someone else holds the lock;
// [ErrLockLost] ([*LostError], which also matches [fencing.ErrNotHolder])
// means a lease ended without Release; [ErrNotReplicated] reports too few
// WAIT acknowledgements with Options.MinReplicas; bad names match
// [ErrInvalidName]. Redis and transport errors are returned wrapped with the
// lock name, so errors.As finds a *rueidis.RedisError.
package lock
