package semaphore

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
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/internal/waiter"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Semaphore hands out the permits of one name. It is safe for concurrent
// use; one Semaphore per name and process is enough.
type Semaphore struct {
	client rueidis.Client
	name   string
	opts   Options
	keys   keys.Semaphore

	// holderPrefix is "<owner>|<semaphore id>."; a holder is the prefix
	// plus a per-request sequence number, unique across processes.
	holderPrefix string
	seq          atomic.Uint64

	ttlArg, leaseArg, fenceTTLArg, limitArg, pubArg string

	waits *waiter.Set // blocked Acquire calls, the hand-off subscription, calls in progress for Close
}

// New returns a Semaphore for the permits of name, running its scripts on
// client (which it does not close). It returns [ErrNilClient] for a nil
// client, an error matching [ErrInvalidName] for a bad name and one
// matching [ErrInvalidOptions] for invalid options.
//
// Like lock.New it needs no client-side caching; for miniredis set
// DisableCache and AlwaysRESP2 on the client.
func New(client rueidis.Client, name string, opts Options) (*Semaphore, error) {
	if client == nil {
		return nil, ErrNilClient
	}
	if err := keys.ValidateID(name); err != nil {
		return nil, fmt.Errorf("semaphore: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("semaphore: id: %w", err)
	}
	s := &Semaphore{
		client:       bounded.Wrap(client, o.CallTimeout),
		name:         name,
		opts:         o,
		keys:         keys.ForSemaphore(o.Prefix, name),
		holderPrefix: o.Owner + "|" + hex.EncodeToString(id[:]) + ".",
		ttlArg:       strconv.FormatInt(o.TTL.Milliseconds(), 10),
		leaseArg:     strconv.FormatInt((4 * o.RetryInterval).Milliseconds(), 10),
		fenceTTLArg:  "0",
		limitArg:     strconv.FormatInt(o.Limit, 10),
		pubArg:       "P",
	}
	if o.FenceTTL > 0 {
		s.fenceTTLArg = strconv.FormatInt(o.FenceTTL.Milliseconds(), 10)
	}
	if client.Mode() == rueidis.ClientModeCluster {
		s.pubArg = "S"
	}
	s.waits = waiter.New(waiter.Config{
		Client: s.client, Sharded: s.pubArg == "S", RetryInterval: o.RetryInterval,
		UnsubscribeTimeout: min(o.TTL, time.Second), AnnouncedReplicated: o.MinReplicas == 0, PokeAll: true,
	})
	return s, nil
}

// Name returns the semaphore's name.
func (s *Semaphore) Name() string { return s.name }

// Options returns the options in effect, defaults filled in.
func (s *Semaphore) Options() Options { return s.opts }

// Close stops the Semaphore's background work: pending Acquire calls give
// up their place and return [ErrClosed], and the hand-off subscription
// ends. It returns after every pending TryAcquire and Acquire call
// returned. Permits already held stay valid until released or lost.
// Close is idempotent and nil-safe.
func (s *Semaphore) Close() error {
	if s == nil {
		return nil
	}
	s.waits.Close()
	return nil
}

// begin registers a TryAcquire or Acquire call, which Close waits for;
// it returns ErrClosed after Close. Call end when the call returns.
func (s *Semaphore) begin() error {
	if !s.waits.Begin() {
		return ErrClosed
	}
	return nil
}

func (s *Semaphore) end() { s.waits.End() }

func (s *Semaphore) newHolder() string {
	return s.holderPrefix + strconv.FormatUint(s.seq.Add(1), 36)
}

func (s *Semaphore) isLocal(holder string) bool {
	return len(holder) > len(s.holderPrefix) && holder[:len(s.holderPrefix)] == s.holderPrefix
}

func (s *Semaphore) keyv() []string {
	k := &s.keys
	return []string{k.Holders, k.HolderInfo, k.Queue, k.QueueInfo, k.Fence, k.Limit}
}

// handoff is a grant a script made to another holder, from its reply.
type handoff struct {
	holder string
	token  fencing.Token
	ttl    time.Duration
}

// decodeHandoffs reads the holder, token, ttl triplets at the end of a
// reply.
func decodeHandoffs(script string, arr []rueidis.RedisMessage) ([]handoff, error) {
	if len(arr)%3 != 0 {
		return nil, fmt.Errorf("%w: %s: %d trailing elements", ErrProtocol, script, len(arr))
	}
	var out []handoff
	for i := 0; i < len(arr); i += 3 {
		h, err1 := arr[i].ToString()
		t, err2 := arr[i+1].ToString()
		ms, err3 := arr[i+2].AsInt64()
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrProtocol, script, err)
		}
		tok, err := fencing.ParseToken(t)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrProtocol, script, err)
		}
		out = append(out, handoff{holder: h, token: tok, ttl: time.Duration(ms) * time.Millisecond})
	}
	return out, nil
}

// deliverAll hands the grants of a reply to the waiters of this
// Semaphore they went to: the script skipped the notice for them. Their
// leases began after sent.
// acked says how many replicas acknowledged the script that made them
// (with MinReplicas).
func (s *Semaphore) deliverAll(hs []handoff, sent time.Time, acked int64) {
	replicated := s.replicated(acked)
	for _, h := range hs {
		if s.isLocal(h.holder) {
			s.waits.Deliver(h.holder, waiter.Grant{Token: h.token, Base: sent, TTL: h.ttl, Replicated: replicated})
		}
	}
}

// replicated reports whether acked acknowledgements satisfy MinReplicas.
func (s *Semaphore) replicated(acked int64) bool {
	return s.opts.MinReplicas == 0 || acked >= int64(s.opts.MinReplicas)
}

// exec runs script on the semaphore's keys; with MinReplicas it is
// followed by WAIT on the same connection (lua.Script.ExecWait), and
// acked is the number of replicas that acknowledged. A WAIT refused with
// an error reply (UNBLOCKED when a failover demotes the primary) counts
// as no acknowledgement; a transport error leaves the outcome unknown and
// is returned.
func (s *Semaphore) exec(ctx context.Context, script *lua.Script, keyv, argv []string) (arr []rueidis.RedisMessage, acked int64, err error) {
	if s.opts.MinReplicas == 0 {
		arr, err = script.Exec(ctx, s.client, keyv, argv).ToArray()
		return arr, 0, err
	}
	res, acked, err := script.ExecWait(ctx, s.client, keyv, argv, s.opts.MinReplicas, s.opts.ReplicaTimeout)
	if err != nil && res.Error() == nil {
		if _, ok := rueidis.IsRedisErr(err); !ok {
			return nil, 0, err
		}
	}
	arr, err = res.ToArray()
	return arr, acked, err
}

// acquireReply is the decoded reply of sem_acquire.lua.
type acquireReply struct {
	status int64 // 1 granted, 0 not, 2 too many
	token  fencing.Token
	ttl    time.Duration // the grant's lease (status 1)
	at     int64
	used   int64
	limit  int64
	soon   time.Duration // until the soonest lease ends (status 0)
	fence  fencing.Token // highest token issued when the script ended
	acked  int64         // replicas acknowledging, with MinReplicas
	sent   time.Time
}

func (s *Semaphore) runAcquire(ctx context.Context, holder string, n int64, wait bool) (acquireReply, error) {
	waitArg := "0"
	if wait {
		waitArg = "1"
	}
	r := acquireReply{sent: time.Now()}
	argv := []string{holder, strconv.FormatInt(n, 10), s.ttlArg, waitArg, s.leaseArg, s.fenceTTLArg, s.limitArg, s.keys.Wake, s.pubArg, s.holderPrefix}
	arr, acked, err := s.exec(ctx, lua.SemAcquire, s.keyv(), argv)
	if err != nil {
		return r, err
	}
	r.acked = acked
	if len(arr) < 2 {
		return r, fmt.Errorf("%w: sem_acquire.lua returned %d elements", ErrProtocol, len(arr))
	}
	if r.status, err = arr[0].AsInt64(); err != nil {
		return r, fmt.Errorf("%w: sem_acquire.lua: %v", ErrProtocol, err)
	}
	switch r.status {
	case 2:
		r.limit, err = arr[1].AsInt64()
		if err != nil {
			return r, fmt.Errorf("%w: sem_acquire.lua: %v", ErrProtocol, err)
		}
		return r, nil
	case 0, 1:
	default:
		return r, fmt.Errorf("%w: sem_acquire.lua: status %d", ErrProtocol, r.status)
	}
	if len(arr) < 5 {
		return r, fmt.Errorf("%w: sem_acquire.lua returned %d elements", ErrProtocol, len(arr))
	}
	hs, err := decodeHandoffs("sem_acquire.lua", arr[5:])
	if err != nil {
		return r, err
	}
	s.deliverAll(hs, r.sent, r.acked)
	var e1, e2, e3 error
	var a, b int64
	if r.status == 1 {
		var tok string
		tok, e1 = arr[1].ToString()
		a, e2 = arr[2].AsInt64()
		r.at, e3 = arr[3].AsInt64()
		if e1 == nil {
			r.token, e1 = fencing.ParseToken(tok)
		}
		r.ttl = time.Duration(a) * time.Millisecond
	} else {
		r.used, e1 = arr[1].AsInt64()
		r.limit, e2 = arr[2].AsInt64()
		b, e3 = arr[3].AsInt64()
		r.soon = time.Duration(b) * time.Millisecond
	}
	fence, e4 := arr[4].ToString()
	if e4 == nil && fence != "0" {
		r.fence, e4 = fencing.ParseToken(fence)
	}
	if err := errors.Join(e1, e2, e3, e4); err != nil {
		return r, fmt.Errorf("%w: sem_acquire.lua: %v", ErrProtocol, err)
	}
	return r, nil
}

// runRelease gives back holder's permits (token "0": whatever grant it
// has, or its place in the queue) and returns the release status.
func (s *Semaphore) runRelease(ctx context.Context, holder, token string) (int64, error) {
	sent := time.Now()
	argv := []string{holder, token, s.fenceTTLArg, s.limitArg, s.keys.Wake, s.pubArg, s.holderPrefix}
	arr, acked, err := s.exec(ctx, lua.SemRelease, s.keyv(), argv)
	if err != nil {
		return 0, err
	}
	if len(arr) < 1 {
		return 0, fmt.Errorf("%w: sem_release.lua returned nothing", ErrProtocol)
	}
	status, err := arr[0].AsInt64()
	if err != nil || status < -1 || status > 1 {
		return 0, fmt.Errorf("%w: sem_release.lua: status %d %v", ErrProtocol, status, err)
	}
	hs, err := decodeHandoffs("sem_release.lua", arr[1:])
	if err != nil {
		return status, err
	}
	s.deliverAll(hs, sent, acked)
	return status, nil
}

// abandon gives up whatever holder may hold or wait for, on a fresh
// context: the caller's may be done. Errors are dropped; the lease then
// ends by itself.
func (s *Semaphore) abandon(holder string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cleanupTimeout())
	defer cancel()
	_, _ = s.runRelease(ctx, holder, "0")
}

// cleanupTimeout bounds an abandon. With MinReplicas the release is
// followed by a WAIT of up to ReplicaTimeout, twice when the server has not
// cached the script yet; the release must get that long, or a grant could
// stay held until its lease ends.
func (s *Semaphore) cleanupTimeout() time.Duration {
	d := min(s.opts.TTL, time.Second)
	if s.opts.MinReplicas > 0 {
		d += 2 * s.opts.ReplicaTimeout
	}
	return d
}

// checkReplicated gives holder's grant back and returns a
// [*NotReplicatedError] when acked does not satisfy MinReplicas.
func (s *Semaphore) checkReplicated(holder string, acked int64) error {
	if s.replicated(acked) {
		return nil
	}
	s.abandon(holder)
	return &NotReplicatedError{Name: s.name, Acked: acked, Want: s.opts.MinReplicas}
}

// detach returns a context with ctx's values that the caller cannot end:
// a look, once sent, is waited for (each command is bounded by
// CallTimeout), so that its outcome is known before the caller gives up.
func detach(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

func (s *Semaphore) check(n int64) error {
	if n <= 0 {
		return fmt.Errorf("semaphore: %q: %d permits asked: %w", s.name, n, ErrTooMany)
	}
	return nil
}

// TryAcquire takes n permits if they are free and no earlier waiter is
// queued for permits, in one round trip. It does not wait: otherwise it
// returns a [*NotAcquiredError] (matching [ErrNotAcquired]). It returns a
// [*TooManyError] (matching [ErrTooMany]) when n exceeds the limit or is
// not positive, [ErrNotReplicated] when MinReplicas are not reached (the
// permits are given back), [ErrClosed] after Close, an error matching
// [fencing.ErrWriteRefused] when the server does not take writes (nothing
// was written), one matching [fencing.ErrNoReply] when Redis does not
// answer within CallTimeout (whatever the attempt may have taken is given
// back), and Redis or context errors otherwise.
//
// The look is not cut short by ctx: once sent it is waited for, and
// permits granted after ctx ended are given back. Permits are only ever
// returned with a live lease by the caller's clock; a reply that comes
// after its lease ended gives them back and returns a [*LostError].
func (s *Semaphore) TryAcquire(ctx context.Context, n int64) (*Permits, error) {
	if err := s.check(n); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("semaphore: acquire %q: %w", s.name, err)
	}
	holder := s.newHolder()
	r, err := s.runAcquire(detach(ctx), holder, n, false)
	if err != nil {
		if !scripterr.IsRedis(err) {
			s.abandon(holder)
		}
		return nil, scriptError("acquire", s.name, err)
	}
	switch r.status {
	case 2:
		return nil, &TooManyError{Name: s.name, N: n, Limit: r.limit}
	case 0:
		return nil, &NotAcquiredError{Name: s.name, N: n, Used: r.used, Limit: r.limit}
	}
	if err := ctx.Err(); err != nil {
		s.abandon(holder)
		return nil, fmt.Errorf("semaphore: acquire %q: %w", s.name, err)
	}
	if err := s.checkReplicated(holder, r.acked); err != nil {
		return nil, err
	}
	if !waiter.Live(r.sent, r.ttl) {
		s.abandon(holder)
		return nil, &LostError{Name: s.name, Token: r.token, Cause: CauseExpired}
	}
	return s.newPermits(holder, n, r.token, r.sent, r.ttl), nil
}

// How waiting works: as for package lock. A waiter queues in Redis
// (sem_acquire.lua); whoever frees permits (a release, a SetLimit, or any
// script finding a lease ended) grants them to the waiters in arrival
// order in the same script. A waiter of the same Semaphore gets its grant
// from the reply in memory; others hear of it by pub/sub; and every
// waiter looks again after at most RetryInterval or when the soonest
// holder's lease ends, so a lost notice costs at most that long.
//
// The waiters, their in-memory hand-offs and subscriptions, the sleep
// between looks and the rule by which a delivered grant is taken are
// package internal/waiter's, shared with package lock.

// Acquire takes n permits, waiting as long as ctx allows. Waiters are
// served in arrival order: a request that does not fit holds back every
// later one, so large requests are not starved by small ones. Freed
// permits are handed over inside the releasing script and announced by
// pub/sub; every waiter also looks again at least every RetryInterval and
// when the soonest lease of a holder ends, so a lost notice or a dead
// holder costs at most that long.
//
// It returns a [*TooManyError] (matching [ErrTooMany]) when n exceeds the
// limit, [ErrNotReplicated] when MinReplicas are not reached (the permits
// are given back), [ErrClosed] when the Semaphore is closed while waiting, Redis
// errors that retrying cannot fix, and, when ctx ends first, errors.Join
// of the last [*NotAcquiredError] (or the last error) with ctx.Err().
// While Redis refuses writes ([fencing.ErrWriteRefused]) or does not
// answer, Acquire keeps trying; after CallTimeout without any reply it
// returns the last error, which matches [fencing.ErrNoReply].
//
// A waiter that gives up gives back its place, and permits granted to it
// meanwhile, before Acquire returns; a look in flight is waited for first.
// The Permits returned always have a live lease by the caller's clock.
func (s *Semaphore) Acquire(ctx context.Context, n int64) (*Permits, error) {
	if err := s.check(n); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("semaphore: acquire %q: %w", s.name, err)
	}
	holder := s.newHolder()
	w := s.waits.Add(holder)
	subscribed := false
	defer func() { s.waits.Remove(holder, s.keys.Wake, subscribed) }()

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// lastLook is the send time of the last look Redis answered without a
	// grant, and lastFence the highest token issued when it was answered:
	// an announced grant with a larger token was made after that look, so
	// its lease is counted from lastLook. A notice with a token not above
	// lastFence is of an older grant (one that may have run out while its
	// notice was delayed, as in a paused process): it only makes the
	// waiter look again.
	var last error
	var lastLook time.Time
	var lastFence fencing.Token
	lastReply := time.Now()
	looks := detach(ctx)
	for {
		r, err := s.runAcquire(looks, holder, n, true)
		var sleep time.Duration
		replied := err == nil || scripterr.IsRedis(err)
		if replied {
			lastReply = time.Now()
		}
		switch {
		case err == nil:
		case replied && !scripterr.IsRefused(err):
			s.abandon(holder)
			return nil, scriptError("acquire", s.name, err)
		default: // no reply, or writes refused for now: try again
			err = scriptError("acquire", s.name, err)
			if _, ok := last.(*NotAcquiredError); !ok {
				last = err
			}
			if !replied && time.Since(lastReply) >= s.opts.CallTimeout {
				s.abandon(holder)
				return nil, err
			}
			sleep = waiter.SleepFor(s.opts.RetryInterval, 0)
		}
		if err == nil {
			switch r.status {
			case 2:
				s.abandon(holder)
				return nil, &TooManyError{Name: s.name, N: n, Limit: r.limit}
			case 1:
				if ctx.Err() == nil {
					if err := s.checkReplicated(holder, r.acked); err != nil {
						return nil, err
					}
				}
				if ctx.Err() == nil && waiter.Live(r.sent, r.ttl) {
					return s.newPermits(holder, n, r.token, r.sent, r.ttl), nil
				}
				// Given back below, or (expired on arrival) looked at again.
			default:
				last, lastLook, lastFence = &NotAcquiredError{Name: s.name, N: n, Used: r.used, Limit: r.limit}, r.sent, r.fence
				sleep = waiter.SleepFor(s.opts.RetryInterval, r.soon)
				if !subscribed {
					s.waits.Subscribe(s.keys.Wake, holder)
					subscribed = true
				}
			}
		}
		if ctx.Err() != nil {
			s.abandon(holder)
			return nil, errors.Join(last, ctx.Err())
		}
		if timer == nil {
			timer = time.NewTimer(sleep)
		} else {
			timer.Reset(sleep)
		}
		select {
		case g := <-w.Grant:
			// Taken unless unreplicated (the look makes WAIT cover it),
			// not known to follow an answered look, or run out before it
			// reached us; otherwise the waiter looks again.
			if g, ok := g.Take(lastLook, lastFence); ok {
				return s.newPermits(holder, n, g.Token, g.Base, g.TTL), nil
			}
			continue
		case <-w.Poke:
		case <-timer.C:
		case <-ctx.Done():
			s.abandon(holder)
			return nil, errors.Join(last, ctx.Err())
		case <-s.waits.Done():
			s.abandon(holder)
			return nil, ErrClosed
		}
	}
}

// SetLimit stores the number of permits of the name, for every process,
// and hands permits that became free to the waiters in the same script.
// Permits in use are never taken back: lowering the limit only stops new
// grants until enough are released. It returns the previous stored limit
// (0 when none was stored), an error matching [ErrTooMany] for a limit
// that is not positive, [fencing.ErrWriteRefused] when the server does not
// take writes, [fencing.ErrNoReply] without a reply, and Redis or context
// errors.
func (s *Semaphore) SetLimit(ctx context.Context, limit int64) (prev int64, err error) {
	if limit <= 0 {
		return 0, fmt.Errorf("semaphore: %q: limit %d: %w", s.name, limit, ErrTooMany)
	}
	sent := time.Now()
	argv := []string{strconv.FormatInt(limit, 10), s.fenceTTLArg, s.keys.Wake, s.pubArg, s.holderPrefix}
	arr, acked, err := s.exec(ctx, lua.SemLimit, s.keyv(), argv)
	if err != nil {
		return 0, scriptError("set limit", s.name, err)
	}
	if len(arr) < 1 {
		return 0, fmt.Errorf("%w: sem_limit.lua returned nothing", ErrProtocol)
	}
	if prev, err = arr[0].AsInt64(); err != nil {
		return 0, fmt.Errorf("%w: sem_limit.lua: %v", ErrProtocol, err)
	}
	hs, err := decodeHandoffs("sem_limit.lua", arr[1:])
	if err != nil {
		return prev, err
	}
	s.deliverAll(hs, sent, acked)
	return prev, nil
}
