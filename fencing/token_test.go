package fencing

import (
	"errors"
	"strconv"
	"testing"
)

func TestParseToken(t *testing.T) {
	good := map[string]Token{
		"1":                1,
		"42":               42,
		"1795354942212600": 1795354942212600,
		"9007199254740991": MaxToken,
	}
	for s, want := range good {
		got, err := ParseToken(s)
		if err != nil || got != want {
			t.Errorf("ParseToken(%q) = %d, %v; want %d", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("Token(%d).String() = %q, want %q", got, got.String(), s)
		}
	}
	bad := []string{"", "0", "00", "01", "-1", "+1", " 1", "1 ", "1.0", "1e3",
		"1.7953549422126e+15", "9007199254740992", "18446744073709551615",
		"18446744073709551616", "abc", "1_000"}
	for _, s := range bad {
		if tok, err := ParseToken(s); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ParseToken(%q) = %d, %v; want ErrInvalidToken", s, tok, err)
		}
	}
}

func TestTokenCompare(t *testing.T) {
	if Token(1).Compare(2) != -1 || Token(2).Compare(1) != 1 || Token(2).Compare(2) != 0 {
		t.Fatal("Compare is wrong")
	}
	if !Token(3).Newer(2) || Token(2).Newer(2) {
		t.Fatal("Newer is wrong")
	}
	if Token(0).Valid() || !Token(1).Valid() || !MaxToken.Valid() || (MaxToken + 1).Valid() {
		t.Fatal("Valid is wrong")
	}
	if got := string(Token(77).AppendTo([]byte("t="))); got != "t=77" {
		t.Fatalf("AppendTo = %q", got)
	}
}

func TestStaleTokenError(t *testing.T) {
	var err error = &StaleTokenError{Resource: "s1", Presented: 5, Highest: 9}
	if !errors.Is(err, ErrStaleToken) {
		t.Fatal("StaleTokenError does not match ErrStaleToken")
	}
	if errors.Is(err, ErrNotHolder) {
		t.Fatal("StaleTokenError matches ErrNotHolder")
	}
	var ste *StaleTokenError
	if !errors.As(err, &ste) || ste.Presented != 5 || ste.Highest != 9 {
		t.Fatalf("errors.As = %+v", ste)
	}
	if got := err.Error(); got != `fencing: stale token 5 for "s1" (highest 9)` {
		t.Fatalf("Error() = %q", got)
	}
	if got := (&StaleTokenError{Presented: 1, Highest: 2}).Error(); got != "fencing: stale token 1 (highest 2)" {
		t.Fatalf("Error() = %q", got)
	}
}

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"1", "0", "1795354942212600", "9007199254740992", "1e+15", "-3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("ParseToken(%q): error %v does not match ErrInvalidToken", s, err)
			}
			return
		}
		if !tok.Valid() {
			t.Fatalf("ParseToken(%q) accepted invalid token %d", s, tok)
		}
		// Accepted strings are exactly the canonical form: round trip.
		if tok.String() != s {
			t.Fatalf("ParseToken(%q) = %d, which formats as %q", s, tok, tok.String())
		}
		if v, err := strconv.ParseUint(s, 10, 64); err != nil || Token(v) != tok {
			t.Fatalf("ParseToken(%q) = %d, strconv says %d, %v", s, tok, v, err)
		}
	})
}
