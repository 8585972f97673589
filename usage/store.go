package usage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/bounded"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Store records the usage of agent sessions in Redis, keeps their rollups
// and enforces budgets. It is safe for concurrent use.
type Store struct {
	client rueidis.Client
	opts   Options
	mode   string
	args   [4]string // entry ttl, rollup ttl, max entry bytes, index keep/ttl

	byName, byTime string // the index of sessions with usage

	mu      sync.Mutex
	indexed map[string]time.Time // sessions this Store put in the index, and when
}

// indexRefresh is how often a Store refreshes a session's place in the
// index of sessions while it records its usage.
const indexRefresh = time.Minute

// New returns a Store on client. It returns an error matching
// ErrInvalidArgument for invalid options and for a nil client.
func New(client rueidis.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("usage: %w: nil client", ErrInvalidArgument)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	s := &Store{client: bounded.Wrap(client, o.CallTimeout), opts: o, mode: "S", indexed: map[string]time.Time{}}
	if o.Relaxed {
		s.mode = "R"
	}
	s.args = [4]string{ttlArg(o.EntryTTL), ttlArg(o.RollupTTL), strconv.Itoa(o.MaxEntryBytes), ttlArg(o.RollupTTL)}
	s.byName, s.byTime = keys.UsageIndex(o.Prefix)
	return s, nil
}

// Options returns the options in effect, defaults filled in.
func (s *Store) Options() Options { return s.opts }

func (s *Store) keys(id string) (keys.Usage, error) {
	if err := keys.ValidateID(id); err != nil {
		return keys.Usage{}, fmt.Errorf("usage: session: %w", err)
	}
	return keys.ForUsage(s.opts.Prefix, id), nil
}

// usageKeys returns the KEYS of usage_record.lua and usage_delete.lua.
func usageKeys(k *keys.Usage) []string {
	return []string{k.Lock, k.Fence, k.State, k.Meta, k.Log, k.IDs, k.Kids,
		k.Budget.Limits, k.Budget.Holds, k.Budget.Amounts, k.Budget.Done}
}

// fence returns the token and mode arguments of a fenced write.
func (s *Store) fence(token fencing.Token) (tok, mode string, err error) {
	if token == 0 && s.opts.AllowUnfenced {
		return "0", "N", nil
	}
	if err := fenced.CheckToken(token); err != nil {
		return "", "", fmt.Errorf("usage: %w", err)
	}
	return token.String(), s.mode, nil
}

// RecordResult is the outcome of Record.
type RecordResult struct {
	// Count is the number of entries of the session after the call.
	Count int64
	// Recorded has one flag per entry given: true if it was recorded now,
	// false if an entry with its ID was recorded before (it was not
	// counted again).
	Recorded []bool
}

// Record adds entries to the usage of session id and updates its rollup,
// in one script, fenced by token: nothing is written unless token holds
// the session (see package statestore for strict and relaxed mode), in
// which case the error matches fencing.ErrFenced (a
// [*fencing.StaleTokenError] or a [*NotHolderError]). With
// Options.AllowUnfenced the zero token records without a check.
//
// Record is idempotent by entry ID: an entry whose ID the session has
// already recorded (within EntryTTL) is not counted again, also when it
// comes from a retry after a lost reply (Record is safe to retry: an error
// matching fencing.ErrNoReply leaves the outcome unknown, and retrying
// settles it) or from another executor. When every entry given is
// recorded already, Record writes nothing and reports them so (Recorded
// all false) without checking token: a retry whose first attempt ran
// learns that its entries are in, even after a newer holder took the
// session, instead of a refusal that would say nothing was written.
//
// Invalid entries get ErrInvalidArgument, ErrInvalidID or ErrTooLarge and
// nothing is written; so do server-side checks failing (fencing, a key of
// the wrong type). A refusal by the server matches fencing.ErrWriteRefused.
// Every key of the session's usage gets its TTL (EntryTTL, RollupTTL, the
// session budget's own) on every Record. Record also adds the session to
// the index Sessions lists (a second round trip, at most once a minute per
// session and Store; best effort: a failure there is not reported).
func (s *Store) Record(ctx context.Context, id string, token fencing.Token, entries ...Entry) (RecordResult, error) {
	var r RecordResult
	k, err := s.keys(id)
	if err != nil {
		return r, err
	}
	if len(entries) == 0 {
		return r, fmt.Errorf("usage: %w: no entries", ErrInvalidArgument)
	}
	tok, mode, err := s.fence(token)
	if err != nil {
		return r, err
	}
	args := make([]string, 0, 5+entryFields*len(entries))
	args = append(args, tok, mode, s.args[0], s.args[1], s.args[2])
	now := time.Now()
	for i := range entries {
		if args, err = entries[i].args(args, now, s.opts.MaxEntryBytes); err != nil {
			return r, err
		}
	}
	arr, err := lua.UsageRecord.Exec(ctx, s.client, usageKeys(&k), args).ToArray()
	if err != nil {
		return r, fenced.Error("usage", "record", id, err)
	}
	if len(arr) != 1+len(entries) {
		return r, fmt.Errorf("%w: usage_record.lua returned %d elements for %d entries", ErrProtocol, len(arr), len(entries))
	}
	if r.Count, err = fenced.Int(arr, 0, "usage_record.lua"); err != nil {
		return r, err
	}
	r.Recorded = make([]bool, len(entries))
	for i := range entries {
		f, err := fenced.Int(arr, i+1, "usage_record.lua")
		if err != nil {
			return r, err
		}
		r.Recorded[i] = f == 1
	}
	s.index(ctx, id)
	return r, nil
}

// index puts id in the index of sessions with usage, at most once per
// indexRefresh per Store.
func (s *Store) index(ctx context.Context, id string) {
	now := time.Now()
	s.mu.Lock()
	last, ok := s.indexed[id]
	if ok && now.Sub(last) < indexRefresh {
		s.mu.Unlock()
		return
	}
	if len(s.indexed) > 10000 {
		clear(s.indexed)
	}
	s.indexed[id] = now
	s.mu.Unlock()
	err := lua.UsageIndex.Exec(ctx, s.client, []string{s.byName, s.byTime}, []string{"A", id, s.args[3], s.args[3]}).Error()
	if err != nil {
		s.mu.Lock()
		delete(s.indexed, id)
		s.mu.Unlock()
	}
}

// Delete removes the usage of session id - entries, rollup, sub-agent
// links, the session's budget and its holds - fenced by token like Record,
// and takes it out of the index. It reports whether there was anything to
// delete; deleting twice is harmless (Delete is safe to retry: when there
// is nothing left to delete it writes nothing and returns false without
// checking token, so a retry whose first attempt ran is not told it was
// refused). Cursors
// issued before get ErrInvalidCursor once usage is recorded again. See
// Record for the errors.
func (s *Store) Delete(ctx context.Context, id string, token fencing.Token) (bool, error) {
	k, err := s.keys(id)
	if err != nil {
		return false, err
	}
	tok, mode, err := s.fence(token)
	if err != nil {
		return false, err
	}
	n, err := lua.UsageDelete.Exec(ctx, s.client, usageKeys(&k), []string{tok, mode}).AsInt64()
	if err != nil {
		return false, fenced.Error("usage", "delete", id, err)
	}
	s.mu.Lock()
	delete(s.indexed, id)
	s.mu.Unlock()
	if err := lua.UsageIndex.Exec(ctx, s.client, []string{s.byName, s.byTime}, []string{"D", id, "0", "0"}).Error(); err != nil {
		return n == 1, fenced.Error("usage", "delete (index)", id, err)
	}
	return n == 1, nil
}

// Count returns the number of entries of session id (0 without usage).
// Errors: ErrInvalidID, and transport errors (fencing.ErrNoReply).
func (s *Store) Count(ctx context.Context, id string) (int64, error) {
	k, err := s.keys(id)
	if err != nil {
		return 0, err
	}
	n, err := s.client.Do(ctx, s.client.B().Llen().Key(k.Log).Build()).AsInt64()
	if err != nil {
		return 0, fenced.Error("usage", "count", id, err)
	}
	return n, nil
}

// Exists reports whether session id has recorded the entry entryID
// (within EntryTTL). Errors: ErrInvalidID, and transport errors
// (fencing.ErrNoReply).
func (s *Store) Exists(ctx context.Context, id, entryID string) (bool, error) {
	k, err := s.keys(id)
	if err != nil {
		return false, err
	}
	if err := keys.ValidateID(entryID); err != nil {
		return false, fmt.Errorf("usage: entry id: %w", err)
	}
	ok, err := s.client.Do(ctx, s.client.B().Hexists().Key(k.IDs).Field(entryID).Build()).AsBool()
	if err != nil {
		return false, fenced.Error("usage", "exists", id, err)
	}
	return ok, nil
}

// MaxPageSize is the largest page Entries and Sessions return.
const MaxPageSize = 1000

// MaxScan is the most entries one Entries call looks at: with filters that
// match few entries, a page may hold fewer than the limit (even none)
// while HasMore is true.
const MaxScan = 1000

// Range is an inclusive range of steps.
type Range struct{ Min, Max int64 }

// Query selects entries for Entries. The zero Query selects all, from the
// first, in pages of 100.
type Query struct {
	// Kinds keeps entries of these kinds; empty: all.
	Kinds []Kind
	// Steps keeps entries whose step is in the range; nil: all.
	Steps *Range
	// Since and Until keep entries with Since <= Time < Until; zero: no bound.
	Since, Until time.Time
	// Cursor is where the page starts: "" for the first entry, else the
	// Next of the previous page.
	Cursor string
	// Limit is the most entries a page holds (1..MaxPageSize); 0: 100.
	Limit int
}

// EntryPage is one page of entries.
type EntryPage struct {
	Entries []Entry
	// Next is the cursor of the following page.
	Next string
	// HasMore reports whether entries follow the ones looked at (at the
	// time the page was read): call again with Next.
	HasMore bool
	// Count is the number of entries of the session (all kinds).
	Count int64
}

// Entries returns one page of the entries of session id that q selects,
// in the order they were recorded, in one round trip. Cursors are
// positions in that order, so pages stay stable while entries are
// recorded: nothing is skipped or repeated. A cursor of another session,
// a malformed one, or one issued before the session's usage was deleted
// gets ErrInvalidCursor; bad filters get ErrInvalidArgument.
func (s *Store) Entries(ctx context.Context, id string, q Query) (EntryPage, error) {
	var p EntryPage
	k, err := s.keys(id)
	if err != nil {
		return p, err
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return p, fmt.Errorf("usage: %w: limit %d (1..%d)", ErrInvalidArgument, q.Limit, MaxPageSize)
	}
	kinds, err := kindsArg(q.Kinds)
	if err != nil {
		return p, err
	}
	epoch, start := "", int64(0)
	if q.Cursor != "" {
		if epoch, start, err = decodeCursor(id, q.Cursor); err != nil {
			return p, err
		}
	}
	smin, smax := "", ""
	if q.Steps != nil {
		if q.Steps.Min < 0 || q.Steps.Max < q.Steps.Min || q.Steps.Max > MaxAmount {
			return p, fmt.Errorf("usage: %w: steps %d..%d", ErrInvalidArgument, q.Steps.Min, q.Steps.Max)
		}
		smin, smax = strconv.FormatInt(q.Steps.Min, 10), strconv.FormatInt(q.Steps.Max, 10)
	}
	since, until := "", ""
	if !q.Since.IsZero() {
		since = strconv.FormatInt(max(q.Since.UnixMilli(), 0), 10)
	}
	if !q.Until.IsZero() {
		until = strconv.FormatInt(max(q.Until.UnixMilli(), 0), 10)
	}
	arr, err := lua.UsageEntries.Exec(ctx, s.client, []string{k.Meta, k.Log}, []string{epoch, strconv.FormatInt(start, 10),
		strconv.Itoa(q.Limit), strconv.Itoa(MaxScan), kinds, smin, smax, since, until}).ToArray()
	if err != nil {
		return p, fenced.Error("usage", "entries", id, err)
	}
	ep, err := fenced.Str(arr, 0, "usage_entries.lua")
	if err != nil {
		return p, err
	}
	if p.Count, err = fenced.Int(arr, 1, "usage_entries.lua"); err != nil {
		return p, err
	}
	next, err := fenced.Int(arr, 2, "usage_entries.lua")
	if err != nil {
		return p, err
	}
	p.Entries = make([]Entry, 0, len(arr)-3)
	for i := 3; i < len(arr); i++ {
		raw, err := arr[i].ToString()
		if err != nil {
			return p, fmt.Errorf("%w: usage_entries.lua: entry: %v", ErrProtocol, err)
		}
		var j entryJSON
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			return p, fmt.Errorf("usage: entries %q: %w: entry %q", id, ErrCorrupt, raw)
		}
		p.Entries = append(p.Entries, j.entry())
	}
	p.HasMore = next < p.Count
	p.Next = encodeCursor(id, ep, next)
	return p, nil
}

// Cursors are "u1.<epoch>.<index>.<session check>" in unpadded base64url;
// the check (FNV-32a of the session id) catches a cursor given to another
// session.
func sessionCheck(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

func encodeCursor(id, epoch string, index int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("u1." + epoch + "." + strconv.FormatInt(index, 10) + "." + sessionCheck(id)))
}

func decodeCursor(id, c string) (epoch string, index int64, err error) {
	bad := func(why string) (string, int64, error) {
		return "", 0, fmt.Errorf("usage: %w: %s", ErrInvalidCursor, why)
	}
	if len(c) > 128 {
		return bad("too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return bad("not base64url")
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 4 || parts[0] != "u1" {
		return bad("unknown format")
	}
	if parts[3] != sessionCheck(id) {
		return bad("issued for another session")
	}
	e, err1 := strconv.ParseUint(parts[1], 10, 64)
	i, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || i < 0 {
		return bad("malformed")
	}
	return strconv.FormatUint(e, 10), i, nil
}

// SessionPage is one page of the sessions with usage.
type SessionPage struct {
	IDs []string
	// Next is the cursor of the following page.
	Next string
	// HasMore reports whether sessions follow.
	HasMore bool
}

// Sessions lists the sessions with usage, in byte order of their ids,
// limit (1..MaxPageSize) at a time, starting after cursor ("" for the
// first), in one round trip and without KEYS or SCAN. Pages are stable
// while sessions are added. The index forgets a session RollupTTL after
// its last Record (and at Delete); a session may stay listed a little
// while after its usage expired. A malformed cursor gets ErrInvalidCursor,
// a bad limit ErrInvalidArgument.
func (s *Store) Sessions(ctx context.Context, cursor string, limit int) (SessionPage, error) {
	var p SessionPage
	if limit < 1 || limit > MaxPageSize {
		return p, fmt.Errorf("usage: %w: limit %d (1..%d)", ErrInvalidArgument, limit, MaxPageSize)
	}
	from := "-"
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !strings.HasPrefix(string(raw), "s1.") {
			return p, fmt.Errorf("usage: %w: not a Sessions cursor", ErrInvalidCursor)
		}
		from = "(" + string(raw[3:])
	}
	ids, err := s.client.Do(ctx, s.client.B().Zrangebylex().Key(s.byName).Min(from).Max("+").Limit(0, int64(limit)+1).Build()).AsStrSlice()
	if err != nil {
		return p, fenced.Error("usage", "sessions", "", err)
	}
	if len(ids) > limit {
		p.HasMore, ids = true, ids[:limit]
	}
	p.IDs = ids
	p.Next = cursor
	if len(ids) > 0 {
		p.Next = base64.RawURLEncoding.EncodeToString([]byte("s1." + ids[len(ids)-1]))
	}
	return p, nil
}
