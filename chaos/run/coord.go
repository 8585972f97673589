package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/chaos/history"
	"github.com/fencekit/fencekit/semaphore"
)

// The semaphore workload (Config.Semaphore): one semaphore of SemLimit
// permits (Options.Limit) whose stored limit a worker sometimes sets to
// one of SemLimits; holders take 1 or 2 permits.
const (
	SemName  = history.SemPrefix + "0"
	SemLimit = 3
	// ElectName is the election workload's election (Config.Election).
	ElectName = history.ElectPrefix + "0"
)

// SemLimits are the limits the semaphore workload stores at run time.
var SemLimits = []int64{2, 3, 4}

// semOptions are the semaphore options of the workload (the runner's
// drain uses them too).
func semOptions(prefix, owner string, ttl time.Duration, minReplicas int, opTimeout time.Duration) semaphore.Options {
	return semaphore.Options{
		Prefix: prefix, Limit: SemLimit, TTL: ttl, Owner: owner, RetryInterval: 50 * time.Millisecond,
		MinReplicas: minReplicas, ReplicaTimeout: opTimeout / 2,
	}
}

// semRound is one round of the semaphore workload: now and then a limit
// change; otherwise Acquire of 1 or 2 permits (a quarter of the waits
// given up after 0-3 ms, as in the session rounds), a hold of 0-TTL/2 with
// a Refresh half the time (a pause can land in it: the permits then run
// out while their holder still works), and Release.
func (e *executor) semRound(ctx context.Context, rng *rand.Rand) {
	p := e.cfg.Process
	if rng.IntN(10) == 0 {
		l := SemLimits[rng.IntN(len(SemLimits))]
		op := history.Op{Process: p, Session: SemName, Kind: history.KindSemLimit, In: strconv.FormatInt(l, 10)}
		_ = e.call(ctx, &op, func(ctx context.Context) error {
			_, err := e.sem.SetLimit(ctx, l)
			return err
		})
		return
	}
	n := int64(1 + rng.IntN(2))
	g := history.SemGrant{Limit: SemLimit, TTL: int64(e.cfg.TTL)}
	acq := history.Op{Process: p, Session: SemName, Kind: history.KindSemAcquire, In: strconv.FormatInt(n, 10)}
	acq.Data, _ = json.Marshal(g)
	e.rec.begin(&acq)
	wait := 4*e.cfg.TTL + e.cfg.OpTimeout
	if !e.cfg.NoGiveUp && rng.IntN(4) == 0 {
		wait = time.Duration(rng.IntN(4)) * time.Millisecond
	}
	actx, cancel := context.WithTimeout(ctx, wait)
	pm, err := e.sem.Acquire(actx, n)
	cancel()
	if err == nil {
		acq.Token = uint64(pm.Token())
		// The lease began at Deadline - TTL by this process's clock;
		// Mono and time.Now both read CLOCK_MONOTONIC here.
		g.From = Mono() - int64(time.Since(pm.Deadline().Add(-e.cfg.TTL)))
		acq.Data, _ = json.Marshal(g)
	}
	if err != nil && ctx.Err() != nil {
		err = errors.Join(err, context.Canceled)
	}
	e.rec.end(&acq, err)
	if err != nil {
		if acq.Status != history.Fail {
			time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		}
		return
	}
	t := uint64(pm.Token())
	time.Sleep(time.Duration(rng.Int64N(int64(e.cfg.TTL) / 2)))
	if rng.IntN(2) == 0 {
		op := history.Op{Process: p, Session: SemName, Kind: history.KindSemRefresh, Token: t}
		_ = e.call(ctx, &op, pm.Refresh)
		time.Sleep(time.Duration(rng.Int64N(int64(e.cfg.TTL) / 2)))
	}
	op := history.Op{Process: p, Session: SemName, Kind: history.KindSemRelease, Token: t}
	_ = e.call(ctx, &op, pm.Release)
}

// electRound is one round of the election workload: Campaign, a think
// time of 0-TTL (a pause can land in it), two Proclaims fenced by the
// term, and Resign.
func (e *executor) electRound(ctx context.Context, rng *rand.Rand) {
	p := e.cfg.Process
	val := e.uniq()
	camp := history.Op{Process: p, Session: ElectName, Kind: history.KindElCampaign, In: val}
	e.rec.begin(&camp)
	wait := 4*e.cfg.TTL + e.cfg.OpTimeout
	if !e.cfg.NoGiveUp && rng.IntN(4) == 0 {
		wait = time.Duration(rng.IntN(4)) * time.Millisecond
	}
	actx, cancel := context.WithTimeout(ctx, wait)
	l, err := e.elect.Campaign(actx, val)
	cancel()
	if err == nil {
		camp.Token = uint64(l.Term())
	}
	if err != nil && ctx.Err() != nil {
		err = errors.Join(err, context.Canceled)
	}
	e.rec.end(&camp, err)
	if err != nil {
		if camp.Status != history.Fail {
			time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		}
		return
	}
	t := uint64(l.Term())
	time.Sleep(time.Duration(rng.Int64N(int64(e.cfg.TTL))))
	for range 2 {
		v := e.uniq()
		op := history.Op{Process: p, Session: ElectName, Kind: history.KindElWrite, Token: t, In: v}
		_ = e.call(ctx, &op, func(ctx context.Context) error { return l.Proclaim(ctx, v) })
	}
	op := history.Op{Process: p, Session: ElectName, Kind: history.KindElResign, Token: t}
	_ = e.call(ctx, &op, l.Resign)
}

// semDrain waits until no lease of the semaphore workload is live and no
// waiter polls (the executors are stopped; a server clock stepped back can
// make leases last longer), then takes every permit of the limit in
// effect at once: a permit lost (counted as held by nobody live) makes it
// fail. Its op is recorded for the checker.
func (o *orchestrator) semDrain(ctx context.Context) (history.Op, error) {
	op := history.Op{Process: 0, Session: SemName, Kind: history.KindSemDrain}
	client, err := rueidis.NewClient(o.top.Spec().Option())
	if err != nil {
		return op, err
	}
	defer client.Close()
	sem, err := semaphore.New(client, SemName, semOptions("chaos", "drain", o.cfg.TTL, 0, o.cfg.OpTimeout))
	if err != nil {
		return op, err
	}
	defer sem.Close()
	var last error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		op.Call = Mono()
		var info semaphore.Info
		info, last = sem.Inspect(rctx)
		busy := last != nil || len(info.Holders) > 0
		for _, w := range info.Waiters {
			busy = busy || w.Alive
		}
		if !busy {
			op.In = strconv.FormatInt(info.Limit, 10)
			var pm *semaphore.Permits
			if pm, last = sem.TryAcquire(rctx, info.Limit); last == nil {
				op.Return, op.Status, op.Token = Mono(), history.OK, uint64(pm.Token())
				_ = pm.Release(rctx)
				cancel()
				return op, nil
			}
			if errors.Is(last, semaphore.ErrNotAcquired) {
				op.Return, op.Status, op.Err = Mono(), history.Fail, last.Error()
				cancel()
				return op, nil
			}
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	if last == nil {
		// Holders still live 20 s after the executors stopped: their
		// permits are lost to everyone else.
		op.Return, op.Status, op.Err = Mono(), history.Fail, "holders still live 20s after every executor stopped"
		return op, nil
	}
	return op, fmt.Errorf("run: semaphore drain: %w", last)
}
