package stream

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Seq is the position of an entry in a stream: its Redis Streams id
// "<ms>-<n>", where n numbers the stream's entries from 1. The zero Seq is
// the position before the first entry. Seqs are comparable and ordered (see
// [Seq.Less]); obtain them from this package or from [ParseSeq].
type Seq struct {
	ms, n uint64
}

// ParseSeq parses the text form of a Seq ("<ms>-<n>", as returned by
// [Seq.String]; "" and "0" and "0-0" are the zero Seq). Anything else gets
// an error matching [ErrInvalidSeq].
func ParseSeq(s string) (Seq, error) {
	if s == "" || s == "0" {
		return Seq{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := parseUint(a)
	n, err2 := parseUint(b)
	if !ok || err1 != nil || err2 != nil || (n == 0 && ms != 0) {
		return Seq{}, fmt.Errorf("%w: %q", ErrInvalidSeq, s)
	}
	return Seq{ms: ms, n: n}, nil
}

// parseUint accepts decimal digits only, up to 2^53-1 (what the scripts'
// Lua numbers hold exactly).
func parseUint(s string) (uint64, error) {
	if s == "" || len(s) > 16 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > 1<<53-1 {
		return 0, strconv.ErrRange
	}
	return v, nil
}

// String returns "<ms>-<n>", the entry id ("0-0" for the zero Seq).
func (q Seq) String() string {
	return strconv.FormatUint(q.ms, 10) + "-" + strconv.FormatUint(q.n, 10)
}

// IsZero reports whether q is the position before the first entry.
func (q Seq) IsZero() bool { return q == Seq{} }

// N returns the entry's number in its stream: 1 for the first entry, and
// one more for each following entry (0 for the zero Seq).
func (q Seq) N() int64 { return int64(q.n) }

// Time returns the server time at which the entry was appended (or a
// little later, see the package documentation).
func (q Seq) Time() time.Time { return time.UnixMilli(int64(q.ms)) }

// Less reports whether q comes before r.
func (q Seq) Less(r Seq) bool {
	return q.ms < r.ms || (q.ms == r.ms && q.n < r.n)
}

// MarshalText implements encoding.TextMarshaler.
func (q Seq) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (see [ParseSeq]).
func (q *Seq) UnmarshalText(b []byte) error {
	v, err := ParseSeq(string(b))
	if err != nil {
		return err
	}
	*q = v
	return nil
}
