package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/chaos/check"
	"github.com/fencekit/fencekit/chaos/history"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/usage"
)

// Config configures one run: one topology in one mode.
type Config struct {
	// Topology is "standalone" (AOF always, kill -9 restarts), "amnesia"
	// (standalone without persistence: restarts lose everything),
	// "sentinel", "cluster" or "replicated" (the negative control of WAIT).
	Topology string
	// Durable makes every acquisition and every store write wait for all
	// replicas (WAIT); only then is a write recorded ok. Fast: no WAIT.
	Durable     bool
	Seed        uint64
	Duration    time.Duration // how long the workload runs
	Executors   int
	Workers     int // goroutines per executor
	Sessions    int
	TTL         time.Duration
	AutoRefresh bool
	OpTimeout   time.Duration
	// FaultGap is the pause between two faults, drawn from
	// [FaultGap/2, FaultGap].
	FaultGap time.Duration
	// Faults, if set, replaces the fault mix: kinds drawn uniformly.
	Faults []string
	// Incr runs the plain INCR baseline workload beside the sessions.
	Incr   bool
	Mutant string
	// Recreate adds the recreate workload: executors delete and create
	// again sessions of their own ("rc-0".."rc-3") and read them without
	// the lock; package check verifies that every reader saw every
	// acknowledged message and chunk of the incarnation it read, and
	// nothing of another.
	Recreate bool
	// Semaphore adds the semaphore workload (see coord.go): executors take
	// 1-2 permits of semaphore SemName (SemLimit permits, sometimes
	// changed to one of SemLimits), hold them 0-TTL, release; after the
	// run the runner takes every permit (a sem-drain op). Package check
	// verifies that grants never exceeded the limit among surely live
	// leases and that no permit was lost.
	Semaphore bool
	// Election adds the election workload (see coord.go): executors
	// campaign in election ElectName, proclaim twice fenced by their term
	// and resign. Package check verifies that terms grow in real-time
	// order and that no write of a stale term was accepted.
	Election bool
	// CoordOnly leaves the session rounds out: every round is one of the
	// semaphore or election workload (ExecConfig.CoordOnly).
	CoordOnly bool
	// NoGiveUp turns off the executors' give-up pattern (ExecConfig.NoGiveUp).
	NoGiveUp bool
	// NoUsage leaves the usage workload out (ExecConfig.NoUsage).
	NoUsage bool
	// Think is ExecConfig.Think.
	Think time.Duration
	// Out is the directory for histories and reports (a subdirectory per
	// run is made in it).
	Out string
	// Log receives progress lines; nil: discarded.
	Log io.Writer
	// Executable is the binary started as executor (MaybeExecutor must
	// run first in it). Default: os.Executable().
	Executable string
}

// FaultRecord is one injected fault.
type FaultRecord struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Start  int64  `json:"start"` // CLOCK_MONOTONIC ns
	End    int64  `json:"end"`   // healed
	Err    string `json:"err,omitempty"`
	// Unavail is the measured unavailability (see Result.Unavail), -1 if
	// none was measurable.
	Unavail time.Duration `json:"unavail"`
}

// Result is what a run produced.
type Result struct {
	Topology string
	Mode     string
	Dir      string
	Ops      []history.Op // merged, completed, with final and nemesis ops
	Faults   []FaultRecord
	Counts   map[history.Status]int
	Local    LocalCheck
	Incr     IncrStats
	// Report is package check's verdict; CheckMode the mode it judged in
	// (always fast on amnesia: its restarts lose acknowledged writes by
	// design).
	Report    *check.Report
	CheckMode check.Mode
	// Artifacts are the files check wrote on a violation.
	Artifacts []string
	Elapsed   time.Duration
}

func (c *Config) defaults() {
	if c.Executors == 0 {
		c.Executors = 4
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Sessions == 0 {
		c.Sessions = 16
	}
	if c.TTL == 0 {
		c.TTL = 500 * time.Millisecond
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = time.Second
	}
	if c.FaultGap == 0 {
		c.FaultGap = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

func newTopology(c *Config, base string) (Topology, error) {
	switch c.Topology {
	case "standalone":
		return NewStandalone(base, false)
	case "amnesia":
		return NewStandalone(base, true)
	case "sentinel":
		return NewSentinel(base, 2, 0)
	case "cluster":
		return NewCluster(base)
	case "replicated":
		return NewReplicated(base)
	}
	return nil, fmt.Errorf("run: unknown topology %q", c.Topology)
}

// exec is one executor subprocess.
type execProc struct {
	process int
	p       *proc
}

type orchestrator struct {
	cfg   Config
	top   Topology
	dir   string
	exe   string
	mu    sync.Mutex
	execs []*execProc // one slot per executor; a restart replaces the slot
	incr  *execProc
	next  int
	t0    int64 // Mono at the start of the workload
}

func (o *orchestrator) execConfig(process int, role string) ExecConfig {
	sessions := make([]string, o.cfg.Sessions)
	for i := range sessions {
		sessions[i] = "s" + strconv.Itoa(i)
	}
	minRep := 0
	if o.cfg.Durable {
		minRep = o.top.Replicas()
	}
	return ExecConfig{
		Role: role, Process: process, Spec: o.top.Spec(), Prefix: "chaos",
		Sessions: sessions, Workers: o.cfg.Workers, TTL: o.cfg.TTL, AutoRefresh: o.cfg.AutoRefresh,
		MinReplicas: minRep, OpTimeout: o.cfg.OpTimeout,
		Out:  filepath.Join(o.dir, fmt.Sprintf("proc-%03d.jsonl", process)),
		Seed: o.cfg.Seed, Mutant: o.cfg.Mutant, Recreate: o.cfg.Recreate, NoGiveUp: o.cfg.NoGiveUp, NoUsage: o.cfg.NoUsage, Think: o.cfg.Think,
		Semaphore: o.cfg.Semaphore, Election: o.cfg.Election, CoordOnly: o.cfg.CoordOnly,
	}
}

func (o *orchestrator) startExec(role string) (*execProc, error) {
	o.mu.Lock()
	o.next++
	n := o.next
	o.mu.Unlock()
	cfg := o.execConfig(n, role)
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(o.exe)
	cmd.Env = append(os.Environ(), executorEnv+"="+string(b), "GORACE=halt_on_error=1")
	logf, err := os.Create(filepath.Join(o.dir, fmt.Sprintf("proc-%03d.log", n)))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := spawn(cmd)
	logf.Close()
	if err != nil {
		return nil, err
	}
	return &execProc{process: n, p: p}, nil
}

func (o *orchestrator) stopAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range append(o.execs, o.incr) {
		if e == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); e.p.stop(5 * time.Second) }()
	}
	wg.Wait()
}

// Run runs cfg: starts the topology and the executors, injects faults for
// cfg.Duration, stops everything, reads every session's final state and
// returns the merged history. Every server and executor is stopped by PID
// before Run returns, on every path.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	cfg.defaults()
	began := time.Now()
	mode := "fast"
	if cfg.Durable {
		mode = "durable"
	}
	name := cfg.Topology + "-" + mode
	if cfg.Mutant != "" {
		name += "-" + cfg.Mutant
	}
	dir := filepath.Join(cfg.Out, fmt.Sprintf("%s-seed%d", name, cfg.Seed))
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "fencekit-chaos-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(base)
	exe := cfg.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(cfg.Log, "%s: starting servers\n", name)
	top, err := newTopology(&cfg, base)
	if err != nil {
		return nil, err
	}
	defer top.Close()
	if len(cfg.Faults) > 0 {
		// Kinds of other topologies are left out, so one list can serve
		// a run over several; a kind no topology has is an error.
		var kinds []string
		for _, k := range cfg.Faults {
			switch {
			case !slices.Contains(AllFaults, k):
				return nil, fmt.Errorf("run: unknown fault %q (known: %v)", k, AllFaults)
			case k == FaultExecPause || k == FaultExecKill || slices.Contains(top.Faults(), k):
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			return nil, fmt.Errorf("run: %s: none of the faults %v applies (its own: %v)", top.Name(), cfg.Faults, top.Faults())
		}
		cfg.Faults = kinds
	}
	o := &orchestrator{cfg: cfg, top: top, dir: dir, exe: exe}
	defer o.stopAll()
	if err := o.budgets(ctx); err != nil {
		return nil, err
	}
	for range cfg.Executors {
		e, err := o.startExec(RoleSessions)
		if err != nil {
			return nil, err
		}
		o.execs = append(o.execs, e)
	}
	if cfg.Incr {
		if o.incr, err = o.startExec(RoleIncr); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(cfg.Log, "%s: %d executors x %d workers on %d sessions for %v (servers up in %v)\n",
		name, cfg.Executors, cfg.Workers, cfg.Sessions, cfg.Duration, time.Since(began).Round(time.Millisecond))

	o.t0 = Mono()
	faults := o.nemesis(ctx)
	if err := writeFaults(filepath.Join(dir, "faults.jsonl"), faults); err != nil {
		return nil, err
	}

	o.stopAll()
	if ctx.Err() != nil {
		// Interrupted: the deferred calls stop every server; the
		// histories written so far stay in dir.
		return nil, ctx.Err()
	}
	fmt.Fprintf(cfg.Log, "%s: %d faults injected; healing and reading final state\n", name, len(faults))
	if err := top.Healthy(); err != nil {
		return nil, fmt.Errorf("run: %s: not healthy after the run: %w", name, err)
	}
	ops, err := Merge(dir)
	if err != nil {
		return nil, err
	}
	finals, err := o.finals(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Semaphore {
		drain, err := o.semDrain(ctx)
		if err != nil {
			return nil, err
		}
		finals = append(finals, drain)
	}
	for _, f := range faults {
		ops = append(ops, history.Op{Kind: history.KindNemesis, In: f.Kind, Out: f.Target, Status: history.OK, Call: f.Start, Return: f.End, Err: f.Err})
	}
	ops = history.Merge(ops, finals)
	measureUnavail(ops, faults)
	res = &Result{Topology: cfg.Topology, Mode: mode, Dir: dir, Ops: ops, Faults: faults, Counts: map[history.Status]int{}}
	for _, op := range ops {
		if op.Kind != history.KindNemesis && op.Kind != history.KindFinal && op.Kind != history.KindSemDrain && op.Kind != "incr" {
			res.Counts[op.Status]++
		}
	}
	res.Local = localCheck(ops)
	if res.Incr, err = incrStats(ops); err != nil {
		return nil, err
	}
	if err := writeOps(filepath.Join(dir, "history.jsonl"), ops); err != nil {
		return nil, err
	}
	res.CheckMode = check.Fast
	if cfg.Durable && cfg.Topology != "amnesia" {
		res.CheckMode = check.Durable
	}
	var checked []history.Op
	for _, op := range ops {
		if op.Kind != "incr" {
			checked = append(checked, op)
		}
	}
	fmt.Fprintf(cfg.Log, "%s: checking %d ops\n", name, len(checked))
	if res.Report, err = check.Check(checked, check.Config{Mode: res.CheckMode}); err != nil {
		return nil, err
	}
	if len(res.MustBeZero()) > 0 {
		if res.Artifacts, err = res.Report.WriteArtifacts(dir); err != nil {
			return nil, err
		}
	}
	res.Elapsed = time.Since(began)
	return res, nil
}

func writeFaults(path string, faults []FaultRecord) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range faults {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func writeOps(path string, ops []history.Op) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := history.NewWriter(f)
	for _, op := range ops {
		if err := w.Write(op); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// finals reads every session's final state once the topology is healthy.
func (o *orchestrator) finals(ctx context.Context) ([]history.Op, error) {
	client, err := rueidis.NewClient(o.top.Spec().Option())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	store, err := statestore.New(client, statestore.Options{Prefix: "chaos", EventLog: true})
	if err != nil {
		return nil, err
	}
	meter, err := usage.New(client, usage.Options{Prefix: "chaos"})
	if err != nil {
		return nil, err
	}
	var out []history.Op
	for i := range o.cfg.Sessions {
		s := "s" + strconv.Itoa(i)
		var f history.Final
		for attempt := 0; ; attempt++ {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			f = readFinal(rctx, store, s)
			if f.Err == "" {
				f.Usage, f.Err = readUsage(rctx, meter, s)
			}
			cancel()
			if f.Err == "" || attempt == 5 {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		op, err := history.NewFinal(s, Mono(), f)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, nil
}

// budgets sets the limits of the usage workload's budgets (see
// BudgetScope) before the executors start.
func (o *orchestrator) budgets(ctx context.Context) error {
	client, err := rueidis.NewClient(o.top.Spec().Option())
	if err != nil {
		return err
	}
	defer client.Close()
	meter, err := usage.New(client, usage.Options{Prefix: "chaos"})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := meter.SetBudget(ctx, BudgetScope, usage.Limit{Tokens: ScopeBudget, TTL: time.Hour}); err != nil {
		return fmt.Errorf("run: scope budget: %w", err)
	}
	for i := range o.cfg.Sessions {
		if err := meter.SetSessionBudget(ctx, "s"+strconv.Itoa(i), usage.Limit{Tokens: SessionBudget, TTL: time.Hour}); err != nil {
			return fmt.Errorf("run: session budget: %w", err)
		}
	}
	return nil
}

// nemesis injects faults until cfg.Duration has passed or ctx ends: one
// goroutine injects the topology's server and link faults one after
// another, a second one pauses and kills executors meanwhile. Both draw
// from seeded generators; the fault log records when each fault began and
// was healed.
func (o *orchestrator) nemesis(ctx context.Context) []FaultRecord {
	deadline := time.Now().Add(o.cfg.Duration)
	var mu sync.Mutex
	var out []FaultRecord
	var wg sync.WaitGroup
	loop := func(stream uint64, kinds []string) {
		defer wg.Done()
		if len(kinds) == 0 {
			return
		}
		rng := rand.New(rand.NewPCG(o.cfg.Seed, stream))
		for {
			gap := o.cfg.FaultGap/2 + time.Duration(rng.Int64N(int64(o.cfg.FaultGap/2)+1))
			if time.Now().Add(gap).After(deadline) {
				sleepCtx(ctx, time.Until(deadline))
				return
			}
			if !sleepCtx(ctx, gap) {
				return
			}
			f, healthy := o.inject(kinds[rng.IntN(len(kinds))], rng)
			mu.Lock()
			out = append(out, f)
			mu.Unlock()
			if !healthy || ctx.Err() != nil {
				return
			}
		}
	}
	var server, process []string
	for _, k := range o.cfg.Faults {
		if k == FaultExecPause || k == FaultExecKill {
			process = append(process, k)
		} else {
			server = append(server, k)
		}
	}
	if len(o.cfg.Faults) == 0 {
		server, process = o.top.Faults(), []string{FaultExecPause, FaultExecKill}
	}
	wg.Add(2)
	go loop(0x6e656d, server)
	go loop(0x70726f63, process)
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// inject injects one fault; healthy is false when the topology did not
// recover from a failed injection.
func (o *orchestrator) inject(kind string, rng *rand.Rand) (f FaultRecord, healthy bool) {
	f = FaultRecord{Kind: kind, Unavail: -1}
	start := func() { f.Start = Mono() }
	var err error
	switch kind {
	case FaultExecPause:
		f.Target, err = o.pause(rng, start)
	case FaultExecKill:
		f.Target, err = o.killExec(rng, start)
	default:
		f.Target, err = o.top.Inject(kind, rng, start)
	}
	f.End = Mono()
	if f.Start == 0 {
		f.Start = f.End
	}
	fmt.Fprintf(o.cfg.Log, "  fault %-24s %-22s at +%6.1fs, healed after %v\n", kind, f.Target,
		time.Duration(f.Start-o.t0).Seconds(), time.Duration(f.End-f.Start).Round(time.Millisecond))
	if err != nil {
		f.Err = err.Error()
		fmt.Fprintf(o.cfg.Log, "  fault %s on %s: %v\n", kind, f.Target, err)
		if herr := o.top.Healthy(); herr != nil {
			fmt.Fprintf(o.cfg.Log, "  topology did not recover: %v\n", herr)
			return f, false
		}
	}
	return f, true
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pause stops an executor with SIGSTOP for longer than the TTL, then
// resumes it.
func (o *orchestrator) pause(rng *rand.Rand, start func()) (string, error) {
	o.mu.Lock()
	e := o.execs[rng.IntN(len(o.execs))]
	o.mu.Unlock()
	target := "p" + strconv.Itoa(e.process)
	start()
	if err := e.p.signal(syscall.SIGSTOP); err != nil {
		return target, err
	}
	time.Sleep(o.cfg.TTL + time.Duration(rng.Int64N(int64(o.cfg.TTL)))) // past the TTL
	return target, e.p.signal(syscall.SIGCONT)
}

// killExec kills an executor with SIGKILL and starts a new one (a new
// process number) in its slot.
func (o *orchestrator) killExec(rng *rand.Rand, start func()) (string, error) {
	o.mu.Lock()
	i := rng.IntN(len(o.execs))
	e := o.execs[i]
	o.mu.Unlock()
	target := "p" + strconv.Itoa(e.process)
	start()
	e.p.kill()
	time.Sleep(time.Duration(rng.Int64N(int64(o.cfg.TTL))))
	ne, err := o.startExec(RoleSessions)
	if err != nil {
		return target, err
	}
	o.mu.Lock()
	o.execs[i] = ne
	o.mu.Unlock()
	return target, nil
}

// measureUnavail sets each fault's Unavail. Executor faults: for every
// session the target held at the fault, the time until another process
// completed an ok operation on it; the longest of those. Server and link
// faults: the longest time without any ok write returning, from the fault
// until 2 s after it was healed (the first ok write ends the first gap).
func measureUnavail(ops []history.Op, faults []FaultRecord) {
	var writes []int64 // return times of ok writes, sorted
	for _, op := range ops {
		if op.Status == history.OK && isWrite(op.Kind) && op.Return != history.Never {
			writes = append(writes, op.Return)
		}
	}
	sort.Slice(writes, func(i, j int) bool { return writes[i] < writes[j] })
	for i := range faults {
		f := &faults[i]
		if f.Err != "" {
			continue
		}
		switch f.Kind {
		case FaultExecPause, FaultExecKill:
			f.Unavail = sessionGap(ops, f)
		default:
			end := f.End + int64(2*time.Second)
			j := sort.Search(len(writes), func(k int) bool { return writes[k] >= f.Start })
			prev, worst := f.Start, int64(0)
			for ; j < len(writes) && writes[j] <= end; j++ {
				worst = max(worst, writes[j]-prev)
				prev = writes[j]
			}
			if j == len(writes) || prev == f.Start {
				// No ok write at all until the end of the window (or run).
				if j < len(writes) {
					worst = max(worst, writes[j]-prev)
				} else {
					continue
				}
			}
			f.Unavail = time.Duration(worst)
		}
	}
}

func isWrite(k string) bool {
	switch k {
	case history.KindSave, history.KindStage, history.KindPromote, history.KindAppend, history.KindCheckpoint, history.KindCAS:
		return true
	}
	return false
}

func sessionGap(ops []history.Op, f *FaultRecord) time.Duration {
	p, err := strconv.Atoi(f.Target[1:])
	if err != nil {
		return -1
	}
	held := map[string]bool{}
	for _, op := range ops {
		if op.Process != p || op.Call >= f.Start {
			continue
		}
		switch {
		case op.Kind == history.KindAcquire && op.Status == history.OK && op.Return < f.Start:
			held[op.Session] = true
		case op.Kind == history.KindRelease:
			delete(held, op.Session)
		}
	}
	if len(held) == 0 {
		return -1
	}
	worst := time.Duration(-1)
	for s := range held {
		var first int64 = -1
		for _, op := range ops {
			if op.Session == s && op.Process != p && op.Status == history.OK && op.Return > f.Start &&
				op.Kind != history.KindLoad && op.Kind != history.KindFinal && (first < 0 || op.Return < first) {
				first = op.Return
			}
		}
		if first < 0 {
			continue
		}
		worst = max(worst, time.Duration(first-f.Start))
	}
	return worst
}

// ErrViolation matches the error of a run whose checkers found a violation
// its mode must not have.
var ErrViolation = errors.New("run: checker violation")
