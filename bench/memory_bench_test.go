package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/memory"
)

// BenchmarkMemory measures package memory (scan backend) on the real
// redis-server: exact top-k search over 10,000 records of 768 dimensions
// with the client-side cache warm and cold, and a one-record Put at
// parallelism 64 beside a raw HSET floor of the same hash fields; on a
// server with vector sets (Redis 8) also the vset backend's Put and
// top-k search over its own 10,000 records (impl=vset).
// Sub-benchmarks are named op=<op>/impl=<impl>/par=<goroutines>, so
//
//	benchstat -filter .name:Memory -row /op,/par -col /impl out.txt
//
// puts fencekit and the floor side by side. See README.md.
func BenchmarkMemory(b *testing.B) {
	for _, mb := range memBenches {
		b.Run(fmt.Sprintf("op=%s/impl=%s/par=%d", mb.op, mb.impl, mb.par), func(b *testing.B) {
			runMemory(b, mb)
		})
	}
}

const (
	memDim     = 768    // embedding dimension
	memRecords = 10_000 // records of the searched scope
	memK       = 10     // top-k of every search
	memBatch   = 500    // records per Put of the prefill (≤ memory.MaxBatch)
	memQueries = 64     // distinct query vectors, used in turn
	memSeed    = 20261123

	// memSearchScope holds the prefilled records (root "msearch"); the Put
	// benchmark writes to another root, so it never touches the searched
	// scope's keys or the client-side cache entries of the search.
	memSearchScope = "msearch/agent/1"
	memPutRoot     = "mput"
	memPutScope    = memPutRoot + "/agent/1"
	memFloorRoot   = "mfloor"
)

// A memBench is one sub-benchmark.
type memBench struct {
	op, impl string
	par      int
	open     func(b *testing.B, ctx context.Context, e *memEnv, i int) stateWorker
	// setup, if set, runs before the run's context (runTimeout) starts:
	// for preparation longer than that, such as the vset prefill.
	setup func(b *testing.B, e *memEnv)
}

var memBenches = []memBench{
	// The floor first: benchstat takes the first column as the base.
	{"put1", "hset-floor", 64, openPutFloor, nil},
	{"put1", "fencekit", 64, openPutFencekit, nil},
	{"search10k-warm", "fencekit", 1, openSearchWarm, nil},
	{"search10k-cold", "fencekit", 1, openSearchCold, nil},
	// The vset backend (Redis 8 vector sets, HNSW, approximate; EF
	// memory.DefaultVSetEF) beside scan: skipped, with the reason, on a
	// server without vector sets.
	{"put1", "vset", 64, openPutVSet, nil},
	{"search10k-warm", "vset", 1, openSearchVSet, setupSearchVSet},
}

func runMemory(b *testing.B, mb memBench) {
	e := newMemEnv(b)
	defer e.close()
	if mb.setup != nil {
		mb.setup(b, e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()

	n, par := goroutines(b, mb.par)
	workers := make([]stateWorker, n)
	for i := range workers {
		workers[i] = mb.open(b, ctx, e, i)
	}
	// The cold search's untimed preparation (a new client: dial, HELLO,
	// CLIENT TRACKING; closing the previous one) costs well under 1% of a
	// cold search, so both CPU figures are reported for it too.
	measure(b, ctx, cancel, &stateEnv{s: e.s}, workers, par, true)
}

// --- environment ---

type memEnv struct {
	s      *redistest.Server
	prefix string // of this run's keys (Put benchmarks)
	c      rueidis.Client
	store  *memory.Store
	vstore *memory.Store // vset backend, prefix+"v" (vset Put benchmark)
	// cleanup runs after the run (errors logged only).
	cleanup []func(ctx context.Context) error
	closers []func()
}

func newMemEnv(b *testing.B) *memEnv {
	s := redistest.NewRedis(b)
	e := &memEnv{s: s, prefix: s.Prefix(b)}
	e.c = newRueidis(b, s)
	e.store = newMemStore(b, e.c, e.prefix)
	return e
}

func newMemStore(b *testing.B, c rueidis.Client, prefix string) *memory.Store {
	st, err := memory.New(c, memory.Options{Prefix: prefix, Dim: memDim, Backend: memory.BackendScan})
	if err != nil {
		b.Fatalf("memory.New: %v", err)
	}
	if l := st.Options().ScanLimit; l > 0 && l < memRecords {
		// Raise a default below the searched scope's size.
		if st, err = memory.New(c, memory.Options{Prefix: prefix, Dim: memDim, Backend: memory.BackendScan, ScanLimit: memRecords}); err != nil {
			b.Fatalf("memory.New: %v", err)
		}
	}
	return st
}

func (e *memEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range e.cleanup {
		if err := f(ctx); err != nil {
			logf("memory cleanup: %v", err)
		}
	}
	for _, f := range e.closers {
		f()
	}
	e.c.Close()
}

// --- records ---

// memVector returns a deterministic unit vector of memDim components
// (normal components, normalised) from r.
func memVector(r *rand.Rand) []float32 {
	v := make([]float32, memDim)
	var ss float64
	for i := range v {
		x := r.NormFloat64()
		v[i] = float32(x)
		ss += x * x
	}
	inv := 1 / math.Sqrt(ss)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return v
}

var memCategories = []string{"fact", "preference", "episode", "plan", "tool", "error", "summary", "profile"}

// memRecord returns record i of scope: a ~200-byte text, a unit vector, two
// categories, two metadata entries and an importance.
func memRecord(r *rand.Rand, scope, id string, i int) memory.Record {
	return memory.Record{
		ID:    id,
		Scope: scope,
		Text: fmt.Sprintf("memory %06d: the user mentioned that the deployment of service %d "+
			"should happen after the weekly review, and that alerts go to the on-call channel "+
			"of team %d; keep this in mind for future planning sessions.", i, i%97, i%13),
		Embedding:  memVector(r),
		Categories: []string{memCategories[i%len(memCategories)], memCategories[(i/8+3)%len(memCategories)]},
		Metadata:   map[string]string{"source": "chat", "session": "s" + strconv.Itoa(i%50)},
		Importance: float64(i%10) / 10,
	}
}

// --- the searched scope: prefilled once per test binary ---

// memSearch is the prefilled scope, shared by every search run (and every
// -count repetition) of this binary: the shared redis-server lives as long
// as the binary, and the records are only read.
var memSearch struct {
	once    sync.Once
	prefix  string
	err     error
	took    time.Duration
	queries [memQueries][]float32
}

// searchPrefix returns the key prefix of the prefilled scope, writing the
// memRecords records on first use: memBatch records per Put, two Puts in
// flight (one encodes while the server runs the other's script).
func searchPrefix(b *testing.B, s *redistest.Server) string {
	memSearch.once.Do(func() {
		start := time.Now()
		memSearch.prefix = s.Prefix(b)
		c, err := rueidis.NewClient(s.ClientOption())
		if err != nil {
			memSearch.err = err
			return
		}
		defer c.Close()
		st, err := memory.New(c, memory.Options{Prefix: memSearch.prefix, Dim: memDim, Backend: memory.BackendScan})
		if err != nil {
			memSearch.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const batches = memRecords / memBatch
		errs := make(chan error, batches)
		sem := make(chan struct{}, 2)
		var wg sync.WaitGroup
		for bi := range batches {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r := rand.New(rand.NewPCG(memSeed, uint64(bi)))
				recs := make([]memory.Record, memBatch)
				for j := range recs {
					i := bi*memBatch + j
					recs[j] = memRecord(r, memSearchScope, fmt.Sprintf("m%05d", i), i)
				}
				if err := st.Put(ctx, recs); err != nil {
					errs <- fmt.Errorf("prefill batch %d: %w", bi, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			memSearch.err = err
			return
		}
		n, err := st.Count(ctx, memSearchScope, false)
		if err == nil && n != memRecords {
			err = fmt.Errorf("prefill: Count = %d, want %d", n, memRecords)
		}
		if err != nil {
			memSearch.err = err
			return
		}
		r := rand.New(rand.NewPCG(memSeed, 1<<32))
		for i := range memSearch.queries {
			memSearch.queries[i] = memVector(r)
		}
		memSearch.took = time.Since(start)
		// On stderr (a b.Log would show under one run only), without a
		// colon: benchstat reads "word: value" lines as configuration.
		fmt.Fprintf(os.Stderr, "# memory prefill of %d records of %d dimensions took %v\n",
			memRecords, memDim, memSearch.took.Round(time.Millisecond))
	})
	if memSearch.err != nil {
		b.Fatalf("memory prefill: %v", memSearch.err)
	}
	return memSearch.prefix
}

type searchWorker struct {
	store *memory.Store
	n     int
}

func (w *searchWorker) do(ctx context.Context) error {
	q := memSearch.queries[w.n%memQueries]
	w.n++
	res, err := w.store.Search(ctx, q, memory.SearchOptions{K: memK, Scope: memSearchScope})
	if err != nil {
		return err
	}
	if len(res) != memK {
		return fmt.Errorf("search returned %d results, want %d", len(res), memK)
	}
	return nil
}

// openSearchWarm searches the prefilled scope through the run's client,
// whose client-side cache the untimed warm-up searches fill; every timed
// search then reads the scope count from the server (the search's
// freshness round trip) and the index, the 10,000 records' vectors and the
// winners' records from the cache.
func openSearchWarm(b *testing.B, ctx context.Context, e *memEnv, _ int) stateWorker {
	w := &searchWorker{store: newMemStore(b, e.c, searchPrefix(b, e.s))}
	// Search with every query once, untimed: the cache then also holds the
	// full records of every query's winners (read after the scoring with
	// the text and metadata; a query with new winners pays one more round
	// trip for them).
	for range memQueries {
		if err := w.do(ctx); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}
	return w
}

// coldSearch gives every search a new client, made (and the previous one
// closed) with the timer stopped: its client-side cache is empty, so the
// search reads the index and every record from the server.
type coldSearch struct {
	searchWorker
	b      *testing.B
	s      *redistest.Server
	prefix string
	c      rueidis.Client
}

func openSearchCold(b *testing.B, _ context.Context, e *memEnv, _ int) stateWorker {
	w := &coldSearch{b: b, s: e.s, prefix: searchPrefix(b, e.s)}
	e.closers = append(e.closers, func() {
		if w.c != nil {
			w.c.Close()
		}
	})
	return w
}

func (w *coldSearch) prepare(ctx context.Context) error {
	if w.c != nil {
		w.c.Close()
	}
	c, err := rueidis.NewClient(w.s.ClientOption())
	if err != nil {
		return err
	}
	w.c = c
	w.store = newMemStore(w.b, c, w.prefix)
	// Dial every connection the search uses before the timer starts.
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

// --- put1: memory.Store.Put of one record vs HSET of its fields ---

type putWorker struct {
	store *memory.Store
	rec   []memory.Record
}

// openPutFencekit: goroutine i Puts one record (id g<i>, 768 dimensions,
// the text, categories and metadata of memRecord) again and again, each Put
// replacing the previous version, unfenced (no token). The run's records
// are removed afterwards with Reset.
func openPutFencekit(b *testing.B, _ context.Context, e *memEnv, i int) stateWorker {
	if i == 0 {
		e.cleanup = append(e.cleanup, func(ctx context.Context) error {
			_, err := e.store.Reset(ctx, memPutScope)
			return err
		})
	}
	r := rand.New(rand.NewPCG(memSeed, uint64(2<<32+i)))
	rec := memRecord(r, memPutScope, "g"+strconv.Itoa(i), i)
	return &putWorker{store: e.store, rec: []memory.Record{rec}}
}

func (w *putWorker) do(ctx context.Context) error { return w.store.Put(ctx, w.rec) }

type hsetFieldsWorker struct {
	c   rueidis.Client
	key string
	fv  [][2]string
}

// openPutFloor: goroutine i HSETs, again and again, the fields and values
// that a Put of goroutine i's record wrote: the record is written once
// with memory.Store.Put (untimed), its hash read back with HGETALL and
// deleted, and the floor writes exactly those bytes to a key of its own
// (named like the record, in a root of its own). No script, no index, no
// scope count.
func openPutFloor(b *testing.B, ctx context.Context, e *memEnv, i int) stateWorker {
	r := rand.New(rand.NewPCG(memSeed, uint64(2<<32+i)))
	id := "g" + strconv.Itoa(i)
	rec := memRecord(r, memPutScope, id, i)
	if err := e.store.Put(ctx, []memory.Record{rec}); err != nil {
		b.Fatalf("put template record: %v", err)
	}
	putKeys, floorKeys := keys.ForMemory(e.prefix, memPutRoot), keys.ForMemory(e.prefix, memFloorRoot)
	fields, err := e.c.Do(ctx, e.c.B().Hgetall().Key(putKeys.Record(id)).Build()).AsStrMap()
	if err != nil || len(fields) == 0 {
		b.Fatalf("read template record: %v (%d fields)", err, len(fields))
	}
	if _, err := e.store.Delete(ctx, memPutScope, []string{id}); err != nil {
		b.Fatalf("delete template record: %v", err)
	}
	key := floorKeys.Record(id)
	e.cleanup = append(e.cleanup, func(ctx context.Context) error {
		return e.c.Do(ctx, e.c.B().Del().Key(key).Build()).Error()
	})
	w := &hsetFieldsWorker{c: e.c, key: key}
	for _, f := range []string{"id", "scope", "text", "vec", "cats", "sc", "sh", "meta", "imp", "ts", "exp"} {
		if v, ok := fields[f]; ok {
			w.fv = append(w.fv, [2]string{f, v})
			delete(fields, f)
		}
	}
	for f, v := range fields { // fields added to the layout since
		w.fv = append(w.fv, [2]string{f, v})
	}
	if i == 0 {
		n := 0
		for _, p := range w.fv {
			n += len(p[0]) + len(p[1])
		}
		b.Logf("floor: HSET of %d fields, %d bytes of fields and values", len(w.fv), n)
	}
	return w
}

func (w *hsetFieldsWorker) do(ctx context.Context) error {
	cmd := w.c.B().Hset().Key(w.key).FieldValue()
	for _, p := range w.fv {
		cmd = cmd.FieldValue(p[0], p[1])
	}
	return w.c.Do(ctx, cmd.Build()).Error()
}

// --- the vset backend (Redis 8 vector sets) ---

// requireVSet skips the benchmark on a server without vector sets: the
// vset backend cannot run there (the scan rows measure that server).
func requireVSet(b *testing.B, s *redistest.Server) {
	if !s.HasCommand(b, "VSIM") {
		i := s.Info(b)
		b.Skipf("%s %s has no vector sets (VSIM): no vset rows on this server", i.Name, i.Version)
	}
}

func newVSetStore(b *testing.B, c rueidis.Client, prefix string, timeout time.Duration) *memory.Store {
	st, err := memory.New(c, memory.Options{Prefix: prefix, Dim: memDim, Backend: memory.BackendVSet, CallTimeout: timeout})
	if err != nil {
		b.Fatalf("memory.New: %v", err)
	}
	return st
}

// openPutVSet: openPutFencekit through a vset Store of its own prefix,
// whose Put also adds the vector to the scope's vector set (VADD, an HNSW
// insertion, inside the same script).
func openPutVSet(b *testing.B, _ context.Context, e *memEnv, i int) stateWorker {
	if i == 0 {
		requireVSet(b, e.s)
		e.vstore = newVSetStore(b, e.c, e.prefix+"v", 0)
		e.cleanup = append(e.cleanup, func(ctx context.Context) error {
			_, err := e.vstore.Reset(ctx, memPutScope)
			return err
		})
	}
	r := rand.New(rand.NewPCG(memSeed, uint64(2<<32+i)))
	rec := memRecord(r, memPutScope, "g"+strconv.Itoa(i), i)
	return &putWorker{store: e.vstore, rec: []memory.Record{rec}}
}

// memVSearch is memSearch for the vset backend: the same records (ids,
// vectors, texts) written through a vset Store under a prefix of their own.
var memVSearch struct {
	once   sync.Once
	prefix string
	err    error
}

// vsetSearchPrefix returns the prefix of the vset copy of the searched
// scope, writing it on first use: 50 records per Put (each VADD is an HNSW
// insertion in the script, about 5 ms at 768 dimensions), two in flight.
func vsetSearchPrefix(b *testing.B, s *redistest.Server) string {
	searchPrefix(b, s) // the query vectors
	memVSearch.once.Do(func() {
		start := time.Now()
		memVSearch.prefix = s.Prefix(b) + "v"
		c, err := rueidis.NewClient(s.ClientOption())
		if err != nil {
			memVSearch.err = err
			return
		}
		defer c.Close()
		st := newVSetStore(b, c, memVSearch.prefix, time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		const batch = 50
		errs := make(chan error, memRecords/batch)
		sem := make(chan struct{}, 2)
		var wg sync.WaitGroup
		for bi := range memRecords / memBatch {
			r := rand.New(rand.NewPCG(memSeed, uint64(bi)))
			recs := make([]memory.Record, memBatch)
			for j := range recs {
				i := bi*memBatch + j
				recs[j] = memRecord(r, memSearchScope, fmt.Sprintf("m%05d", i), i)
			}
			for k := 0; k < memBatch; k += batch {
				wg.Add(1)
				sem <- struct{}{}
				go func(recs []memory.Record) {
					defer wg.Done()
					defer func() { <-sem }()
					if err := st.Put(ctx, recs); err != nil {
						errs <- fmt.Errorf("vset prefill: %w", err)
					}
				}(recs[k : k+batch])
			}
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			memVSearch.err = err
			return
		}
		fmt.Fprintf(os.Stderr, "# memory vset prefill of %d records of %d dimensions took %v\n",
			memRecords, memDim, time.Since(start).Round(time.Millisecond))
	})
	if memVSearch.err != nil {
		b.Fatalf("memory vset prefill: %v", memVSearch.err)
	}
	return memVSearch.prefix
}

// setupSearchVSet skips on a server without vector sets and writes the
// vset copy of the searched scope (about 1.5 min on 2 cores).
func setupSearchVSet(b *testing.B, e *memEnv) {
	requireVSet(b, e.s)
	vsetSearchPrefix(b, e.s)
}

// openSearchVSet: the warm top-k search of openSearchWarm through the vset
// backend: one VSIM (EF memory.DefaultVSetEF) and one HMGET of the
// candidates' records per search, no client-side cache involved.
func openSearchVSet(b *testing.B, ctx context.Context, e *memEnv, _ int) stateWorker {
	w := &searchWorker{store: newVSetStore(b, e.c, vsetSearchPrefix(b, e.s), 0)}
	for range memQueries {
		if err := w.do(ctx); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}
	return w
}
