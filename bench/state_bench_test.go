package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// BenchmarkState measures the session stores (statestore, staging,
// checkpoint) on the real redis-server, and a raw HSET floor for Save.
// Sub-benchmarks are named op=<op>/impl=<impl>/par=<goroutines>, so
//
//	benchstat -filter .name:State -row /op,/par -col /impl out.txt
//
// puts fencekit and the floor side by side. See README.md for what each op
// does and what is inside and outside the timer.
func BenchmarkState(b *testing.B) {
	for _, sb := range stateBenches {
		b.Run(fmt.Sprintf("op=%s/impl=%s/par=%d", sb.op, sb.impl, sb.par), func(b *testing.B) {
			runState(b, sb)
		})
	}
}

const (
	// stateLockTTL is the lease of the session locks the fenced writers
	// hold. Each run (one b.N) acquires them once before its timed loop and
	// releases them after it; writes are strict (the default), so the
	// lease has to outlast the run (runTimeout bounds that).
	stateLockTTL = 5 * time.Minute

	saveDocBytes       = 4 << 10 // the document of save4k (and of the promote session)
	checkpointDocBytes = 1 << 10 // the state of every checkpoint
	messageBytes       = 256     // each message of msgs100
	stagedChanges      = 10      // changes staged per step in promote10 / cycle10
	pageSize           = 100     // cplist100 and msgs100
	prefill            = 250     // checkpoints / messages in the listed session (>= 2 pages)

	// cmdstatsEnv, when "1", logs the Redis commands each run sent and
	// their server time per call (INFO commandstats deltas over the timed
	// part): a profiling aid, off by default.
	cmdstatsEnv = "FENCEKIT_BENCH_CMDSTATS"
)

// A stateBench is one sub-benchmark.
type stateBench struct {
	op, impl string
	// par is the number of goroutines: 1 runs a plain loop, more use
	// RunParallel with SetParallelism(par/GOMAXPROCS).
	par int
	// open returns the worker of goroutine i; it runs untimed and may set
	// up a session (acquire its lock, create it, fill it).
	open func(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker
}

var stateBenches = []stateBench{
	// The floor first: benchstat takes the first column as the base.
	{"save4k", "hset-floor", 1, openSaveFloor},
	{"save4k", "fencekit", 1, openSaveFencekit},
	{"save4k", "hset-floor", 64, openSaveFloor},
	{"save4k", "fencekit", 64, openSaveFencekit},
	{"save4k", "fencekit-eventlog", 64, openSaveFencekitEvents},
	{"promote10", "fencekit", 1, openPromote},
	{"cycle10", "fencekit", 1, openCycle},
	{"cpsave1k", "fencekit", 1, openCheckpointSave},
	{"cplist100", "fencekit", 1, openCheckpointList},
	{"msgs100", "fencekit", 1, openMessages},
	// The other fenced writes beside the raw command they stand for
	// (issue 13): a status compare-and-set beside HSET of one field, one
	// 256 B message beside RPUSH, one staged change beside HSET.
	{"cas", "hset-floor", 64, openFieldFloor("status", "running")},
	{"cas", "fencekit", 64, openCAS},
	{"append1", "rpush-floor", 64, openRPushFloor},
	{"append1", "fencekit", 64, openAppend1},
	{"stage1", "hset-floor", 64, openFieldFloor("1|call-1", `{"merge":{"summary":"done"}}`)},
	{"stage1", "fencekit", 64, openStage1},
	{"cpsave1k", "hset-floor", 64, openCheckpointFloor},
	{"cpsave1k", "fencekit", 64, openCheckpointSave},
}

// A stateWorker is the state of one goroutine.
type stateWorker interface {
	// do is one timed operation.
	do(ctx context.Context) error
}

// A preparer has untimed work to do before each operation (serial only:
// the timer is stopped around it).
type preparer interface {
	prepare(ctx context.Context) error
}

func runState(b *testing.B, sb stateBench) {
	e := newStateEnv(b)
	defer e.close()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()

	n, par := goroutines(b, sb.par)
	workers := make([]stateWorker, n)
	for i := range workers {
		workers[i] = sb.open(b, ctx, e, i)
	}
	// CPU per op would count untimed preparation too: left out there.
	measure(b, ctx, cancel, e, workers, par, false)
}

// goroutines returns how many workers to open for want goroutines and the
// b.SetParallelism argument (0: a serial run).
func goroutines(b *testing.B, want int) (n, par int) {
	if want <= 1 {
		return 1, 0
	}
	procs := runtime.GOMAXPROCS(0)
	par = (want + procs - 1) / procs
	n = par * procs
	if n != want {
		b.Logf("GOMAXPROCS=%d: running %d goroutines instead of %d", procs, n, want)
	}
	return n, par
}

// measure warms every worker up with one untimed operation (dialling
// connections, loading scripts, filling caches), then times workers, one
// goroutine each (par 0: serially, with untimed preparation where a worker
// has it), and reports ops/s, p50/p99 latency and the CPU per op of the
// redis-server and of this process. cpuWithPrepare reports the CPU also
// when a worker's untimed preparation is included in it.
func measure(b *testing.B, ctx context.Context, cancel context.CancelFunc, srv *stateEnv, workers []stateWorker, par int, cpuWithPrepare bool) {
	for _, w := range workers {
		if _, ok := w.(preparer); ok && par != 0 {
			b.Fatalf("untimed preparation needs a serial run")
		}
	}
	hists := make([]hist, len(workers))
	for _, w := range workers {
		if p, ok := w.(preparer); ok {
			if err := p.prepare(ctx); err != nil {
				b.Fatalf("warm-up: %v", err)
			}
		}
		if err := w.do(ctx); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}

	_, prepared := workers[0].(preparer)
	cpu0, cpuOK := srv.serverCPU(b)
	cli0, cliOK := clientCPU()
	var cmd0 map[string]cmdStat
	if os.Getenv(cmdstatsEnv) == "1" {
		cmd0 = srv.commandStats(b)
	}

	b.ReportAllocs()
	b.ResetTimer()
	if par == 0 {
		w, h := workers[0], &hists[0]
		p, _ := w.(preparer)
		for i := 0; i < b.N; i++ {
			if p != nil {
				b.StopTimer()
				if err := p.prepare(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			start := time.Now()
			if err := w.do(ctx); err != nil {
				b.Fatal(err)
			}
			h.record(time.Since(start))
		}
	} else {
		b.SetParallelism(par)
		var (
			next   atomic.Int32
			failed atomic.Bool
		)
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(1) - 1
			w, h := workers[i], &hists[i]
			for pb.Next() {
				if failed.Load() {
					return
				}
				start := time.Now()
				if err := w.do(ctx); err != nil {
					if !failed.Swap(true) {
						b.Error(err)
						cancel()
					}
					return
				}
				h.record(time.Since(start))
			}
		})
	}
	b.StopTimer()
	cli1, cliOK1 := clientCPU()

	var all hist
	for i := range hists {
		all.merge(&hists[i])
	}
	if secs := b.Elapsed().Seconds(); secs > 0 {
		b.ReportMetric(float64(b.N)/secs, "ops/s")
	}
	b.ReportMetric(all.quantile(0.50)/1e3, "p50-µs")
	b.ReportMetric(all.quantile(0.99)/1e3, "p99-µs")
	cpu := !prepared || cpuWithPrepare
	if cpu1, ok := srv.serverCPU(b); ok && cpuOK && cpu && b.N > 0 {
		b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "srv-cpu-µs/op")
	}
	if cliOK && cliOK1 && cpu && b.N > 0 && b.Elapsed() >= 250*time.Millisecond {
		b.ReportMetric((cli1-cli0)*1e6/float64(b.N), "cli-cpu-µs/op")
	}
	if cmd0 != nil {
		logCommandStats(b, cmd0, srv.commandStats(b), prepared)
	}
}

// --- environment: one client, locker, store, stager and checkpoint store ---

type stateEnv struct {
	s      *redistest.Server
	prefix string
	c      rueidis.Client
	locker *lock.Locker
	store  *statestore.Store
	// evStore is store with statestore.Options.EventLog (off in store,
	// the default).
	evStore *statestore.Store
	stager  *staging.Stager
	cps     *checkpoint.Store
	// sessions and floor keys to remove, and locks to release, after the run
	sessions  []heldSession
	floorKeys []string
}

type heldSession struct {
	id string
	lk *lock.Lock
}

func newStateEnv(b *testing.B) *stateEnv {
	s := redistest.NewRedis(b)
	e := &stateEnv{s: s, prefix: s.Prefix(b)}
	e.c = newRueidis(b, s)
	var err error
	if e.locker, err = lock.New(e.c, lock.Options{Prefix: e.prefix, TTL: stateLockTTL}); err != nil {
		e.c.Close()
		b.Fatalf("lock.New: %v", err)
	}
	if e.store, err = statestore.New(e.c, statestore.Options{Prefix: e.prefix}); err != nil {
		_ = e.locker.Close()
		e.c.Close()
		b.Fatalf("statestore.New: %v", err)
	}
	if e.evStore, err = statestore.New(e.c, statestore.Options{Prefix: e.prefix, EventLog: true}); err != nil {
		_ = e.locker.Close()
		e.c.Close()
		b.Fatalf("statestore.New: %v", err)
	}
	e.stager = staging.New(e.store)
	e.cps = checkpoint.New(e.store)
	return e
}

// close deletes what the run wrote (so checkpoints do not pile up in the
// shared server), releases the locks and closes the client. Errors are
// logged only: the measurement is over. It has a context of its own, as
// the run's may have been cancelled by a failure.
// floorKey names the raw command's key of goroutine i,
// "<prefix>:{<tag><i>}:<suffix>", and has close delete it.
func (e *stateEnv) floorKey(tag string, i int, suffix string) string {
	key := e.prefix + ":{" + tag + strconv.Itoa(i) + "}:" + suffix
	e.floorKeys = append(e.floorKeys, key)
	return key
}

func (e *stateEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, hs := range e.sessions {
		if _, err := e.store.Delete(ctx, hs.id, hs.lk.Token()); err != nil {
			logf("delete session %s: %v", hs.id, err)
		}
		if err := hs.lk.Release(ctx); err != nil {
			logf("release lock %s: %v", hs.id, err)
		}
	}
	for _, k := range e.floorKeys {
		if err := e.c.Do(ctx, e.c.B().Del().Key(k).Build()).Error(); err != nil {
			logf("del %s: %v", k, err)
		}
	}
	_ = e.locker.Close()
	e.c.Close()
}

// logf reports cleanup problems on stderr (the benchmark may be over, so
// b.Logf would not show them).
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// session acquires the lock of a new session and creates the session with
// data as its document; it returns the session id and the lock's token.
func (e *stateEnv) session(b *testing.B, ctx context.Context, name string, data json.RawMessage) (string, fencing.Token) {
	lk, err := e.locker.TryAcquire(ctx, name)
	if err != nil {
		b.Fatalf("acquire %s: %v", name, err)
	}
	e.sessions = append(e.sessions, heldSession{id: name, lk: lk})
	if _, err := e.store.Create(ctx, name, lk.Token(), benchState(data)); err != nil {
		b.Fatalf("create %s: %v", name, err)
	}
	return name, lk.Token()
}

func benchState(data json.RawMessage) statestore.State {
	return statestore.State{AgentType: "bench", Status: statestore.StatusRunning, Step: 1, Data: data}
}

// serverCPU returns the CPU seconds (user + system) the redis-server
// process has used. Benchmarks of this binary run one at a time and the
// server is this binary's own, so a delta over the timed part is the
// server's cost of the measured operations (plus a little background work).
func (e *stateEnv) serverCPU(b *testing.B) (float64, bool) { return serverCPUOf(b, e.s) }

// serverCPUOf is serverCPU for any server of this binary.
func serverCPUOf(b *testing.B, s *redistest.Server) (float64, bool) {
	msg := s.Do(b, "INFO", "cpu")
	info, err := msg.ToString()
	if err != nil {
		b.Logf("INFO cpu: %v", err)
		return 0, false
	}
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		sum += f
		found++
	}
	return sum, found == 2
}

type cmdStat struct{ calls, usec int64 }

// commandStats parses INFO commandstats.
func (e *stateEnv) commandStats(b *testing.B) map[string]cmdStat {
	msg := e.s.Do(b, "INFO", "commandstats")
	info, err := msg.ToString()
	if err != nil {
		b.Fatalf("INFO commandstats: %v", err)
	}
	m := map[string]cmdStat{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var st cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				st.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				st.usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		m[strings.TrimPrefix(name, "cmdstat_")] = st
	}
	return m
}

// logCommandStats logs, on one line (b.Log keeps 10 lines per benchmark),
// the calls per op and the server time per call of each command of the
// timed part. Commands run inside scripts are listed too (their time is
// also inside evalsha's).
func logCommandStats(b *testing.B, before, after map[string]cmdStat, prepared bool) {
	names := make([]string, 0, len(after))
	for name := range after {
		names = append(names, name)
	}
	sort.Strings(names)
	var sb strings.Builder
	fmt.Fprintf(&sb, "commandstats over %d ops", b.N)
	if prepared {
		sb.WriteString(" (with the untimed preparation)")
	}
	sb.WriteString(", calls/op × µs/call:")
	for _, name := range names {
		d := cmdStat{after[name].calls - before[name].calls, after[name].usec - before[name].usec}
		if d.calls <= 0 || name == "info" {
			continue
		}
		fmt.Fprintf(&sb, " %s %.2f×%.2f", name, float64(d.calls)/float64(b.N), float64(d.usec)/float64(d.calls))
	}
	b.Log(sb.String())
}

// clientCPU returns the CPU seconds (user + system) this process has used,
// from /proc/self/stat (Linux; clock ticks of 10 ms, so it is reported only
// for runs of 250 ms or more). The redis-server child is not included.
func clientCPU() (float64, bool) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the command name (which may contain spaces) start
	// with the state, field 3; utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(utime+stime) / clockTicks, true
}

// clockTicks is USER_HZ, 100 on every Linux port Go supports.
const clockTicks = 100

// --- documents ---

// benchDoc returns a JSON object of exactly size bytes with ten counters
// ("/counters/c0" .. "/counters/c9", the paths the staged patches replace),
// a list of items and padding.
func benchDoc(size int) json.RawMessage {
	var sb strings.Builder
	sb.WriteString(`{"agent":"bench","counters":{`)
	for j := range stagedChanges {
		if j > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"c%d":0`, j)
	}
	sb.WriteString(`},"items":[`)
	const tail = `],"pad":""}`
	for j := 0; ; j++ {
		item := fmt.Sprintf(`{"id":%d,"name":"item-%d","done":false}`, j, j)
		if j > 0 {
			item = "," + item
		}
		if sb.Len()+len(item)+len(tail)+8 > size {
			break
		}
		sb.WriteString(item)
	}
	sb.WriteString(`],"pad":"`)
	sb.WriteString(strings.Repeat("x", size-sb.Len()-2))
	sb.WriteString(`"}`)
	doc := json.RawMessage(sb.String())
	if len(doc) != size || !json.Valid(doc) {
		panic(fmt.Sprintf("benchDoc(%d): %d bytes, valid %v", size, len(doc), json.Valid(doc)))
	}
	return doc
}

func benchMessage(i int) json.RawMessage {
	m := fmt.Sprintf(`{"role":"assistant","content":"message %04d `, i)
	m += strings.Repeat("x", messageBytes-len(m)-2) + `"}`
	return json.RawMessage(m)
}

// --- save4k: statestore.Store.Save of a 4 KiB document vs HSET ---

type saveWorker struct {
	store *statestore.Store
	id    string
	token fencing.Token
	st    statestore.State
}

// openSaveFencekit gives goroutine i a session of its own, with its lock
// held for the whole run. Every op is an unconditional Save (Version 0) of
// the same state: strict fencing, version bump, TTL refresh of every key.
func openSaveFencekit(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	doc := benchDoc(saveDocBytes)
	id, tok := e.session(b, ctx, "s"+strconv.Itoa(i), doc)
	return &saveWorker{store: e.store, id: id, token: tok, st: benchState(doc)}
}

// openSaveFencekitEvents is openSaveFencekit on a store with the event
// log (statestore.Options.EventLog): every Save also appends an event.
func openSaveFencekitEvents(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	w := openSaveFencekit(b, ctx, e, i).(*saveWorker)
	w.store = e.evStore
	return w
}

func (w *saveWorker) do(ctx context.Context) error {
	_, err := w.store.Save(ctx, w.id, w.token, w.st)
	return err
}

// A rawWorker sends one raw command per op: the floor a fenced write is
// set beside.
type rawWorker struct {
	c  rueidis.Client
	op func() rueidis.Completed
}

func (w rawWorker) do(ctx context.Context) error { return w.c.Do(ctx, w.op()).Error() }

// openSaveFloor gives goroutine i a key of its own, named like a session's
// state hash: the floor is HSET <key> data <the same 4 KiB>, no fencing,
// no version, no TTL.
func openSaveFloor(b *testing.B, _ context.Context, e *stateEnv, i int) stateWorker {
	key, doc := e.floorKey("s", i, "state"), string(benchDoc(saveDocBytes))
	return rawWorker{e.c, func() rueidis.Completed { return e.c.B().Hset().Key(key).FieldValue().FieldValue("data", doc).Build() }}
}

// --- promote10 and cycle10: staging.Stager ---

type stageWorker struct {
	sg    *staging.Stager
	id    string
	token fencing.Token
	step  int64
	// changes[step%2] are the stagedChanges changes of a step: change j
	// replaces /counters/cj with 1 or 2, so the document changes every
	// step and keeps its size.
	changes [2][stagedChanges]staging.Change
}

func newStageWorker(b *testing.B, ctx context.Context, e *stateEnv, i int) *stageWorker {
	id, tok := e.session(b, ctx, "p"+strconv.Itoa(i), benchDoc(saveDocBytes))
	w := &stageWorker{sg: e.stager, id: id, token: tok}
	for p := range w.changes {
		for j := range w.changes[p] {
			w.changes[p][j] = staging.Change{
				ToolCallID: "call-" + strconv.Itoa(j),
				Patches:    json.RawMessage(fmt.Sprintf(`[{"op":"replace","path":"/counters/c%d","value":%d}]`, j, p+1)),
			}
		}
	}
	return w
}

// stage stages the changes of the next step.
func (w *stageWorker) stage(ctx context.Context) error {
	w.step++
	for _, c := range &w.changes[w.step%2] {
		if _, err := w.sg.Stage(ctx, w.id, w.step, w.token, c); err != nil {
			return err
		}
	}
	return nil
}

// promote promotes the current step and checks that all its changes were
// applied.
func (w *stageWorker) promote(ctx context.Context) error {
	res, err := w.sg.Promote(ctx, w.id, w.step, w.token)
	if err != nil {
		return err
	}
	if len(res.Applied) != stagedChanges || len(res.Skipped) != 0 {
		return fmt.Errorf("promote step %d: applied %d, skipped %d, want %d and 0",
			w.step, len(res.Applied), len(res.Skipped), stagedChanges)
	}
	return nil
}

// promoteWorker times Promote alone: the 10 Stage calls of each step run
// with the timer stopped.
type promoteWorker struct{ *stageWorker }

func openPromote(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	return promoteWorker{newStageWorker(b, ctx, e, i)}
}

func (w promoteWorker) prepare(ctx context.Context) error { return w.stage(ctx) }
func (w promoteWorker) do(ctx context.Context) error      { return w.promote(ctx) }

// cycleWorker times a whole step: 10 Stage calls and the Promote.
type cycleWorker struct{ *stageWorker }

func openCycle(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	return cycleWorker{newStageWorker(b, ctx, e, i)}
}

func (w cycleWorker) do(ctx context.Context) error {
	if err := w.stage(ctx); err != nil {
		return err
	}
	return w.promote(ctx)
}

// --- cpsave1k, cplist100: checkpoint.Store ---

type cpSaveWorker struct {
	cps   *checkpoint.Store
	id    string
	token fencing.Token
	cp    checkpoint.Checkpoint
}

// openCheckpointSave: every op saves a new checkpoint (1 KiB state, step
// counting up, no messages) of one session; the run's checkpoints are
// deleted with the session afterwards.
func openCheckpointSave(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	doc := benchDoc(checkpointDocBytes)
	id, tok := e.session(b, ctx, "c"+strconv.Itoa(i), doc)
	return &cpSaveWorker{cps: e.cps, id: id, token: tok, cp: checkpoint.Checkpoint{State: doc}}
}

func (w *cpSaveWorker) do(ctx context.Context) error {
	w.cp.Step++
	_, err := w.cps.Save(ctx, w.id, w.token, w.cp)
	return err
}

// openCheckpointFloor is the raw command beside cpsave1k: HSET of a new
// field holding the same 1 KiB document per op, on a key of the goroutine's
// own (a checkpoint Save adds one payload to the session's checkpoint
// hash, and its index entry, each time).
func openCheckpointFloor(b *testing.B, _ context.Context, e *stateEnv, i int) stateWorker {
	key, doc, n := e.floorKey("p", i, "cpd"), string(benchDoc(checkpointDocBytes)), 0
	return rawWorker{e.c, func() rueidis.Completed {
		n++
		return e.c.B().Hset().Key(key).FieldValue().FieldValue("s"+strconv.Itoa(n), doc).Build()
	}}
}

// pager reads pages of 100, alternating between the first page (cursor
// "") and the second (the first page's Next cursor), so both the cursor-less
// and the cursor path are measured.
type pager struct {
	cursors [2]string
	n       int
	read    func(ctx context.Context, cursor string) (got int, next string, err error)
}

func (p *pager) do(ctx context.Context) error {
	p.n++
	got, _, err := p.read(ctx, p.cursors[p.n%2])
	if err != nil {
		return err
	}
	if got != pageSize {
		return fmt.Errorf("page of %d, want %d", got, pageSize)
	}
	return nil
}

func newPager(b *testing.B, ctx context.Context, read func(ctx context.Context, cursor string) (int, string, error)) *pager {
	_, next, err := read(ctx, "")
	if err != nil {
		b.Fatalf("first page: %v", err)
	}
	if next == "" {
		b.Fatal("first page has no next cursor")
	}
	return &pager{cursors: [2]string{"", next}, read: read}
}

// openCheckpointList fills a session with prefill checkpoints of 1 KiB
// state each; every op is checkpoint.Store.List of a page of 100 (with
// their states).
func openCheckpointList(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	doc := benchDoc(checkpointDocBytes)
	id, tok := e.session(b, ctx, "l"+strconv.Itoa(i), doc)
	for s := range prefill {
		if _, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{Step: int64(s), State: doc}); err != nil {
			b.Fatalf("checkpoint save: %v", err)
		}
	}
	return newPager(b, ctx, func(ctx context.Context, cursor string) (int, string, error) {
		p, err := e.cps.List(ctx, id, cursor, pageSize)
		return len(p.Checkpoints), p.Next, err
	})
}

// openMessages fills a session with prefill messages of 256 bytes each;
// every op is statestore.Store.Messages of a page of 100.
func openMessages(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	id, tok := e.session(b, ctx, "m"+strconv.Itoa(i), benchDoc(checkpointDocBytes))
	msgs := make([]json.RawMessage, prefill)
	for j := range msgs {
		msgs[j] = benchMessage(j)
	}
	for j := 0; j < len(msgs); j += 50 {
		if _, err := e.store.AppendMessages(ctx, id, tok, msgs[j:min(j+50, len(msgs))]...); err != nil {
			b.Fatalf("append messages: %v", err)
		}
	}
	return newPager(b, ctx, func(ctx context.Context, cursor string) (int, string, error) {
		p, err := e.store.Messages(ctx, id, cursor, pageSize)
		return len(p.Messages), p.Next, err
	})
}

// --- cas, append1, stage1: the other fenced writes (issue 13) ---

// casWorker flips its session between running and paused with
// CompareAndSetStatus: each op is one fenced compare-and-set that succeeds.
type casWorker struct {
	store *statestore.Store
	id    string
	token fencing.Token
	n     int
}

func openCAS(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	id, tok := e.session(b, ctx, "c"+strconv.Itoa(i), benchDoc(checkpointDocBytes))
	return &casWorker{store: e.store, id: id, token: tok}
}

func (w *casWorker) do(ctx context.Context) error {
	from, to := statestore.Status("running"), statestore.Status("paused")
	if w.n%2 == 1 {
		from, to = to, from
	}
	w.n++
	r, err := w.store.CompareAndSetStatus(ctx, w.id, w.token, []statestore.Status{from}, to)
	if err == nil && !r.OK {
		err = fmt.Errorf("cas %s -> %s refused", from, to)
	}
	return err
}

// openFieldFloor is the raw command beside cas and stage1: HSET of one
// field of the given value on a key of the goroutine's own.
func openFieldFloor(field, value string) func(*testing.B, context.Context, *stateEnv, int) stateWorker {
	return func(b *testing.B, _ context.Context, e *stateEnv, i int) stateWorker {
		key := e.floorKey("f", i, "state")
		return rawWorker{e.c, func() rueidis.Completed { return e.c.B().Hset().Key(key).FieldValue().FieldValue(field, value).Build() }}
	}
}

// append1Worker appends one 256 B message per op.
type append1Worker struct {
	store *statestore.Store
	id    string
	token fencing.Token
	msg   json.RawMessage
}

func openAppend1(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	id, tok := e.session(b, ctx, "a"+strconv.Itoa(i), benchDoc(checkpointDocBytes))
	return &append1Worker{store: e.store, id: id, token: tok, msg: benchMessage(i)}
}

func (w *append1Worker) do(ctx context.Context) error {
	_, err := w.store.AppendMessages(ctx, w.id, w.token, w.msg)
	return err
}

// openRPushFloor is the raw command beside append1: RPUSH of the same
// message to a list of the goroutine's own.
func openRPushFloor(b *testing.B, _ context.Context, e *stateEnv, i int) stateWorker {
	key, msg := e.floorKey("r", i, "msgs"), string(benchMessage(i))
	return rawWorker{e.c, func() rueidis.Completed { return e.c.B().Rpush().Key(key).Element(msg).Build() }}
}

// stage1Worker stages one small merge per op, always the same step and
// tool call id: each op replaces the staged change.
type stage1Worker struct {
	sg    *staging.Stager
	id    string
	token fencing.Token
	ch    staging.Change
}

func openStage1(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	id, tok := e.session(b, ctx, "g"+strconv.Itoa(i), benchDoc(checkpointDocBytes))
	return &stage1Worker{sg: e.stager, id: id, token: tok,
		ch: staging.Change{ToolCallID: "call-1", Merge: json.RawMessage(`{"summary":"done"}`)}}
}

func (w *stage1Worker) do(ctx context.Context) error {
	_, err := w.sg.Stage(ctx, w.id, 1, w.token, w.ch)
	return err
}
