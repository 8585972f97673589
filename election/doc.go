// Package election provides leader election on Redis whose term is a
// fencing token.
//
//	e, err := election.New(client, "scheduler", election.Options{Lock: lock.Options{Owner: "replica-a"}})
//	lead, err := e.Campaign(ctx, "10.0.0.1:8080") // blocks until this replica leads
//	// schedule under lead.Context(); pass lead.Term() to every write
//	err = lead.Resign(ctx)
//
// (the package Example runs this on an in-process server).
//
// An [Election] is named like a lock: the leader is whoever holds the lock
// of the election name (package lock), so elections reuse the lock's FIFO
// queue, its hand-off inside the releasing script, its pub/sub notices with
// re-polling, its watchdog and its time-seeded tokens.
// [Election.Campaign] waits until this process leads and returns a
// [Leadership], whose [Leadership.Term] is the lock's token: every term is
// larger than every earlier one, and [Leadership.Context] ends when the
// leadership is lost. [Leadership.Proclaim] changes the leader's value,
// fenced by the term; [Leadership.Resign] hands the leadership to the next
// candidate. [Election.Leader] reads the leader, its term and value;
// [Election.Observe] yields every change in order from the election's
// event log (the lock's EventLog stream), so no change is missed while the
// log keeps it.
//
// # The term fences writes
//
// Pass Term to every write the leader makes. Because the election's keys
// are the lock keys of its name, a statestore session with the election's
// name (and the same Prefix) fences writes against the leader itself: in
// strict mode a write is accepted only while the leader's lock record
// carries the writer's term, so an old leader that paused past its lease
// is refused with an error matching [fencing.ErrFenced]. [fencing.Guard]
// and [fencing.ExecFenced] accept the term like any token.
//
// The fault suite (chaos/, docs/RELIABILITY.md) campaigns, proclaims and
// resigns from executors that are paused and killed under server faults,
// and checks that terms grow in real-time order and that no Proclaim under
// a stale term is accepted.
//
// # Keys
//
// Besides the lock's keys of the name (see package lock, with EventLog on):
//
//	<prefix>:{<name>}:leader   "<term>|<value>", PX FenceTTL
//
// The event log "<prefix>:{<name>}:events" gets lock_acquired,
// lock_released, lock_lost and lock_force_released from the lock scripts
// and lock_proclaimed from Proclaim.
package election
