package statestore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

type evSummary struct {
	Type    statestore.EventType
	Version int64
	Fields  map[string]string
}

func summarize(evs []statestore.Event) []evSummary {
	out := make([]evSummary, len(evs))
	for i, ev := range evs {
		out[i] = evSummary{ev.Type, ev.Version, ev.Fields}
	}
	return out
}

// TestEventsOfStore: each transition of the Store appends its typed event
// with the new version; a compare-and-set that does not match appends
// none; Delete drops the log with the session.
func TestEventsOfStore(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "ev"
		lk := e.acquire(t, id)
		tok := lk.Token()
		_, err := e.store.Create(ctx, id, tok, statestore.State{AgentType: "a", Status: statestore.StatusPending, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		_, err = e.store.Save(ctx, id, tok, statestore.State{AgentType: "a", Status: statestore.StatusPending, Step: 2, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		r, err := e.store.CompareAndSetStatus(ctx, id, tok, []statestore.Status{statestore.StatusRunning}, statestore.StatusCompleted)
		require.NoError(t, err)
		require.False(t, r.OK)
		r, err = e.store.CompareAndSetStatus(ctx, id, tok, []statestore.Status{statestore.StatusPending}, statestore.StatusRunning)
		require.NoError(t, err)
		require.True(t, r.OK)
		_, err = e.store.IncrementResumeCount(ctx, id, tok)
		require.NoError(t, err)
		_, err = e.store.IncrementStep(ctx, id, tok)
		require.NoError(t, err)
		_, err = e.store.AppendMessages(ctx, id, tok, json.RawMessage(`1`), json.RawMessage(`2`))
		require.NoError(t, err)

		evs, next, err := e.store.Events(ctx, id, "", 0)
		require.NoError(t, err)
		assert.Equal(t, []evSummary{
			{statestore.EventCreated, 1, map[string]string{"status": "pending", "step": "0"}},
			{statestore.EventSaved, 2, map[string]string{"status": "pending", "step": "2"}},
			{statestore.EventStatus, 3, map[string]string{"from": "pending", "status": "running"}},
			{statestore.EventResumed, 4, map[string]string{"resume_count": "1"}},
			{statestore.EventStep, 5, map[string]string{"step": "3"}},
			{statestore.EventMessages, 6, map[string]string{"added": "2", "count": "2"}},
		}, summarize(evs))
		for _, ev := range evs {
			assert.Equal(t, tok, ev.Token)
		}
		require.Equal(t, evs[5].Seq, next)

		// Exclusive start, count, and nothing after the end.
		page, n2, err := e.store.Events(ctx, id, evs[1].Seq, 2)
		require.NoError(t, err)
		assert.Equal(t, evs[2:4], page)
		assert.Equal(t, evs[3].Seq, n2)
		page, n3, err := e.store.Events(ctx, id, next, 10)
		require.NoError(t, err)
		assert.Empty(t, page)
		assert.Equal(t, next, n3)

		for _, bad := range []string{"x", "1", "1-", "-1", "1-2-3"} {
			_, _, err := e.store.Events(ctx, id, bad, 1)
			assert.ErrorIs(t, err, statestore.ErrInvalidArgument, bad)
		}
		_, _, err = e.store.Events(ctx, "bad{id}", "", 1)
		assert.ErrorIs(t, err, statestore.ErrInvalidID)

		ok, err := e.store.Delete(ctx, id, tok)
		require.NoError(t, err)
		require.True(t, ok)
		evs, _, err = e.store.Events(ctx, id, "", 0)
		require.NoError(t, err)
		assert.Empty(t, evs, "the log is deleted with the session")
		_, err = e.store.Create(ctx, id, tok, statestore.State{Status: statestore.StatusPending})
		require.NoError(t, err)
		evs, _, err = e.store.Events(ctx, id, "", 0)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		assert.Equal(t, statestore.EventCreated, evs[0].Type)
		assert.Equal(t, int64(1), evs[0].Version)
	})
}

// TestWatch: Watch yields the events already in the log and the ones
// appended while it waits, in order, and stops when its context ends.
func TestWatch(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "watch"
		lk := e.acquire(t, id)
		tok := lk.Token()
		_, err := e.store.Create(ctx, id, tok, statestore.State{Status: statestore.StatusPending})
		require.NoError(t, err)

		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := make(chan statestore.Event, 100)
		done := make(chan error, 1)
		go func() {
			defer close(done)
			for ev, err := range e.store.Watch(wctx, id, "") {
				if err != nil {
					done <- err
					return
				}
				got <- ev
			}
		}()
		const steps = 5
		for range steps {
			time.Sleep(20 * time.Millisecond)
			_, err := e.store.IncrementStep(ctx, id, tok)
			require.NoError(t, err)
		}
		for i := int64(1); i <= steps+1; i++ {
			select {
			case ev := <-got:
				assert.Equal(t, i, ev.Version)
				if i > 1 {
					assert.Equal(t, statestore.EventStep, ev.Type)
				}
			case err := <-done:
				t.Fatalf("watch ended early: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatalf("event %d not received", i)
			}
		}
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("watch did not stop on cancel")
		}
		assert.Empty(t, got)

		// "$": only what comes after; breaking out of the loop stops it.
		var tail []statestore.Event
		w2, cancel2 := context.WithTimeout(ctx, 10*time.Second)
		defer cancel2()
		writer := make(chan struct{})
		go func() { // writes until the watch has seen one: its start is not observable
			defer close(writer)
			for w2.Err() == nil {
				_, _ = e.store.UpdateStatus(w2, id, tok, statestore.StatusRunning)
				time.Sleep(50 * time.Millisecond)
			}
		}()
		for ev, err := range e.store.Watch(w2, id, "$") {
			require.NoError(t, err)
			tail = append(tail, ev)
			break
		}
		cancel2()
		<-writer
		require.Len(t, tail, 1)
		assert.Equal(t, statestore.EventStatus, tail[0].Type)
		assert.Greater(t, tail[0].Version, int64(steps+1))
		all, _, err := e.store.Events(ctx, id, "", 1000)
		require.NoError(t, err)
		assert.Contains(t, all, tail[0])

		for _, err := range e.store.Watch(ctx, id, "nope") {
			assert.ErrorIs(t, err, statestore.ErrInvalidArgument)
		}
	})
}
