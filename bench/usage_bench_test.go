package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/usage"
)

// BenchmarkUsage measures package usage on the real redis-server: a fenced
// Record of one LLM entry beside a raw RPUSH of the same JSON (the floor),
// and Reserve+Commit on a session budget (and on a session plus a scope
// budget) beside a raw INCRBY (the floor), at parallelism 1 and 64.
// Sub-benchmarks are named op=<op>/impl=<impl>/par=<goroutines>, so
//
//	benchstat -filter .name:Usage -row /op,/par -col /impl out.txt
//
// puts fencekit and the floors side by side. It reuses the harness of
// BenchmarkState (ops/s, p50/p99, Redis and client CPU per op).
func BenchmarkUsage(b *testing.B) {
	for _, sb := range usageBenches {
		b.Run(fmt.Sprintf("op=%s/impl=%s/par=%d", sb.op, sb.impl, sb.par), func(b *testing.B) {
			runState(b, sb)
		})
	}
}

var usageBenches = []stateBench{
	// The floors first: benchstat takes the first column as the base.
	{"record", "rpush-floor", 1, openRpushFloor},
	{"record", "fencekit", 1, openRecord},
	{"record", "rpush-floor", 64, openRpushFloor},
	{"record", "fencekit", 64, openRecord},
	{"reserve-commit", "incrby-floor", 1, openIncrbyFloor},
	{"reserve-commit", "fencekit-session", 1, openReserveSession},
	{"reserve-commit", "fencekit-session+scope", 1, openReserveScope},
	{"reserve-commit", "incrby-floor", 64, openIncrbyFloor},
	{"reserve-commit", "fencekit-session", 64, openReserveSession},
	{"reserve-commit", "fencekit-session+scope", 64, openReserveScope},
}

// usageStore returns a usage.Store on the env's client and prefix, and
// registers the usage keys of session id for deletion after the run.
func usageStore(b *testing.B, e *stateEnv, id string) *usage.Store {
	st, err := usage.New(e.c, usage.Options{Prefix: e.prefix, EntryTTL: time.Hour})
	if err != nil {
		b.Fatalf("usage.New: %v", err)
	}
	k := keys.ForUsage(e.prefix, id)
	d := k.Data()
	e.floorKeys = append(e.floorKeys, d[:]...)
	e.floorKeys = append(e.floorKeys, k.Budget.All()...)
	return st
}

// benchEntry is the LLM entry every Record writes (with a new ID each time).
func benchEntry(id string) usage.Entry {
	return usage.Entry{ID: id, Kind: usage.KindTokens, Step: 3, Source: "planner", Model: "model-x",
		Tokens: usage.Tokens{Prompt: 1200, Completion: 300, Cached: 800}, Cost: 4500}
}

// --- record: Store.Record of one entry vs RPUSH of its JSON ---

type recordWorker struct {
	st    *usage.Store
	id    string
	token fencing.Token
	n     int
}

// openRecord gives goroutine i a session of its own with its lock held for
// the run; every op records one new LLM entry (strict fencing, dedupe by
// id, rollup per kind, model and source, TTLs on every usage key).
func openRecord(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	id, tok := e.session(b, ctx, "u"+strconv.Itoa(i), benchDoc(checkpointDocBytes))
	return &recordWorker{st: usageStore(b, e, id), id: id, token: tok}
}

func (w *recordWorker) do(ctx context.Context) error {
	w.n++
	_, err := w.st.Record(ctx, w.id, w.token, benchEntry("e"+strconv.Itoa(w.n)))
	return err
}

type pinnedWorker struct {
	c   rueidis.Client
	cmd rueidis.Completed
}

func (w *pinnedWorker) do(ctx context.Context) error { return w.c.Do(ctx, w.cmd).Error() }

// openRpushFloor: RPUSH <key> <the entry's JSON>, no id, no rollup, no TTL.
func openRpushFloor(b *testing.B, _ context.Context, e *stateEnv, i int) stateWorker {
	key := e.prefix + ":{f" + strconv.Itoa(i) + "}:ulog"
	e.floorKeys = append(e.floorKeys, key)
	raw, _ := json.Marshal(map[string]any{"id": "e1", "kind": "tokens", "step": 3, "at": time.Now().UnixMilli(),
		"source": "planner", "model": "model-x", "prompt": 1200, "completion": 300, "cached": 800, "total": 1500, "cost": 4500})
	return &pinnedWorker{c: e.c, cmd: e.c.B().Rpush().Key(key).Element(string(raw)).Build().Pin()}
}

// openIncrbyFloor: INCRBY <key> 1500, the spend counter without limits,
// holds or expiry.
func openIncrbyFloor(b *testing.B, _ context.Context, e *stateEnv, i int) stateWorker {
	key := e.prefix + ":{f" + strconv.Itoa(i) + "}:spent"
	e.floorKeys = append(e.floorKeys, key)
	return &pinnedWorker{c: e.c, cmd: e.c.B().Incrby().Key(key).Increment(1500).Build().Pin()}
}

// --- reserve-commit: Reserve 2000 tokens, Commit 1500 ---

type reserveWorker struct {
	st     *usage.Store
	id     string
	scopes []string
}

func openReserve(b *testing.B, ctx context.Context, e *stateEnv, i int, scope bool) stateWorker {
	id := "b" + strconv.Itoa(i)
	w := &reserveWorker{st: usageStore(b, e, id), id: id}
	// Limits far above what a run spends: every reservation fits.
	if err := w.st.SetSessionBudget(ctx, id, usage.Limit{Tokens: usage.MaxAmount}); err != nil {
		b.Fatalf("SetSessionBudget: %v", err)
	}
	if scope {
		w.scopes = []string{"tenant"} // one scope budget shared by every goroutine
		kb := keys.ForBudget(e.prefix, "tenant")
		e.floorKeys = append(e.floorKeys, kb.All()...)
		if err := w.st.SetBudget(ctx, "tenant", usage.Limit{Tokens: usage.MaxAmount}); err != nil {
			b.Fatalf("SetBudget: %v", err)
		}
	}
	return w
}

func openReserveSession(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	return openReserve(b, ctx, e, i, false)
}

func openReserveScope(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	return openReserve(b, ctx, e, i, true)
}

func (w *reserveWorker) do(ctx context.Context) error {
	r, err := w.st.Reserve(ctx, w.id, usage.Amount{Tokens: 2000}, w.scopes...)
	if err != nil {
		return err
	}
	return r.Commit(ctx, usage.Amount{Tokens: 1500})
}
