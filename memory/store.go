package memory

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/bounded"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/obs"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Store keeps memory records in Redis and searches them. It is safe for
// concurrent use.
type Store struct {
	client   rueidis.Client
	opts     Options
	backend  Backend
	features Features
	mode     string
	impl     backend
	ft       *ftBackend // with BackendFT: Put creates the index
	vq       string     // with BackendVSet: the VADD quantisation flag; else ""
	obs      *obs.T
	// searchAttr is the fencekit.memory.backend attribute of searches.
	searchAttr metric.MeasurementOption
}

// Features are the server-side vector search features the probe in New
// found. A Store made with an explicit Backend does not probe.
type Features struct {
	FT   bool // FT.* answers (Redis Query Engine, Redis Stack, valkey-search)
	VSet bool // VCARD answers (Redis 8 vector sets)
}

// New returns a Store on client. It returns an error matching
// ErrInvalidArgument for invalid options and a nil client. With
// BackendAuto it probes the server once (FT.INFO on an unknown index,
// VCARD on an unknown key; see Features) and uses ft when FT.* answers
// (except on a cluster client, see [BackendFT]), else vset when vector
// sets answer, else scan. An explicit Backend is used without probing; a
// server that lacks it fails the first Search (and, for vset, every Put).
func New(client rueidis.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("memory: %w: nil client", ErrInvalidArgument)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	client = bounded.Wrap(client, o.CallTimeout)
	s := &Store{client: client, opts: o, backend: o.Backend, mode: "S", obs: obs.New(o.Telemetry)}
	if o.Relaxed {
		s.mode = "R"
	}
	if o.Backend == BackendAuto {
		f, err := probe(context.Background(), client, o.Prefix)
		if err != nil {
			return nil, err
		}
		s.features = f
		s.backend = chooseBackend(f, client.Mode() == rueidis.ClientModeCluster)
	}
	s.searchAttr = metric.WithAttributeSet(attribute.NewSet(attribute.String("fencekit.memory.backend", s.backend.String())))
	if log := s.obs.Logger(context.Background(), slog.LevelInfo); log != nil {
		log.LogAttrs(context.Background(), slog.LevelInfo, "fencekit: memory backend",
			slog.String("backend", s.backend.String()), slog.Bool("probed", o.Backend == BackendAuto),
			slog.Bool("ft", s.features.FT), slog.Bool("vset", s.features.VSet))
	}
	switch s.backend {
	case BackendFT:
		s.ft = &ftBackend{s: s}
		s.impl = s.ft
	case BackendVSet:
		s.vq = o.VSetQuant
		s.impl = vsetBackend{s}
	default:
		s.impl = scanBackend{s}
	}
	return s, nil
}

// probe asks the server for FT.* and vector sets with commands that touch
// nothing: FT.INFO of an index that does not exist and VCARD of a key that
// does not exist. "unknown command" (or a permission error) means absent;
// any other reply, error or not, means present. COMMAND INFO is not used:
// miniredis answers it with a static table.
func probe(ctx context.Context, c rueidis.Client, prefix string) (Features, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res := c.DoMulti(ctx,
		c.B().Arbitrary("FT.INFO").Args(prefix+":mem-probe-idx").Build(),
		c.B().Arbitrary("VCARD").Keys(prefix+":{mem-probe}:vs").Build())
	var f Features
	for i, r := range res {
		err := r.Error()
		present := true
		if err != nil {
			if _, ok := rueidis.IsRedisErr(err); !ok {
				return f, fmt.Errorf("memory: probing the server: %w", err)
			}
			msg := strings.ToLower(err.Error())
			if strings.Contains(msg, "unknown command") || strings.Contains(msg, "noperm") {
				present = false
			}
		}
		if i == 0 {
			f.FT = present
		} else {
			f.VSet = present
		}
	}
	return f, nil
}

// putScope is the scope of a Put for its span: the first record's.
func putScope(recs []Record) string {
	if len(recs) == 0 {
		return ""
	}
	return recs[0].Scope
}

// Options returns the options in effect, defaults filled in.
func (s *Store) Options() Options { return s.opts }

// Backend returns the backend in use (never BackendAuto).
func (s *Store) Backend() Backend { return s.backend }

// Features returns what the probe in New found (zero without a probe).
func (s *Store) Features() Features { return s.features }

// LockName returns the name of the lock that fences writes to scope: the
// scope root's tag "mem:<root>". A lock.Locker with the Store's Prefix
// builds its keys in the same cluster slot as the scope's records, which
// lets a write check the lock inside its script. It returns an error
// matching ErrInvalidScope for an invalid scope.
func (s *Store) LockName(scope string) (string, error) {
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return "", err
	}
	return keys.MemoryTag(root), nil
}

// WriteOption configures one write (Put, Delete, Reset).
type WriteOption func(*writeOpts)

type writeOpts struct {
	token fencing.Token
	set   bool
}

// WithToken fences the write with token, a token of the lock named
// [Store.LockName] of the scope (held through a lock.Locker with the same
// Prefix). Inside the write's script, before anything is written: in strict
// mode the lock record must carry the token ([*NotHolderError] otherwise);
// in both modes a token older than one the lock issued or the scope root
// accepted is refused with a [*fencing.StaleTokenError]. Writes without a
// token are not checked: fencing guards writers that present tokens.
func WithToken(token fencing.Token) WriteOption {
	return func(o *writeOpts) { o.token, o.set = token, true }
}

func (s *Store) writeArgs(k *keys.Memory, opts []WriteOption, extraKeys, extraArgs int) (ks, args []string, err error) {
	var o writeOpts
	for _, f := range opts {
		f(&o)
	}
	tok := ""
	if o.set {
		if err := fenced.CheckToken(o.token); err != nil {
			return nil, nil, fmt.Errorf("memory: %w", err)
		}
		tok = o.token.String()
	}
	ks = make([]string, 6, 6+extraKeys)
	ks[0], ks[1], ks[2], ks[3], ks[4], ks[5] = k.Lock, k.Fence, k.Meta, k.Exp, k.Scopes, k.TTLs
	args = make([]string, 4, 4+extraArgs)
	args[0], args[1], args[2], args[3] = tok, s.mode, k.Base, s.vq
	return ks, args, nil
}

// Put stores recs in one script: all or none are written. All records must
// share a scope root ([ErrCrossSlot] otherwise), there may be at most
// MaxBatch, and each is validated first (see [Record]); a record with the
// id of an existing record of the root replaces it. Put with WithToken is
// fenced (see [WithToken]). One round trip (plus FT.CREATE on the first
// Put or Search of a Store with the ft backend). With the vset backend the
// script also adds the records to their scopes' vector sets.
func (s *Store) Put(ctx context.Context, recs []Record, opts ...WriteOption) (err error) {
	ctx, sp := s.obs.Start(ctx, opPut, putScope(recs), 0)
	defer sp.End(&err)
	if len(recs) == 0 {
		return nil
	}
	if len(recs) > MaxBatch {
		return fmt.Errorf("memory: %w: %d records in one Put (max %d)", ErrTooLarge, len(recs), MaxBatch)
	}
	enc := make([]encoded, len(recs))
	for i := range recs {
		e, err := s.encode(&recs[i])
		if err != nil {
			return fmt.Errorf("memory: put record %d (%q): %w", i, recs[i].ID, err)
		}
		if i > 0 && e.root != enc[0].root {
			return fmt.Errorf("%w: %q and %q", ErrCrossSlot, recs[0].Scope, recs[i].Scope)
		}
		enc[i] = e
	}
	k := keys.ForMemory(s.opts.Prefix, enc[0].root)
	ks, args, err := s.writeArgs(&k, opts, 2*len(enc), len(enc[0].args)*len(enc))
	if err != nil {
		return err
	}
	if s.ft != nil {
		if err := s.ft.ensure(ctx); err != nil {
			return err
		}
	}
	for i := range enc {
		ks = append(ks, k.Record(enc[i].args[0]), k.ScopeIndex(enc[i].args[1]))
		args = append(args, enc[i].args[:]...)
	}
	err = lua.MemPut.Exec(ctx, s.client, ks, args).Error()
	return fenced.Error("memory", "put", keys.MemoryTag(enc[0].root), err)
}

// Delete deletes the records ids of scope (records of descendant scopes
// included) and returns how many it deleted; unknown ids are ignored.
// Fenced with WithToken. One round trip.
func (s *Store) Delete(ctx context.Context, scope string, ids []string, opts ...WriteOption) (_ int, err error) {
	ctx, sp := s.obs.Start(ctx, opDelete, scope, 0)
	defer sp.End(&err)
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return 0, err
	}
	if len(ids) > MaxBatch {
		return 0, fmt.Errorf("memory: %w: %d ids (max %d)", ErrTooLarge, len(ids), MaxBatch)
	}
	for _, id := range ids {
		if err := keys.ValidateID(id); err != nil {
			return 0, fmt.Errorf("memory: delete: %w", err)
		}
	}
	k := keys.ForMemory(s.opts.Prefix, root)
	ks, args, err := s.writeArgs(&k, opts, len(ids), 1+len(ids))
	if err != nil {
		return 0, err
	}
	args = append(args, scope)
	for _, id := range ids {
		ks = append(ks, k.Record(id))
		args = append(args, id)
	}
	n, err := lua.MemDelete.Exec(ctx, s.client, ks, args).AsInt64()
	if err != nil {
		return 0, fenced.Error("memory", "delete", keys.MemoryTag(root), err)
	}
	return int(n), nil
}

// Reset deletes every record of scope and of its descendants and returns
// how many index entries it removed. Fenced with WithToken. One round
// trip; the script's run time grows with the number of records.
func (s *Store) Reset(ctx context.Context, scope string, opts ...WriteOption) (_ int, err error) {
	ctx, sp := s.obs.Start(ctx, opReset, scope, 0)
	defer sp.End(&err)
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return 0, err
	}
	k := keys.ForMemory(s.opts.Prefix, root)
	ks, args, err := s.writeArgs(&k, opts, 0, 1)
	if err != nil {
		return 0, err
	}
	n, err := lua.MemReset.Exec(ctx, s.client, ks, append(args, scope)).AsInt64()
	if err != nil {
		return 0, fenced.Error("memory", "reset", keys.MemoryTag(root), err)
	}
	return int(n), nil
}

// Get returns the record id of scope (or of a descendant scope), or an
// error matching ErrNotFound. One round trip.
func (s *Store) Get(ctx context.Context, scope, id string) (_ Record, err error) {
	ctx, sp := s.obs.Start(ctx, opGet, scope, 0)
	defer sp.End(&err)
	recs, err := s.GetMany(ctx, scope, []string{id})
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, fmt.Errorf("memory: %w: record %q in scope %q", ErrNotFound, id, scope)
	}
	return recs[0], nil
}

// GetMany returns the records ids of scope (or of descendant scopes) that
// exist, in the order of ids. One round trip.
func (s *Store) GetMany(ctx context.Context, scope string, ids []string) (_ []Record, err error) {
	ctx, sp := s.obs.Start(ctx, opGetMany, scope, 0)
	defer sp.End(&err)
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return nil, err
	}
	if len(ids) > MaxBatch {
		return nil, fmt.Errorf("memory: %w: %d ids (max %d)", ErrTooLarge, len(ids), MaxBatch)
	}
	k := keys.ForMemory(s.opts.Prefix, root)
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		if err := keys.ValidateID(id); err != nil {
			return nil, fmt.Errorf("memory: get: %w", err)
		}
		cmds[i] = s.client.B().Hmget().Key(k.Record(id)).Field(recordFields...).Build()
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	now := time.Now()
	out := make([]Record, 0, len(ids))
	for i, res := range s.client.DoMulti(ctx, cmds...) {
		vals, err := res.ToArray()
		if err != nil {
			return nil, fmt.Errorf("memory: get %q: %w", ids[i], err)
		}
		r, ok, err := decode(vals, now)
		if err != nil {
			return nil, err
		}
		if ok && within(r.Scope, scope) {
			out = append(out, r)
		}
	}
	return out, nil
}

// stats sweeps expired entries of root and returns scope -> count. One
// script call sweeps a bounded number of expiry entries; while it says it
// may have left some, stats calls it again (every call makes progress), so
// the counts never include a record whose TTL ran out before the call.
func (s *Store) stats(ctx context.Context, root string) (map[string]int64, error) {
	k := keys.ForMemory(s.opts.Prefix, root)
	for {
		arr, err := lua.MemStats.Exec(ctx, s.client, []string{k.Exp, k.Scopes, k.TTLs}, []string{k.Base, s.vq}).ToArray()
		if err != nil {
			return nil, fenced.Error("memory", "stats", keys.MemoryTag(root), err)
		}
		if len(arr)%2 != 1 {
			return nil, fmt.Errorf("%w: mem_stats.lua returned %d elements", ErrProtocol, len(arr))
		}
		if more, _ := arr[0].AsInt64(); more == 1 {
			continue
		}
		out := make(map[string]int64, len(arr)/2)
		for i := 1; i < len(arr); i += 2 {
			sc, err1 := arr[i].ToString()
			n, err2 := arr[i+1].AsInt64()
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%w: count of scope %q", ErrCorrupt, sc)
			}
			out[sc] = n
		}
		return out, nil
	}
}

// Count returns the number of records in scope, and in its descendants
// when includeDescendants is set. Index entries of expired records are
// swept first. One round trip.
func (s *Store) Count(ctx context.Context, scope string, includeDescendants bool) (count int64, err error) {
	ctx, sp := s.obs.Start(ctx, opCount, scope, 0)
	defer sp.End(&err)
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return 0, err
	}
	m, err := s.stats(ctx, root)
	if err != nil {
		return 0, err
	}
	var n int64
	for sc, c := range m {
		if sc == scope || (includeDescendants && within(sc, scope)) {
			n += c
		}
	}
	return n, nil
}

// ScopeCount is a scope and its number of records.
type ScopeCount struct {
	Scope string
	Count int64
}

// Scopes returns the scopes at or under scope that hold records, sorted.
// Scopes of other roots are not listed (they live in other cluster slots).
// One round trip.
func (s *Store) Scopes(ctx context.Context, scope string) (_ []ScopeCount, err error) {
	ctx, sp := s.obs.Start(ctx, opScopes, scope, 0)
	defer sp.End(&err)
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return nil, err
	}
	m, err := s.stats(ctx, root)
	if err != nil {
		return nil, err
	}
	var out []ScopeCount
	for sc, c := range m {
		if within(sc, scope) && c > 0 {
			out = append(out, ScopeCount{sc, c})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scope < out[j].Scope })
	return out, nil
}

// CategoryCount is a category and the number of records carrying it.
type CategoryCount struct {
	Category string
	Count    int
}

// Categories returns the categories of the records of scope (and of its
// descendants when includeDescendants is set), sorted by name. With every
// backend it reads the same cached index and record fields as a scan
// search (three round trips cold, one when the client-side cache is warm)
// and obeys ScanLimit.
func (s *Store) Categories(ctx context.Context, scope string, includeDescendants bool) (_ []CategoryCount, err error) {
	ctx, sp := s.obs.Start(ctx, opCategories, scope, 0)
	defer sp.End(&err)
	cands, err := s.candidates(ctx, scope, includeDescendants, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	err = s.readCandidates(ctx, cands, func(c *candidate, f []rueidis.RedisMessage) error {
		cs, _ := f[2].ToString()
		cats, err := unhexList(cs)
		if err != nil {
			return fmt.Errorf("%w: record %q: categories", ErrCorrupt, c.id)
		}
		for _, cat := range cats {
			counts[cat]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]CategoryCount, 0, len(counts))
	for c, n := range counts {
		out = append(out, CategoryCount{c, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Category < out[j].Category })
	return out, nil
}

// ListOptions select a page of List.
type ListOptions struct {
	// Cursor is Page.Next of the previous page; "" for the first page.
	Cursor string
	// Limit is the page size, 1..MaxListLimit. Default: DefaultListLimit.
	Limit int
}

// Page is one page of List.
type Page struct {
	Records []Record
	// Next is the cursor of the next page; "" when there is none.
	Next string
}

// List returns a page of the records of scope (not of its descendants),
// newest first (ties: id descending, bytewise). Records that expired
// (and index entries not swept yet) are left out, so a page may be shorter
// than the limit while Next is set. One round trip per page.
func (s *Store) List(ctx context.Context, scope string, o ListOptions) (_ Page, err error) {
	ctx, sp := s.obs.Start(ctx, opList, scope, 0)
	defer sp.End(&err)
	root, err := scopeRoot(scope, s.opts.TagDepth)
	if err != nil {
		return Page{}, err
	}
	limit := o.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || limit > MaxListLimit {
		return Page{}, fmt.Errorf("memory: %w: limit %d not in [1, %d]", ErrInvalidArgument, limit, MaxListLimit)
	}
	cts, cid := "", ""
	if o.Cursor != "" {
		if cts, cid, err = decodeCursor(o.Cursor, scope); err != nil {
			return Page{}, err
		}
	}
	k := keys.ForMemory(s.opts.Prefix, root)
	arr, err := lua.MemList.Exec(ctx, s.client, []string{k.ScopeIndex(scope)},
		[]string{k.Base, cts, cid, strconv.Itoa(limit)}).ToArray()
	if err != nil {
		return Page{}, fenced.Error("memory", "list", keys.MemoryTag(root), err)
	}
	if len(arr) < 3 || (len(arr)-3)%len(recordFields) != 0 {
		return Page{}, fmt.Errorf("%w: mem_list.lua returned %d elements", ErrProtocol, len(arr))
	}
	var p Page
	now := time.Now()
	for i := 3; i < len(arr); i += len(recordFields) {
		r, ok, err := decode(arr[i:i+len(recordFields)], now)
		if err != nil {
			return Page{}, err
		}
		if ok && r.Scope == scope { // not a record that expired, nor one that moved away
			p.Records = append(p.Records, r)
		}
	}
	if more, _ := arr[0].AsInt64(); more == 1 {
		ts, _ := arr[1].ToString()
		id, _ := arr[2].ToString()
		p.Next = encodeCursor(ts, id, scope)
	}
	return p, nil
}

func encodeCursor(ts, id, scope string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("m1\n" + ts + "\n" + id + "\n" + scope))
}

func decodeCursor(c, scope string) (ts, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.Split(string(b), "\n")
	if err != nil || len(parts) != 4 || parts[0] != "m1" || parts[3] != scope || parts[2] == "" {
		return "", "", fmt.Errorf("memory: %w: not a List cursor of scope %q", ErrInvalidCursor, scope)
	}
	if _, err := strconv.ParseUint(parts[1], 10, 53); err != nil {
		return "", "", fmt.Errorf("memory: %w: not a List cursor of scope %q", ErrInvalidCursor, scope)
	}
	return parts[1], parts[2], nil
}
