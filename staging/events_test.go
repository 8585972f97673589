package staging_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// allEvents reads session id's whole event log, page by page.
func allEvents(t *testing.T, st *statestore.Store, id string) []statestore.Event {
	t.Helper()
	var out []statestore.Event
	after := ""
	for {
		evs, next, err := st.Events(t.Context(), id, after, 7)
		require.NoError(t, err)
		if len(evs) == 0 {
			require.Equal(t, after, next)
			return out
		}
		out = append(out, evs...)
		after = next
	}
}

// TestEventsMatchHistory: goroutines race CompareAndSetStatus and
// stage+Promote on one session; afterwards the event log holds exactly one
// event per accepted write, with its version and type, in version order.
func TestEventsMatchHistory(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "evs"
		lk := e.acquire(t, id)
		tok := lk.Token()
		v0, err := e.store.Create(ctx, id, tok, statestore.State{AgentType: "a", Status: statestore.StatusRunning, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)

		const workers, rounds = 8, 15
		var mu sync.Mutex
		want := map[int64]statestore.EventType{v0: statestore.EventCreated}
		record := func(v int64, typ statestore.EventType) {
			mu.Lock()
			defer mu.Unlock()
			_, dup := want[v]
			assert.False(t, dup, "version %d accepted twice", v)
			want[v] = typ
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					if w%2 == 0 {
						from, to := statestore.StatusRunning, statestore.StatusSuspended
						if r%2 == 1 {
							from, to = to, from
						}
						res, err := e.store.CompareAndSetStatus(ctx, id, tok, []statestore.Status{from}, to)
						if !assert.NoError(t, err) {
							return
						}
						if res.OK {
							record(res.Version, statestore.EventStatus)
						}
						continue
					}
					step := int64(100 + w)
					v, err := e.stager.Stage(ctx, id, step, tok, staging.Change{
						ToolCallID: fmt.Sprintf("c%d", r),
						Patches:    json.RawMessage(fmt.Sprintf(`[{"op":"add","path":"/w%d","value":%d}]`, w, r)),
					})
					if !assert.NoError(t, err) {
						return
					}
					record(v, statestore.EventStaged)
					res, err := e.stager.Promote(ctx, id, step, tok)
					for errors.Is(err, statestore.ErrConflict) { // Promote's own retries ran out under contention
						res, err = e.stager.Promote(ctx, id, step, tok)
					}
					if !assert.NoError(t, err) || !assert.Len(t, res.Applied, 1) {
						return
					}
					record(res.Version, statestore.EventPromoted)
				}
			}()
		}
		wg.Wait()

		evs := allEvents(t, e.store, id)
		st, err := e.store.Load(ctx, id)
		require.NoError(t, err)
		require.Len(t, evs, len(want), "one event per accepted write")
		versions := make([]int64, 0, len(want))
		for v := range want {
			versions = append(versions, v)
		}
		sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
		for i, ev := range evs {
			if i > 0 {
				assert.Greater(t, ev.Version, evs[i-1].Version, "versions strictly increase")
			}
			assert.Equal(t, versions[i], ev.Version)
			assert.Equal(t, want[ev.Version], ev.Type, "event %d", ev.Version)
			assert.Equal(t, tok, ev.Token)
			assert.WithinDuration(t, time.Now(), ev.Time, time.Minute)
		}
		assert.Equal(t, int64(len(evs)), st.Version, "every version from 1 to the current one is in the log")
		assert.Equal(t, st.Version, evs[len(evs)-1].Version)
		// The last status event carries the stored status.
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Type == statestore.EventStatus {
				assert.Equal(t, string(st.Status), evs[i].Fields["status"])
				break
			}
		}
	})
}

// TestEventsStaleWriteAddsNone: a stale holder's Stage, Promote and
// Discard add no event (the rest of its keys are checked by the fencing
// tests), and a discard of nothing adds none either.
func TestEventsStaleWriteAddsNone(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "evstale"
		a := e.acquire(t, id)
		_, err := e.store.Create(ctx, id, a.Token(), statestore.State{Status: statestore.StatusRunning, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		_, err = e.stager.Stage(ctx, id, 1, a.Token(), staging.Change{ToolCallID: "c", Patches: json.RawMessage(`[{"op":"add","path":"/x","value":1}]`)})
		require.NoError(t, err)
		m := s.Do(t, "DEL", e.keys(id).Lock)
		require.NoError(t, m.Error())
		b := e.second(t).acquire(t, id)
		require.Greater(t, b.Token(), a.Token())

		before := allEvents(t, e.store, id)
		require.Len(t, before, 2)
		_, err = e.stager.Stage(ctx, id, 1, a.Token(), staging.Change{ToolCallID: "d", Patches: json.RawMessage(`[]`), Merge: json.RawMessage(`{"y":1}`)})
		assert.Error(t, err)
		_, err = e.stager.Promote(ctx, id, 1, a.Token())
		assert.Error(t, err)
		_, err = e.stager.Discard(ctx, id, 1, a.Token())
		assert.Error(t, err)
		_, err = e.stager.Discard(ctx, id, 7, b.Token()) // nothing staged: no write
		require.NoError(t, err)
		assert.Equal(t, before, allEvents(t, e.store, id))

		n, err := e.stager.Discard(ctx, id, 1, b.Token())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		after := allEvents(t, e.store, id)
		require.Len(t, after, 3)
		assert.Equal(t, statestore.EventDiscarded, after[2].Type)
		assert.Equal(t, b.Token(), after[2].Token)
		assert.Equal(t, map[string]string{"step": "1", "removed": "1"}, after[2].Fields)
	})
}
