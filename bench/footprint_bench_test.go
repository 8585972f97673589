package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/memory"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/usage"
)

// BenchmarkFootprint measures how much Redis memory fencekit needs per
// session and per record (issue 22), on the real redis-server. Each op
// creates one more of the thing measured; the server's used_memory grows
// by "B/session" (or "B/record") per op on average, and "x-payload" is
// that over the bytes the caller stored (documents, messages, changes,
// vectors). For the session shapes the MEMORY USAGE of one session's keys
// is reported too, one metric per key ("state-B", "events-B", ...). Run
// it with a fixed count, so every shape gets as many sessions:
//
//	go test -run '^$' -bench Footprint -benchtime 2000x
//
// Sub-benchmarks:
//
//	shape=session-1k     a held lock, a 1 KiB state document, five 200-byte
//	                     messages, one checkpoint of a 1 KiB document
//	shape=session-16k    the same with a 16 KiB document (and checkpoint)
//	                     and 100 messages
//	shape=stage10        10 staged changes (one step) on a session
//	shape=checkpoint-1k  one more checkpoint of a 1 KiB document
//	shape=usage          one more usage entry (usage.Store.Record)
//	shape=memory768      one more memory record with a 768-dim vector
//
// The event log of the session stores is measured off (the default,
// statestore.Options.EventLog) and on (events=on); the shapes that depend
// on the server configuration also under the settings the doctor advises
// (config=tuned: hash-max-listpack-value 2048, stream-node-max-bytes 512)
// beside the server's defaults (config=default).
func BenchmarkFootprint(b *testing.B) {
	for _, fb := range footprints {
		for _, ev := range []bool{false, true} {
			if ev && !fb.events {
				continue
			}
			for _, cfg := range fpConfigs {
				if cfg.name != "default" && !fb.events {
					continue
				}
				name := fmt.Sprintf("shape=%s/events=%s/config=%s", fb.name, map[bool]string{false: "off", true: "on"}[ev], cfg.name)
				b.Run(name, func(b *testing.B) {
					defer cfg.apply(b)()
					runFootprint(b, fb, ev)
				})
			}
		}
	}
}

// An fpConfig is a server configuration the footprint is measured under.
type fpConfig struct {
	name string
	set  []string // CONFIG SET name value ...
}

// fpConfigs: the server's defaults, and the settings the doctor's
// session-memory check advises (cmd/fencekit doctor).
var fpConfigs = []fpConfig{
	{"default", nil},
	{"tuned", []string{"hash-max-listpack-value", "2048", "stream-node-max-bytes", "512"}},
}

// apply sets the configuration on the binary's shared server and returns
// the function that restores what was there.
func (c fpConfig) apply(b *testing.B) (restore func()) {
	if len(c.set) == 0 {
		return func() {}
	}
	s := redistest.NewRedis(b)
	var old []string
	for i := 0; i < len(c.set); i += 2 {
		msg := s.Do(b, "CONFIG", "GET", c.set[i])
		m, err := msg.AsStrMap()
		if err != nil || m[c.set[i]] == "" {
			b.Fatalf("CONFIG GET %s: %v", c.set[i], err)
		}
		old = append(old, c.set[i], m[c.set[i]])
	}
	set := func(kv []string) {
		msg := s.Do(b, append([]string{"CONFIG", "SET"}, kv...)...)
		if err := msg.Error(); err != nil {
			b.Fatalf("CONFIG SET %v: %v", kv, err)
		}
	}
	set(c.set)
	return func() { set(old) }
}

const (
	fpMessageBytes = 200
	fpLockTTL      = time.Hour
)

type footprint struct {
	name string
	// events: the shape depends on the session event log (a row per
	// setting).
	events bool
	// setup runs untimed before the measured part; it may prepare what
	// every op needs.
	setup func(b *testing.B, ctx context.Context, e *fpEnv)
	// op adds the i-th thing measured and returns its payload bytes.
	op func(b *testing.B, ctx context.Context, e *fpEnv, i int) int
	// session: after the run, report MEMORY USAGE of the keys of the
	// session the op created last.
	session bool
	unit    string
}

var footprints = []footprint{
	{name: "session-1k", events: true, op: sessionShape(1<<10, 5), session: true, unit: "B/session"},
	{name: "session-16k", events: true, op: sessionShape(16<<10, 100), session: true, unit: "B/session"},
	{name: "stage10", events: true, setup: fpSessions, op: fpStage10, unit: "B/session"},
	{name: "checkpoint-1k", events: true, setup: fpOneSession, op: fpCheckpoint, unit: "B/record"},
	{name: "usage", setup: fpOneSession, op: fpUsage, unit: "B/record"},
	{name: "memory768", op: fpMemory, unit: "B/record"},
}

type fpEnv struct {
	s       *redistest.Server
	c       rueidis.Client
	prefix  string
	locker  *lock.Locker
	store   *statestore.Store
	stager  *staging.Stager
	cps     *checkpoint.Store
	usage   *usage.Store
	mem     *memory.Store
	tokens  []fencing.Token // of sessions "f<i>" made by fpSessions
	lastID  string
	one     fencing.Token // of session "one" made by fpOneSession
	rnd     *rand.Rand
	changes [10]staging.Change
}

func runFootprint(b *testing.B, fb footprint, events bool) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout*10)
	defer cancel()
	s := redistest.NewRedis(b)
	e := &fpEnv{s: s, c: newRueidis(b, s), prefix: s.Prefix(b), rnd: rand.New(rand.NewPCG(1, 2))}
	defer e.c.Close()
	defer fpCleanup(b, e)
	var err error
	if e.locker, err = lock.New(e.c, lock.Options{Prefix: e.prefix, TTL: fpLockTTL}); err != nil {
		b.Fatal(err)
	}
	defer e.locker.Close()
	if e.store, err = statestore.New(e.c, statestore.Options{Prefix: e.prefix, EventLog: events}); err != nil {
		b.Fatal(err)
	}
	e.stager, e.cps = staging.New(e.store), checkpoint.New(e.store)
	if e.usage, err = usage.New(e.c, usage.Options{Prefix: e.prefix, EntryTTL: time.Hour}); err != nil {
		b.Fatal(err)
	}
	if e.mem, err = memory.New(e.c, memory.Options{Prefix: e.prefix, Dim: memDim, Backend: memory.BackendScan}); err != nil {
		b.Fatal(err)
	}
	for j := range e.changes {
		e.changes[j] = staging.Change{
			ToolCallID: "call-" + strconv.Itoa(j),
			Patches:    json.RawMessage(fmt.Sprintf(`[{"op":"replace","path":"/counters/c%d","value":%d}]`, j, j+1)),
		}
	}
	if fb.setup != nil {
		fb.setup(b, ctx, e)
	}
	// Warm-up: load the scripts and let the server allocate what the
	// first write of each kind allocates once.
	fb.op(b, ctx, e, -1)
	m0 := usedMemory(b, e.s)
	b.ResetTimer()
	payload := 0
	for i := 0; i < b.N; i++ {
		payload += fb.op(b, ctx, e, i)
	}
	b.StopTimer()
	m1 := usedMemory(b, e.s)
	per := float64(m1-m0) / float64(b.N)
	b.ReportMetric(per, fb.unit)
	b.ReportMetric(float64(payload)/float64(b.N), "payload-B")
	if payload > 0 {
		b.ReportMetric(per*float64(b.N)/float64(payload), "x-payload")
	}
	if fb.session && e.lastID != "" {
		reportKeyUsage(b, e, e.lastID)
	}
}

// usedMemory returns INFO memory's used_memory.
func usedMemory(b *testing.B, s *redistest.Server) int64 {
	msg := s.Do(b, "INFO", "memory")
	info, err := msg.ToString()
	if err != nil {
		b.Fatalf("INFO memory: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("used_memory %q: %v", v, err)
			}
			return n
		}
	}
	b.Fatal("INFO memory: no used_memory")
	return 0
}

// reportKeyUsage reports MEMORY USAGE (SAMPLES 0: every element) of every
// key of session id and of its lock, one metric per key ("<suffix>-B"),
// and logs them with their types.
func reportKeyUsage(b *testing.B, e *fpEnv, id string) {
	k := keys.ForSession(e.prefix, id)
	all := append(k.All(), keys.ForLock(e.prefix, id).Fence)
	seen := map[string]bool{}
	var lines []string
	total := int64(0)
	for _, key := range all {
		if seen[key] {
			continue
		}
		seen[key] = true
		ctx := context.Background()
		n, err := e.c.Do(ctx, e.c.B().MemoryUsage().Key(key).Samples(0).Build()).AsInt64()
		if err != nil {
			continue // no such key
		}
		typ, _ := e.c.Do(ctx, e.c.B().Type().Key(key).Build()).ToString()
		_, suffix, _ := strings.Cut(key, "}:")
		b.ReportMetric(float64(n), suffix+"-B")
		lines = append(lines, fmt.Sprintf("%s %s %d", suffix, typ, n))
		total += n
	}
	sort.Strings(lines)
	b.Logf("MEMORY USAGE of session %s: %s; sum %d", id, strings.Join(lines, ", "), total)
}

// fpCleanup deletes every key of the run.
func fpCleanup(b *testing.B, e *fpEnv) {
	ctx := context.Background()
	cursor := uint64(0)
	for {
		r, err := e.c.Do(ctx, e.c.B().Scan().Cursor(cursor).Match(e.prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			b.Logf("cleanup: %v", err)
			return
		}
		if len(r.Elements) > 0 {
			_ = e.c.Do(ctx, e.c.B().Unlink().Key(r.Elements...).Build()).Error()
		}
		if cursor = r.Cursor; cursor == 0 {
			return
		}
	}
}

func fpID(i int) string { return "f" + strconv.Itoa(i) }

func fpMessages(n int) []json.RawMessage {
	msgs := make([]json.RawMessage, n)
	for j := range msgs {
		m := fmt.Sprintf(`{"role":"assistant","content":"message %04d `, j)
		m += strings.Repeat("x", fpMessageBytes-len(m)-2) + `"}`
		msgs[j] = json.RawMessage(m)
	}
	return msgs
}

// newSession acquires the lock of session id and creates it with doc.
func (e *fpEnv) newSession(b *testing.B, ctx context.Context, id string, doc json.RawMessage) fencing.Token {
	lk, err := e.locker.TryAcquire(ctx, id)
	if err != nil {
		b.Fatalf("acquire %s: %v", id, err)
	}
	if _, err := e.store.Create(ctx, id, lk.Token(), benchState(doc)); err != nil {
		b.Fatalf("create %s: %v", id, err)
	}
	return lk.Token()
}

// sessionShape: a held lock, a document of docBytes, msgs messages of 200
// bytes, one checkpoint of the document.
func sessionShape(docBytes, msgs int) func(b *testing.B, ctx context.Context, e *fpEnv, i int) int {
	doc := benchDoc(docBytes)
	messages := fpMessages(msgs)
	return func(b *testing.B, ctx context.Context, e *fpEnv, i int) int {
		id := fpID(i)
		tok := e.newSession(b, ctx, id, doc)
		for j := 0; j < len(messages); j += 50 {
			if _, err := e.store.AppendMessages(ctx, id, tok, messages[j:min(j+50, len(messages))]...); err != nil {
				b.Fatalf("append messages: %v", err)
			}
		}
		if _, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{Step: 1, State: doc}); err != nil {
			b.Fatalf("checkpoint: %v", err)
		}
		e.lastID = id
		return 2*len(doc) + len(messages)*fpMessageBytes
	}
}

// fpSessions creates the sessions stage10 stages into (b.N of them and
// one for the warm-up), untimed.
func fpSessions(b *testing.B, ctx context.Context, e *fpEnv) {
	doc := benchDoc(1 << 10)
	e.tokens = make([]fencing.Token, b.N+1)
	for i := -1; i < b.N; i++ {
		e.tokens[i+1] = e.newSession(b, ctx, fpID(i), doc)
	}
}

func fpStage10(b *testing.B, ctx context.Context, e *fpEnv, i int) int {
	n := 0
	for _, c := range &e.changes {
		if _, err := e.stager.Stage(ctx, fpID(i), 2, e.tokens[i+1], c); err != nil {
			b.Fatalf("stage: %v", err)
		}
		n += len(c.Patches)
	}
	return n
}

func fpOneSession(b *testing.B, ctx context.Context, e *fpEnv) {
	e.one = e.newSession(b, ctx, "one", benchDoc(1<<10))
}

func fpCheckpoint(b *testing.B, ctx context.Context, e *fpEnv, i int) int {
	doc := benchDoc(1 << 10)
	if _, err := e.cps.Save(ctx, "one", e.one, checkpoint.Checkpoint{Step: int64(i + 2), State: doc}); err != nil {
		b.Fatalf("checkpoint: %v", err)
	}
	return len(doc)
}

func fpUsage(b *testing.B, ctx context.Context, e *fpEnv, i int) int {
	entry := benchEntry("e" + strconv.Itoa(i))
	if _, err := e.usage.Record(ctx, "one", e.one, entry); err != nil {
		b.Fatalf("usage record: %v", err)
	}
	raw, _ := json.Marshal(entry)
	return len(raw)
}

func fpMemory(b *testing.B, ctx context.Context, e *fpEnv, i int) int {
	rec := memRecord(e.rnd, "fp/agent/1", "r"+strconv.Itoa(i+1), i+1)
	if err := e.mem.Put(ctx, []memory.Record{rec}); err != nil {
		b.Fatalf("memory put: %v", err)
	}
	return 4*memDim + len(rec.Text)
}
