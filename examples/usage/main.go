// Command usage runs three agent executors that spend LLM tokens under one
// tenant budget, each starting sub-agents in parallel, and checks that the
// usage fencekit recorded is what the "provider" really billed, counted
// once, and that the budget was never exceeded.
//
// Executor 1, 2 and 3 each run a root session of four steps. A step starts
// two sub-agent sessions in parallel (each makes two LLM calls), links
// them (KindSubAgent entries), then makes the root's own LLM call: Reserve
// its worst case on the session and the tenant budget, call, Commit what
// was used, Record the entry. Reservations the tenant budget refuses stop
// that session. Executor 2 crashes in step 2 right after recording its
// call, without releasing its lease. Once the lease is over, executor 4
// resumes the session: it redoes step 2, finds the call's result in the
// transcript, records it again - counted once - and goes on. Then executor
// 2 wakes up and tries to record with its old token: refused.
//
// It runs on an embedded miniredis unless REDIS_URL names a real server.
// Exit status: 0 when every check holds, 1 when one does not, 2 on any
// other failure.
//
//	go run ./examples/usage
package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/usage"
)

const (
	tenant      = "tenant-acme"
	tenantLimit = 45_000 // tokens: less than the executors would spend
	worstCase   = 2_000  // tokens reserved before each call
	steps       = 4
	lease       = 2 * time.Second
	microPerTok = 3 // cost in micro-units per token
)

// provider is the LLM provider's bill: what was really spent, call by call.
type provider struct {
	mu     sync.Mutex
	calls  int
	tokens int64
	cost   usage.Cost
}

func (p *provider) call(rng *rand.Rand) usage.Tokens {
	t := usage.Tokens{Prompt: 300 + rng.Int64N(900), Completion: 50 + rng.Int64N(400)}
	p.mu.Lock()
	p.calls++
	p.tokens += t.Prompt + t.Completion
	p.cost += usage.Cost((t.Prompt + t.Completion) * microPerTok)
	p.mu.Unlock()
	return t
}

// transcript keeps each call's result, as a session's messages would: a
// resumed executor finds there what its predecessor got.
type transcript struct {
	sync.Map // "<session>/<entry id>" -> usage.Tokens
}

type executor struct {
	name    string
	locker  *lock.Locker
	meter   *usage.Store
	bill    *provider
	log     *transcript
	refused *int64
	mu      *sync.Mutex
}

var errCrash = errors.New("crashed")

func (x *executor) printf(format string, a ...any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	fmt.Printf("%-11s "+format+"\n", append([]any{x.name}, a...)...)
}

// llm makes one call of session at entry id, unless the transcript has
// its result already; either way the entry is recorded (once).
func (x *executor) llm(ctx context.Context, session string, tok fencing.Token, id string, step int64, rng *rand.Rand) (bool, error) {
	key := session + "/" + id
	t, done := x.log.Load(key)
	if !done {
		res, err := x.meter.Reserve(ctx, session, usage.Amount{Tokens: worstCase, Cost: worstCase * microPerTok}, tenant)
		if errors.Is(err, usage.ErrOverBudget) {
			x.mu.Lock()
			*x.refused++
			x.mu.Unlock()
			return false, nil
		}
		if err != nil {
			return false, err
		}
		tk := x.bill.call(rng)
		x.log.Store(key, tk)
		used := tk.Prompt + tk.Completion
		if err := res.Commit(ctx, usage.Amount{Tokens: used, Cost: usage.Cost(used * microPerTok)}); err != nil {
			return false, err
		}
		t = tk
	}
	tk := t.(usage.Tokens)
	e := usage.Entry{ID: id, Kind: usage.KindTokens, Step: step, Source: x.name, Model: "model-x", Tokens: tk,
		Cost: usage.Cost((tk.Prompt + tk.Completion) * microPerTok)}
	r, err := x.meter.Record(ctx, session, tok, e)
	if err != nil {
		return false, err
	}
	if done {
		x.printf("%s %s: result found in the transcript, recorded again: counted again = %v", session, id, r.Recorded[0])
	}
	return true, nil
}

// subAgent runs a sub-agent session: two LLM calls.
func (x *executor) subAgent(ctx context.Context, session string, rng *rand.Rand) error {
	lk, err := x.locker.Acquire(ctx, session)
	if err != nil {
		return err
	}
	defer lk.Release(context.WithoutCancel(ctx))
	for i := range 2 {
		if ok, err := x.llm(ctx, session, lk.Token(), fmt.Sprintf("llm-%d", i), int64(i), rng); err != nil || !ok {
			return err
		}
	}
	return nil
}

// run runs root session from step first; it returns errCrash (lease kept)
// right after recording step crashAt's call, and the lock it held.
func (x *executor) run(ctx context.Context, session string, first, crashAt int, seed uint64) (*lock.Lock, error) {
	rng := rand.New(rand.NewPCG(seed, 15))
	lk, err := x.locker.Acquire(ctx, session)
	if err != nil {
		return nil, err
	}
	for step := first; step <= steps; step++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		links := make([]usage.Entry, 2)
		for k := range 2 {
			child := fmt.Sprintf("%s.step%d.sub%d", session, step, k)
			links[k] = usage.Entry{ID: fmt.Sprintf("sub-%d-%d", step, k), Kind: usage.KindSubAgent, Step: int64(step), SubAgent: child}
			crng := rand.New(rand.NewPCG(seed, uint64(step*10+k)))
			wg.Add(1)
			go func() { defer wg.Done(); errs[k] = x.subAgent(ctx, child, crng) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return lk, err
		}
		if _, err := x.meter.Record(ctx, session, lk.Token(), links...); err != nil {
			return lk, err
		}
		ok, err := x.llm(ctx, session, lk.Token(), fmt.Sprintf("llm-%d", step), int64(step), rng)
		if err != nil {
			return lk, err
		}
		if !ok {
			x.printf("%s step %d: tenant budget refused the reservation; session stops", session, step)
			break
		}
		if step == crashAt {
			x.printf("%s step %d: crashed after recording its call (lease not released)", session, step)
			return lk, errCrash
		}
	}
	x.printf("%s done", session)
	return lk, lk.Release(ctx)
}

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage example:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run() (int, error) {
	srv, err := embedded.Start()
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	client, err := srv.NewClient()
	if err != nil {
		return 0, err
	}
	defer client.Close()
	ctx := context.Background()
	prefix := fmt.Sprintf("usageex%08x", rand.Uint32()) // apart from other runs on a shared server
	fmt.Println("server:", srv.Description, "prefix:", prefix)

	meter, err := usage.New(client, usage.Options{Prefix: prefix, EntryTTL: time.Hour, BudgetTTL: time.Hour, HoldTTL: 5 * time.Second})
	if err != nil {
		return 0, err
	}
	if err := meter.SetBudget(ctx, tenant, usage.Limit{Tokens: tenantLimit}); err != nil {
		return 0, err
	}
	bill, log := &provider{}, &transcript{}
	var refused int64
	var mu sync.Mutex
	newExec := func(name string) (*executor, error) {
		l, err := lock.New(client, lock.Options{Prefix: prefix, Owner: name, TTL: lease})
		if err != nil {
			return nil, err
		}
		return &executor{name: name, locker: l, meter: meter, bill: bill, log: log, refused: &refused, mu: &mu}, nil
	}
	roots := []string{"root-1", "root-2", "root-3"}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	var crashed *executor
	var crashedLock *lock.Lock
	for i, root := range roots {
		x, err := newExec(fmt.Sprintf("executor-%d", i+1))
		if err != nil {
			return 0, err
		}
		defer x.locker.Close()
		crashAt := 0
		if i == 1 {
			crashAt, crashed = 2, x
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lk, err := x.run(ctx, root, 1, crashAt, uint64(i))
			if errors.Is(err, errCrash) {
				crashedLock, err = lk, nil
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}

	// The crashed executor's lease runs out; executor 4 resumes its session.
	srv.Sleep(lease + 200*time.Millisecond)
	x4, err := newExec("executor-4")
	if err != nil {
		return 0, err
	}
	defer x4.locker.Close()
	if _, err := x4.run(ctx, "root-2", 2, 0, 1); err != nil {
		return 0, err
	}
	// Executor 2 wakes up and records a late call with its old token.
	_, err = meter.Record(ctx, "root-2", crashedLock.Token(), usage.Entry{ID: "llm-late", Kind: usage.KindTokens,
		Tokens: usage.Tokens{Prompt: 1}})
	crashed.printf("root-2: late Record with the old token: fenced = %v", errors.Is(err, fencing.ErrFenced))
	lateRefused := errors.Is(err, fencing.ErrFenced)

	// The verdict.
	fmt.Println()
	var total usage.Totals
	for _, root := range roots {
		r, err := meter.Rollup(ctx, root, usage.IncludeSubAgents)
		if err != nil {
			return 0, err
		}
		fmt.Printf("%s: %d sessions, %d LLM entries, %d tokens, cost %v\n", root, len(r.Sessions), r.ByKind[usage.KindTokens], r.Total, r.Cost)
		total.Total += r.Total
		total.Cost += r.Cost
		total.Entries += r.ByKind[usage.KindTokens]
	}
	bud, err := meter.Budget(ctx, tenant)
	if err != nil {
		return 0, err
	}
	fmt.Printf("recorded: %d calls, %d tokens, cost %v\n", total.Entries, total.Total, total.Cost)
	fmt.Printf("billed:   %d calls, %d tokens, cost %v\n", bill.calls, bill.tokens, bill.cost)
	fmt.Printf("tenant budget: %d spent, %d held, limit %d; %d reservations refused\n", bud.Spent.Tokens, bud.Held.Tokens, bud.Limit.Tokens, refused)
	checks := []struct {
		ok   bool
		what string
	}{
		{total.Entries == int64(bill.calls), "every call recorded once"},
		{total.Total == bill.tokens && total.Cost == bill.cost, "recorded tokens and cost = billed"},
		{bud.Spent.Tokens == bill.tokens, "budget spent = billed"},
		{bud.Spent.Tokens <= tenantLimit, "budget never exceeded"},
		{refused > 0, "the budget refused some reservations (it was binding)"},
		{lateRefused, "the crashed executor's late write was fenced"},
	}
	code := 0
	for _, c := range checks {
		v := "ok  "
		if !c.ok {
			v, code = "FAIL", 1
		}
		fmt.Println(v, c.what)
	}
	return code, nil
}
