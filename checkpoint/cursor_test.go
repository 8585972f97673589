package checkpoint

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/statestore"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []listCursor{
		{seq: 0, id: "cpv1-s-s0-t0-000000"},
		{inc: 1795354942212612, seq: 1, id: "cpv1-s-s1-t1700000000000-abcdef"},
		{seq: 1<<53 - 1, id: "cpv1-s-s9007199254740991-t9999999999999999-ffffff"},
	} {
		got, err := decodeCursor("s", encodeCursor(c))
		if err != nil || got != c {
			t.Errorf("decodeCursor(encodeCursor(%+v)) = %+v, %v", c, got, err)
		}
	}
	// Ids with the separators of ids and cursors in them.
	for _, id := range []string{"a.b", "a-s1-t2-abcdef", "x:y", "c1.2.", "ü"} {
		c := listCursor{seq: 7, id: "cpv1-" + id + "-s3-t4-0a0b0c"}
		got, err := decodeCursor(id, encodeCursor(c))
		if err != nil || got != c {
			t.Errorf("session %q: decodeCursor(encodeCursor(%+v)) = %+v, %v", id, c, got, err)
		}
	}
}

func TestCheckID(t *testing.T) {
	good := []string{
		"cpv1-s1-s0-t0-000000",
		"cpv1-s1-s12-t1700000000000-a1b2c3",
		"cpv1-s1-s9007199254740991-t1700000000000-ffffff",
	}
	for _, cpid := range good {
		if err := checkID("s1", cpid); err != nil {
			t.Errorf("checkID(s1, %q) = %v", cpid, err)
		}
	}
	if err := checkID("a-s1-t2", "cpv1-a-s1-t2-s3-t4-abcdef"); err != nil {
		t.Errorf("session id with separators: %v", err)
	}
	bad := []string{
		"", "cpv1-", "cpv1-s1", "cpv1-s1-s", "cpv1-s1-s1-t", "cpv1-s1-s1-t1-", "cpv1-s1-s1-t1-abcde",
		"cpv1-s1-s1-t1-abcdefa", "cpv1-s1-s1-t1-ABCDEF", "cpv1-s1-s1-t1-abcdeg", "cpv1-s1-s01-t1-abcdef",
		"cpv1-s1-s1-t01-abcdef", "cpv1-s1-s-1-t1-abcdef", "cpv1-s1-s1-t1-abcdef ", " cpv1-s1-s1-t1-abcdef",
		"cpv1-s2-s1-t1-abcdef", "cpv1-s10-s1-t1-abcdef", "cpv2-s1-s1-t1-abcdef", "cpv1-s1-s1-t1-abcdef-",
		"cpv1-s1-s12345678901234567-t1-abcdef", "cpv1-s1-s1-t12345678901234567-abcdef", "cpv1-s1-s+1-t1-abcdef",
	}
	for _, cpid := range bad {
		if err := checkID("s1", cpid); !errors.Is(err, statestore.ErrInvalidID) {
			t.Errorf("checkID(s1, %q) = %v, want ErrInvalidID", cpid, err)
		}
	}
	long := "cpv1-" + strings.Repeat("x", keys.MaxIDLen) + "-s9007199254740991-t9999999999999999-abcdef"
	if len(long) != maxIDLen {
		t.Fatalf("maxIDLen %d, longest id %d bytes", maxIDLen, len(long))
	}
	if err := checkID(strings.Repeat("x", keys.MaxIDLen), long); err != nil {
		t.Errorf("longest id: %v", err)
	}
	if c := encodeCursor(listCursor{inc: 1<<53 - 1, seq: 1<<53 - 1, id: long}); len(c) != maxCursorLen {
		t.Errorf("longest cursor %d bytes, maxCursorLen %d", len(c), maxCursorLen)
	}
}

// FuzzDecodeCursor: decoding never panics; what decodes is canonical
// (encoding it again gives the same cursor) and belongs to the session only.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{
		"", "x", "!!!", encodeCursor(listCursor{seq: 3, id: "cpv1-s1-s1-t1700000000000-abcdef"}),
		base64.RawURLEncoding.EncodeToString([]byte("c1.3.cpv1-s1-s1-t1-abcdef")),
		base64.RawURLEncoding.EncodeToString([]byte("c1.-3.cpv1-s1-s1-t1-abcdef")),
		base64.RawURLEncoding.EncodeToString([]byte("c1.3.cpv1-s2-s1-t1-abcdef")),
		base64.RawURLEncoding.EncodeToString([]byte("c1..")),
		base64.RawURLEncoding.EncodeToString([]byte("m1.0.3.abc")),
	} {
		f.Add("s1", s)
	}
	f.Fuzz(func(t *testing.T, id, s string) {
		c, err := decodeCursor(id, s)
		if err != nil {
			if !errors.Is(err, statestore.ErrInvalidCursor) {
				t.Fatalf("decodeCursor(%q, %q) = %v, not ErrInvalidCursor", id, s, err)
			}
			return
		}
		if keys.ValidateID(id) != nil {
			t.Fatalf("decodeCursor accepted a cursor for the invalid session id %q", id)
		}
		if c.seq < 0 || checkID(id, c.id) != nil {
			t.Fatalf("decodeCursor(%q, %q) = %+v", id, s, c)
		}
		if again := encodeCursor(c); again != s {
			t.Fatalf("decodeCursor(%q) = %+v encodes to %q", s, c, again)
		}
		if _, err := decodeCursor(id+"x", s); err == nil {
			t.Fatalf("cursor %q of session %q accepted for session %q", s, id, id+"x")
		}
	})
}

// FuzzCursorRoundTrip: every cursor of a valid session decodes to itself
// for that session and to an error for any other.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add("s1", int64(1), uint64(0), uint64(1700000000000), uint32(0xabcdef), "s2")
	f.Add("a.b-s1-t2", int64(1<<53-1), uint64(1<<53-1), uint64(0), uint32(0), "a.b")
	f.Fuzz(func(t *testing.T, id string, seq int64, step, ms uint64, rnd uint32, other string) {
		if keys.ValidateID(id) != nil || seq < 0 || step > 1<<53-1 || ms > 1<<53-1 {
			return
		}
		cpid := "cpv1-" + id + "-s" + itoa(step) + "-t" + itoa(ms) + "-" + hex6(rnd)
		c := listCursor{seq: seq, id: cpid}
		s := encodeCursor(c)
		got, err := decodeCursor(id, s)
		if err != nil || got != c {
			t.Fatalf("decodeCursor(encodeCursor(%+v)) = %+v, %v", c, got, err)
		}
		if other != id {
			if _, err := decodeCursor(other, s); !errors.Is(err, statestore.ErrInvalidCursor) {
				t.Fatalf("cursor of session %q accepted for session %q: %v", id, other, err)
			}
		}
	})
}

// FuzzDecodePayload: decoding a payload never panics, and what decodes
// encodes back to the same bytes.
func FuzzDecodePayload(f *testing.F) {
	f.Add("cp1 1 1700000000000 5 2 3 0 7\n{\"a\":1}{\"m\":2}")
	f.Add("cp1 1 1700000000000 5 2 3 0 0\n")
	f.Add("cp1 1 1 1 1 1 1 9\n{}")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, p string) {
		cp, err := decodePayload("s1", "cpv1-s1-s1-t1-abcdef", p)
		if err != nil {
			if !errors.Is(err, statestore.ErrCorrupt) {
				t.Fatalf("decodePayload(%q) = %v, not ErrCorrupt", p, err)
			}
			return
		}
		epoch := strings.Fields(p[:strings.IndexByte(p, '\n')])[6]
		again := "cp1 " + itoa(uint64(cp.Seq)) + " " + itoa(uint64(cp.CreatedAt.UnixMilli())) + " " + cp.Token.String() + " " +
			itoa(uint64(cp.Step)) + " " + itoa(uint64(cp.MessageCount)) + " " + epoch + " " + itoa(uint64(len(cp.State))) + "\n" +
			string(cp.State) + string(cp.Metadata)
		if again != p {
			t.Fatalf("decodePayload(%q) = %+v, which encodes to %q", p, cp, again)
		}
	})
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func hex6(r uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		b[i] = digits[r&0xf]
		r >>= 4
	}
	return string(b)
}
