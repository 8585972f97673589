package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/chaos/history"
	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/internal/mutant"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/semaphore"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
	"github.com/fencekit/fencekit/usage"
)

// executorEnv holds the JSON ExecConfig of an executor subprocess.
const executorEnv = "FENCEKIT_CHAOS_EXECUTOR"

// Executor roles.
const (
	RoleSessions = "sessions" // the session workload
	RoleIncr     = "incr"     // plain INCR counters (the Sentinel baseline)
)

// Mutants: deliberately broken behaviour, only ever enabled in an executor
// subprocess (see ExecConfig.Mutant).
const (
	MutantNoFence     = "nofence"        // state_save.lua without its fence check
	MutantIncrToken   = "incr-token"     // acquire mints fence+1, not max(fence+1, TIME)
	MutantNoWait      = "nowait"         // durable mode without WAIT, still counted as acknowledged
	MutantRetryAppend = "retry-append"   // stream_append.lua (not idempotent) marked retryable
	MutantKeepMsgs    = "keep-msgs"      // state_delete.lua leaves the messages: the next incarnation inherits them
	MutantNoDedupe    = "usage-nodedupe" // usage_record.lua counts an entry id it has recorded already
	MutantSemUncount  = "sem-uncount"    // the semaphore scripts leave one live holder out of the count
	MutantTermReuse   = "term-reuse"     // acquire.lua (the election's term) reuses the fence instead of minting above it
)

// Usage workload: every budget op reserves BudgetReserve tokens on the
// session's budget and the scope BudgetScope's and commits BudgetCommit.
// The runner sets the limits (SessionBudget, ScopeBudget) before the
// executors start, small enough to be reached in a short run.
const (
	BudgetScope   = "tenant"
	BudgetReserve = 10
	BudgetCommit  = 7
	SessionBudget = 350
	ScopeBudget   = 1400
	budgetHold    = 2 * time.Second
)

// ExecConfig configures one executor subprocess.
type ExecConfig struct {
	Role        string        `json:"role"`
	Process     int           `json:"process"`
	Spec        ClientSpec    `json:"spec"`
	Prefix      string        `json:"prefix"`
	Sessions    []string      `json:"sessions"`
	Workers     int           `json:"workers"`
	TTL         time.Duration `json:"ttl"`
	AutoRefresh bool          `json:"auto_refresh"`
	MinReplicas int           `json:"min_replicas"` // durable mode: every replica
	OpTimeout   time.Duration `json:"op_timeout"`
	Out         string        `json:"out"`
	Seed        uint64        `json:"seed"`
	Mutant      string        `json:"mutant,omitempty"`
	// Recreate makes about one round in four a round of the recreate
	// workload (see recreate.go).
	Recreate bool `json:"recreate,omitempty"`
	// NoGiveUp turns off the give-up pattern (a quarter of the waits end
	// after 0-3 ms): the negative controls keep the workload they were
	// calibrated with.
	NoGiveUp bool `json:"no_give_up,omitempty"`
	// NoUsage leaves the usage workload (Record, Reserve+Commit) out of
	// the rounds, for the negative controls calibrated without it.
	NoUsage bool `json:"no_usage,omitempty"`
	// Think, when positive, makes an executor work for a random 0-Think
	// between taking the lock and its first write, so that a pause can
	// land while it holds the lease (the nofence control needs stale
	// holders: Acquire no longer returns a lease that ended while the
	// waiter was paused).
	Think time.Duration `json:"think,omitempty"`
	// Semaphore makes about one round in four a round of the semaphore
	// workload, Election one in four a round of the election workload
	// (see coord.go).
	Semaphore bool `json:"semaphore,omitempty"`
	Election  bool `json:"election,omitempty"`
	// CoordOnly makes every round one of the semaphore or election
	// workload (whichever are on, half and half): the negative controls
	// of those workloads need them busy on a loaded machine.
	CoordOnly bool `json:"coord_only,omitempty"`
}

// MaybeExecutor runs the executor described by the environment and exits,
// when the process was started as one by [Run]; otherwise it returns at
// once. Call it first in main (and in TestMain of tests that call Run).
func MaybeExecutor() {
	v := os.Getenv(executorEnv)
	if v == "" {
		return
	}
	var cfg ExecConfig
	if err := json.Unmarshal([]byte(v), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "executor: bad config:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := RunExecutor(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "executor %d: %v\n", cfg.Process, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// applyMutant swaps a script for a broken copy. Only executor subprocesses
// call it.
func applyMutant(m string) error {
	var err error
	switch m {
	case "", MutantNoWait:
	case MutantNoFence:
		lua.StateSave, err = mutant.Of(lua.StateSave,
			"local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])",
			"local tok, e1 = fk_num(ARGV[1]), nil", false)
	case MutantIncrToken:
		// Both places that mint: the full path and the uncontended fast
		// path above the libraries.
		lua.Acquire, err = mutant.Of(lua.Acquire,
			"local tok = fk_mint(fence_val, now_us)",
			"local tok = fk_mint(fence_val, 0)", true)
		if err == nil {
			lua.Acquire, err = mutant.Of(lua.Acquire,
				"if f + 1 > us then us = f + 1 end",
				"us = f + 1", true)
		}
	case MutantRetryAppend:
		lua.StreamAppend, err = mutant.Of(lua.StreamAppend, "Retryable: no", "Retryable: yes (mutant)", true)
	case MutantKeepMsgs:
		lua.StateDelete, err = mutant.Of(lua.StateDelete,
			"for i = 3, 10 do redis.call('DEL', KEYS[i]) end",
			"for i = 3, 10 do if i ~= 4 then redis.call('DEL', KEYS[i]) end end", false)
	case MutantSemUncount:
		// Every semaphore script counts with fk_sem_holders: the first
		// live holder's permits are left out.
		for _, sc := range []**lua.Script{&lua.SemAcquire, &lua.SemRelease, &lua.SemLimit} {
			if err == nil {
				*sc, err = mutant.Of(*sc, "      used = used + n\n", "      if i > 1 or k > 1 then used = used + n end\n", (*sc).Retryable())
			}
		}
	case MutantTermReuse:
		// The term is the lock's token: every place that mints it (a
		// grant by acquire.lua, a hand-off by release.lua, the fast
		// path) reuses the fence when there is one.
		for _, sc := range []**lua.Script{&lua.Acquire, &lua.Release} {
			if err == nil {
				*sc, err = mutant.Of(*sc, "local tok = fk_mint(fence_val, now_us)",
					"local tok = fk_mint(fence_val - 1, fence_val > 0 and 0 or now_us)", (*sc).Retryable())
			}
		}
		if err == nil {
			lua.Acquire, err = mutant.Of(lua.Acquire,
				"if f + 1 > us then us = f + 1 end",
				"if f > 0 then us = f end", true)
		}
	case MutantNoDedupe:
		lua.UsageRecord, err = mutant.Of(lua.UsageRecord,
			"if seen[id] or redis.call('HEXISTS', KEYS[6], id) == 1 then",
			"if seen[id] then", true)
	default:
		err = fmt.Errorf("unknown mutant %q", m)
	}
	return err
}

// RunExecutor runs the workload of cfg until ctx ends.
func RunExecutor(ctx context.Context, cfg ExecConfig) error {
	if err := applyMutant(cfg.Mutant); err != nil {
		return err
	}
	rec, err := newRecorder(cfg.Out)
	if err != nil {
		return err
	}
	defer rec.close()
	var client rueidis.Client
	for {
		client, err = rueidis.NewClient(cfg.Spec.Option())
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer client.Close()
	if cfg.Role == RoleIncr {
		return runIncr(ctx, cfg, client, rec)
	}
	minRep := cfg.MinReplicas
	if cfg.Mutant == MutantNoWait {
		minRep = 0
	}
	locker, err := lock.New(client, lock.Options{
		Prefix:         cfg.Prefix,
		TTL:            cfg.TTL,
		Owner:          "p" + strconv.Itoa(cfg.Process),
		AutoRefresh:    cfg.AutoRefresh,
		RetryInterval:  50 * time.Millisecond,
		MinReplicas:    minRep,
		ReplicaTimeout: cfg.OpTimeout / 2,
	})
	if err != nil {
		return err
	}
	defer locker.Close()
	var sc rueidis.Client = client
	if minRep > 0 {
		sc = &waitClient{Client: client, n: int64(minRep), timeout: cfg.OpTimeout / 2}
	}
	store, err := statestore.New(sc, statestore.Options{Prefix: cfg.Prefix, TTL: time.Hour, EventLog: true})
	if err != nil {
		return err
	}
	meter, err := usage.New(sc, usage.Options{Prefix: cfg.Prefix, EntryTTL: time.Hour, HoldTTL: budgetHold})
	if err != nil {
		return err
	}
	e := &executor{cfg: cfg, rec: rec, locker: locker, store: store,
		stager: staging.New(store), streams: stream.New(store), cps: checkpoint.New(store), meter: meter}
	if cfg.Semaphore {
		if e.sem, err = semaphore.New(client, SemName, semOptions(cfg.Prefix, "p"+strconv.Itoa(cfg.Process), cfg.TTL, minRep, cfg.OpTimeout)); err != nil {
			return err
		}
		defer e.sem.Close()
	}
	if cfg.Election {
		e.elect, err = election.New(client, ElectName, election.Options{Lock: lock.Options{
			Prefix: cfg.Prefix, TTL: cfg.TTL, Owner: "p" + strconv.Itoa(cfg.Process), RetryInterval: 50 * time.Millisecond,
			MinReplicas: minRep, ReplicaTimeout: cfg.OpTimeout / 2,
		}})
		if err != nil {
			return err
		}
		defer e.elect.Close()
	}
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Process)<<16|uint64(w)))
			for ctx.Err() == nil {
				if cfg.CoordOnly && (cfg.Semaphore || cfg.Election) {
					if cfg.Semaphore && (!cfg.Election || rng.IntN(2) == 0) {
						e.semRound(ctx, rng)
					} else {
						e.electRound(ctx, rng)
					}
					continue
				}
				if cfg.Recreate && rng.IntN(4) == 0 {
					e.recreateRound(ctx, rng)
					continue
				}
				if cfg.Semaphore && rng.IntN(4) == 0 {
					e.semRound(ctx, rng)
					continue
				}
				if cfg.Election && rng.IntN(4) == 0 {
					e.electRound(ctx, rng)
					continue
				}
				e.round(ctx, rng)
			}
		}()
	}
	wg.Wait()
	return nil
}

type executor struct {
	cfg     ExecConfig
	rec     *recorder
	locker  *lock.Locker
	store   *statestore.Store
	stager  *staging.Stager
	streams *stream.Streams
	cps     *checkpoint.Store
	meter   *usage.Store
	sem     *semaphore.Semaphore // the semaphore workload's, or nil
	elect   *election.Election   // the election workload's, or nil
	n       atomic.Int64
}

// usageRecords is how many times a round records its usage entry: once or
// twice (a retry by id), none with NoUsage.
func (e *executor) usageRecords(rng *rand.Rand) int {
	if e.cfg.NoUsage {
		return 0
	}
	return 1 + rng.IntN(2)
}

func (e *executor) uniq() string {
	return "p" + strconv.Itoa(e.cfg.Process) + "-" + strconv.FormatInt(e.n.Add(1), 10)
}

// call runs fn as op with its own timeout (never the lease's context: a
// holder that missed the end of its lease must still reach the server, so
// that the server's fence check is what stops it).
func (e *executor) call(ctx context.Context, op *history.Op, fn func(ctx context.Context) error) error {
	e.rec.begin(op)
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.OpTimeout)
	err := fn(octx)
	cancel()
	e.rec.end(op, err)
	return err
}

// round is one session round: acquire, save, stage, promote, stream append,
// checkpoint, status CAS, load, release. After acquire every step runs even
// when an earlier one was refused: a stale holder keeps trying to write,
// which is what the checkers must see refused.
func (e *executor) round(ctx context.Context, rng *rand.Rand) {
	s := e.cfg.Sessions[rng.IntN(len(e.cfg.Sessions))]
	p := e.cfg.Process
	var lk *lock.Lock
	acq := history.Op{Process: p, Session: s, Kind: "acquire"}
	e.rec.begin(&acq)
	wait := 4*e.cfg.TTL + e.cfg.OpTimeout
	if !e.cfg.NoGiveUp && rng.IntN(4) == 0 {
		// The give-up pattern: a wait with a deadline of 0-3 ms, which
		// usually ends while a look is in flight or just after the
		// waiter queued. A waiter that gives up must never be granted
		// the lock (it would stay held by nobody until its TTL).
		wait = time.Duration(rng.IntN(4)) * time.Millisecond
	}
	actx, cancel := context.WithTimeout(ctx, wait)
	lk, err := e.locker.Acquire(actx, s)
	cancel()
	if err == nil {
		acq.Token = uint64(lk.Token())
	}
	if err != nil && ctx.Err() != nil {
		// Shutting down: the wait was cut short by us, not by a fault.
		err = errors.Join(err, context.Canceled)
	}
	e.rec.end(&acq, err)
	if err != nil {
		if acq.Status != history.Fail {
			time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		}
		return
	}
	tok := lk.Token()
	t := uint64(tok)
	step := rng.Int64N(1 << 40)
	if e.cfg.Think > 0 {
		time.Sleep(time.Duration(rng.Int64N(int64(e.cfg.Think))))
	}

	val := e.uniq()
	data, _ := json.Marshal(map[string]any{"v": val, "p": 0})
	op := history.Op{Process: p, Session: s, Kind: "save", Token: t, In: val, SessionStatus: string(statestore.StatusRunning)}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		v, err := e.store.Save(ctx, s, tok, statestore.State{AgentType: "chaos", Status: statestore.StatusRunning, Step: step, Data: data})
		op.Version = v
		return err
	})

	call := "c" + strconv.Itoa(rng.IntN(4))
	op = history.Op{Process: p, Session: s, Kind: "stage", Token: t, In: fmt.Sprintf("%d/%s", step, call)}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		patch := fmt.Sprintf(`[{"op":"add","path":"/p","value":%d}]`, rng.IntN(1000))
		v, err := e.stager.Stage(ctx, s, step, tok, staging.Change{ToolCallID: call, Patches: json.RawMessage(patch)})
		op.Version = v
		return err
	})

	op = history.Op{Process: p, Session: s, Kind: "promote", Token: t, In: strconv.FormatInt(step, 10)}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		r, err := e.stager.Promote(ctx, s, step, tok)
		op.Version = r.Version
		if err == nil && len(r.Applied) == 0 && len(r.Skipped) == 0 {
			op.Out = history.OutNoop
		}
		return err
	})

	chunk := e.uniq()
	op = history.Op{Process: p, Session: s, Kind: "append", Token: t, In: chunk}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		seq, err := e.streams.Append(ctx, s, tok, []byte(chunk))
		if err == nil {
			op.Out = seq.String()
		}
		return err
	})

	op = history.Op{Process: p, Session: s, Kind: "checkpoint", Token: t, In: strconv.FormatInt(step, 10)}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		id, err := e.cps.Save(ctx, s, tok, checkpoint.Checkpoint{Step: step, State: data})
		op.Out = id
		return err
	})

	// Usage: one entry, recorded once or twice (a retry by the same
	// executor, as after a lost reply: counted once), then a budget op.
	eid := e.uniq()
	toks := int64(1 + rng.IntN(100))
	for range e.usageRecords(rng) {
		op = history.Op{Process: p, Session: s, Kind: history.KindUsage, Token: t, In: eid, Out: strconv.FormatInt(toks, 10)}
		_ = e.call(ctx, &op, func(ctx context.Context) error {
			_, err := e.meter.Record(ctx, s, tok, usage.Entry{ID: eid, Kind: usage.KindTokens, Step: step & 0xffff,
				Tokens: usage.Tokens{Prompt: toks}})
			return err
		})
	}
	op = history.Op{Process: p, Session: s, Kind: history.KindBudget, Token: t, In: strconv.Itoa(BudgetCommit)}
	if !e.cfg.NoUsage {
		_ = e.call(ctx, &op, func(ctx context.Context) error {
			r, err := e.meter.Reserve(ctx, s, usage.Amount{Tokens: BudgetReserve}, BudgetScope)
			if err != nil {
				// Set only now: an executor killed in Commit leaves an
				// invocation without it, which may have charged.
				op.Out = history.OutNoCommit
				return err
			}
			op.Out = r.ID()
			if err := r.Commit(ctx, usage.Amount{Tokens: BudgetCommit}); err != nil {
				// Some budgets may have been charged: never a refusal.
				return fmt.Errorf("%w: commit: %v", errCommitUnknown, err)
			}
			return nil
		})
	}

	from, to := statestore.StatusRunning, statestore.StatusSuspended
	if rng.IntN(2) == 0 {
		from, to = to, from
	}
	op = history.Op{Process: p, Session: s, Kind: "cas", Token: t, In: string(from) + ">" + string(to)}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		r, err := e.store.CompareAndSetStatus(ctx, s, tok, []statestore.Status{from}, to)
		if err != nil {
			return err
		}
		if !r.OK {
			op.Out, op.Version = string(r.CurrentStatus), r.CurrentVersion
			return errCASMismatch
		}
		op.Out, op.Version = string(from), r.Version
		return nil
	})

	op = history.Op{Process: p, Session: s, Kind: "load"}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		st, err := e.store.Load(ctx, s)
		if err != nil {
			if errors.Is(err, statestore.ErrNotFound) {
				return nil // Out "" and Version 0: no session (lost with a restart)
			}
			return err
		}
		var d struct {
			V string `json:"v"`
		}
		_ = json.Unmarshal(st.Data, &d)
		op.Token, op.Out, op.Version, op.SessionStatus = uint64(st.Fence), d.V, st.Version, string(st.Status)
		return nil
	})

	op = history.Op{Process: p, Session: s, Kind: "release", Token: t}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		return lk.Release(ctx)
	})
}

// runIncr is the plain INCR baseline: INCR a counter every 5ms and record
// each acknowledged value as an "incr" op with Token = the value.
func runIncr(ctx context.Context, cfg ExecConfig, c rueidis.Client, rec *recorder) error {
	key := cfg.Prefix + ":incr"
	for ctx.Err() == nil {
		op := history.Op{Process: cfg.Process, Session: "incr", Kind: "incr"}
		rec.begin(&op)
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.OpTimeout)
		v, err := c.Do(octx, c.B().Incr().Key(key).Build()).AsInt64()
		cancel()
		if err == nil {
			op.Token = uint64(v)
		}
		rec.end(&op, err)
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
