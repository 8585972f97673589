package memory

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/keys"
)

// ftBackend is BackendFT: one FT index over every record hash of the
// prefix, queried with the portable KNN template (see ftSearchArgs).
type ftBackend struct {
	s     *Store
	mu    sync.Mutex
	ready bool // the index exists (created or found)
}

// ftReturn are the fields FT.SEARCH returns: recordFields, then the
// distance.
var ftReturn = append(append([]string(nil), recordFields...), "dist")

// ftCreateArgs is the FT.CREATE command of the index: the record hashes
// "<prefix>:{mem:..." with vec (FLAT or HNSW, FLOAT32, COSINE), the TAG
// fields sc (hex scope and ancestors), sh (hex scope) and cats (hex
// categories), and the NUMERIC fields imp and ts.
func ftCreateArgs(idx, prefix string, dim int, hnsw bool) []string {
	a := []string{"FT.CREATE", idx, "ON", "HASH", "PREFIX", "1", prefix + ":{mem:", "SCHEMA", "vec", "VECTOR"}
	d := strconv.Itoa(dim)
	if hnsw {
		a = append(a, "HNSW", "10", "TYPE", "FLOAT32", "DIM", d, "DISTANCE_METRIC", "COSINE", "M", "16", "EF_CONSTRUCTION", "200")
	} else {
		a = append(a, "FLAT", "6", "TYPE", "FLOAT32", "DIM", d, "DISTANCE_METRIC", "COSINE")
	}
	return append(a, "sc", "TAG", "SEPARATOR", ",", "sh", "TAG", "SEPARATOR", ",", "cats", "TAG", "SEPARATOR", ",",
		"imp", "NUMERIC", "ts", "NUMERIC")
}

// ftFilter is the pre-filter of the KNN query: the scope (sh, or sc with
// descendants), the categories, the importance and the time window, with
// every tag value hex-encoded inline (no escaping, no parameters inside
// the filter: valkey-search substitutes parameters only in the KNN clause).
func ftFilter(qr *query) string {
	var b strings.Builder
	o := qr.o
	b.WriteByte('(')
	if o.IncludeDescendants {
		b.WriteString("@sc:{")
	} else {
		b.WriteString("@sh:{")
	}
	b.WriteString(hex.EncodeToString([]byte(o.Scope)))
	b.WriteByte('}')
	if len(qr.hexCats) > 0 {
		if o.Match == MatchAll {
			for _, c := range qr.hexCats {
				b.WriteString(" @cats:{" + c + "}")
			}
		} else {
			b.WriteString(" @cats:{" + strings.Join(qr.hexCats, "|") + "}")
		}
	}
	if o.MinImportance > 0 {
		b.WriteString(" @imp:[" + strconv.FormatFloat(o.MinImportance, 'f', -1, 64) + " +inf]")
	}
	if !o.CreatedAfter.IsZero() || !o.CreatedBefore.IsZero() {
		lo, hi := "-inf", "+inf"
		if !o.CreatedAfter.IsZero() {
			lo = "(" + strconv.FormatInt(qr.lo, 10)
		}
		if !o.CreatedBefore.IsZero() {
			hi = "(" + strconv.FormatInt(qr.hi, 10)
		}
		b.WriteString(" @ts:[" + lo + " " + hi + "]")
	}
	b.WriteByte(')')
	return b.String()
}

// ftSearchArgs is the FT.SEARCH command: the pre-filter, KNN n over vec
// with the vector as the only parameter, the record fields and the
// distance returned, LIMIT 0 n, DIALECT 2 and no SORTBY (valkey-search
// cannot sort by distance; results are ranked in Go).
func ftSearchArgs(idx, filter string, n int, blob string) []string {
	ns := strconv.Itoa(n)
	a := []string{"FT.SEARCH", idx, filter + "=>[KNN " + ns + " @vec $BLOB AS dist]", "RETURN", strconv.Itoa(len(ftReturn))}
	a = append(a, ftReturn...)
	return append(a, "LIMIT", "0", ns, "PARAMS", "2", "BLOB", blob, "DIALECT", "2")
}

func arbitrary(c rueidis.Client, args []string) rueidis.Completed {
	return c.B().Arbitrary(args[0]).Args(args[1:]...).Build()
}

// ensure creates the index once; an existing index (this Store's or
// another's) is used as it is.
func (b *ftBackend) ensure(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready {
		return nil
	}
	o := b.s.opts
	err := b.s.client.Do(ctx, arbitrary(b.s.client, ftCreateArgs(o.FTIndex, o.Prefix, o.Dim, o.FTHNSW))).Error()
	if err != nil && !strings.Contains(strings.ToLower(err.Error()), "already exists") {
		return fmt.Errorf("memory: ft: create index %q: %w", o.FTIndex, unsupported(err))
	}
	b.ready = true
	return nil
}

func (b *ftBackend) search(ctx context.Context, qr *query) ([]Result, error) {
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	s := b.s
	filter := ftFilter(qr)
	blob := rueidis.VectorString32(qr.q)
	k := keys.ForMemory(s.opts.Prefix, qr.root)
	return s.rerank(ctx, qr, func(ctx context.Context, n int) ([]remoteHit, bool, error) {
		_, docs, err := s.client.Do(ctx, arbitrary(s.client, ftSearchArgs(s.opts.FTIndex, filter, n, blob))).AsFtSearch()
		if err != nil {
			return nil, false, fmt.Errorf("memory: ft: search %q: %w", qr.o.Scope, unsupported(err))
		}
		return ftHits(docs, k.Base+"r:", s.opts.Dim), len(docs) >= n, nil
	})
}

// ftHits turns FT.SEARCH documents into hits: documents whose key is not a
// record of the root (recBase "<base>r:") are dropped; the returned fields
// are kept when they hold a whole record (an id and a vector of dim
// components), else the record is read afterwards.
func ftHits(docs []rueidis.FtSearchDoc, recBase string, dim int) []remoteHit {
	hits := make([]remoteHit, 0, len(docs))
	for _, d := range docs {
		id, ok := strings.CutPrefix(d.Key, recBase)
		if !ok || id == "" {
			continue
		}
		h := remoteHit{id: id}
		if d.Doc["id"] == id && len(d.Doc["vec"]) == 4*dim {
			var rec [9]string
			for i, f := range recordFields {
				rec[i] = d.Doc[f]
			}
			h.rec = &rec
		}
		hits = append(hits, h)
	}
	return hits
}
