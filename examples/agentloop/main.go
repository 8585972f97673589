// Command agentloop runs a small agent executor loop on fencekit's session
// store, and shows a crash, a resume and a stale executor that is refused.
//
// Run 1: executor A takes the session's lock, creates the session and marks
// it running (CAS pending→running). Each step appends the model's messages,
// runs two or three "tool calls" in parallel that stage their results as
// JSON patches (package staging), promotes the step in one write, counts it
// and saves a checkpoint (package checkpoint). In step 3, A crashes: one
// message and two of three tool results are written, the lease is not
// released.
//
// Run 2: once A's lease has run out, executor B takes the lock, counts a
// resume, promotes the open step without adopting what A left behind (the
// promote reports A's changes as skipped), restores the latest checkpoint
// (which trims A's half-written step) and finishes the session (CAS
// running→completed). Meanwhile A wakes up and goes on writing with its old
// token: every write is refused with fencing.ErrStaleToken or
// fencing.ErrNotHolder and leaves the session as it was.
//
// It runs on an embedded miniredis unless REDIS_URL names a real server
// (any URL rueidis.ParseURL accepts). It checks the final session against
// what the story must produce and exits with status 1 on any violation, 2 on
// any other failure.
//
//	go run ./examples/agentloop
//	REDIS_URL=redis://127.0.0.1:6379 go run ./examples/agentloop
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

const (
	prefix    = "agentloop"      // lock.Options.Prefix == statestore.Options.Prefix
	ttl       = 2 * time.Second  // the lease; each step renews it (a step under -race on a loaded 2-core machine took over 500 ms)
	crashStep = 3                // A crashes in the middle of this step
	timeout   = 20 * time.Second // the whole run, whatever happens
)

func main() {
	violations, err := run(os.Stdout)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "agentloop:", err)
		os.Exit(2)
	case len(violations) > 0:
		for _, v := range violations {
			fmt.Println("FAIL:", v)
		}
		os.Exit(1)
	}
}

// The agent: a research session that answers a question in four steps.

const question = "Why does a lease-based lock need fencing tokens?"

const answer = "A holder can pause past its lease and write after another holder took over; " +
	"only a token that the resource checks at the write refuses the stale write."

// toolCall is a call the model asks for; its result goes to facts[Fact] of
// the state document, or to the answer when Fact is empty.
type toolCall struct {
	Tool, Arg    string
	Fact, Result string
}

var plan = [][]toolCall{
	{ // step 1
		{"web_search", "lock lease expiry", "lease", "A lease ends on a timer, whether or not its holder is done."},
		{"web_search", "process pause GC", "pause", "A GC pause, VM migration or SIGSTOP can outlast a lease."},
	},
	{ // step 2
		{"fetch_page", "kleppmann.com/2016/02/08", "fencing", "Each grant carries a larger token; the resource refuses older ones."},
		{"fetch_page", "redis.io/.../distributed-locks", "redlock", "Redlock by itself hands out no fencing token."},
		{"web_search", "etcd lease revision", "etcd", "etcd's revisions can serve as fencing tokens."},
	},
	{ // step 3 (A crashes here)
		{"read_code", "lib_fence.lua fk_check", "where", "The token is checked inside the script that writes."},
		{"web_search", "compare-and-set stale write", "atomic", "A check before a separate write still races."},
		{"calculator", "max(fence+1, now_us)", "monotonic", "Time-seeded tokens keep growing after a lost counter."},
	},
	{ // step 4
		{"write_answer", "", "", answer},
	},
}

// initialDoc is the session's custom state when it is created.
const initialDoc = `{"question":` + `"` + question + `"` + `,"facts":{},"log":[],"answer":null}`

// message is the shape of the session's messages. Executor and Step are
// there so that the end check can tell who wrote what.
type message struct {
	Role       string    `json:"role"`
	Executor   string    `json:"executor"`
	Step       int64     `json:"step,omitempty"`
	Content    string    `json:"content,omitempty"`
	ToolCalls  []callRef `json:"tool_calls,omitempty"`
	ToolCallID string    `json:"tool_call_id,omitempty"`
}

type callRef struct {
	ID   string `json:"id"`
	Tool string `json:"tool"`
	Arg  string `json:"arg,omitempty"`
}

// callID is the id the model gives tool call i of step n in executor
// letter's run: a re-run of a step gets new ids, as with a real model.
func callID(letter string, n int64, i int) string {
	return fmt.Sprintf("call_%s%d_%d", letter, n, i+1)
}

// requestMsg is the model's reply that asks for the tool calls of step n.
func requestMsg(letter string, n int64) message {
	m := message{Role: "assistant", Executor: letter, Step: n}
	for i, c := range plan[n-1] {
		m.ToolCalls = append(m.ToolCalls, callRef{ID: callID(letter, n, i), Tool: c.Tool, Arg: c.Arg})
	}
	return m
}

// resultMsgs are the tool results of step n, in call order, and the final
// answer after the last step.
func resultMsgs(letter string, n int64) []message {
	var ms []message
	for i, c := range plan[n-1] {
		ms = append(ms, message{Role: "tool", Executor: letter, Step: n, ToolCallID: callID(letter, n, i), Content: c.Result})
	}
	if int(n) == len(plan) {
		ms = append(ms, message{Role: "assistant", Executor: letter, Step: n, Content: answer})
	}
	return ms
}

// change is what tool call i of step n does to the state document: log
// its id (so the end check sees exactly which results got in, in which
// order) and merge its fact, or set the answer, which must still be null.
func change(letter string, n int64, i int, issued time.Time) staging.Change {
	c := plan[n-1][i]
	id := callID(letter, n, i)
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	ops := []op{{"add", "/log/-", id}}
	var merge json.RawMessage
	if c.Fact == "" {
		ops = append([]op{{"test", "/answer", nil}, {"replace", "/answer", c.Result}}, ops...)
	} else {
		merge = mustJSON(map[string]any{"facts": map[string]string{c.Fact: c.Result}})
	}
	return staging.Change{
		ToolCallID: id,
		Patches:    mustJSON(ops),
		Merge:      merge,
		// The order the model issued the calls in, not the order they
		// finish in: promote applies them by timestamp.
		Timestamp: issued.Add(time.Duration(i) * time.Millisecond),
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func mustJSONs(ms []message) []json.RawMessage {
	out := make([]json.RawMessage, len(ms))
	for i, m := range ms {
		out[i] = mustJSON(m)
	}
	return out
}

// executor is one process of the fleet: its own client, Locker and stores.
type executor struct {
	letter  string // "A" or "B"
	session string
	client  rueidis.Client
	locker  *lock.Locker
	store   *statestore.Store
	stager  *staging.Stager
	cps     *checkpoint.Store
	out     io.Writer
	lastCP  string // the id of the last checkpoint this executor saved
}

func newExecutor(s *embedded.Server, letter, session string, out io.Writer) (*executor, error) {
	c, err := s.NewClient()
	if err != nil {
		return nil, err
	}
	l, err := lock.New(c, lock.Options{Prefix: prefix, Owner: "executor-" + letter, TTL: ttl, FenceTTL: 10 * time.Minute})
	if err != nil {
		c.Close()
		return nil, err
	}
	st, err := statestore.New(c, statestore.Options{Prefix: prefix, TTL: 10 * time.Minute})
	if err != nil {
		_ = l.Close()
		c.Close()
		return nil, err
	}
	return &executor{letter: letter, session: session, client: c, locker: l, store: st,
		stager: staging.New(st), cps: checkpoint.New(st), out: out}, nil
}

func (e *executor) close() {
	_ = e.locker.Close()
	e.client.Close()
}

func (e *executor) say(format string, args ...any) {
	fmt.Fprintf(e.out, e.letter+"  "+format+"\n", args...)
}

// report collects invariant violations.
type report struct {
	out        io.Writer
	violations []string
}

func (r *report) check(ok bool, format string, args ...any) {
	if !ok {
		v := fmt.Sprintf(format, args...)
		fmt.Fprintln(r.out, "   VIOLATION:", v)
		r.violations = append(r.violations, v)
	}
}

// leaseContext returns a context that ends with ctx or with the lease of lk,
// whichever ends first: work under a lock stops when its lease does.
func leaseContext(ctx context.Context, lk *lock.Lock) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(lk.Context(), func() { cancel(context.Cause(lk.Context())) })
	return c, func() { stop(); cancel(context.Canceled) }
}

// acquire takes the session's lock.
func (e *executor) acquire(ctx context.Context) (*lock.Lock, error) {
	lk, err := e.locker.Acquire(ctx, e.session)
	if err != nil {
		return nil, fmt.Errorf("%s acquire: %w", e.letter, err)
	}
	return lk, nil
}

// open loads the session, or creates it, and makes it running. A session
// found running was left by an executor that stopped: open resumes it.
// It returns the first step to run.
func (e *executor) open(ctx context.Context, lk *lock.Lock, r *report, stale fencing.Token) (int64, error) {
	tok := lk.Token()
	st, err := e.store.Load(ctx, e.session)
	if errors.Is(err, statestore.ErrNotFound) {
		st = statestore.State{AgentType: "researcher", Status: statestore.StatusPending, Data: json.RawMessage(initialDoc)}
		if _, err := e.store.Create(ctx, e.session, tok, st); err != nil {
			return 0, fmt.Errorf("%s create: %w", e.letter, err)
		}
		if _, err := e.store.AppendMessages(ctx, e.session, tok, mustJSON(message{Role: "user", Executor: e.letter, Content: question})); err != nil {
			return 0, fmt.Errorf("%s append: %w", e.letter, err)
		}
		e.say("created %s (pending) with the user's question", e.session)
	} else if err != nil {
		return 0, fmt.Errorf("%s load: %w", e.letter, err)
	}
	switch st.Status {
	case statestore.StatusPending:
		res, err := e.store.CompareAndSetStatus(ctx, e.session, tok, []statestore.Status{statestore.StatusPending}, statestore.StatusRunning)
		if err != nil {
			return 0, fmt.Errorf("%s CAS pending→running: %w", e.letter, err)
		}
		if !res.OK {
			return 0, fmt.Errorf("%s CAS pending→running: session is %s", e.letter, res.CurrentStatus)
		}
		e.say("CAS pending→running: ok (version %d)", res.Version)
		return st.Step + 1, nil
	case statestore.StatusRunning:
		return e.resume(ctx, lk, st, r, stale)
	default:
		return 0, fmt.Errorf("%s: session %s is %s", e.letter, e.session, st.Status)
	}
}

// resume takes over a running session whose executor stopped: count the
// resume, settle the step that was open, and go back to the latest
// checkpoint. stale is the token the end check expects on what the stopped
// executor left behind.
func (e *executor) resume(ctx context.Context, lk *lock.Lock, st statestore.State, r *report, stale fencing.Token) (int64, error) {
	tok := lk.Token()
	n, err := e.store.IncrementResumeCount(ctx, e.session, tok)
	if err != nil {
		return 0, fmt.Errorf("%s resume count: %w", e.letter, err)
	}
	staged, err := e.stager.List(ctx, e.session)
	if err != nil {
		return 0, fmt.Errorf("%s list stage: %w", e.letter, err)
	}
	e.say("found %s running at step %d with %d messages and %d staged changes: resume #%d",
		e.session, st.Step, st.MessageCount, len(staged), n)

	// Promote whatever is staged for the open step, without AdoptStale:
	// changes staged under another token are reported, not applied.
	open := st.Step + 1
	pr, err := e.stager.Promote(ctx, e.session, open, tok)
	if err != nil {
		return 0, fmt.Errorf("%s promote open step %d: %w", e.letter, open, err)
	}
	e.say("promote of open step %d: %d applied, %d skipped %s", open, len(pr.Applied), len(pr.Skipped), describe(pr.Skipped))
	r.check(len(pr.Applied) == 0, "the promote of the open step applied %d changes", len(pr.Applied))
	r.check(len(pr.Skipped) == len(staged), "the promote of the open step skipped %d changes, %d were staged", len(pr.Skipped), len(staged))
	for _, s := range pr.Skipped {
		r.check(s.Token == stale, "skipped change %s has token %d, not the stopped executor's %d", s.ToolCallID, s.Token, stale)
	}

	cp, err := e.cps.Latest(ctx, e.session)
	if err != nil {
		return 0, fmt.Errorf("%s latest checkpoint: %w", e.letter, err)
	}
	if _, err := e.cps.Restore(ctx, e.session, tok, cp.ID); err != nil {
		return 0, fmt.Errorf("%s restore %s: %w", e.letter, cp.ID, err)
	}
	after, err := e.store.Load(ctx, e.session)
	if err != nil {
		return 0, fmt.Errorf("%s load: %w", e.letter, err)
	}
	e.say("restored %s: step %d, %d messages (%d of the open step trimmed)",
		cp.ID, after.Step, after.MessageCount, st.MessageCount-after.MessageCount)
	return after.Step + 1, nil
}

// describe lists staged changes and their tokens.
func describe(cs []staging.Staged) string {
	if len(cs) == 0 {
		return ""
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ToolCallID
	}
	return fmt.Sprintf("(%s, token %d)", strings.Join(ids, ", "), cs[0].Token)
}

// begin renews the lease and appends the model's tool-call request for
// step n: the start of every step.
func (e *executor) begin(ctx context.Context, lk *lock.Lock, n int64) error {
	if err := lk.Refresh(ctx); err != nil {
		return fmt.Errorf("%s step %d: renew lease: %w", e.letter, n, err)
	}
	_, err := e.store.AppendMessages(ctx, e.session, lk.Token(), mustJSON(requestMsg(e.letter, n)))
	if err != nil {
		return fmt.Errorf("%s step %d: append: %w", e.letter, n, err)
	}
	return nil
}

// runTools runs the tool calls idx of step n in parallel; each stages its
// result as soon as it has it.
func (e *executor) runTools(ctx context.Context, tok fencing.Token, n int64, idx []int) error {
	issued := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(idx))
	for j, i := range idx {
		wg.Go(func() {
			time.Sleep(time.Duration(len(idx)-j) * 5 * time.Millisecond) // the tool works; the last one issued finishes first
			_, errs[j] = e.stager.Stage(ctx, e.session, n, tok, change(e.letter, n, i, issued))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s step %d: stage: %w", e.letter, n, err)
	}
	return nil
}

// step runs step n: request, parallel tool calls, results, promote, count,
// checkpoint.
func (e *executor) step(ctx context.Context, lk *lock.Lock, n int64, r *report) error {
	ctx, cancel := leaseContext(ctx, lk)
	defer cancel()
	tok := lk.Token()
	if err := e.begin(ctx, lk, n); err != nil {
		return err
	}
	idx := make([]int, len(plan[n-1]))
	for i := range idx {
		idx[i] = i
	}
	if err := e.runTools(ctx, tok, n, idx); err != nil {
		return err
	}
	count, err := e.store.AppendMessages(ctx, e.session, tok, mustJSONs(resultMsgs(e.letter, n))...)
	if err != nil {
		return fmt.Errorf("%s step %d: append: %w", e.letter, n, err)
	}
	pr, err := e.stager.Promote(ctx, e.session, n, tok)
	if err != nil {
		return fmt.Errorf("%s step %d: promote: %w", e.letter, n, err)
	}
	r.check(len(pr.Applied) == len(idx) && len(pr.Skipped) == 0,
		"%s step %d: promote applied %d and skipped %d changes, want %d and 0", e.letter, n, len(pr.Applied), len(pr.Skipped), len(idx))
	steps, err := e.store.IncrementStep(ctx, e.session, tok)
	if err != nil {
		return fmt.Errorf("%s step %d: count: %w", e.letter, n, err)
	}
	r.check(steps == n, "%s step %d: the step count is %d", e.letter, n, steps)
	cpid, err := e.cps.Save(ctx, e.session, tok, checkpoint.Checkpoint{
		Step: steps, State: pr.Data, MessageCount: count,
		Metadata: mustJSON(map[string]string{"executor": e.letter}),
	})
	if err != nil {
		return fmt.Errorf("%s step %d: checkpoint: %w", e.letter, n, err)
	}
	e.lastCP = cpid
	e.say("step %d: %d tool result(s) staged in parallel, promoted (version %d), %d messages, checkpoint %s",
		n, len(idx), pr.Version, count, cpid)
	return nil
}

// crash starts step n and stops in the middle: the request is appended, the
// first two tool results are staged, and the executor goes silent without
// releasing its lease.
func (e *executor) crash(ctx context.Context, lk *lock.Lock, n int64) error {
	ctx, cancel := leaseContext(ctx, lk)
	defer cancel()
	if err := e.begin(ctx, lk, n); err != nil {
		return err
	}
	if err := e.runTools(ctx, lk.Token(), n, []int{0, 1}); err != nil {
		return err
	}
	e.say("step %d: request appended, 2 of %d tool results staged ... CRASH (lease not released)", n, len(plan[n-1]))
	return nil
}

// finish marks the session completed and releases the lock.
func (e *executor) finish(ctx context.Context, lk *lock.Lock, r *report) error {
	res, err := e.store.CompareAndSetStatus(ctx, e.session, lk.Token(),
		[]statestore.Status{statestore.StatusRunning}, statestore.StatusCompleted)
	if err != nil {
		return fmt.Errorf("%s CAS running→completed: %w", e.letter, err)
	}
	r.check(res.OK, "CAS running→completed failed: the session is %s", res.CurrentStatus)
	if res.OK {
		e.say("CAS running→completed: ok (version %d)", res.Version)
	}
	if err := lk.Release(ctx); err != nil {
		return fmt.Errorf("%s release: %w", e.letter, err)
	}
	e.say("released the lock")
	return nil
}

// staleWrites is A after its pause: it does not look at its lock, it just
// carries on with its old token, as a process paused between its check and
// its write would. Every write must be refused and change nothing.
// It returns how many were refused.
func (e *executor) staleWrites(ctx context.Context, writes []staleWrite, r *report) (int, error) {
	before, err := e.store.Load(ctx, e.session)
	if err != nil {
		return 0, err
	}
	refused := len(writes)
	for _, w := range writes {
		err := w.do(ctx)
		var se *fencing.StaleTokenError
		var nh *statestore.NotHolderError
		switch {
		case errors.As(err, &se):
			e.say("  %-32s refused: stale token (session or lock has seen %d)", w.name, se.Highest)
		case errors.As(err, &nh) && nh.Holder == 0:
			e.say("  %-32s refused: not the holder (lock is free)", w.name)
		case errors.As(err, &nh):
			e.say("  %-32s refused: not the holder (holder's token %d)", w.name, nh.Holder)
		case errors.Is(err, fencing.ErrStaleToken), errors.Is(err, fencing.ErrNotHolder):
			e.say("  %-32s refused: %v", w.name, err)
		case err == nil:
			e.say("  %-32s ACCEPTED", w.name)
			r.check(false, "A's stale write %q was accepted", w.name)
			refused--
		default:
			return 0, fmt.Errorf("A's stale write %q: unexpected error: %w", w.name, err)
		}
	}
	after, err := e.store.Load(ctx, e.session)
	if err != nil {
		return 0, err
	}
	r.check(after.Version == before.Version && after.Status == before.Status && after.Step == before.Step &&
		after.MessageCount == before.MessageCount && string(after.Data) == string(before.Data),
		"the session changed under A's refused writes: version %d→%d", before.Version, after.Version)
	return refused, nil
}

type staleWrite struct {
	name string
	do   func(context.Context) error
}

// lateWrites are the writes A makes with its old token tok when it wakes
// up in step crashStep: the late result of its third tool call, the
// step's messages, its promote, count and checkpoint, a restore of its own
// last checkpoint, and giving up on the session.
func (e *executor) lateWrites(tok fencing.Token) []staleWrite {
	late := change(e.letter, crashStep, 2, time.Now())
	return []staleWrite{
		{"Stage " + late.ToolCallID + " (late result)", func(ctx context.Context) error {
			_, err := e.stager.Stage(ctx, e.session, crashStep, tok, late)
			return err
		}},
		{"AppendMessages (tool results)", func(ctx context.Context) error {
			_, err := e.store.AppendMessages(ctx, e.session, tok, mustJSONs(resultMsgs(e.letter, crashStep))...)
			return err
		}},
		{"Promote step 3", func(ctx context.Context) error {
			_, err := e.stager.Promote(ctx, e.session, crashStep, tok)
			return err
		}},
		{"IncrementStep", func(ctx context.Context) error {
			_, err := e.store.IncrementStep(ctx, e.session, tok)
			return err
		}},
		{"checkpoint.Save step 3", func(ctx context.Context) error {
			_, err := e.cps.Save(ctx, e.session, tok, checkpoint.Checkpoint{Step: crashStep, MessageCount: 1})
			return err
		}},
		{"checkpoint.Restore its step 2", func(ctx context.Context) error {
			_, err := e.cps.Restore(ctx, e.session, tok, e.lastCP)
			return err
		}},
		{"CAS running→failed", func(ctx context.Context) error {
			_, err := e.store.CompareAndSetStatus(ctx, e.session, tok,
				[]statestore.Status{statestore.StatusRunning}, statestore.StatusFailed)
			return err
		}},
	}
}

func run(out io.Writer) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv, err := embedded.Start()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	session := fmt.Sprintf("session-%06x", rand.Uint32()&0xffffff)
	fmt.Fprintf(out, "server: %s; session %s; lease %v\n", srv.Description, session, ttl)
	r := &report{out: out}

	a, err := newExecutor(srv, "A", session, out)
	if err != nil {
		return nil, err
	}
	defer a.close()
	b, err := newExecutor(srv, "B", session, out)
	if err != nil {
		return nil, err
	}
	defer b.close()

	// Run 1: A works until it crashes in step crashStep.
	fmt.Fprintln(out, "\n-- run 1: executor A")
	lockA, err := a.acquire(ctx)
	if err != nil {
		return nil, err
	}
	a.say("acquired the lock, token %d", lockA.Token())
	first, err := a.open(ctx, lockA, r, 0)
	if err != nil {
		return nil, err
	}
	for n := first; n < crashStep; n++ {
		if err := a.step(ctx, lockA, n, r); err != nil {
			return nil, err
		}
	}
	if err := a.crash(ctx, lockA, crashStep); err != nil {
		return nil, err
	}

	// A is frozen, not dead; its lease runs out.
	srv.Sleep(2 * ttl)

	// Run 2: B takes over, resumes and finishes; A wakes up in between.
	fmt.Fprintf(out, "\n-- run 2: executor B, %v later\n", 2*ttl)
	lockB, err := b.acquire(ctx)
	if err != nil {
		return nil, err
	}
	b.say("acquired the lock, token %d (A's lease ran out)", lockB.Token())
	first, err = b.open(ctx, lockB, r, lockA.Token())
	if err != nil {
		return nil, err
	}
	r.check(first == crashStep, "B resumes at step %d, want %d", first, crashStep)
	tried, refused := 0, 0
	for n := first; n <= int64(len(plan)); n++ {
		if err := b.step(ctx, lockB, n, r); err != nil {
			return nil, err
		}
		if n != crashStep {
			continue
		}
		// A wakes up in the middle of B's run, after B finished step 3.
		tokA := lockA.Token()
		a.say("wakes up; its lock says: %v", lockA.Err())
		a.say("carries on with token %d anyway:", tokA)
		writes := a.lateWrites(tokA)
		k, err := a.staleWrites(ctx, writes, r)
		if err != nil {
			return nil, err
		}
		tried, refused = tried+len(writes), refused+k
	}
	if err := b.finish(ctx, lockB, r); err != nil {
		return nil, err
	}

	// A, still behind, tries once more after B is gone, then releases.
	tokA := lockA.Token()
	last := []staleWrite{{"UpdateStatus failed", func(ctx context.Context) error {
		_, err := a.store.UpdateStatus(ctx, session, tokA, statestore.StatusFailed)
		return err
	}}}
	k, err := a.staleWrites(ctx, last, r)
	if err != nil {
		return nil, err
	}
	tried, refused = tried+len(last), refused+k
	a.say("Release: %v", lockA.Release(ctx))

	if err := verify(ctx, b, r, tried, refused); err != nil {
		return nil, err
	}
	if len(r.violations) == 0 {
		fmt.Fprintln(out, "\nOK: the session completed once, resumed once, and nothing of the stale executor leaked in")
	}
	return r.violations, nil
}

// verify checks the final session against what the story must produce.
func verify(ctx context.Context, e *executor, r *report, tried, refused int) error {
	fmt.Fprintln(r.out, "\n-- end check")
	st, err := e.store.Load(ctx, e.session)
	if err != nil {
		return err
	}
	total := int64(len(plan))
	r.check(st.Status == statestore.StatusCompleted, "status is %s, want completed", st.Status)
	r.check(st.Step == total, "step count is %d, want %d", st.Step, total)
	r.check(st.ResumeCount == 1, "resume count is %d, want 1", st.ResumeCount)

	// The document: initial, plus the tool results of A's steps before the
	// crash and B's from there, in issue order; nothing of A's step 3.
	want := map[string]any{"question": question, "facts": map[string]any{}, "log": []any{}, "answer": nil}
	var msgs []message
	msgs = append(msgs, message{Role: "user", Executor: "A", Content: question})
	for n := int64(1); n <= total; n++ {
		letter := "A"
		if n >= crashStep {
			letter = "B"
		}
		for i, c := range plan[n-1] {
			want["log"] = append(want["log"].([]any), callID(letter, n, i))
			if c.Fact == "" {
				want["answer"] = c.Result
			} else {
				want["facts"].(map[string]any)[c.Fact] = c.Result
			}
		}
		msgs = append(msgs, requestMsg(letter, n))
		msgs = append(msgs, resultMsgs(letter, n)...)
	}
	var got any
	if err := json.Unmarshal(st.Data, &got); err != nil {
		return fmt.Errorf("state data: %w", err)
	}
	r.check(reflect.DeepEqual(got, want), "data is %s, want %s", st.Data, mustJSON(want))

	// The messages, read back page by page.
	r.check(st.MessageCount == int64(len(msgs)), "message count is %d, want %d", st.MessageCount, len(msgs))
	var stored []message
	for cursor := ""; ; {
		page, err := e.store.Messages(ctx, e.session, cursor, 5)
		if err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		for _, raw := range page.Messages {
			var m message
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("message %s: %w", raw, err)
			}
			stored = append(stored, m)
		}
		if !page.HasMore {
			break
		}
		cursor = page.Next
	}
	fromA := 0
	for _, m := range stored {
		if m.Executor == "A" {
			fromA++
			r.check(m.Step < crashStep, "message of A's step %d survived: %+v", m.Step, m)
		}
	}
	r.check(reflect.DeepEqual(stored, msgs), "the %d stored messages differ from the %d expected", len(stored), len(msgs))

	staged, err := e.stager.List(ctx, e.session)
	if err != nil {
		return err
	}
	r.check(len(staged) == 0, "%d changes are still staged", len(staged))
	cps, err := e.cps.List(ctx, e.session, "", checkpoint.MaxPageSize)
	if err != nil {
		return err
	}
	r.check(len(cps.Checkpoints) > 0 && cps.Checkpoints[0].Step == total, "the latest checkpoint is not of step %d", total)
	r.check(cps.Total == total, "%d checkpoints, want %d", cps.Total, total)

	r.check(refused == tried, "%d of A's %d writes after the takeover were accepted", tried-refused, tried)

	var doc struct {
		Facts map[string]string `json:"facts"`
		Log   []string          `json:"log"`
	}
	_ = json.Unmarshal(st.Data, &doc)
	fmt.Fprintf(r.out, "status %s, step %d, resume count %d, version %d\n", st.Status, st.Step, st.ResumeCount, st.Version)
	fmt.Fprintf(r.out, "data: %d facts, answer set, changes applied: %s\n", len(doc.Facts), strings.Join(doc.Log, " "))
	fmt.Fprintf(r.out, "messages: %d (%d by A before its crash), checkpoints: %d, staged: %d\n",
		len(stored), fromA, cps.Total, len(staged))
	fmt.Fprintf(r.out, "A's writes after the takeover: %d tried, %d refused\n", tried, refused)
	return nil
}
