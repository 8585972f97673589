package memory

import (
	"container/heap"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/keys"
)

// Match says how SearchOptions.Categories select records.
type Match int

// The category match modes.
const (
	MatchAny Match = iota // the record has at least one of the categories
	MatchAll              // the record has every category
)

// SearchOptions select and bound the results of Search. Every filter is
// exact and applied before the top K are chosen, so a search returns the K
// most similar records among those that pass every filter (fewer when
// fewer pass).
type SearchOptions struct {
	// K is the number of results, 1..MaxK. Required.
	K int
	// Scope is the scope to search. Required.
	Scope string
	// IncludeDescendants also searches the scopes under Scope.
	IncludeDescendants bool
	// Categories, when not empty, keep records that have any (Match =
	// MatchAny, the default) or all (MatchAll) of them.
	Categories []string
	Match      Match
	// Metadata keeps records whose metadata has every key with exactly
	// that value.
	Metadata map[string]string
	// MinImportance keeps records with Importance >= MinImportance.
	MinImportance float64
	// CreatedAfter and CreatedBefore, when not zero, keep records created
	// strictly after / strictly before them (millisecond resolution).
	CreatedAfter, CreatedBefore time.Time
	// MinSimilarity, when not nil, keeps results with Similarity >=
	// *MinSimilarity.
	MinSimilarity *float64
}

// Result is a record and its cosine similarity to the query, in [-1, 1].
type Result struct {
	Record
	Similarity float64
}

// Search returns the records most similar to vector (cosine similarity,
// highest first; ties by id ascending) that pass the filters of o.
//
// The scan backend reads the candidates' index, vectors and filter fields
// with DoMultiCache: on a client with client-side caching (the rueidis
// default on real Redis) a repeated search is answered from the cache,
// refreshed by the server's invalidations after writes; with
// DisableCache (miniredis) each search costs five round trips (the write
// epoch and scope counts, the epoch again through the cache, the indexes,
// the candidates' vectors and filter fields, the winners' records). A warm
// search costs one round trip: the first read always goes to the server
// and makes sure that the search sees every write completed before it
// began, also while other searches run on the same client (see
// candidates). Every result is checked against every filter (its scope
// included) after the last read. Candidates are the records of the selected scopes
// inside the time window; more than Options.ScanLimit of them fail with a
// [*ScanLimitError]. Bad input (a vector of the wrong dimension, NaN or
// Inf, the zero vector, K outside 1..MaxK, an invalid scope) fails with the
// matching error before anything is sent.
func (s *Store) Search(ctx context.Context, vector []float32, o SearchOptions) (_ []Result, err error) {
	ctx, sp := s.obs.Start(ctx, opSearch, o.Scope, 0)
	defer sp.End(&err)
	if s.obs.SearchDur.Enabled(ctx) {
		defer func(start time.Time) {
			s.obs.SearchDur.Record(ctx, time.Since(start).Seconds(), s.searchAttr)
		}(time.Now())
	}
	q, err := normalize(vector, s.opts.Dim)
	if err != nil {
		return nil, err
	}
	if o.K < 1 || o.K > MaxK {
		return nil, fmt.Errorf("%w: %d not in [1, %d]", ErrInvalidK, o.K, MaxK)
	}
	if o.Match != MatchAny && o.Match != MatchAll {
		return nil, fmt.Errorf("memory: %w: Match %d", ErrInvalidArgument, o.Match)
	}
	cats, err := normCategories(o.Categories)
	if err != nil {
		return nil, err
	}
	hexCats := make([]string, len(cats))
	for i, c := range cats {
		hexCats[i] = hex.EncodeToString([]byte(c))
	}
	root, err := scopeRoot(o.Scope, s.opts.TagDepth)
	if err != nil {
		return nil, err
	}
	qr := &query{q: q, o: &o, root: root, cats: cats, hexCats: hexCats, lo: -1 << 62, hi: 1 << 62}
	if !o.CreatedAfter.IsZero() {
		qr.lo = o.CreatedAfter.UnixMilli()
	}
	if !o.CreatedBefore.IsZero() {
		qr.hi = o.CreatedBefore.UnixMilli()
	}
	return s.impl.search(ctx, qr)
}

// Scoring runs on several goroutines from parallelScoreMin candidates on,
// with at most maxScoreWorkers of them. (A variable so that tests can
// exercise the parallel path on small data.)
var parallelScoreMin = 2048

const maxScoreWorkers = 8

// query is a validated search.
type query struct {
	q       []float32 // normalised
	o       *SearchOptions
	root    string   // root of o.Scope
	cats    []string // o.Categories sorted, without duplicates
	hexCats []string // cats hex-encoded
	lo, hi  int64    // created window in ms, both exclusive
}

// scanBackend is BackendScan: exact top-k in Go over every candidate.
type scanBackend struct{ s *Store }

func (b scanBackend) search(ctx context.Context, qr *query) ([]Result, error) {
	s, o, q, hexCats := b.s, qr.o, qr.q, qr.hexCats
	cands, err := s.candidates(ctx, o.Scope, o.IncludeDescendants, o.CreatedAfter, o.CreatedBefore)
	if err != nil {
		return nil, err
	}
	// score decides one candidate: ok false when a filter rejects it.
	score := func(c *candidate, f []rueidis.RedisMessage) (sc scored, ok bool, err error) {
		vec, err := f[0].ToString()
		if err != nil || len(vec) != 4*s.opts.Dim {
			return sc, false, fmt.Errorf("%w: record %q: vector of %d bytes, want %d", ErrCorrupt, c.id, len(vec), 4*s.opts.Dim)
		}
		if o.MinImportance > 0 {
			imp, err := f[1].AsFloat64()
			if err != nil {
				return sc, false, fmt.Errorf("%w: record %q: importance", ErrCorrupt, c.id)
			}
			if imp < o.MinImportance {
				return sc, false, nil
			}
		}
		if len(hexCats) > 0 {
			rc, _ := f[2].ToString()
			if !matchCats(rc, hexCats, o.Match) {
				return sc, false, nil
			}
		}
		if len(o.Metadata) > 0 {
			js, _ := f[3].ToString()
			var m map[string]string
			if js != "" {
				if err := json.Unmarshal([]byte(js), &m); err != nil {
					return sc, false, fmt.Errorf("%w: record %q: metadata", ErrCorrupt, c.id)
				}
			}
			for k, v := range o.Metadata {
				if got, ok := m[k]; !ok || got != v {
					return sc, false, nil
				}
			}
		}
		sim := similarity(q, vec)
		if o.MinSimilarity != nil && sim < *o.MinSimilarity {
			return sc, false, nil
		}
		return scored{id: c.id, sim: sim}, true, nil
	}
	type item struct {
		c *candidate
		f []rueidis.RedisMessage
	}
	items := make([]item, 0, len(cands.list))
	err = s.readCandidates(ctx, cands, func(c *candidate, f []rueidis.RedisMessage) error {
		items = append(items, item{c, f})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Score in parallel: the dot products dominate a large search. Each
	// worker keeps its own top k; merging them gives the same result as one
	// pass, since ties are broken by id.
	workers := 1
	if len(items) >= parallelScoreMin {
		workers = min(runtime.GOMAXPROCS(0), maxScoreWorkers, len(items)/(parallelScoreMin/2))
	}
	tops := make([]topK, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		tops[w].k = o.K
		lo, hi := w*len(items)/workers, (w+1)*len(items)/workers
		run := func() {
			for _, it := range items[lo:hi] {
				sc, ok, err := score(it.c, it.f)
				if err != nil {
					errs[w] = err
					return
				}
				if ok {
					tops[w].offer(sc)
				}
			}
		}
		if w == workers-1 {
			run()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	top := &tops[0]
	for w := 1; w < workers; w++ {
		for _, sc := range tops[w].h {
			top.offer(sc)
		}
	}
	best := top.sorted()
	if len(best) == 0 {
		return []Result{}, nil
	}
	k := keys.ForMemory(s.opts.Prefix, cands.root)
	cmds := make([]rueidis.CacheableTTL, len(best))
	for i, b := range best {
		cmds[i] = rueidis.CT(s.client.B().Hmget().Key(k.Record(b.id)).Field(recordFields...).Cache(), s.opts.CacheTTL)
	}
	now := time.Now()
	out := make([]Result, 0, len(best))
	for i, res := range s.doMultiCache(ctx, cands.uncached, cmds) {
		vals, err := res.ToArray()
		if err != nil {
			return nil, fmt.Errorf("memory: search: read %q: %w", best[i].id, err)
		}
		r, ok, err := decode(vals, now)
		if err != nil {
			return nil, err
		}
		// A record deleted or changed between the two reads is left out
		// unless it still passes every filter.
		if ok && qr.match(&r) {
			out = append(out, Result{Record: r, Similarity: best[i].sim})
		}
	}
	return out, nil
}

// similarity is the canonical cosine similarity of the normalised query q
// and the stored normalised vector blob vec, clamped to [-1, 1]. Every
// backend reports it.
func similarity(q []float32, vec string) float64 {
	sim := dotBlob(q, vec)
	if sim > 1 {
		sim = 1
	} else if sim < -1 {
		sim = -1
	}
	return sim
}

// matchCats reports whether the comma list of hex categories rc matches
// want (hex, sorted) under m.
func matchCats(rc string, want []string, m Match) bool {
	if rc == "" {
		return false
	}
	n := 0
	for rest := rc; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, ",")
		for _, w := range want {
			if c == w {
				if m == MatchAny {
					return true
				}
				n++
				break
			}
		}
	}
	return m == MatchAll && n == len(want)
}

type candidate struct {
	id string
}

type candidateSet struct {
	root  string
	scope string
	desc  bool
	lo    int64 // created window in ms, both exclusive
	hi    int64
	list  []candidate
	// uncached: the client-side cache lagged behind the server when the
	// search began (see candidates), so every read of this search goes to
	// the server.
	uncached bool
}

// candidates returns the records of scope (and its descendants) created in
// the window (after, before), from the cached scope indexes.
//
// Freshness: every write script increments the root's write epoch (field
// ep of the meta hash). A search first reads the epoch and the scope
// counts from the server, uncached: that read happens after the search
// began, so the epoch it returns is at least that of every write completed
// before. Then it reads the epoch through the client-side cache. The
// cached reads of a root all travel on one connection, which also carries
// the server's invalidations for them, in order: a cached epoch at least
// the server's proves that the invalidations of those writes were already
// processed, so the cache holds nothing older than them, and a read the
// search sends later (or shares, rueidis coalescing misses in flight) was
// answered after them. A smaller cached epoch (an invalidation still in
// flight, or a read shared with an earlier search that was sent before the
// write) makes this search read everything from the server.
func (s *Store) candidates(ctx context.Context, scope string, desc bool, after, before time.Time) (candidateSet, error) {
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return candidateSet{}, err
	}
	cs := candidateSet{root: root, scope: scope, desc: desc, lo: -1 << 62, hi: 1 << 62}
	if !after.IsZero() {
		cs.lo = after.UnixMilli()
	}
	if !before.IsZero() {
		cs.hi = before.UnixMilli()
	}
	k := keys.ForMemory(s.opts.Prefix, root)
	var scopesCmd rueidis.Completed
	if desc {
		scopesCmd = s.client.B().Hgetall().Key(k.Scopes).Build()
	} else {
		scopesCmd = s.client.B().Hget().Key(k.Scopes).Field(scope).Build()
	}
	first := s.client.DoMulti(ctx, s.client.B().Hget().Key(k.Meta).Field("ep").Build(), scopesCmd)
	epoch, err := epochOf(first[0])
	if err != nil {
		return cs, fmt.Errorf("memory: search %q: epoch: %w", scope, err)
	}
	var scopes []string
	if desc {
		m, err := first[1].AsStrMap()
		if err != nil {
			return cs, fmt.Errorf("memory: search %q: scopes: %w", scope, err)
		}
		for sc := range m {
			if within(sc, scope) {
				scopes = append(scopes, sc)
			}
		}
	} else {
		err := first[1].Error()
		if err != nil && !rueidis.IsRedisNil(err) {
			return cs, fmt.Errorf("memory: search %q: scopes: %w", scope, err)
		}
		if err == nil {
			scopes = []string{scope}
		}
	}
	if len(scopes) == 0 {
		return cs, nil
	}
	cached, err := epochOf(s.client.DoCache(ctx, s.client.B().Hget().Key(k.Meta).Field("ep").Cache(), s.opts.CacheTTL))
	if err != nil {
		return cs, fmt.Errorf("memory: search %q: epoch: %w", scope, err)
	}
	cs.uncached = cached < epoch
	cmds := make([]rueidis.CacheableTTL, len(scopes))
	for i, sc := range scopes {
		cmds[i] = rueidis.CT(s.client.B().Zrange().Key(k.ScopeIndex(sc)).Min("0").Max("-1").Withscores().Cache(), s.opts.CacheTTL)
	}
	for i, res := range s.doMultiCache(ctx, cs.uncached, cmds) {
		zs, err := res.AsZScores()
		if err != nil {
			return cs, fmt.Errorf("memory: search %q: index of %q: %w", scope, scopes[i], err)
		}
		for _, z := range zs {
			if ts := int64(z.Score); ts > cs.lo && ts < cs.hi {
				cs.list = append(cs.list, candidate{id: z.Member})
			}
		}
	}
	if s.opts.ScanLimit > 0 && len(cs.list) > s.opts.ScanLimit {
		return cs, &ScanLimitError{Scope: scope, Candidates: len(cs.list), Limit: s.opts.ScanLimit}
	}
	return cs, nil
}

// epochOf parses the reply of HGET meta ep: 0 when the field is missing.
func epochOf(res rueidis.RedisResult) (int64, error) {
	n, err := res.AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	return n, err
}

// doMultiCache is DoMultiCache, or DoMulti of the same commands when
// uncached is set.
func (s *Store) doMultiCache(ctx context.Context, uncached bool, cmds []rueidis.CacheableTTL) []rueidis.RedisResult {
	if !uncached {
		return s.client.DoMultiCache(ctx, cmds...)
	}
	plain := make(rueidis.Commands, len(cmds))
	for i, c := range cmds {
		plain[i] = rueidis.Completed(c.Cmd)
	}
	return s.client.DoMulti(ctx, plain...)
}

// scanFields are the fields readCandidates reads; it passes the first four
// to its callback.
var scanFields = []string{"vec", "imp", "cats", "meta", "scope"}

// readCandidates reads scanFields of every candidate in one DoMultiCache
// and calls fn for each record that exists and lives in a scope of the set
// (an index entry may be left from an earlier record with the id, in
// another scope until swept). The created time needs no check here: a
// Put that keeps an id in its scope rewrites its index score, and the
// results are checked against every filter after the final read.
func (s *Store) readCandidates(ctx context.Context, cs candidateSet, fn func(c *candidate, f []rueidis.RedisMessage) error) error {
	if len(cs.list) == 0 {
		return nil
	}
	k := keys.ForMemory(s.opts.Prefix, cs.root)
	cmds := make([]rueidis.CacheableTTL, len(cs.list))
	for i := range cs.list {
		cmds[i] = rueidis.CT(s.client.B().Hmget().Key(k.Record(cs.list[i].id)).Field(scanFields...).Cache(), s.opts.CacheTTL)
	}
	for i, res := range s.doMultiCache(ctx, cs.uncached, cmds) {
		f, err := res.ToArray()
		if err != nil {
			return fmt.Errorf("memory: search %q: read %q: %w", cs.scope, cs.list[i].id, err)
		}
		if len(f) != len(scanFields) {
			return fmt.Errorf("%w: HMGET returned %d fields", ErrProtocol, len(f))
		}
		if f[0].IsNil() { // expired or deleted since the index was read
			continue
		}
		sc, _ := f[4].ToString()
		if sc != cs.scope && !(cs.desc && within(sc, cs.scope)) {
			continue
		}
		if err := fn(&cs.list[i], f[:4]); err != nil {
			return err
		}
	}
	return nil
}

type scored struct {
	id  string
	sim float64
}

// worse reports whether a ranks below b: lower similarity, or equal
// similarity and a larger id.
func worse(a, b scored) bool {
	if a.sim != b.sim {
		return a.sim < b.sim
	}
	return a.id > b.id
}

// topK keeps the k best scored values; the heap's root is the worst kept.
type topK struct {
	k int
	h []scored
}

func (t *topK) Len() int           { return len(t.h) }
func (t *topK) Less(i, j int) bool { return worse(t.h[i], t.h[j]) }
func (t *topK) Swap(i, j int)      { t.h[i], t.h[j] = t.h[j], t.h[i] }
func (t *topK) Push(x any)         { t.h = append(t.h, x.(scored)) }
func (t *topK) Pop() any {
	x := t.h[len(t.h)-1]
	t.h = t.h[:len(t.h)-1]
	return x
}

func (t *topK) offer(v scored) {
	if len(t.h) < t.k {
		heap.Push(t, v)
		return
	}
	if worse(t.h[0], v) {
		t.h[0] = v
		heap.Fix(t, 0)
	}
}

// sorted returns the kept values, best first.
func (t *topK) sorted() []scored {
	out := make([]scored, len(t.h))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(t).(scored)
	}
	return out
}
