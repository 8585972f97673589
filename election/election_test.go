package election_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func newElection(t testing.TB, s *redistest.Server, prefix, name, owner string) *election.Election {
	t.Helper()
	e, err := election.New(s.NewClient(t), name, election.Options{Lock: lock.Options{Prefix: prefix, Owner: owner, TTL: 2 * time.Second, RetryInterval: 50 * time.Millisecond}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

type campaigned struct {
	l   *election.Leadership
	err error
}

func campaignAsync(ctx context.Context, e *election.Election, value string) <-chan campaigned {
	ch := make(chan campaigned, 1)
	go func() {
		l, err := e.Campaign(ctx, value)
		ch <- campaigned{l, err}
	}()
	return ch
}

func TestCampaignProclaimResign(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		a := newElection(t, s, prefix, "scheduler", "replica-a")
		b := newElection(t, s, prefix, "scheduler", "replica-b")

		ld, err := a.Leader(ctx)
		require.NoError(t, err)
		assert.False(t, ld.Held)

		la, err := a.Campaign(ctx, "10.0.0.1:80")
		require.NoError(t, err)
		assert.True(t, la.Term().Valid())
		ld, err = b.Leader(ctx)
		require.NoError(t, err)
		assert.True(t, ld.Held)
		assert.Equal(t, "replica-a", ld.Owner)
		assert.Equal(t, la.Term(), ld.Term)
		assert.Equal(t, "10.0.0.1:80", ld.Value)
		assert.Positive(t, ld.TTL)

		got := campaignAsync(ctx, b, "10.0.0.2:80")
		select {
		case <-got:
			t.Fatal("a second leader while the first leads")
		case <-time.After(200 * time.Millisecond):
		}
		require.NoError(t, la.Proclaim(ctx, "10.0.0.1:81"))
		ld, err = b.Leader(ctx)
		require.NoError(t, err)
		assert.Equal(t, "10.0.0.1:81", ld.Value)
		assert.Equal(t, "10.0.0.1:81", la.Value())

		require.NoError(t, la.Resign(ctx))
		res := <-got
		require.NoError(t, res.err)
		lb := res.l
		assert.Greater(t, lb.Term(), la.Term(), "every term is larger than every earlier one")
		ld, err = a.Leader(ctx)
		require.NoError(t, err)
		assert.Equal(t, "replica-b", ld.Owner)
		assert.Equal(t, "10.0.0.2:80", ld.Value)

		// The old leader is fenced out.
		err = la.Proclaim(ctx, "late")
		assert.ErrorIs(t, err, election.ErrNotLeader)
		assert.ErrorIs(t, err, fencing.ErrFenced)
		ld, err = a.Leader(ctx)
		require.NoError(t, err)
		assert.Equal(t, "10.0.0.2:80", ld.Value)
		require.NoError(t, lb.Resign(ctx))
		require.NoError(t, lb.Resign(ctx), "idempotent")
		s.RequireExpiring(t, prefix)
	})
}

// A leader whose lease the server lost (taken by an operator here) is
// fenced out of Proclaim even though its own clock says it still leads,
// and its Context ends once the watchdog notices.
func TestProclaimFencedAfterTakeover(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		a := newElection(t, s, prefix, "svc", "replica-a")
		la, err := a.Campaign(ctx, "a")
		require.NoError(t, err)
		_, err = lock.ForceRelease(ctx, s.NewClient(t), "svc", lock.ForceOptions{Prefix: prefix, Reason: "test", By: "op", EventLog: true})
		require.NoError(t, err)
		err = la.Proclaim(ctx, "a2")
		assert.ErrorIs(t, err, election.ErrNotLeader)
		assert.ErrorIs(t, err, fencing.ErrFenced)
		select {
		case <-la.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the leadership's context did not end")
		}
		assert.ErrorIs(t, la.Err(), lock.ErrLockLost)
	})
}

// Observe yields every change in order, none missed.
func TestObserve(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 30*time.Second)
		prefix := s.Prefix(t)
		a := newElection(t, s, prefix, "obs", "replica-a")
		b := newElection(t, s, prefix, "obs", "replica-b")
		watcher := newElection(t, s, prefix, "obs", "watcher")

		octx, stop := context.WithCancel(ctx)
		defer stop()
		seen := make(chan election.Leader, 64)
		done := make(chan error, 1)
		go func() {
			defer close(done)
			for ld, err := range watcher.Observe(octx) {
				if err != nil {
					done <- err
					return
				}
				seen <- ld
			}
		}()
		first := <-seen
		assert.False(t, first.Held)
		assert.Equal(t, "", first.Change)

		la, err := a.Campaign(ctx, "va")
		require.NoError(t, err)
		require.NoError(t, la.Proclaim(ctx, "vb"))
		got := campaignAsync(ctx, b, "vc")
		time.Sleep(100 * time.Millisecond) // b queues (the order below holds either way)
		require.NoError(t, la.Resign(ctx))
		res := <-got
		require.NoError(t, res.err)
		require.NoError(t, res.l.Resign(ctx))

		type step struct {
			change, owner, value string
			held                 bool
		}
		want := []step{
			{"elected", "replica-a", "", true},
			{"proclaimed", "replica-a", "va", true},
			{"proclaimed", "replica-a", "vb", true},
			{"resigned", "replica-a", "", false},
			{"elected", "replica-b", "", true},
			{"proclaimed", "replica-b", "vc", true},
			{"resigned", "replica-b", "", false},
		}
		var terms []fencing.Token
		for i, w := range want {
			var ld election.Leader
			select {
			case ld = <-seen:
			case err := <-done:
				t.Fatalf("observe ended after %d changes: %v", i, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("change %d (%s) not observed", i, w.change)
			}
			assert.Equal(t, w, step{ld.Change, ld.Owner, ld.Value, ld.Held}, "change %d", i)
			assert.NotEmpty(t, ld.Seq)
			terms = append(terms, ld.Term)
		}
		assert.Equal(t, la.Term(), terms[0])
		assert.Equal(t, res.l.Term(), terms[4])
		stop()
		<-done

		// ObserveAfter resumes: from the start of the log it replays all.
		n := 0
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		for ld, err := range watcher.ObserveAfter(rctx, "") {
			require.NoError(t, err)
			assert.Equal(t, want[n].change, ld.Change)
			if n++; n == len(want) {
				break
			}
		}
		assert.Equal(t, len(want), n)
	})
}

// The term is a fencing token for the statestore session named like the
// election (strict mode sees the leader's lock record) and for
// fencing.Guard.
func TestTermFencesWrites(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		a := newElection(t, s, prefix, "sched", "replica-a")
		b := newElection(t, s, prefix, "sched", "replica-b")
		store, err := statestore.New(s.NewClient(t), statestore.Options{Prefix: prefix, TTL: time.Hour, EventLog: true})
		require.NoError(t, err)
		var guard fencing.Guard

		la, err := a.Campaign(ctx, "a")
		require.NoError(t, err)
		_, err = store.Create(ctx, "sched", la.Term(), statestore.State{Status: statestore.StatusRunning, Data: json.RawMessage(`{"jobs":1}`)})
		require.NoError(t, err)
		require.NoError(t, guard.Apply("sched", la.Term(), func() error { return nil }))

		got := campaignAsync(ctx, b, "b")
		require.NoError(t, la.Resign(ctx))
		res := <-got
		require.NoError(t, res.err)
		lb := res.l
		_, err = store.Save(ctx, "sched", lb.Term(), statestore.State{Status: statestore.StatusRunning, Data: json.RawMessage(`{"jobs":2}`)})
		require.NoError(t, err)
		require.NoError(t, guard.Apply("sched", lb.Term(), func() error { return nil }))

		_, err = store.Save(ctx, "sched", la.Term(), statestore.State{Status: statestore.StatusRunning, Data: json.RawMessage(`{"jobs":99}`)})
		assert.ErrorIs(t, err, fencing.ErrFenced, "the old leader's write is refused")
		err = guard.Apply("sched", la.Term(), func() error { return nil })
		assert.ErrorIs(t, err, fencing.ErrStaleToken)
		st, err := store.Load(ctx, "sched")
		require.NoError(t, err)
		assert.JSONEq(t, `{"jobs":2}`, string(st.Data))

		// The session's event log still reads: election events are lock events.
		evs, _, err := store.Events(ctx, "sched", "", 100)
		require.NoError(t, err)
		assert.NotEmpty(t, evs)
		require.NoError(t, lb.Resign(ctx))
	})
}

func TestNew(t *testing.T) {
	_, err := election.New(nil, "x", election.Options{})
	assert.ErrorIs(t, err, election.ErrNilClient)
	s := redistest.NewMini(t)
	_, err = election.New(s.NewClient(t), "a}b", election.Options{})
	assert.ErrorIs(t, err, election.ErrInvalidName)
	_, err = election.New(s.NewClient(t), "x", election.Options{Lock: lock.Options{TTL: -1}})
	assert.ErrorIs(t, err, lock.ErrInvalidOptions)
}

// Observe misses no term: every term any candidate won shows up as
// "elected", in order, while several candidates churn.
func TestObserveMissesNoTerm(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 60*time.Second)
		prefix := s.Prefix(t)
		watcher := newElection(t, s, prefix, "churn", "watcher")
		octx, stop := context.WithCancel(ctx)
		defer stop()
		elected := make(chan fencing.Token, 256)
		started := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ld, err := range watcher.Observe(octx) {
				if err != nil {
					return
				}
				if ld.Change == "" {
					close(started) // the first state, read before anyone campaigns
				}
				if ld.Change == "elected" {
					elected <- ld.Term
				}
			}
		}()
		select {
		case <-started:
		case <-done:
			t.Fatal("Observe ended before its first state")
		}
		const candidates, rounds = 3, 5
		won := make(chan fencing.Token, candidates*rounds)
		errs := make(chan error, candidates)
		for i := 0; i < candidates; i++ {
			e := newElection(t, s, prefix, "churn", "c"+string(rune('a'+i)))
			go func() {
				for r := 0; r < rounds; r++ {
					l, err := e.Campaign(ctx, "v")
					if err != nil {
						errs <- err
						return
					}
					won <- l.Term()
					if err := l.Resign(ctx); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for i := 0; i < candidates; i++ {
			require.NoError(t, <-errs)
		}
		close(won)
		want := map[fencing.Token]bool{}
		for tok := range won {
			want[tok] = true
		}
		var last fencing.Token
		for len(want) > 0 {
			select {
			case tok := <-elected:
				assert.Greater(t, tok, last, "terms in order")
				last = tok
				assert.True(t, want[tok], "an observed term nobody won: %d", tok)
				delete(want, tok)
			case <-time.After(10 * time.Second):
				t.Fatalf("%d won terms never observed", len(want))
			}
		}
		stop()
		<-done
	})
}
