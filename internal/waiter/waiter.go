// Package waiter is the waiting machinery that lock.Locker and
// semaphore.Semaphore share: blocked acquire calls registered by holder,
// grants handed to them in memory, hand-off notices heard on a pub/sub
// channel ("<holder> <token> <ttl_ms>"), the jittered sleep between two
// looks, and the rule by which a grant delivered in memory is taken.
//
// What stays in each package: the look itself (its script and reply), when
// a waiter gives up, and how its looks are bounded.
package waiter

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
)

// Grant is a grant delivered in memory to a blocked waiter.
type Grant struct {
	Token fencing.Token
	// Base is a time before the lease began; zero for an announced grant:
	// the lease is then counted from the waiter's last answered look (see
	// [Grant.Take]).
	Base time.Time
	TTL  time.Duration // lease length from Base
	// Replicated reports that MinReplicas acknowledged the grant (always
	// true without MinReplicas). A waiter given an unreplicated grant
	// looks again: the look, a retry by the same holder, is answered with
	// the same grant and makes WAIT cover it.
	Replicated bool
}

// Take reports whether a waiter may take g as its grant, and the grant
// with its lease base filled in. lastLook is the send time of the waiter's
// last look that Redis answered without a grant (zero: none yet) and
// lastSeen the highest token that look reported. An unreplicated grant is
// not taken (the waiter looks again). An announced grant (Base zero) is
// counted from lastLook, but only when its token is above lastSeen: then
// it was made after that look; an older notice (delayed past a look, e.g.
// in a paused process) only makes the waiter look again. A grant whose
// lease ran out before it reached the waiter is not taken either.
func (g Grant) Take(lastLook time.Time, lastSeen fencing.Token) (Grant, bool) {
	if !g.Replicated {
		return g, false
	}
	if g.Base.IsZero() {
		if lastLook.IsZero() || g.Token <= lastSeen {
			return g, false
		}
		g.Base = lastLook
	}
	return g, Live(g.Base, g.TTL)
}

// Live reports whether a lease of ttl counted from base (less a drift
// allowance of 1%) has time left by the local clock.
func Live(base time.Time, ttl time.Duration) bool {
	return time.Now().Before(base.Add(ttl - ttl/100))
}

// SleepFor is how long a waiter sleeps before looking again: a random
// time in [retry/2, retry], cut to soonest plus 1 ms when the soonest
// lease of a holder ends sooner (soonest 0: unknown).
func SleepFor(retry, soonest time.Duration) time.Duration {
	d := retry/2 + rand.N(retry/2+1)
	if soonest > 0 && soonest+time.Millisecond < d {
		d = soonest + time.Millisecond
	}
	return d
}

// Waiter is one blocked acquire call.
type Waiter struct {
	Grant chan Grant    // buffered 1
	Poke  chan struct{} // buffered 1: look again
}

// Config configures a [Set].
type Config struct {
	// Client subscribes and unsubscribes.
	Client rueidis.Client
	// Sharded subscribes with SSUBSCRIBE (the scripts announce with
	// SPUBLISH on Redis Cluster).
	Sharded bool
	// RetryInterval is the pause before subscribing again after the
	// connection broke (waiters keep polling meanwhile).
	RetryInterval time.Duration
	// UnsubscribeTimeout bounds the UNSUBSCRIBE sent when a subscription
	// ends.
	UnsubscribeTimeout time.Duration
	// AnnouncedReplicated is what an announced grant's Replicated is:
	// true without MinReplicas.
	AnnouncedReplicated bool
	// PokeAll makes a subscription that becomes active poke every waiter
	// of the Set; otherwise only the waiters that subscribed to its
	// channel are poked.
	PokeAll bool
}

// Set is the blocked waiters of one Locker or Semaphore and their
// hand-off subscriptions: one per channel while a waiter uses it, kept for
// a moment after the last leaves. It also counts the acquire calls in
// progress (Begin, End), which Close waits for. It is safe for concurrent
// use.
type Set struct {
	cfg     Config
	mu      sync.Mutex
	waiters map[string]*Waiter // holder -> blocked call
	subs    map[string]*sub    // channel -> subscription
	closed  bool
	done    chan struct{}  // closed by Close
	calls   sync.WaitGroup // calls between Begin and End (Add under mu, before closed)
	wg      sync.WaitGroup // subscription goroutines
}

// sub is a subscription to one channel.
type sub struct {
	refs   int
	cancel context.CancelFunc
	linger *time.Timer
	// holders of the waiters using the subscription, to poke them all
	// when the subscription (re)starts.
	holders map[string]struct{}
}

func (s *sub) stop() {
	if s.linger != nil {
		s.linger.Stop()
	}
	s.cancel()
}

// subLinger is how long a subscription outlives its last waiter, so that
// steady contention does not resubscribe on every acquisition.
const subLinger = time.Second

// New returns an empty Set.
func New(cfg Config) *Set {
	return &Set{cfg: cfg, waiters: make(map[string]*Waiter), subs: make(map[string]*sub), done: make(chan struct{})}
}

// Begin registers an acquire call, which Close waits for; it reports
// false after Close. Call End when the call returns.
func (s *Set) Begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.calls.Add(1)
	return true
}

// End ends a call registered by Begin.
func (s *Set) End() { s.calls.Done() }

// Done is closed by Close: blocked calls give up when it is.
func (s *Set) Done() <-chan struct{} { return s.done }

// Add registers a blocked call of holder and returns its Waiter.
func (s *Set) Add(holder string) *Waiter {
	w := &Waiter{Grant: make(chan Grant, 1), Poke: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters[holder] = w
	return w
}

// Remove unregisters holder's call; subscribed says whether it subscribed
// to channel (with Subscribe), whose subscription then lingers for a
// moment after its last waiter leaves.
func (s *Set) Remove(holder, channel string, subscribed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters, holder)
	if !subscribed {
		return
	}
	sb := s.subs[channel]
	if sb == nil {
		return
	}
	delete(sb.holders, holder)
	if sb.refs--; sb.refs > 0 {
		return
	}
	sb.linger = time.AfterFunc(subLinger, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur := s.subs[channel]; cur == sb && sb.refs == 0 {
			sb.cancel()
			delete(s.subs, channel)
		}
	})
}

// Deliver hands g to holder's blocked call, if holder is one of the Set's.
func (s *Set) Deliver(holder string, g Grant) {
	s.mu.Lock()
	w := s.waiters[holder]
	s.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.Grant <- g:
	default:
	}
}

// Poke asks holder's blocked call, if it is one of the Set's, to look again.
func (s *Set) Poke(holder string) {
	s.mu.Lock()
	w := s.waiters[holder]
	s.mu.Unlock()
	if w != nil {
		poke(w)
	}
}

func poke(w *Waiter) {
	select {
	case w.Poke <- struct{}{}:
	default:
	}
}

// announced handles a hand-off notice "<holder> <token> <ttl_ms>": the
// waiter holder, if it is one of ours, gets the grant without another
// round trip (Base zero: see Grant.Take). The scripts announce only grants
// already written. A notice it cannot parse still pokes the waiter, which
// then looks.
func (s *Set) announced(msg string) {
	holder, rest, ok1 := strings.Cut(msg, " ")
	tok, ttl, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		s.Poke(holder)
		return
	}
	token, err1 := fencing.ParseToken(tok)
	ms, err2 := strconv.ParseInt(ttl, 10, 64)
	if err1 != nil || err2 != nil || ms <= 0 {
		s.Poke(holder)
		return
	}
	s.Deliver(holder, Grant{Token: token, TTL: time.Duration(ms) * time.Millisecond, Replicated: s.cfg.AnnouncedReplicated})
}

// Subscribe makes sure the Set listens for hand-offs on channel while
// holder waits. When the subscription becomes active (again, after a
// broken connection) its waiters are poked (every waiter of the Set with
// Config.PokeAll), which closes the gap between joining the queue and
// listening. After Close it does nothing.
func (s *Set) Subscribe(channel, holder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if sb := s.subs[channel]; sb != nil {
		sb.refs++
		sb.holders[holder] = struct{}{}
		if sb.linger != nil {
			sb.linger.Stop()
			sb.linger = nil
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb := &sub{refs: 1, cancel: cancel, holders: map[string]struct{}{holder: {}}}
	s.subs[channel] = sb
	s.wg.Add(1)
	go s.listen(ctx, sb, channel)
}

func (s *Set) subCmd(channel string) rueidis.Completed {
	c := s.cfg.Client
	if s.cfg.Sharded {
		return c.B().Ssubscribe().Channel(channel).Build()
	}
	return c.B().Subscribe().Channel(channel).Build()
}

func (s *Set) listen(ctx context.Context, sb *sub, channel string) {
	defer s.wg.Done()
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(ps rueidis.PubSubSubscription) {
		if ps.Kind == "subscribe" || ps.Kind == "ssubscribe" {
			s.pokeAll(sb)
		}
	})
	for {
		err := s.cfg.Client.Receive(hooked, s.subCmd(channel), func(m rueidis.PubSubMessage) { s.announced(m.Message) })
		if ctx.Err() != nil {
			s.unsubscribe(channel)
			return
		}
		if err != nil { // the connection broke; waiters keep polling meanwhile
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.cfg.RetryInterval):
			}
		} // else: unsubscribed by someone else; subscribe again at once
	}
}

// unsubscribe tells the server to stop sending a channel's messages;
// rueidis only stops listening when Receive's context ends.
func (s *Set) unsubscribe(channel string) {
	c := s.cfg.Client
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.UnsubscribeTimeout)
	defer cancel()
	if s.cfg.Sharded {
		c.Do(ctx, c.B().Sunsubscribe().Channel(channel).Build())
	} else {
		c.Do(ctx, c.B().Unsubscribe().Channel(channel).Build())
	}
}

func (s *Set) pokeAll(sb *sub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.PokeAll {
		for _, w := range s.waiters {
			poke(w)
		}
		return
	}
	for h := range sb.holders {
		if w := s.waiters[h]; w != nil {
			poke(w)
		}
	}
}

// Close closes Done and ends every subscription (Begin reports false and
// Subscribe does nothing after it), then returns once every call between
// Begin and End has returned and every subscription goroutine has ended.
// Close is idempotent.
func (s *Set) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for channel, sb := range s.subs {
			sb.stop()
			delete(s.subs, channel)
		}
	}
	s.mu.Unlock()
	s.calls.Wait()
	s.wg.Wait()
}
