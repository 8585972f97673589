package statestore

import (
	"errors"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []msgCursor{{0, 0, 0}, {1795354942212612, 3, 17}, {1 << 52, 1 << 40, 1 << 50}} {
		s := encodeCursor("sess", c)
		got, err := decodeCursor("sess", s)
		if err != nil || got != c {
			t.Errorf("decode(encode(%v)) = %v, %v", c, got, err)
		}
		if _, err := decodeCursor("other", s); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("cursor of sess accepted for other: %v", err)
		}
	}
	// A cursor of the format before incarnations ("m1.<epoch>.<index>.<check>")
	// is refused, not read as incarnation 0.
	if _, err := decodeCursor("sess", "bTEuMC4wLjA"); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("m1 cursor accepted: %v", err)
	}
}

func FuzzCursor(f *testing.F) {
	f.Add("sess", encodeCursor("sess", msgCursor{5, 1, 2}))
	f.Add("sess", "")
	f.Add("x", "bTEuMC4wLjA")
	f.Fuzz(func(t *testing.T, id, s string) {
		c, err := decodeCursor(id, s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("error %v does not match ErrInvalidCursor", err)
			}
			return
		}
		if c.inc < 0 || c.epoch < 0 || c.index < 0 {
			t.Fatalf("negative position %+v from %q", c, s)
		}
		if again := encodeCursor(id, c); again != s {
			t.Fatalf("cursor %q decodes to %+v which encodes to %q", s, c, again)
		}
	})
}
