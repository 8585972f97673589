package main

// This file is the executor side: what runs in the subprocesses. An
// executor reads commands from stdin (one per line) and reports what it did
// as JSON lines on stdout.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// The environment of an executor subprocess. envRole selects the executor
// role; the others say where and what to run.
const (
	envRole    = "SPLITBRAIN_EXECUTOR" // "A" (the holder that gets frozen) or "B" (the one that takes over)
	envMode    = "SPLITBRAIN_MODE"     // modeNaive or modeFenced
	envSession = "SPLITBRAIN_SESSION"  // session id, also the lock name
	envTTL     = "SPLITBRAIN_TTL_MS"   // lease length in milliseconds
	envMini    = "SPLITBRAIN_MINIREDIS"
	envURL     = "REDIS_URL"
)

// The two runs of the scenario.
const (
	modeNaive  = "naive"  // a lock, but plain HSETs at the store: no fencing check
	modeFenced = "fenced" // statestore writes carrying the lock's token (strict mode)
)

// Commands the parent sends on an executor's stdin. Closing stdin means
// "finish": release the lock and exit.
const cmdGo = "go"

// report is one JSON line from an executor to the parent.
type report struct {
	Event string `json:"event"` // acquired, wrote, ready, write, released, error

	Token   fencing.Token     `json:"token,omitempty"`   // acquired: the lock's token
	Version int64             `json:"version,omitempty"` // wrote, ready: the state's version
	State   map[string]string `json:"state,omitempty"`   // wrote (B): the raw state hash right after the write
	Fields  map[string]string `json:"fields,omitempty"`  // write (A): the fields A's stale write carried

	// write (A): the outcome of the stale write.
	Accepted  bool          `json:"accepted,omitempty"`
	Stale     bool          `json:"stale,omitempty"`     // errors.Is(err, fencing.ErrStaleToken)
	NotHolder bool          `json:"notHolder,omitempty"` // errors.Is(err, fencing.ErrNotHolder)
	Presented fencing.Token `json:"presented,omitempty"` // *fencing.StaleTokenError.Presented
	Highest   fencing.Token `json:"highest,omitempty"`   // *fencing.StaleTokenError.Highest
	LeaseErr  string        `json:"leaseErr,omitempty"`  // what lk.Err() said, had A asked

	Err string `json:"err,omitempty"` // error: what failed; write, released: the error returned
}

// session is what an agent executor keeps about a session, in both runs.
type session struct {
	Status   string
	Step     int64
	Messages []string
	Output   string
}

// initialSession is what A writes first, as step 1.
func initialSession() session {
	return session{Status: "running", Step: 1, Messages: []string{"user: the parser test fails, fix it"}}
}

// nextStep is the work each executor does on the state it loaded: A plans
// step 2; B, taking over, does step 2 and finishes the session.
func nextStep(role string, s session) session {
	s.Messages = slices.Clone(s.Messages)
	s.Step++
	switch role {
	case "A":
		s.Messages = append(s.Messages, "A: step 2: rewrite the parser from scratch")
	default:
		s.Messages = append(s.Messages, "B: step 2: fix the off-by-one in parser.go; tests pass")
		s.Status = "completed"
		s.Output = "patch: parser.go line 42"
	}
	return s
}

// sessionStore is the store an executor writes the session to: the naive
// one or statestore.
type sessionStore interface {
	create(ctx context.Context, token fencing.Token, s session) (version int64, err error)
	load(ctx context.Context) (s session, version int64, err error)
	// save writes next over loaded blindly (no expected version): the token
	// is the only thing that can stop it.
	save(ctx context.Context, token fencing.Token, loaded, next session, loadedVersion int64) (version int64, fields map[string]string, err error)
}

// lockPrefix is the key prefix of the lock, and of the statestore keys in
// the fenced run. The runs use different prefixes, so their locks are apart.
func lockPrefix(mode string) string { return "splitbrain-" + mode }

// stateKey is the Redis hash holding the session state: the naive store's
// own hash, or statestore's "<prefix>:{<id>}:state".
func stateKey(mode, id string) string { return lockPrefix(mode) + ":{" + id + "}:state" }

// keyTTL bounds how long the example's keys stay on a real server.
const keyTTL = 10 * time.Minute

// naiveStore is what many executors do: read the session hash, change it,
// HSET the fields that changed. The lock is supposed to make that safe.
type naiveStore struct {
	client rueidis.Client
	key    string
}

// create and save take the token only to ignore it: nothing here checks it.
func (n *naiveStore) create(ctx context.Context, _ fencing.Token, s session) (int64, error) {
	fields := n.fields(session{}, s)
	fields["version"] = "1"
	return 1, n.hset(ctx, fields)
}

func (n *naiveStore) load(ctx context.Context) (session, int64, error) {
	h, err := n.client.Do(ctx, n.client.B().Hgetall().Key(n.key).Build()).AsStrMap()
	if err != nil {
		return session{}, 0, err
	}
	var s session
	s.Status, s.Output = h["status"], h["output"]
	s.Step, _ = strconv.ParseInt(h["step"], 10, 64)
	version, _ := strconv.ParseInt(h["version"], 10, 64)
	if err := json.Unmarshal([]byte(h["data"]), &s.Messages); err != nil {
		return session{}, 0, fmt.Errorf("naive store: data: %w", err)
	}
	return s, version, nil
}

func (n *naiveStore) save(ctx context.Context, _ fencing.Token, loaded, next session, loadedVersion int64) (int64, map[string]string, error) {
	fields := n.fields(loaded, next)
	fields["version"] = strconv.FormatInt(loadedVersion+1, 10)
	return loadedVersion + 1, fields, n.hset(ctx, fields)
}

// fields returns the hash fields of next that differ from prev.
func (n *naiveStore) fields(prev, next session) map[string]string {
	f := map[string]string{}
	if next.Status != prev.Status {
		f["status"] = next.Status
	}
	if next.Step != prev.Step {
		f["step"] = strconv.FormatInt(next.Step, 10)
	}
	if !slices.Equal(next.Messages, prev.Messages) {
		data, _ := json.Marshal(next.Messages) // []string always marshals
		f["data"] = string(data)
	}
	if next.Output != prev.Output {
		f["output"] = next.Output
	}
	return f
}

func (n *naiveStore) hset(ctx context.Context, fields map[string]string) error {
	cmd := n.client.B().Hset().Key(n.key).FieldValue()
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		cmd = cmd.FieldValue(k, fields[k])
	}
	err := n.client.Do(ctx, cmd.Build()).Error()
	if err == nil {
		err = n.client.Do(ctx, n.client.B().Pexpire().Key(n.key).Milliseconds(keyTTL.Milliseconds()).Build()).Error()
	}
	return err
}

// fencedStore writes through statestore: every write is a script that
// checks the token against the lock and the session before it writes.
type fencedStore struct {
	store *statestore.Store
	id    string
}

func (f *fencedStore) state(s session) statestore.State {
	data, _ := json.Marshal(map[string][]string{"messages": s.Messages}) // always marshals
	st := statestore.State{AgentType: "coder", Status: statestore.Status(s.Status), Step: s.Step, Data: data}
	if s.Output != "" {
		st.Output, _ = json.Marshal(s.Output)
	}
	return st
}

func (f *fencedStore) create(ctx context.Context, token fencing.Token, s session) (int64, error) {
	return f.store.Create(ctx, f.id, token, f.state(s))
}

func (f *fencedStore) load(ctx context.Context) (session, int64, error) {
	st, err := f.store.Load(ctx, f.id)
	if err != nil {
		return session{}, 0, err
	}
	var data struct{ Messages []string }
	if err := json.Unmarshal(st.Data, &data); err != nil {
		return session{}, 0, fmt.Errorf("state data: %w", err)
	}
	s := session{Status: string(st.Status), Step: st.Step, Messages: data.Messages}
	if len(st.Output) > 0 {
		if err := json.Unmarshal(st.Output, &s.Output); err != nil {
			return session{}, 0, fmt.Errorf("state output: %w", err)
		}
	}
	return s, st.Version, nil
}

func (f *fencedStore) save(ctx context.Context, token fencing.Token, _, next session, _ int64) (int64, map[string]string, error) {
	st := f.state(next) // Version 0: a blind write, no version check
	fields := map[string]string{"status": string(st.Status), "step": strconv.FormatInt(st.Step, 10), "data": string(st.Data), "output": string(st.Output)}
	v, err := f.store.Save(ctx, f.id, token, st)
	return v, fields, err
}

// executorMain runs an executor subprocess and returns its exit code.
func executorMain(role string) int {
	out := json.NewEncoder(os.Stdout)
	emit := func(r report) {
		if err := out.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "executor", role+":", err)
		}
	}
	// Bounded: nothing here should take more than a few seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runExecutor(ctx, role, bufio.NewScanner(os.Stdin), emit); err != nil {
		emit(report{Event: "error", Err: err.Error()})
		return 1
	}
	return 0
}

func runExecutor(ctx context.Context, role string, in *bufio.Scanner, emit func(report)) error {
	mode, id := os.Getenv(envMode), os.Getenv(envSession)
	ttlMS, err := strconv.Atoi(os.Getenv(envTTL))
	if err != nil || (role != "A" && role != "B") || (mode != modeNaive && mode != modeFenced) {
		return fmt.Errorf("bad executor environment: role %q, %s=%q, %s=%q", role, envMode, mode, envTTL, os.Getenv(envTTL))
	}
	opt, err := rueidis.ParseURL(os.Getenv(envURL))
	if err != nil {
		// The parse error quotes the URL, password and all.
		return fmt.Errorf("%s %s: not a URL rueidis.ParseURL accepts", envURL, embedded.RedactURL(os.Getenv(envURL)))
	}
	if os.Getenv(envMini) != "" && len(opt.InitAddress) == 1 {
		opt = embedded.MiniOption(opt.InitAddress[0])
	} else if err := embedded.TLSFilesFromEnv(nil).Apply(&opt); err != nil {
		return err
	}
	opt.Dialer.Timeout = 2 * time.Second
	opt.ConnWriteTimeout = 5 * time.Second
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return err
	}
	defer client.Close()

	locker, err := lock.New(client, lock.Options{
		Prefix:      lockPrefix(mode),
		Owner:       fmt.Sprintf("executor-%s-%d", role, os.Getpid()),
		TTL:         time.Duration(ttlMS) * time.Millisecond,
		AutoRefresh: role == "B", // B is a well-behaved holder; A's lease must run out
		FenceTTL:    keyTTL,
	})
	if err != nil {
		return err
	}
	defer locker.Close()

	var store sessionStore = &naiveStore{client: client, key: stateKey(mode, id)}
	if mode == modeFenced {
		ss, err := statestore.New(client, statestore.Options{Prefix: lockPrefix(mode), TTL: keyTTL})
		if err != nil {
			return err
		}
		store = &fencedStore{store: ss, id: id}
	}
	if role == "A" {
		return runHolder(ctx, locker, store, id, in, emit)
	}
	return runTaker(ctx, locker, store, client, stateKey(mode, id), id, in, emit)
}

// runHolder is executor A: it takes the lease, writes step 1, reads the
// state for step 2, says it is ready and waits for "go". The parent freezes
// it there; once thawed, A writes step 2 without looking at its lease.
func runHolder(ctx context.Context, locker *lock.Locker, store sessionStore, id string, in *bufio.Scanner, emit func(report)) error {
	lk, err := locker.TryAcquire(ctx, id)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	emit(report{Event: "acquired", Token: lk.Token()})
	v, err := store.create(ctx, lk.Token(), initialSession())
	if err != nil {
		return fmt.Errorf("write step 1: %w", err)
	}
	emit(report{Event: "wrote", Version: v})

	loaded, v, err := store.load(ctx)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	next := nextStep("A", loaded)
	emit(report{Event: "ready", Version: v})
	if err := waitLine(in, cmdGo); err != nil {
		return err
	}

	// The race: A computed step 2 before the pause and writes it now, as a
	// real executor in the middle of a step would, without first asking
	// lk.Err() or lk.Done() whether its lease survived the pause.
	_, fields, werr := store.save(ctx, lk.Token(), loaded, next, v)
	r := report{Event: "write", Fields: fields, Accepted: werr == nil}
	if werr != nil {
		r.Err = werr.Error()
		r.Stale = errors.Is(werr, fencing.ErrStaleToken)
		r.NotHolder = errors.Is(werr, fencing.ErrNotHolder)
		var se *fencing.StaleTokenError
		if errors.As(werr, &se) {
			r.Presented, r.Highest = se.Presented, se.Highest
		}
	}
	if lerr := lk.Err(); lerr != nil {
		r.LeaseErr = lerr.Error()
	}
	emit(r)

	if err := waitEOF(in); err != nil {
		return err
	}
	// A lost lease makes Release return a *lock.LostError; it never touches
	// B's lock.
	rerr := lk.Release(ctx)
	emit(report{Event: "released", Err: errString(rerr)})
	return nil
}

// runTaker is executor B: it takes the lease once A's has run out, does
// step 2 on the state it finds, and holds the lease until told to finish.
func runTaker(ctx context.Context, locker *lock.Locker, store sessionStore, client rueidis.Client, key, id string, in *bufio.Scanner, emit func(report)) error {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	lk, err := locker.Acquire(actx, id)
	cancel()
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	emit(report{Event: "acquired", Token: lk.Token()})
	// B is careful: its writes run under the lease's context.
	wctx, cancel := lk.WithContext(ctx)
	defer cancel()
	loaded, v, err := store.load(wctx)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	v, _, err = store.save(wctx, lk.Token(), loaded, nextStep("B", loaded), v)
	if err != nil {
		return fmt.Errorf("write step 2: %w", err)
	}
	state, err := client.Do(wctx, client.B().Hgetall().Key(key).Build()).AsStrMap()
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	emit(report{Event: "wrote", Version: v, State: state})

	if err := waitEOF(in); err != nil {
		return err
	}
	rerr := lk.Release(ctx)
	emit(report{Event: "released", Err: errString(rerr)})
	return nil
}

// waitLine waits for the command want on stdin.
func waitLine(in *bufio.Scanner, want string) error {
	if !in.Scan() {
		return fmt.Errorf("stdin closed before %q: %v", want, in.Err())
	}
	if got := in.Text(); got != want {
		return fmt.Errorf("got command %q, want %q", got, want)
	}
	return nil
}

// waitEOF waits for the parent to close stdin (or to die).
func waitEOF(in *bufio.Scanner) error {
	for in.Scan() {
		if in.Text() != "" {
			return fmt.Errorf("unexpected command %q", in.Text())
		}
	}
	if err := in.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
