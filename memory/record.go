package memory

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/keys"
)

// Record is one memory.
type Record struct {
	// ID identifies the record within its scope root (see Options.TagDepth):
	// a Put of an existing id replaces that record, also when it lived in
	// another scope of the same root. Validated like session ids.
	ID string
	// Text is the remembered content, at most Options.MaxText bytes.
	Text string
	// Embedding has Options.Dim components, none NaN or infinite, not all
	// zero. Put stores it L2-normalised; records read back carry the
	// normalised vector.
	Embedding []float32
	// Scope is a '/'-separated path such as "user/42/project/7": no empty
	// segments, no braces or control characters, at most MaxScopeLen bytes.
	Scope string
	// Categories are tags for filtering (at most MaxCategories, each 1 to
	// MaxCategoryLen bytes of UTF-8 without control characters). Records
	// read back carry them sorted and without duplicates.
	Categories []string
	// Metadata is matched by SearchOptions.Metadata (exact equality).
	Metadata map[string]string
	// Importance is in [0, 1].
	Importance float64
	// CreatedAt is the creation time, at millisecond resolution. Zero at
	// Put: the server's time.
	CreatedAt time.Time
	// TTL makes the record expire that long after the Put (>= 1ms); zero
	// keeps it until deleted. Records read back carry the TTL left.
	TTL time.Duration
}

// fields read for records, in this order (also by mem_list.lua).
var recordFields = []string{"id", "scope", "text", "vec", "cats", "meta", "imp", "ts", "exp"}

// scopeRoot validates scope and returns its root (the first depth segments).
func scopeRoot(scope string, depth int) (string, error) {
	if scope == "" || len(scope) > MaxScopeLen || !utf8.ValidString(scope) {
		return "", fmt.Errorf("%w: %q (empty, longer than %d bytes, or not UTF-8)", ErrInvalidScope, scope, MaxScopeLen)
	}
	for _, r := range scope {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '{' || r == '}' || r == '|' {
			return "", fmt.Errorf("%w: %q contains %q", ErrInvalidScope, scope, r)
		}
	}
	segs := 0
	for _, part := range strings.Split(scope, "/") {
		if part == "" {
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidScope, scope)
		}
		segs++
	}
	if segs < depth {
		return "", fmt.Errorf("%w: %q has %d segments, fewer than TagDepth %d", ErrInvalidScope, scope, segs, depth)
	}
	// The root is the prefix up to the depth-th '/'.
	n := 0
	for i := 0; i < len(scope); i++ {
		if scope[i] == '/' {
			n++
			if n == depth {
				return scope[:i], nil
			}
		}
	}
	return scope, nil
}

// within reports whether scope s is p or a descendant of p.
func within(s, p string) bool {
	return s == p || (len(s) > len(p) && s[len(p)] == '/' && s[:len(p)] == p)
}

// normalize checks v and returns it L2-normalised.
func normalize(v []float32, dim int) ([]float32, error) {
	if len(v) != dim {
		return nil, fmt.Errorf("%w: %d components, want %d", ErrDimension, len(v), dim)
	}
	var ss float64
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: component %d is %v", ErrInvalidVector, i, x)
		}
		ss += f * f
	}
	if ss == 0 || math.IsInf(ss, 0) {
		return nil, fmt.Errorf("%w: norm is %v", ErrInvalidVector, math.Sqrt(ss))
	}
	inv := 1 / math.Sqrt(ss)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out, nil
}

// dotBlob is the dot product of q with the LE float32 blob b (len(b) ==
// 4*len(q)), accumulated in float64.
func dotBlob(q []float32, b string) float64 {
	// A byte view of the string (no copy; never written) lets the compiler
	// turn each little-endian read into one load, and the slice bounds set
	// up front remove the checks inside the loop.
	v := unsafe.Slice(unsafe.StringData(b), len(b))
	v = v[:len(q)*4]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(q); i += 4 {
		w := v[i*4 : i*4+16]
		s0 += float64(q[i]) * float64(math.Float32frombits(binary.LittleEndian.Uint32(w[0:4])))
		s1 += float64(q[i+1]) * float64(math.Float32frombits(binary.LittleEndian.Uint32(w[4:8])))
		s2 += float64(q[i+2]) * float64(math.Float32frombits(binary.LittleEndian.Uint32(w[8:12])))
		s3 += float64(q[i+3]) * float64(math.Float32frombits(binary.LittleEndian.Uint32(w[12:16])))
	}
	for ; i < len(q); i++ {
		s0 += float64(q[i]) * float64(math.Float32frombits(binary.LittleEndian.Uint32(v[i*4:i*4+4])))
	}
	return (s0 + s1) + (s2 + s3)
}

// normCategories validates, sorts and deduplicates categories.
func normCategories(cats []string) ([]string, error) {
	if len(cats) > MaxCategories {
		return nil, fmt.Errorf("memory: %w: %d categories (max %d)", ErrTooLarge, len(cats), MaxCategories)
	}
	if len(cats) == 0 {
		return nil, nil
	}
	out := append([]string(nil), cats...)
	for _, c := range out {
		if err := checkText("category", c, MaxCategoryLen); err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	j := 0
	for i, c := range out {
		if i == 0 || c != out[j-1] {
			out[j] = c
			j++
		}
	}
	return out[:j], nil
}

func checkText(what, s string, max int) error {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("memory: %w: %s %q (empty, longer than %d bytes, or not UTF-8)", ErrInvalidArgument, what, s, max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("memory: %w: %s %q contains a control character", ErrInvalidArgument, what, s)
		}
	}
	return nil
}

func hexList(items []string) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(hex.EncodeToString([]byte(it)))
	}
	return b.String()
}

func unhexList(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]string, len(parts))
	for i, p := range parts {
		b, err := hex.DecodeString(p)
		if err != nil {
			return nil, err
		}
		out[i] = string(b)
	}
	return out, nil
}

// ancestors returns scope and its ancestors, shortest first.
func ancestors(scope string) []string {
	var out []string
	for i := 0; i < len(scope); i++ {
		if scope[i] == '/' {
			out = append(out, scope[:i])
		}
	}
	return append(out, scope)
}

// encoded is a validated record, ready for mem_put.lua.
type encoded struct {
	root string
	args [11]string // id, scope, text, vec, cats, sc, sh, meta, imp, created, ttl
}

func (s *Store) encode(r *Record) (encoded, error) {
	var e encoded
	if err := keys.ValidateID(r.ID); err != nil {
		return e, err
	}
	root, err := scopeRoot(r.Scope, s.opts.TagDepth)
	if err != nil {
		return e, err
	}
	e.root = root
	if len(r.Text) > s.opts.MaxText {
		return e, fmt.Errorf("memory: %w: text of %d bytes (max %d)", ErrTooLarge, len(r.Text), s.opts.MaxText)
	}
	if !utf8.ValidString(r.Text) {
		return e, fmt.Errorf("memory: %w: text is not valid UTF-8", ErrInvalidArgument)
	}
	vec, err := normalize(r.Embedding, s.opts.Dim)
	if err != nil {
		return e, err
	}
	cats, err := normCategories(r.Categories)
	if err != nil {
		return e, err
	}
	meta := ""
	if len(r.Metadata) > 0 {
		for k, v := range r.Metadata {
			if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
				return e, fmt.Errorf("memory: %w: metadata key %q or its value is empty or not UTF-8", ErrInvalidArgument, k)
			}
		}
		b, err := json.Marshal(r.Metadata)
		if err != nil {
			return e, fmt.Errorf("memory: %w: metadata: %v", ErrInvalidArgument, err)
		}
		if len(b) > s.opts.MaxMetadata {
			return e, fmt.Errorf("memory: %w: metadata of %d bytes as JSON (max %d)", ErrTooLarge, len(b), s.opts.MaxMetadata)
		}
		meta = string(b)
	}
	if math.IsNaN(r.Importance) || r.Importance < 0 || r.Importance > 1 {
		return e, fmt.Errorf("memory: %w: importance %v not in [0, 1]", ErrInvalidArgument, r.Importance)
	}
	created := ""
	if !r.CreatedAt.IsZero() {
		ms := r.CreatedAt.UnixMilli()
		if ms < 0 || ms > 1<<53-1 {
			return e, fmt.Errorf("memory: %w: CreatedAt %v out of range", ErrInvalidArgument, r.CreatedAt)
		}
		created = strconv.FormatInt(ms, 10)
	}
	if r.TTL < 0 || (r.TTL > 0 && r.TTL < time.Millisecond) {
		return e, fmt.Errorf("memory: %w: TTL %v (0 or at least 1ms)", ErrInvalidArgument, r.TTL)
	}
	e.args = [11]string{r.ID, r.Scope, r.Text, rueidis.VectorString32(vec), hexList(cats), hexList(ancestors(r.Scope)),
		hex.EncodeToString([]byte(r.Scope)), meta, strconv.FormatFloat(r.Importance, 'g', -1, 64), created, strconv.FormatInt(r.TTL.Milliseconds(), 10)}
	return e, nil
}

// decode builds a record from the values of recordFields; ok is false when
// the record does not exist (all nil). now is used for the TTL left.
func decode(vals []rueidis.RedisMessage, now time.Time) (Record, bool, error) {
	var str [9]string
	present := false
	for i := range str {
		if i < len(vals) {
			if s, err := vals[i].ToString(); err == nil {
				str[i] = s
				present = true
			}
		}
	}
	if !present || str[0] == "" {
		return Record{}, false, nil
	}
	return decodeStrings(str, now)
}

func decodeStrings(str [9]string, now time.Time) (Record, bool, error) {
	r := Record{ID: str[0], Scope: str[1], Text: str[2]}
	if len(str[3])%4 != 0 {
		return r, false, fmt.Errorf("%w: record %q: vector of %d bytes", ErrCorrupt, r.ID, len(str[3]))
	}
	r.Embedding = rueidis.ToVector32(str[3])
	var err error
	if r.Categories, err = unhexList(str[4]); err != nil {
		return r, false, fmt.Errorf("%w: record %q: categories", ErrCorrupt, r.ID)
	}
	if str[5] != "" {
		if err := json.Unmarshal([]byte(str[5]), &r.Metadata); err != nil {
			return r, false, fmt.Errorf("%w: record %q: metadata", ErrCorrupt, r.ID)
		}
	}
	if r.Importance, err = strconv.ParseFloat(str[6], 64); err != nil {
		return r, false, fmt.Errorf("%w: record %q: importance", ErrCorrupt, r.ID)
	}
	ts, err := strconv.ParseInt(str[7], 10, 64)
	if err != nil {
		return r, false, fmt.Errorf("%w: record %q: created", ErrCorrupt, r.ID)
	}
	r.CreatedAt = time.UnixMilli(ts)
	if str[8] != "" {
		exp, err := strconv.ParseInt(str[8], 10, 64)
		if err != nil {
			return r, false, fmt.Errorf("%w: record %q: expiry", ErrCorrupt, r.ID)
		}
		if left := time.UnixMilli(exp).Sub(now); left > 0 {
			r.TTL = left
		} else {
			r.TTL = time.Millisecond
		}
	}
	return r, true, nil
}
