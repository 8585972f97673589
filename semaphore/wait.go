package semaphore

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
)

// How waiting works: as for package lock. A waiter queues in Redis
// (sem_acquire.lua); whoever frees permits (a release, a SetLimit, or any
// script finding a lease ended) grants them to the waiters in arrival
// order in the same script. A waiter of the same Semaphore gets its grant
// from the reply in memory; others hear of it by pub/sub; and every
// waiter looks again after at most RetryInterval or when the soonest
// holder's lease ends, so a lost notice costs at most that long.

// grant is a grant delivered in memory.
type grant struct {
	token fencing.Token
	base  time.Time // a time before the lease began; zero: the waiter's last look
	ttl   time.Duration
	// replicated: MinReplicas acknowledged the grant (always true without
	// MinReplicas). A waiter given an unreplicated grant looks again: the
	// look, a retry by the same holder, is answered with the same grant
	// and makes WAIT cover it.
	replicated bool
}

type waiter struct {
	grant chan grant    // buffered 1
	poke  chan struct{} // buffered 1
}

// wakeSub is the subscription to the name's hand-off channel while
// waiters exist, kept for a moment after the last leaves.
type wakeSub struct {
	refs   int
	cancel context.CancelFunc
	linger *time.Timer
}

func (w *wakeSub) stop() {
	if w.linger != nil {
		w.linger.Stop()
	}
	w.cancel()
}

const subLinger = time.Second

func (s *Semaphore) addWaiter(holder string) *waiter {
	w := &waiter{grant: make(chan grant, 1), poke: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters[holder] = w
	return w
}

func (s *Semaphore) removeWaiter(holder string, subscribed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters, holder)
	if !subscribed || s.sub == nil {
		return
	}
	sub := s.sub
	if sub.refs--; sub.refs > 0 {
		return
	}
	sub.linger = time.AfterFunc(subLinger, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.sub == sub && sub.refs == 0 {
			sub.cancel()
			s.sub = nil
		}
	})
}

func (s *Semaphore) deliver(holder string, g grant) {
	s.mu.Lock()
	w := s.waiters[holder]
	s.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.grant <- g:
	default:
	}
}

func (s *Semaphore) poke(holder string) {
	s.mu.Lock()
	w := s.waiters[holder]
	s.mu.Unlock()
	if w != nil {
		pokeWaiter(w)
	}
}

func pokeWaiter(w *waiter) {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

func (s *Semaphore) pokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.waiters {
		pokeWaiter(w)
	}
}

// announced handles a notice "<holder> <token> <ttl_ms>". The scripts
// announce only grants already written; the lease is counted from the
// waiter's last answered look (Acquire fills in base). A notice it cannot
// parse still pokes the waiter, which then looks.
func (s *Semaphore) announced(msg string) {
	holder, rest, ok1 := strings.Cut(msg, " ")
	tok, ttl, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		s.poke(holder)
		return
	}
	token, err1 := fencing.ParseToken(tok)
	ms, err2 := strconv.ParseInt(ttl, 10, 64)
	if err1 != nil || err2 != nil || ms <= 0 {
		s.poke(holder)
		return
	}
	// With MinReplicas the waiter must look again so that WAIT covers
	// the grant.
	s.deliver(holder, grant{token: token, ttl: time.Duration(ms) * time.Millisecond, replicated: s.opts.MinReplicas == 0})
}

// subscribe makes sure the Semaphore listens for hand-offs while holder
// waits; every waiter is poked when the subscription becomes active,
// which closes the gap between queueing and listening.
func (s *Semaphore) subscribe(holder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.sub != nil {
		s.sub.refs++
		if s.sub.linger != nil {
			s.sub.linger.Stop()
			s.sub.linger = nil
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.sub = &wakeSub{refs: 1, cancel: cancel}
	s.wg.Add(1)
	go s.listen(ctx)
}

func (s *Semaphore) subCmd() rueidis.Completed {
	if s.pubArg == "S" {
		return s.client.B().Ssubscribe().Channel(s.keys.Wake).Build()
	}
	return s.client.B().Subscribe().Channel(s.keys.Wake).Build()
}

func (s *Semaphore) listen(ctx context.Context) {
	defer s.wg.Done()
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(ps rueidis.PubSubSubscription) {
		if ps.Kind == "subscribe" || ps.Kind == "ssubscribe" {
			s.pokeAll()
		}
	})
	for {
		err := s.client.Receive(hooked, s.subCmd(), func(m rueidis.PubSubMessage) { s.announced(m.Message) })
		if ctx.Err() != nil {
			s.unsubscribe()
			return
		}
		if err != nil { // the connection broke; waiters keep polling meanwhile
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.opts.RetryInterval):
			}
		}
	}
}

// unsubscribe tells the server to stop sending the channel's messages;
// rueidis only stops listening when Receive's context ends.
func (s *Semaphore) unsubscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), min(s.opts.TTL, time.Second))
	defer cancel()
	if s.pubArg == "S" {
		s.client.Do(ctx, s.client.B().Sunsubscribe().Channel(s.keys.Wake).Build())
	} else {
		s.client.Do(ctx, s.client.B().Unsubscribe().Channel(s.keys.Wake).Build())
	}
}

// sleepFor is how long a waiter sleeps before looking again, given the
// time until the soonest holder's lease ends (0: unknown).
func (s *Semaphore) sleepFor(soonest time.Duration) time.Duration {
	ri := s.opts.RetryInterval
	d := ri/2 + rand.N(ri/2+1)
	if soonest > 0 && soonest+time.Millisecond < d {
		d = soonest + time.Millisecond
	}
	return d
}
