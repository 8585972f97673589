package fencing

import (
	"errors"
	"fmt"
	"strconv"
)

// Token is a fencing token: a number that grows with every acquisition of a
// lock. The zero Token means "no token" and is never issued.
type Token uint64

// MaxToken is the largest token fencekit issues or accepts: 2^53-1, the
// largest integer a Lua number (an IEEE 754 double) represents exactly.
// Time-seeded tokens (microseconds since the Unix epoch) reach it in the year
// 2255.
const MaxToken Token = 1<<53 - 1

// ErrInvalidToken is returned when a token is zero, above [MaxToken], or not a
// decimal number.
var ErrInvalidToken = errors.New("fencing: invalid token")

// String formats t in decimal, the form stored in Redis and accepted by
// [ParseToken].
func (t Token) String() string { return strconv.FormatUint(uint64(t), 10) }

// AppendTo appends the decimal form of t to b.
func (t Token) AppendTo(b []byte) []byte { return strconv.AppendUint(b, uint64(t), 10) }

// Valid reports whether t is a token fencekit can issue: non-zero and at most
// [MaxToken].
func (t Token) Valid() bool { return t != 0 && t <= MaxToken }

// Compare returns -1, 0 or +1 as t is older than, equal to, or newer than u.
func (t Token) Compare(u Token) int {
	switch {
	case t < u:
		return -1
	case t > u:
		return 1
	}
	return 0
}

// Newer reports whether t was issued after u.
func (t Token) Newer(u Token) bool { return t > u }

// ParseToken parses the decimal form of a token. It returns an error matching
// [ErrInvalidToken] for anything that is not a decimal number in
// [1, MaxToken]; in particular it rejects signs, spaces, exponents ("1e+15",
// the form Lua's tostring produces) and leading zeros.
func ParseToken(s string) (Token, error) {
	if s == "" || len(s) > 16 || (s[0] == '0') {
		return 0, fmt.Errorf("%w: %q", ErrInvalidToken, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrInvalidToken, s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || !Token(v).Valid() {
		return 0, fmt.Errorf("%w: %q", ErrInvalidToken, s)
	}
	return Token(v), nil
}
