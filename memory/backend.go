package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/keys"
)

// backend is a search implementation: scanBackend, ftBackend or
// vsetBackend. Every one returns the K best records passing every filter
// of the query, with the canonical similarity (see similarity), ordered by
// similarity descending and id ascending.
type backend interface {
	search(ctx context.Context, qr *query) ([]Result, error)
}

// Over-fetching of the server-side backends (ft, vset): they ask the
// server for OverFetch*K candidates, re-check every filter and recompute
// the exact similarity in Go from the stored vectors, and ask again for
// OverFetch times as many while fewer than K candidates survived and the
// server may hold more, up to MaxFetch candidates per search.
const (
	OverFetch = 4
	MaxFetch  = 10000
)

// chooseBackend is the choice of BackendAuto: ft when FT.* answers (not on
// a cluster client: FT indexes of Redis Stack 7 and of some managed
// services cover one shard), else vset when vector sets answer, else scan.
func chooseBackend(f Features, cluster bool) Backend {
	switch {
	case f.FT && !cluster:
		return BackendFT
	case f.VSet:
		return BackendVSet
	}
	return BackendScan
}

// unsupported wraps err with ErrUnsupportedBackend when the server does
// not know the command.
func unsupported(err error) error {
	if _, ok := rueidis.IsRedisErr(err); ok && strings.Contains(strings.ToLower(err.Error()), "unknown command") {
		return fmt.Errorf("%w: %w", ErrUnsupportedBackend, err)
	}
	return err
}

// remoteHit is a candidate returned by the server: a record id and, when
// the server returned them, its recordFields values.
type remoteHit struct {
	id  string
	rec *[9]string
}

// fetchFunc returns up to n candidates per source and whether a source may
// hold more than it returned.
type fetchFunc func(ctx context.Context, n int) (hits []remoteHit, more bool, err error)

// rerank runs fetch with growing n (see OverFetch), loads the records the
// server did not return, applies every filter of qr in Go and ranks by the
// canonical similarity, exactly like the scan backend.
func (s *Store) rerank(ctx context.Context, qr *query, fetch fetchFunc) ([]Result, error) {
	k := keys.ForMemory(s.opts.Prefix, qr.root)
	n := min(qr.o.K*OverFetch, MaxFetch)
	for {
		hits, more, err := fetch(ctx, n)
		if err != nil {
			return nil, err
		}
		if err := s.loadHits(ctx, &k, hits); err != nil {
			return nil, err
		}
		now := time.Now()
		top := &topK{k: qr.o.K}
		recs := make(map[string]Record, len(hits))
		for _, h := range hits {
			if h.rec == nil {
				continue
			}
			if _, dup := recs[h.id]; dup || h.rec[0] != h.id {
				continue
			}
			vec := h.rec[3]
			if len(vec) != 4*s.opts.Dim {
				return nil, fmt.Errorf("%w: record %q: vector of %d bytes, want %d", ErrCorrupt, h.id, len(vec), 4*s.opts.Dim)
			}
			r, ok, err := decodeStrings(*h.rec, now)
			if err != nil {
				return nil, err
			}
			if !ok || !qr.match(&r) {
				continue
			}
			sim := similarity(qr.q, vec)
			if qr.o.MinSimilarity != nil && sim < *qr.o.MinSimilarity {
				continue
			}
			recs[h.id] = r
			top.offer(scored{id: h.id, sim: sim})
		}
		if top.Len() >= qr.o.K || !more || n >= MaxFetch {
			best := top.sorted()
			out := make([]Result, len(best))
			for i, b := range best {
				out[i] = Result{Record: recs[b.id], Similarity: b.sim}
			}
			return out, nil
		}
		n = min(n*OverFetch, MaxFetch)
	}
}

// loadHits reads the records of the hits without values in one DoMulti
// (not cached: the server-side index is fresher than a client-side cache
// that may still wait for an invalidation). Records that are gone keep a
// nil rec.
func (s *Store) loadHits(ctx context.Context, k *keys.Memory, hits []remoteHit) error {
	var need []int
	for i := range hits {
		if hits[i].rec == nil {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, len(need))
	for j, i := range need {
		cmds[j] = s.client.B().Hmget().Key(k.Record(hits[i].id)).Field(recordFields...).Build()
	}
	for j, res := range s.client.DoMulti(ctx, cmds...) {
		vals, err := res.ToArray()
		if err != nil {
			return fmt.Errorf("memory: search: read %q: %w", hits[need[j]].id, err)
		}
		var str [9]string
		present := false
		for f := range str {
			if f < len(vals) {
				if v, err := vals[f].ToString(); err == nil {
					str[f], present = v, true
				}
			}
		}
		if present && str[0] != "" {
			hits[need[j]].rec = &str
		}
	}
	return nil
}

// match applies every filter of the query to a record (the server-side
// backends re-check what the server filtered, and apply what it cannot
// express: metadata, MinSimilarity aside).
func (qr *query) match(r *Record) bool {
	o := qr.o
	if r.Scope != o.Scope && !(o.IncludeDescendants && within(r.Scope, o.Scope)) {
		return false
	}
	if ts := r.CreatedAt.UnixMilli(); ts <= qr.lo || ts >= qr.hi {
		return false
	}
	if r.Importance < o.MinImportance {
		return false
	}
	if len(qr.cats) > 0 {
		n := 0
		for _, c := range qr.cats {
			if _, found := slices.BinarySearch(r.Categories, c); found {
				n++
			}
		}
		if n == 0 || (o.Match == MatchAll && n < len(qr.cats)) {
			return false
		}
	}
	for k, v := range o.Metadata {
		if got, ok := r.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}
