package memory

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/keys"
)

// vsetBackend is BackendVSet: one Redis 8 vector set per scope,
// "<base>vs:<scope>", kept in sync by the write scripts (VADD/VREM/DEL
// with the same quantisation flag on every VADD) and searched with one
// VSIM per scope, merged in Go.
type vsetBackend struct{ s *Store }

// vsetKey is the vector set of scope.
func vsetKey(k *keys.Memory, scope string) string { return k.Base + "vs:" + scope }

// vsetFilter is the VSIM FILTER expression over the attributes mem_put.lua
// sets ({"imp":..,"ts":..,"cats":[hex..]}): importance, time window and
// categories; "" when the query has none of them. The scope is the choice
// of sets.
func vsetFilter(qr *query) string {
	var terms []string
	o := qr.o
	if o.MinImportance > 0 {
		terms = append(terms, ".imp >= "+strconv.FormatFloat(o.MinImportance, 'f', -1, 64))
	}
	if !o.CreatedAfter.IsZero() {
		terms = append(terms, ".ts > "+strconv.FormatInt(qr.lo, 10))
	}
	if !o.CreatedBefore.IsZero() {
		terms = append(terms, ".ts < "+strconv.FormatInt(qr.hi, 10))
	}
	if len(qr.hexCats) > 0 {
		cs := make([]string, len(qr.hexCats))
		for i, c := range qr.hexCats {
			cs[i] = `"` + c + `" in .cats`
		}
		if o.Match == MatchAll {
			terms = append(terms, cs...)
		} else if len(cs) == 1 {
			terms = append(terms, cs[0])
		} else {
			terms = append(terms, "("+strings.Join(cs, " or ")+")")
		}
	}
	return strings.Join(terms, " and ")
}

// vsimFilterEF is the FILTER-EF of a filtered VSIM: the most graph nodes
// the server may visit looking for elements that pass the filter. Redis
// 8.0 refuses 0 ("ERR invalid FILTER-EF": it must be positive, although
// older documentation described 0 as "no limit") and defaults to COUNT*100,
// which lets a selective filter starve the result. It is only a visit
// budget (nothing is allocated by it), so a value above any set's size is
// the unlimited search we want.
const vsimFilterEF = "2147483647"

// vsimArgs is the VSIM command of one set: the query vector as FP32, the
// scores, COUNT n, EF ef (Options.VSetEF, at least n), the filter
// with FILTER-EF vsimFilterEF (no effort limit, so a selective filter does
// not starve the result) and TRUTH (a linear scan) when asked.
func vsimArgs(key, blob string, n, ef int, filter string, truth bool) []string {
	a := []string{"VSIM", key, "FP32", blob, "WITHSCORES", "COUNT", strconv.Itoa(n)}
	a = append(a, "EF", strconv.Itoa(max(ef, n)))
	if filter != "" {
		a = append(a, "FILTER", filter, "FILTER-EF", vsimFilterEF)
	}
	if truth {
		a = append(a, "TRUTH")
	}
	return a
}

type vhit struct {
	id    string
	score float64
}

// parseVSim reads a VSIM WITHSCORES reply: a map element -> score (RESP3)
// or a flat array element, score, ... (RESP2); scores as doubles or
// strings. An empty array (missing key) gives nothing.
func parseVSim(m rueidis.RedisMessage) ([]vhit, error) {
	if m.IsMap() {
		mm, err := m.AsMap()
		if err != nil {
			return nil, err
		}
		out := make([]vhit, 0, len(mm))
		for id, v := range mm {
			f, err := v.AsFloat64()
			if err != nil {
				return nil, fmt.Errorf("%w: VSIM score of %q: %v", ErrProtocol, id, err)
			}
			out = append(out, vhit{id, f})
		}
		return out, nil
	}
	arr, err := m.ToArray()
	if err != nil {
		if rueidis.IsRedisNil(err) {
			return nil, nil
		}
		return nil, err
	}
	if len(arr)%2 != 0 {
		return nil, fmt.Errorf("%w: VSIM reply of %d elements", ErrProtocol, len(arr))
	}
	out := make([]vhit, 0, len(arr)/2)
	for i := 0; i < len(arr); i += 2 {
		id, err1 := arr[i].ToString()
		f, err2 := arr[i+1].AsFloat64()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: VSIM element %d", ErrProtocol, i/2)
		}
		out = append(out, vhit{id, f})
	}
	return out, nil
}

func (b vsetBackend) search(ctx context.Context, qr *query) ([]Result, error) {
	s := b.s
	k := keys.ForMemory(s.opts.Prefix, qr.root)
	filter := vsetFilter(qr)
	blob := rueidis.VectorString32(qr.q)
	return s.rerank(ctx, qr, func(ctx context.Context, n int) ([]remoteHit, bool, error) {
		scopes := []string{qr.o.Scope}
		if qr.o.IncludeDescendants {
			m, err := s.client.Do(ctx, s.client.B().Hgetall().Key(k.Scopes).Build()).AsStrMap()
			if err != nil {
				return nil, false, fmt.Errorf("memory: vset: search %q: scopes: %w", qr.o.Scope, err)
			}
			scopes = scopes[:0]
			for sc := range m {
				if within(sc, qr.o.Scope) {
					scopes = append(scopes, sc)
				}
			}
			if len(scopes) == 0 {
				return nil, false, nil
			}
			sort.Strings(scopes)
		}
		cmds := make(rueidis.Commands, len(scopes))
		for i, sc := range scopes {
			a := vsimArgs(vsetKey(&k, sc), blob, n, s.opts.VSetEF, filter, s.opts.VSetTruth)
			cmds[i] = s.client.B().Arbitrary(a[0]).Keys(a[1]).Args(a[2:]...).Build()
		}
		var all []vhit
		more := false
		for i, res := range s.client.DoMulti(ctx, cmds...) {
			msg, err := res.ToMessage()
			if err != nil {
				return nil, false, fmt.Errorf("memory: vset: search %q: %w", scopes[i], unsupported(err))
			}
			hs, err := parseVSim(msg)
			if err != nil {
				return nil, false, err
			}
			more = more || len(hs) >= n
			all = append(all, hs...)
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].score != all[j].score {
				return all[i].score > all[j].score
			}
			return all[i].id < all[j].id
		})
		if len(all) > n {
			all, more = all[:n], true
		}
		hits := make([]remoteHit, len(all))
		for i, h := range all {
			hits[i] = remoteHit{id: h.id}
		}
		return hits, more, nil
	})
}
