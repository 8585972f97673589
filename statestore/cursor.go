package statestore

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// msgCursor is a position in a session's messages: the index of the next
// message, valid while the session is the same incarnation (inc) and its
// messages have not been rewritten (epoch).
type msgCursor struct {
	inc, epoch, index int64
}

// Cursors are "m2.<incarnation>.<epoch>.<index>.<session check>" in
// unpadded base64url. The check (FNV-32a of the session id) catches cursors
// passed to the wrong session; it is not a secret. The incarnation catches
// cursors of a session deleted since (the script compares it). Cursors of
// the earlier format "m1" (no incarnation) are refused as unknown.
const cursorVersion = "m2"

func sessionCheck(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

func encodeCursor(id string, c msgCursor) string {
	raw := cursorVersion + "." + strconv.FormatInt(c.inc, 10) + "." + strconv.FormatInt(c.epoch, 10) + "." +
		strconv.FormatInt(c.index, 10) + "." + sessionCheck(id)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(id, s string) (msgCursor, error) {
	var c msgCursor
	bad := func(why string) (msgCursor, error) {
		return msgCursor{}, fmt.Errorf("%w: %s", ErrInvalidCursor, why)
	}
	if len(s) > 128 {
		return bad("too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad("not base64url")
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 5 || parts[0] != cursorVersion {
		return bad("unknown format")
	}
	if parts[4] != sessionCheck(id) {
		return bad("issued for another session")
	}
	if c.inc, err = parseCount(parts[1]); err != nil {
		return bad("bad incarnation")
	}
	if c.epoch, err = parseCount(parts[2]); err != nil {
		return bad("bad epoch")
	}
	if c.index, err = parseCount(parts[3]); err != nil {
		return bad("bad index")
	}
	return c, nil
}

// parseCount parses a canonical non-negative decimal integer.
func parseCount(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("bad count %q", s)
	}
	return n, nil
}
