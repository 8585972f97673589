package memory_test

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
)

// fakeVector makes a miniredis server answer the FT.* and V* commands the
// ft and vset backends send (also from inside Lua scripts), with an exact
// emulation: FT.SEARCH evaluates the pre-filter and ranks every indexed
// hash; VSIM evaluates the FILTER and ranks every element (RESP3 map or
// RESP2 array replies). It records those commands (and DEL of vector-set
// keys) as text, binary arguments shown as <N bytes>, so tests compare the
// exact command lines. Only the syntax the backends produce is understood:
// anything else is an error reply, which fails the test that sent it.
type fakeVector struct {
	m        *miniredis.Miniredis
	ft, vset bool

	mu   sync.Mutex
	log  []string
	idx  map[string][2]string // name -> prefix, dim
	sets map[string]map[string]velem
	// quant is each set's quantisation flag: as Redis does, a VADD with
	// another flag into an existing set is an error.
	quant map[string]string
}

type velem struct {
	vec   []float32
	attrs map[string]any
}

// newFake starts a miniredis with the emulated features.
func newFake(t *testing.T, ft, vset bool) (*redistest.Server, *fakeVector) {
	s := redistest.NewMini(t)
	f := &fakeVector{m: s.Mini, ft: ft, vset: vset, idx: map[string][2]string{}, sets: map[string]map[string]velem{}, quant: map[string]string{}}
	s.Mini.Server().SetPreHook(f.hook)
	return s, f
}

// take returns and clears the recorded commands.
func (f *fakeVector) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.log
	f.log = nil
	return out
}

func show(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if !utf8.ValidString(a) || strings.ContainsFunc(a, func(r rune) bool { return !unicode.IsPrint(r) }) {
			a = fmt.Sprintf("<%d bytes>", len(a))
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func (f *fakeVector) hook(c *server.Peer, cmd string, args ...string) bool {
	isFT := strings.HasPrefix(cmd, "FT.")
	isV := len(cmd) > 1 && cmd[0] == 'V' && cmd != "VERSION"
	if cmd == "DEL" {
		f.mu.Lock()
		for _, k := range args {
			if strings.Contains(k, ":vs:") {
				f.log = append(f.log, show(append([]string{cmd}, args...)))
				delete(f.sets, k)
				delete(f.quant, k)
			}
		}
		f.mu.Unlock()
		return false
	}
	if (!isFT || !f.ft) && (!isV || !f.vset) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, show(append([]string{cmd}, args...)))
	switch cmd {
	case "FT.INFO":
		c.WriteError("Unknown index name")
	case "FT.CREATE":
		if _, ok := f.idx[args[0]]; ok {
			c.WriteError("Index already exists")
			return true
		}
		f.idx[args[0]] = [2]string{args[5], args[14]}
		c.WriteOK()
	case "FT.SEARCH":
		f.ftSearch(c, args)
	case "VADD":
		// VADD key FP32 blob id quant SETATTR json
		if len(args) != 7 || args[1] != "FP32" || args[5] != "SETATTR" {
			c.WriteError("ERR fake VADD syntax")
			return true
		}
		var attrs map[string]any
		if err := json.Unmarshal([]byte(args[6]), &attrs); err != nil {
			c.WriteError("ERR fake VADD attributes: " + err.Error())
			return true
		}
		set := f.sets[args[0]]
		if set == nil {
			set = map[string]velem{}
			f.sets[args[0]] = set
			f.quant[args[0]] = args[4]
		} else if f.quant[args[0]] != args[4] {
			c.WriteError("ERR asked quantization mismatch with existing vector set")
			return true
		}
		_, had := set[args[3]]
		set[args[3]] = velem{rueidis.ToVector32(args[2]), attrs}
		c.WriteInt(map[bool]int{true: 0, false: 1}[had])
	case "VREM":
		set := f.sets[args[0]]
		_, had := set[args[1]]
		delete(set, args[1])
		if len(set) == 0 {
			delete(f.sets, args[0])
			delete(f.quant, args[0])
		}
		c.WriteInt(map[bool]int{true: 1, false: 0}[had])
	case "VCARD":
		c.WriteInt(len(f.sets[args[0]]))
	case "VDIM":
		for _, e := range f.sets[args[0]] {
			c.WriteInt(len(e.vec))
			return true
		}
		c.WriteError("ERR key does not exist")
	case "VSIM":
		f.vsim(c, args)
	default:
		c.WriteError("ERR fake: unknown command " + cmd)
	}
	return true
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

var (
	knnRe  = regexp.MustCompile(`^\((.*)\)=>\[KNN (\d+) @vec \$BLOB AS dist\]$`)
	termRe = regexp.MustCompile(`@(\w+):(\{[^}]*\}|\[[^\]]*\])`)
)

func numBound(s string) (float64, bool, error) {
	excl := strings.HasPrefix(s, "(")
	s = strings.TrimPrefix(s, "(")
	switch s {
	case "+inf":
		return math.Inf(1), excl, nil
	case "-inf":
		return math.Inf(-1), excl, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, excl, err
}

// ftMatch evaluates the pre-filter (juxtaposed TAG and NUMERIC terms).
func ftMatch(filter string, h map[string]string) (bool, error) {
	rest := termRe.ReplaceAllString(filter, "")
	if strings.TrimSpace(rest) != "" {
		return false, fmt.Errorf("unparsed filter text %q", rest)
	}
	for _, m := range termRe.FindAllStringSubmatch(filter, -1) {
		field, val := m[1], m[2]
		if val[0] == '{' {
			have := map[string]bool{}
			for _, t := range strings.Split(h[field], ",") {
				have[t] = true
			}
			ok := false
			for _, w := range strings.Split(val[1:len(val)-1], "|") {
				ok = ok || have[w]
			}
			if !ok {
				return false, nil
			}
			continue
		}
		b := strings.Fields(val[1 : len(val)-1])
		if len(b) != 2 {
			return false, fmt.Errorf("numeric range %q", val)
		}
		lo, lx, err1 := numBound(b[0])
		hi, hx, err2 := numBound(b[1])
		x, err3 := strconv.ParseFloat(h[field], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return false, fmt.Errorf("numeric range %q on %q", val, h[field])
		}
		if x < lo || (lx && x == lo) || x > hi || (hx && x == hi) {
			return false, nil
		}
	}
	return true, nil
}

// ftSearch: FT.SEARCH idx query RETURN n f.. LIMIT 0 n PARAMS 2 BLOB blob
// DIALECT 2, answered as an array (valkey-search's shape).
func (f *fakeVector) ftSearch(c *server.Peer, args []string) {
	ix, ok := f.idx[args[0]]
	mm := knnRe.FindStringSubmatch(args[1])
	if !ok || mm == nil || args[2] != "RETURN" {
		c.WriteError("ERR fake FT.SEARCH syntax")
		return
	}
	nret, _ := strconv.Atoi(args[3])
	ret := args[4 : 4+nret]
	tail := args[4+nret:]
	if len(tail) != 9 || tail[0] != "LIMIT" || tail[1] != "0" || tail[3] != "PARAMS" || tail[4] != "2" || tail[5] != "BLOB" || tail[7] != "DIALECT" || tail[8] != "2" || tail[2] != mm[2] {
		c.WriteError("ERR fake FT.SEARCH tail " + show(tail))
		return
	}
	k, _ := strconv.Atoi(mm[2])
	dim, _ := strconv.Atoi(ix[1])
	q := rueidis.ToVector32(tail[6])
	type doc struct {
		key  string
		h    map[string]string
		dist float64
	}
	var docs []doc
	for _, key := range f.m.Keys() {
		if !strings.HasPrefix(key, ix[0]) || f.m.Type(key) != "hash" {
			continue
		}
		fields, _ := f.m.HKeys(key)
		h := map[string]string{}
		for _, fl := range fields {
			h[fl] = f.m.HGet(key, fl)
		}
		if len(h["vec"]) != 4*dim {
			continue
		}
		ok, err := ftMatch(mm[1], h)
		if err != nil {
			c.WriteError("ERR fake filter: " + err.Error())
			return
		}
		if ok {
			docs = append(docs, doc{key, h, 1 - dot(q, rueidis.ToVector32(h["vec"]))})
		}
	}
	sort.Slice(docs, func(i, j int) bool {
		if docs[i].dist != docs[j].dist {
			return docs[i].dist < docs[j].dist
		}
		return docs[i].key < docs[j].key
	})
	if len(docs) > k {
		docs = docs[:k]
	}
	c.WriteLen(1 + 2*len(docs))
	c.WriteInt(len(docs))
	for _, d := range docs {
		c.WriteBulk(d.key)
		d.h["dist"] = strconv.FormatFloat(d.dist, 'g', 7, 64)
		var kv []string
		for _, r := range ret {
			if v, ok := d.h[r]; ok {
				kv = append(kv, r, v)
			}
		}
		c.WriteStrings(kv)
	}
}

var vtermRe = regexp.MustCompile(`^(?:\.(imp|ts) (>=|>|<) (\S+)|"([0-9a-f]+)" in \.cats)$`)

// vfilter evaluates the FILTER forms vsetFilter writes: terms joined by
// " and ", one of which may be a parenthesised " or " group.
func vfilter(expr string, attrs map[string]any) (bool, error) {
	if expr == "" {
		return true, nil
	}
	for _, term := range strings.Split(expr, " and ") {
		alts := []string{term}
		if strings.HasPrefix(term, "(") && strings.HasSuffix(term, ")") {
			alts = strings.Split(term[1:len(term)-1], " or ")
		}
		ok := false
		for _, a := range alts {
			m := vtermRe.FindStringSubmatch(a)
			if m == nil {
				return false, fmt.Errorf("filter term %q", a)
			}
			if m[4] != "" {
				cats, _ := attrs["cats"].([]any)
				for _, cat := range cats {
					ok = ok || cat == m[4]
				}
				continue
			}
			x, has := attrs[m[1]].(float64)
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				return false, err
			}
			ok = ok || has && ((m[2] == ">=" && x >= v) || (m[2] == ">" && x > v) || (m[2] == "<" && x < v))
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// vsim: VSIM key FP32 blob WITHSCORES COUNT n [EF ef] [FILTER expr
// FILTER-EF fef] [TRUTH], with ef, fef > 0 as Redis 8 requires ("ERR
// invalid EF", "ERR invalid FILTER-EF").
func (f *fakeVector) vsim(c *server.Peer, args []string) {
	if len(args) < 6 || args[1] != "FP32" || args[3] != "WITHSCORES" || args[4] != "COUNT" {
		c.WriteError("ERR fake VSIM syntax")
		return
	}
	n, _ := strconv.Atoi(args[5])
	filter := ""
	rest := args[6:]
	if len(rest) >= 2 && rest[0] == "EF" {
		if ef, err := strconv.ParseInt(rest[1], 10, 64); err != nil || ef <= 0 {
			c.WriteError("ERR invalid EF")
			return
		}
		rest = rest[2:]
	}
	if len(rest) >= 4 && rest[0] == "FILTER" && rest[2] == "FILTER-EF" {
		if ef, err := strconv.ParseInt(rest[3], 10, 64); err != nil || ef <= 0 {
			c.WriteError("ERR invalid FILTER-EF")
			return
		}
		filter, rest = rest[1], rest[4:]
	}
	if len(rest) > 0 && rest[0] == "TRUTH" {
		rest = rest[1:]
	}
	if len(rest) != 0 {
		c.WriteError("ERR fake VSIM options " + show(rest))
		return
	}
	q := rueidis.ToVector32(args[2])
	type hit struct {
		id    string
		score float64
	}
	var hits []hit
	for id, e := range f.sets[args[0]] {
		ok, err := vfilter(filter, e.attrs)
		if err != nil {
			c.WriteError("ERR fake filter: " + err.Error())
			return
		}
		if ok {
			hits = append(hits, hit{id, (1 + dot(q, e.vec)) / 2})
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].id < hits[j].id
	})
	if len(hits) > n {
		hits = hits[:n]
	}
	if c.Resp3 {
		c.WriteMapLen(len(hits))
	} else {
		c.WriteLen(2 * len(hits))
	}
	for _, h := range hits {
		c.WriteBulk(h.id)
		c.WriteFloat(h.score)
	}
}
