package outage_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/memory"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const callTimeout = 300 * time.Millisecond

// limit is how long a call may take: its bound, plus the give-up of a
// lock call (bounded by the TTL, at most 1s), plus scheduling slack on a
// loaded machine. A call that hangs until Redis comes back takes longer
// than the whole outage, which lasts until every call returned or
// hangAfter passed.
const (
	limit     = 4 * time.Second
	hangAfter = 15 * time.Second
)

// TestCallsReturnWhileRedisIsDown makes Redis stop answering - frozen
// (SIGSTOP: connections open, no replies) or gone (SIGKILL: connections
// refused) - and runs every public call with context.Background(). Each
// must return within limit, with an error matching fencing.ErrNoReply.
// Before the fix TryAcquire, Inspect, statestore.Load, memory.Search and
// stream.Read blocked until Redis came back.
func TestCallsReturnWhileRedisIsDown(t *testing.T) {
	for _, mode := range []string{"frozen", "gone"} {
		t.Run(mode, func(t *testing.T) {
			s := redistest.NewPrivateRedis(t)
			c := s.NewClient(t)
			ctx := context.Background()

			locker, err := lock.New(c, lock.Options{TTL: time.Second, CallTimeout: callTimeout, AutoRefresh: false})
			require.NoError(t, err)
			defer locker.Close()
			st, err := statestore.New(c, statestore.Options{CallTimeout: callTimeout, EventLog: true})
			require.NoError(t, err)
			stager := staging.New(st)
			cps := checkpoint.New(st)
			streams := stream.New(st)
			mem, err := memory.New(c, memory.Options{Dim: 4, Backend: memory.BackendScan, CallTimeout: callTimeout})
			require.NoError(t, err)

			// A session with some data, so that reads have something to read.
			lk, err := locker.TryAcquire(ctx, "s")
			require.NoError(t, err)
			tok := lk.Token()
			_, err = st.Create(ctx, "s", tok, statestore.State{Status: statestore.StatusRunning, Data: json.RawMessage(`{}`)})
			require.NoError(t, err)
			_, err = streams.Append(ctx, "s", tok, []byte("x"))
			require.NoError(t, err)
			memLock, err := locker.TryAcquire(ctx, "mem:a") // memory scopes are fenced by the lock named after them
			require.NoError(t, err)
			memTok := memLock.Token()
			require.NoError(t, mem.Put(ctx, []memory.Record{{Scope: "a", ID: "r", Embedding: []float32{1, 0, 0, 0}, Text: "t"}}, memory.WithToken(memTok)))

			calls := map[string]func() error{
				"lock.TryAcquire": func() error { _, err := locker.TryAcquire(ctx, "other"); return err },
				"lock.Acquire":    func() error { _, err := locker.Acquire(ctx, "s"); return err },
				"lock.Inspect":    func() error { _, err := locker.Inspect(ctx, "s"); return err },
				"lock.Refresh":    func() error { return lk.Refresh(ctx) },
				"lock.ForceRelease": func() error {
					_, err := lock.ForceRelease(ctx, c, "s", lock.ForceOptions{Reason: "test", CallTimeout: callTimeout})
					return err
				},
				"statestore.Load":   func() error { _, err := st.Load(ctx, "s"); return err },
				"statestore.Save":   func() error { _, err := st.Save(ctx, "s", tok, statestore.State{Status: "x"}); return err },
				"statestore.Append": func() error { _, err := st.AppendMessages(ctx, "s", tok, json.RawMessage(`1`)); return err },
				"statestore.Messages": func() error {
					_, err := st.Messages(ctx, "s", "", 10)
					return err
				},
				"statestore.Events": func() error { _, _, err := st.Events(ctx, "s", "", 10); return err },
				"staging.Stage": func() error {
					_, err := stager.Stage(ctx, "s", 1, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`{"a":1}`)})
					return err
				},
				"staging.List":      func() error { _, err := stager.List(ctx, "s"); return err },
				"checkpoint.Save":   func() error { _, err := cps.Save(ctx, "s", tok, checkpoint.Checkpoint{Step: 1}); return err },
				"checkpoint.Latest": func() error { _, err := cps.Latest(ctx, "s"); return err },
				"stream.Append":     func() error { _, err := streams.Append(ctx, "s", tok, []byte("y")); return err },
				"stream.Read":       func() error { _, err := streams.Read(ctx, "s", stream.Seq{}, 10); return err },
				"memory.Put": func() error {
					return mem.Put(ctx, []memory.Record{{Scope: "a", ID: "q", Embedding: []float32{0, 1, 0, 0}, Text: "t"}}, memory.WithToken(memTok))
				},
				"memory.Search": func() error {
					_, err := mem.Search(ctx, []float32{1, 0, 0, 0}, memory.SearchOptions{Scope: "a", K: 1})
					return err
				},
				"memory.Count": func() error { _, err := mem.Count(ctx, "a", true); return err },
				"lock.Release": func() error { return lk.Release(ctx) },
			}

			resume := func() {}
			if mode == "frozen" {
				resume = s.Pause(t)
			} else {
				s.Kill(t)
			}
			type result struct {
				name string
				took time.Duration
				err  error
			}
			results := make(chan result, len(calls))
			var wg sync.WaitGroup
			for name, call := range calls {
				wg.Go(func() {
					start := time.Now()
					err := call()
					results <- result{name, time.Since(start), err}
				})
			}
			allDone := make(chan struct{})
			go func() { wg.Wait(); close(allDone) }()
			select {
			case <-allDone:
			case <-time.After(hangAfter):
			}
			close(results)
			got := map[string]result{}
			for r := range results {
				got[r.name] = r
			}
			names := make([]string, 0, len(calls))
			for name := range calls {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				r, ok := got[name]
				if !ok {
					t.Errorf("%s: still blocked after %v", name, hangAfter)
					continue
				}
				t.Logf("%-20s %6.0f ms  %v", name, float64(r.took.Microseconds())/1000, r.err)
				assert.Less(t, r.took, limit, "%s took too long", name)
				if !assert.Error(t, r.err, name) {
					continue
				}
				assert.True(t, errors.Is(r.err, fencing.ErrNoReply), "%s: %v does not match fencing.ErrNoReply", name, r.err)
			}
			resume()
			select { // calls that hung return once Redis answers again
			case <-allDone:
			case <-time.After(hangAfter):
				t.Errorf("calls still blocked after Redis came back")
			}
		})
	}
}
