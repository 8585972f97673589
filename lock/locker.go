package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/bounded"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/obs"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/internal/waiter"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Locker acquires fenced locks on one Redis deployment. It is safe for
// concurrent use; one Locker per process is enough.
type Locker struct {
	client rueidis.Client
	opts   Options

	// holderPrefix is "<owner>|<locker id>."; a holder is the prefix plus a
	// per-acquisition sequence number, unique across processes.
	holderPrefix string
	seq          atomic.Uint64
	// noIfeq is set once the server refused SET ... IFEQ (a server before
	// Valkey 8.1, miniredis, an ACL without SET): renewals use refresh.lua
	// from then on. See Lock.refreshIfeq.
	noIfeq atomic.Bool

	ttlArg, leaseArg, fenceTTLArg, pubArg string
	validity                              time.Duration // lease minus drift allowance
	nkeys                                 int           // KEYS of acquire and release: 4, or 7 with EventLog
	obs                                   *obs.T

	waits *waiter.Set // blocked Acquire calls, their hand-off subscriptions, calls in progress for Close
}

// New returns a Locker that runs its scripts on client. The client is not
// closed by the Locker. It returns [ErrNilClient] for a nil client and an
// error matching [ErrInvalidOptions] for invalid options.
//
// The Locker needs no client-side caching: waiters are woken by a FIFO
// hand-off (see Acquire). Clients of servers without CLIENT TRACKING need
// rueidis' DisableCache option anyway. For miniredis also set AlwaysRESP2:
// miniredis refuses every command on a RESP3 connection that has a
// subscription, and waiters subscribe to hand-off notices.
func New(client rueidis.Client, opts Options) (*Locker, error) {
	if client == nil {
		return nil, ErrNilClient
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("lock: locker id: %w", err)
	}
	l := &Locker{
		client:       bounded.Wrap(client, o.CallTimeout),
		opts:         o,
		holderPrefix: o.Owner + "|" + hex.EncodeToString(id[:]) + ".",
		ttlArg:       strconv.FormatInt(o.TTL.Milliseconds(), 10),
		leaseArg:     strconv.FormatInt((4 * o.RetryInterval).Milliseconds(), 10),
		fenceTTLArg:  "0",
		pubArg:       "P",
		validity:     o.TTL - o.TTL/100,
		nkeys:        4,
		obs:          obs.New(o.Telemetry),
	}
	if o.EventLog {
		l.nkeys = 7
	}
	if o.FenceTTL > 0 {
		l.fenceTTLArg = strconv.FormatInt(o.FenceTTL.Milliseconds(), 10)
	}
	if client.Mode() == rueidis.ClientModeCluster {
		l.pubArg = "S" // sharded pub/sub stays on the slot's shard
	}
	l.waits = waiter.New(waiter.Config{
		Client: l.client, Sharded: l.pubArg == "S", RetryInterval: o.RetryInterval,
		UnsubscribeTimeout: l.cleanupTimeout(), AnnouncedReplicated: o.MinReplicas == 0,
	})
	return l, nil
}

// Options returns the options in effect, defaults filled in.
func (l *Locker) Options() Options { return l.opts }

// Close stops the Locker's background work: pending Acquire calls return
// [ErrClosed] after giving up their place in the queue, and hand-off
// subscriptions end. Close returns only after every pending TryAcquire and
// Acquire call has returned, so every place in a queue has been given up
// (or the give-up failed: then the entry lapses after 4×RetryInterval and
// a lock handed to it expires after TTL) and the client may be closed
// next. That takes at most CallTimeout plus the give-up's own bound. Locks
// already held stay valid (and keep renewing) until released or lost.
// Close is idempotent and nil-safe.
func (l *Locker) Close() error {
	if l == nil {
		return nil
	}
	l.waits.Close()
	return nil
}

// begin registers a TryAcquire or Acquire call, which Close waits for;
// it returns ErrClosed after Close. Call end when the call returns.
func (l *Locker) begin() error {
	if !l.waits.Begin() {
		return ErrClosed
	}
	return nil
}

func (l *Locker) end() { l.waits.End() }

// newAttempt returns the keys of name and a new holder id for one acquire
// attempt, "<owner>|<locker id>.<seq>", in one allocation.
func (l *Locker) newAttempt(name string) (keys.Lock, string) {
	var buf [80]byte
	b := append(buf[:0], l.holderPrefix...)
	b = strconv.AppendUint(b, l.seq.Add(1), 36)
	return keys.ForLockWith(l.opts.Prefix, name, b)
}

// newHolder returns a new holder id, for callers that have the keys.
func (l *Locker) newHolder() string {
	return l.holderPrefix + strconv.FormatUint(l.seq.Add(1), 36)
}

// isLocal reports whether holder was issued by this Locker.
func (l *Locker) isLocal(holder string) bool {
	return len(holder) > len(l.holderPrefix) && holder[:len(l.holderPrefix)] == l.holderPrefix
}

// acquireReply is the decoded reply of acquire.lua.
type acquireReply struct {
	granted bool
	token   fencing.Token
	pttl    time.Duration
	at      int64  // acquired at, ms since the epoch (server clock)
	holder  string // the other holder, when !granted
	tokStr  string // token as the script wrote it
	acked   int64  // replicas acknowledging, with MinReplicas
	sent    time.Time
}

func (l *Locker) runAcquire(ctx context.Context, k *keys.Lock, holder string, wait bool) (acquireReply, error) {
	waitArg, touch := "0", "0"
	if wait {
		waitArg = "1"
	}
	durable := l.opts.MinReplicas > 0
	if durable {
		touch = "1"
	}
	var r acquireReply
	var res rueidis.RedisResult
	r.sent = time.Now()
	if durable {
		// Separate slices: the Dedicated closure of ExecWait moves them
		// to the heap, which the common path need not pay for.
		keyv := []string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant, k.Inc}
		argv := []string{holder, l.ttlArg, waitArg, l.leaseArg, l.fenceTTLArg, k.Wake, l.pubArg, l.holderPrefix, touch}
		var err error
		res, r.acked, err = lua.Acquire.ExecWait(ctx, l.client, keyv[:l.nkeys], argv, l.opts.MinReplicas, l.opts.ReplicaTimeout)
		if err := waitFailed(res, err); err != nil {
			return r, err
		}
	} else {
		keyv := [7]string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant, k.Inc}
		argv := [9]string{holder, l.ttlArg, waitArg, l.leaseArg, l.fenceTTLArg, k.Wake, l.pubArg, l.holderPrefix, touch}
		res = lua.Acquire.Exec(ctx, l.client, keyv[:l.nkeys], argv[:])
	}
	arr, err := res.ToArray()
	if err != nil {
		return r, err
	}
	if err := r.decode(arr); err != nil {
		return r, err
	}
	if !r.granted {
		if l.isLocal(r.holder) {
			// The lock may just have been handed to one of our waiters
			// (hand-offs to local holders are not announced). Delivering
			// is safe even if it was not: the lease is measured from
			// our send time with the remaining TTL the script saw.
			l.waits.Deliver(r.holder, waiter.Grant{Token: r.token, Base: r.sent, TTL: r.pttl,
				Replicated: !durable || (wait && r.acked >= int64(l.opts.MinReplicas))})
		}
	}
	return r, nil
}

// waitFailed returns the error of an ExecWait whose script ran but whose
// WAIT failed, or nil. A WAIT refused with an error reply (UNBLOCKED when
// a failover demotes the primary, a CLIENT UNBLOCK ... ERROR) counts as no
// acknowledgement at all: the caller goes on with acked 0, so a grant is
// given back as ErrNotReplicated instead of staying held behind an error.
// A transport error leaves the outcome unknown and is returned.
func waitFailed(res rueidis.RedisResult, err error) error {
	if err == nil || res.Error() != nil {
		return nil
	}
	if _, ok := rueidis.IsRedisErr(err); ok {
		return nil
	}
	return err
}

// decode fills r from the reply of acquire.lua:
// {1, token, pttl, at} or {0, token, pttl, at, holder}.
func (r *acquireReply) decode(arr []rueidis.RedisMessage) error {
	if len(arr) < 4 {
		return fmt.Errorf("%w: acquire.lua returned %d elements", ErrProtocol, len(arr))
	}
	status, err1 := arr[0].AsInt64()
	tok, err2 := arr[1].ToString()
	pttl, err3 := arr[2].AsInt64()
	at, err4 := arr[3].AsInt64()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fmt.Errorf("%w: acquire.lua: %v", ErrProtocol, err)
	}
	var err error
	if r.token, err = fencing.ParseToken(tok); err != nil {
		return fmt.Errorf("%w: acquire.lua: %v", ErrProtocol, err)
	}
	r.tokStr = tok
	if status != 0 && status != 1 {
		return fmt.Errorf("%w: acquire.lua: status %d", ErrProtocol, status)
	}
	r.granted, r.pttl, r.at = status == 1, time.Duration(pttl)*time.Millisecond, at
	if !r.granted {
		if len(arr) < 5 {
			return fmt.Errorf("%w: acquire.lua returned no holder", ErrProtocol)
		}
		if r.holder, err = arr[4].ToString(); err != nil {
			return fmt.Errorf("%w: acquire.lua: %v", ErrProtocol, err)
		}
	}
	return nil
}

// releaseReply is the decoded reply of release.lua.
type releaseReply struct {
	status int64 // 1 released, 0 no record, -1 another holder
	next   string
	token  fencing.Token
	ttl    time.Duration // the next holder's lease (status >= 0) or the other holder's pttl (status -1)
	acked  int64
}

// decode fills r from the reply of release.lua:
// {status, next holder, next token, ttl}.
func (r *releaseReply) decode(arr []rueidis.RedisMessage) error {
	if len(arr) != 4 {
		return fmt.Errorf("%w: release.lua returned %d elements", ErrProtocol, len(arr))
	}
	status, err1 := arr[0].AsInt64()
	next, err2 := arr[1].ToString()
	tok, err3 := arr[2].ToString()
	ttl, err4 := arr[3].AsInt64()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fmt.Errorf("%w: release.lua: %v", ErrProtocol, err)
	}
	if status < -1 || status > 1 {
		return fmt.Errorf("%w: release.lua: status %d", ErrProtocol, status)
	}
	r.status, r.next, r.ttl = status, next, time.Duration(ttl)*time.Millisecond
	if tok != "" {
		var err error
		if r.token, err = fencing.ParseToken(tok); err != nil {
			return fmt.Errorf("%w: release.lua: %v", ErrProtocol, err)
		}
	}
	return nil
}

// runRelease releases (token != "0") or abandons (token == "0") holder's
// claim on k and hands the lock over to the next waiter if there is one.
func (l *Locker) runRelease(ctx context.Context, k *keys.Lock, holder, token string) (releaseReply, error) {
	var r releaseReply
	var res rueidis.RedisResult
	sent := time.Now()
	if l.opts.MinReplicas > 0 {
		keyv := []string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant, k.Inc}
		argv := []string{holder, token, l.fenceTTLArg, k.Wake, l.pubArg, l.holderPrefix}
		var err error
		res, r.acked, err = lua.Release.ExecWait(ctx, l.client, keyv[:l.nkeys], argv, l.opts.MinReplicas, l.opts.ReplicaTimeout)
		if err := waitFailed(res, err); err != nil {
			return r, err
		}
	} else {
		keyv := [7]string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant, k.Inc}
		argv := [6]string{holder, token, l.fenceTTLArg, k.Wake, l.pubArg, l.holderPrefix}
		res = lua.Release.Exec(ctx, l.client, keyv[:l.nkeys], argv[:])
	}
	arr, err := res.ToArray()
	if err != nil {
		return r, err
	}
	if err := r.decode(arr); err != nil {
		return r, err
	}
	if r.status >= 0 && r.next != "" && l.obs != nil && l.obs.Handoffs.Enabled(ctx) {
		l.obs.Handoffs.Add(ctx, 1)
	}
	if r.status >= 0 && r.next != "" && l.isLocal(r.next) {
		// The script skipped the pub/sub notice for our own waiter: hand
		// the lock over in memory. The lease began after sent.
		l.waits.Deliver(r.next, waiter.Grant{Token: r.token, Base: sent, TTL: r.ttl, Replicated: l.opts.MinReplicas == 0 || r.acked >= int64(l.opts.MinReplicas)})
	}
	return r, nil
}

// abandon gives up whatever holder may hold or wait for on k, on a fresh
// context: the caller's may be done. Errors are dropped; the lease then
// expires by itself.
func (l *Locker) abandon(k *keys.Lock, holder string) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cleanupTimeout())
	defer cancel()
	_, _ = l.runRelease(ctx, k, holder, "0")
}

// cleanupTimeout bounds an abandon. With MinReplicas the release is
// followed by a WAIT of up to ReplicaTimeout, twice when the server has not
// cached the script yet (the WAIT pipelined behind the NOSCRIPT reply runs
// out first); the release must get that long, or a grant could stay held
// until its lease ends.
func (l *Locker) cleanupTimeout() time.Duration {
	d := min(l.opts.TTL, time.Second)
	if l.opts.MinReplicas > 0 {
		d += 2 * l.opts.ReplicaTimeout
	}
	return d
}

// TryAcquire takes the lock name if it is free, in one round trip, and
// returns its handle. It does not wait: if the lock is held, or free but
// promised to a waiter queued in Acquire, it returns a [*NotAcquiredError]
// (matching [ErrNotAcquired]) naming the holder. It returns an error
// matching [ErrInvalidName] for a bad name, [ErrNotReplicated] when
// MinReplicas are not reached (the lock is given back), [ErrClosed] after
// Close, [fencing.ErrWriteRefused] when the server does not take writes
// (nothing was written), and Redis or context errors otherwise.
//
// The look is not cut short by ctx: once sent, TryAcquire waits for its
// reply, at most Options.CallTimeout, so that it always knows whether it
// took the lock; when ctx ended meanwhile, a lock it took is given back and
// the context's error returned. When there is no reply (an error matching
// [fencing.ErrNoReply]), the outcome is unknown, and TryAcquire gives back
// whatever the attempt may have taken before it returns. When the reply
// arrives after the lease it granted has run out by the caller's clock (a
// paused process, a paused server), the lock is given back and TryAcquire
// returns a [*LostError] with [CauseExpired]: a Lock is only ever returned
// with a live lease.
func (l *Locker) TryAcquire(ctx context.Context, name string) (lk *Lock, err error) {
	ctx, sp, start := l.startAcquire(ctx, opTryAcquire, name)
	defer l.endAcquire(ctx, sp, start, &lk, &err)
	return l.tryAcquire(ctx, name)
}

func (l *Locker) tryAcquire(ctx context.Context, name string) (*Lock, error) {
	if err := keys.ValidateID(name); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.end()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock: acquire %q: %w", name, err) // nothing sent
	}
	k, holder := l.newAttempt(name)
	r, err := l.runAcquire(l.detach(ctx), &k, holder, false)
	if err != nil {
		if !scripterr.IsRedis(err) {
			l.abandon(&k, holder)
		}
		return nil, scriptError("acquire", name, err)
	}
	if !r.granted {
		return nil, l.notAcquired(name, r)
	}
	if err := ctx.Err(); err != nil {
		l.abandon(&k, holder) // granted after the caller gave up
		return nil, fmt.Errorf("lock: acquire %q: %w", name, err)
	}
	if err := l.checkReplicated(name, &k, holder, r.acked); err != nil {
		return nil, err
	}
	if !waiter.Live(r.sent, r.pttl) {
		l.abandon(&k, holder)
		return nil, &LostError{Name: name, Token: r.token, Cause: CauseExpired}
	}
	return l.newLock(name, k, holder, r.token, r.tokStr, r.at, r.sent, r.pttl), nil
}

// detach returns a context with ctx's values that the caller cannot end
// and that ends after CallTimeout: a look at the lock (or a release), once
// sent, is waited for, so that its outcome is known before the caller
// gives up. It costs one small allocation and no timer.
func (l *Locker) detach(ctx context.Context) context.Context {
	return bounded.Detach(ctx, l.opts.CallTimeout)
}

func (l *Locker) notAcquired(name string, r acquireReply) *NotAcquiredError {
	owner, _, _ := cutHolder(r.holder)
	return &NotAcquiredError{Name: name, Owner: owner, Token: r.token, TTL: r.pttl}
}

func (l *Locker) checkReplicated(name string, k *keys.Lock, holder string, acked int64) error {
	if l.opts.MinReplicas == 0 || acked >= int64(l.opts.MinReplicas) {
		return nil
	}
	l.abandon(k, holder)
	return &NotReplicatedError{Name: name, Acked: acked, Want: l.opts.MinReplicas}
}

// cutHolder splits a holder "<owner>|<attempt>".
func cutHolder(h string) (owner, attempt string, ok bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == '|' {
			return h[:i], h[i+1:], true
		}
	}
	return h, "", false
}

// Info describes a lock, as read by [Locker.Inspect].
type Info struct {
	Name string
	// Held is false when nobody holds the lock; the holder fields are zero then.
	Held bool
	// Owner is the holder's Options.Owner.
	Owner string
	// Token is the holder's fencing token.
	Token fencing.Token
	// AcquiredAt is when the holder was granted the lock (server clock).
	AcquiredAt time.Time
	// TTL is the holder's remaining lease on the server.
	TTL time.Duration
	// Fence is the highest token issued for the name (0 if forgotten).
	Fence fencing.Token
	// Waiters counts entries in the wait queue (some may be stale).
	Waiters int64
}

// Inspect reads the state of lock name in one round trip. It returns an
// error matching [ErrInvalidName] for a bad name, [ErrCorrupt] when the lock
// key holds something fencekit did not write, and Redis or context errors.
func (l *Locker) Inspect(ctx context.Context, name string) (Info, error) {
	info := Info{Name: name}
	if err := keys.ValidateID(name); err != nil {
		return info, fmt.Errorf("lock: %w", err)
	}
	k := keys.ForLock(l.opts.Prefix, name)
	arr, err := lua.Inspect.Exec(ctx, l.client, []string{k.Lock, k.Fence, k.Queue}, nil).ToArray()
	if err != nil {
		return info, scriptError("inspect", name, err)
	}
	if len(arr) != 4 {
		return info, fmt.Errorf("%w: inspect.lua returned %d elements", ErrProtocol, len(arr))
	}
	rec, err1 := arr[0].ToString()
	pttl, err2 := arr[1].AsInt64()
	fence, err3 := arr[2].ToString()
	waiters, err4 := arr[3].AsInt64()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return info, fmt.Errorf("%w: inspect.lua: %v", ErrProtocol, err)
	}
	info.Waiters = waiters
	if fence != "" {
		if info.Fence, err = fencing.ParseToken(fence); err != nil {
			return info, fmt.Errorf("%w: lock %q: fence %q", ErrCorrupt, name, fence)
		}
	}
	if rec == "" {
		return info, nil
	}
	r, err := ParseRecord(rec)
	if err != nil {
		return info, fmt.Errorf("%w: lock %q: %v", ErrCorrupt, name, err)
	}
	info.Held, info.Owner, info.Token, info.AcquiredAt = true, r.Owner, r.Token, r.AcquiredAt
	info.TTL = time.Duration(pttl) * time.Millisecond
	return info, nil
}

// Record is a decoded lock record, the value stored at a lock key.
type Record struct {
	Token      fencing.Token
	AcquiredAt time.Time
	Owner      string
	Attempt    string
}

// ParseRecord decodes a lock record "<token>|<acquired at ms>|<owner>|<attempt>".
// It is exported for tools that read lock keys directly.
func ParseRecord(s string) (Record, error) {
	var r Record
	tok, rest, ok1 := cut(s)
	at, holder, ok2 := cut(rest)
	owner, attempt, ok3 := cutHolder(holder)
	if !ok1 || !ok2 || !ok3 || owner == "" || attempt == "" {
		return r, fmt.Errorf("malformed lock record %q", s)
	}
	var err error
	if r.Token, err = fencing.ParseToken(tok); err != nil {
		return r, err
	}
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil || ms < 0 {
		return r, fmt.Errorf("malformed lock record %q", s)
	}
	r.AcquiredAt, r.Owner, r.Attempt = time.UnixMilli(ms), owner, attempt
	return r, nil
}

func cut(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '|' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
