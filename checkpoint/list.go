package checkpoint

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/statestore"
)

// MaxPageSize is the largest page List returns.
const MaxPageSize = 1000

// Page is one page of checkpoints, newest first.
type Page struct {
	Checkpoints []Checkpoint
	// Next is the cursor of the following page, "" after the last page.
	Next string
	// HasMore reports whether older checkpoints follow this page (at the
	// time it was read).
	HasMore bool
	// Total is the number of checkpoints of the session.
	Total int64
}

// List returns up to limit checkpoints of session id (1..MaxPageSize),
// newest (highest Seq) first, starting after cursor ("" for the newest), in
// one round trip. Cursors are exclusive and opaque: checkpoints saved while
// a caller pages are newer than the first page and do not show up, and no
// checkpoint is skipped or repeated.
//
// A malformed cursor, one issued for another session, or one whose
// checkpoint is no longer there (pruned) gets ErrInvalidCursor; one issued
// before the session was deleted and created again gets a
// [*statestore.ReplacedError] (matching statestore.ErrSessionReplaced and
// ErrInvalidCursor); a limit out of range ErrInvalidArgument; no session
// ErrNotFound.
//
// Every checkpoint of the page comes with its State and Metadata, so a page
// may be as large as limit × statestore.Options.MaxDocumentBytes.
func (s *Store) List(ctx context.Context, id, cursor string, limit int) (_ Page, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opList, id, 0)
	defer sp.End(&err)
	var p Page
	k, err := s.cfg.Keys(id)
	if err != nil {
		return p, fmt.Errorf("checkpoint: %w", err)
	}
	if limit < 1 || limit > MaxPageSize {
		return p, fmt.Errorf("checkpoint: %w: limit %d (1..%d)", statestore.ErrInvalidArgument, limit, MaxPageSize)
	}
	seq, cpid, inc := "", "", ""
	if cursor != "" {
		c, err := decodeCursor(id, cursor)
		if err != nil {
			return p, fmt.Errorf("checkpoint: list %q: %w", id, err)
		}
		seq, cpid, inc = strconv.FormatInt(c.seq, 10), c.id, strconv.FormatInt(c.inc, 10)
	}
	arr, err := lua.CpList.Exec(ctx, s.cfg.Client, []string{k.State, k.Cps, k.Cpd},
		[]string{seq, cpid, strconv.Itoa(limit), inc}).ToArray()
	if err != nil {
		return p, fenced.ReadError("checkpoint", "list", id, err)
	}
	if p.Total, err = fenced.Int(arr, 0, "cp_list.lua"); err != nil {
		return p, err
	}
	incs, err := fenced.Str(arr, 1, "cp_list.lua")
	if err != nil {
		return p, err
	}
	curInc, err := strconv.ParseInt(incs, 10, 64)
	if err != nil || curInc < 0 || !canonical(incs) {
		return p, fmt.Errorf("checkpoint: list %q: %w: incarnation %q", id, statestore.ErrCorrupt, incs)
	}
	n := (len(arr) - 2) / 2
	if n > limit {
		p.HasMore = true
		n = limit
	}
	p.Checkpoints = make([]Checkpoint, n)
	for i := range n {
		if p.Checkpoints[i], err = decodeEntry(id, arr, 2+2*i, "cp_list.lua"); err != nil {
			return Page{}, fmt.Errorf("checkpoint: list %q: %w", id, err)
		}
	}
	if p.HasMore {
		last := &p.Checkpoints[n-1]
		p.Next = encodeCursor(listCursor{inc: curInc, seq: last.Seq, id: last.ID})
	}
	return p, nil
}

// listCursor is a position in a session's checkpoints: the last checkpoint
// of the page before, by sequence and id, in incarnation inc of the
// session. The id names the session, which is how a cursor passed to
// another session is caught; the script checks that the session is still
// incarnation inc and that the id still has that sequence.
type listCursor struct {
	inc int64
	seq int64
	id  string
}

// Cursors are "c2.<incarnation>.<seq>.<checkpoint id>" in unpadded
// base64url. Cursors of the format before incarnations ("c1") are refused
// as unknown.
const cursorVersion = "c2"

// maxCursorLen bounds an encoded cursor.
var maxCursorLen = base64.RawURLEncoding.EncodedLen(len(cursorVersion) + 1 + 16 + 1 + 16 + 1 + maxIDLen)

func encodeCursor(c listCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "." + strconv.FormatInt(c.inc, 10) + "." +
		strconv.FormatInt(c.seq, 10) + "." + c.id))
}

// decodeCursor decodes a cursor of session id; errors match
// ErrInvalidCursor.
func decodeCursor(id, s string) (listCursor, error) {
	bad := func(why string) (listCursor, error) {
		return listCursor{}, fmt.Errorf("%w: %s", statestore.ErrInvalidCursor, why)
	}
	if len(s) > maxCursorLen {
		return bad("too long")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return bad("not base64url")
	}
	parts := strings.SplitN(string(raw), ".", 4)
	if len(parts) != 4 || parts[0] != cursorVersion || !canonical(parts[1]) || !canonical(parts[2]) {
		return bad("unknown format")
	}
	if err := checkID(id, parts[3]); err != nil {
		return bad("issued for another session")
	}
	inc, _ := strconv.ParseInt(parts[1], 10, 64)
	seq, _ := strconv.ParseInt(parts[2], 10, 64)
	return listCursor{inc: inc, seq: seq, id: parts[3]}, nil
}
