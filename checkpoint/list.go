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
// checkpoint is no longer there (pruned, or the session was deleted and
// created again) gets ErrInvalidCursor; a limit out of range
// ErrInvalidArgument; no session ErrNotFound.
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
	seq, cpid := "", ""
	if cursor != "" {
		c, err := decodeCursor(id, cursor)
		if err != nil {
			return p, fmt.Errorf("checkpoint: list %q: %w", id, err)
		}
		seq, cpid = strconv.FormatInt(c.seq, 10), c.id
	}
	arr, err := lua.CpList.Exec(ctx, s.cfg.Client, []string{k.State, k.Cps, k.Cpd},
		[]string{seq, cpid, strconv.Itoa(limit)}).ToArray()
	if err != nil {
		return p, fenced.Error("checkpoint", "list", id, err)
	}
	if p.Total, err = fenced.Int(arr, 0, "cp_list.lua"); err != nil {
		return p, err
	}
	n := (len(arr) - 1) / 2
	if n > limit {
		p.HasMore = true
		n = limit
	}
	p.Checkpoints = make([]Checkpoint, n)
	for i := range n {
		if p.Checkpoints[i], err = decodeEntry(id, arr, 1+2*i, "cp_list.lua"); err != nil {
			return Page{}, fmt.Errorf("checkpoint: list %q: %w", id, err)
		}
	}
	if p.HasMore {
		last := &p.Checkpoints[n-1]
		p.Next = encodeCursor(listCursor{seq: last.Seq, id: last.ID})
	}
	return p, nil
}

// listCursor is a position in a session's checkpoints: the last checkpoint
// of the page before, by sequence and id. The id names the session, which
// is how a cursor passed to another session is caught; the script checks
// that the id still has that sequence.
type listCursor struct {
	seq int64
	id  string
}

// Cursors are "c1.<seq>.<checkpoint id>" in unpadded base64url.
const cursorVersion = "c1"

// maxCursorLen bounds an encoded cursor.
var maxCursorLen = base64.RawURLEncoding.EncodedLen(len(cursorVersion) + 1 + 16 + 1 + maxIDLen)

func encodeCursor(c listCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + "." + strconv.FormatInt(c.seq, 10) + "." + c.id))
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
	parts := strings.SplitN(string(raw), ".", 3)
	if len(parts) != 3 || parts[0] != cursorVersion || !canonical(parts[1]) {
		return bad("unknown format")
	}
	if err := checkID(id, parts[2]); err != nil {
		return bad("issued for another session")
	}
	seq, _ := strconv.ParseInt(parts[1], 10, 64)
	return listCursor{seq: seq, id: parts[2]}, nil
}
