// Package semaphore provides a fair counting semaphore on Redis whose
// permits expire and carry fencing tokens.
//
//	slots, err := semaphore.New(client, "llm-slots", semaphore.Options{Limit: 4, TTL: 30 * time.Second, AutoRefresh: true})
//	p, err := slots.Acquire(ctx, 1) // waits in a FIFO queue
//	// call the model under p.Context(); pass p.Token() to fenced writes
//	err = p.Release(ctx)
//
// (the package Example runs this on an in-process server).
//
// A [Semaphore] hands out the permits of one name: [Semaphore.TryAcquire]
// takes n permits if they are free, [Semaphore.Acquire] waits for them in
// a FIFO queue kept in Redis. A request that does not fit holds back every
// later one, so a large request is not starved by small ones. Each grant
// is a [Permits] value with a lease (TTL), a [fencing.Token] minted inside
// the granting script as max(previous + 1, server time in µs), an optional
// watchdog (AutoRefresh) and a Context that ends with the lease, like a
// lock.Lock. A holder that dies frees its permits when its lease ends: every
// script sweeps ended leases before it counts.
//
// The number of permits is Options.Limit, or the limit stored for every
// process with [Semaphore.SetLimit]; it can change at run time, and permits
// in use are never taken back.
//
// # What the count rests on
//
// "Never more than N permits held by live leases" holds while Redis keeps
// what it acknowledged. A restart without persistence, or a failover to a
// replica that missed the last grants, forgets holders that still believe
// they hold permits (their leases run by their own clocks), and new grants
// can then exceed N until those leases end. Tokens stay monotonic through
// such a loss (they are time-seeded), so writes fenced by Permits.Token
// still refuse the older holders; the count itself does not.
// Options.MinReplicas (as lock.Options.MinReplicas) closes most of that
// gap on Sentinel and Cluster: every grant, renewal, release and limit
// change waits with WAIT for that many replicas, and a grant too few
// acknowledged is given back ([ErrNotReplicated]). A failover to a replica
// that did acknowledge keeps every grant; WAIT does not make Redis
// strongly consistent, so a failover that picks a replica which missed
// them can still lose some.
//
// The fault suite (chaos/, docs/RELIABILITY.md) holds permits from
// executors that are paused and killed under server faults, changes the
// limit at run time, and checks that no grant exceeded the limit among
// surely live leases and that every permit is free again once every
// holder is gone.
//
// # Hand-off and waking
//
// Whoever frees permits (a [Permits.Release], a SetLimit that raises the
// limit, or any script finding a lease ended) grants them to the waiters
// in arrival order inside the same script. Waiters of the same Semaphore
// get their grants in memory; others hear of them by pub/sub (SPUBLISH on
// Redis Cluster), and a notice is only sent after the grant is written. A
// notice counts as a grant only when its token is above the highest token
// the waiter's last answered look reported (the lease is then counted from
// that look's send time); an older notice, delayed past a look, only makes
// the waiter look again.
// Every waiter also looks again at least every RetryInterval, and when the
// soonest lease of a holder ends, so a lost notice or a dead holder costs
// at most that long. A waiter that gives up gives back its place, and any
// permits granted to it meanwhile, before Acquire returns.
//
// # Keys
//
// All keys share the hash tag {name}, so every script runs on one Redis
// Cluster slot, and every key has a TTL:
//
//	<prefix>:{<name>}:semh      holders (zset: holder -> lease end, ms)
//	<prefix>:{<name>}:semhi     holder -> "<token>|<permits>|<acquired ms>"
//	<prefix>:{<name>}:semq      wait queue (zset), :semqi its details
//	<prefix>:{<name>}:semfence  highest token issued, PX FenceTTL
//	<prefix>:{<name>}:semlimit  limit stored by SetLimit, PX FenceTTL
//	<prefix>:{<name>}:semwake   pub/sub channel announcing grants
//
// # Errors
//
// Calls return typed, errors.Is-matchable errors: [ErrNotAcquired]
// ([*NotAcquiredError]), [ErrTooMany], [ErrNotReplicated]
// ([*NotReplicatedError]), [ErrLost] ([*LostError], also
// matching [fencing.ErrNotHolder]), [ErrReleased], [ErrClosed],
// [fencing.ErrWriteRefused] when Redis refuses writes (nothing was written)
// and [fencing.ErrNoReply] when it does not answer within
// Options.CallTimeout, which bounds every call whatever its context.
package semaphore
