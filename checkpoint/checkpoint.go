package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/jsonv"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/statestore"
)

// ErrMessagesTrimmed is returned by [Store.Restore] for a checkpoint whose
// messages are no longer all there: a restore of another checkpoint trimmed
// some of them away (messages are stored once, not copied into
// checkpoints). Nothing is written.
var ErrMessagesTrimmed = errors.New("checkpoint: messages trimmed by an earlier restore")

// Checkpoint is a saved point of a session: its state document and step,
// and how many of its messages existed then.
type Checkpoint struct {
	// ID identifies the checkpoint within its session:
	// "cpv1-<session id>-s<step>-t<server time ms>-<6 hex digits>".
	// Order checkpoints by Seq, never by parsing IDs.
	ID string
	// Step is the session's step at the checkpoint.
	Step int64
	// State is the session's state document at the checkpoint, stored
	// byte for byte (nil: no document).
	State json.RawMessage
	// MessageCount is the number of the session's messages the checkpoint
	// covers: Restore keeps that many. The messages themselves are not
	// copied.
	MessageCount int64
	// Metadata is an optional JSON object stored with the checkpoint,
	// byte for byte.
	Metadata json.RawMessage

	// The fields below are set by Save and ignored when passed to it.

	// CreatedAt is the server time of the save, in milliseconds.
	CreatedAt time.Time
	// Seq numbers the checkpoints of a session in the order they were
	// saved, from 1; it is unique within the session.
	Seq int64
	// Token is the fencing token of the save.
	Token fencing.Token
}

// Store saves, lists, restores and prunes checkpoints of the sessions of a
// [statestore.Store], sharing its client, key prefix, TTL, fencing mode and
// size limit. Every method is one round trip (one Lua script), and every
// write checks the writer's fencing token inside its script. A Store is
// safe for concurrent use.
type Store struct {
	cfg *fenced.Config
}

// New returns a Store for the sessions of store. It panics if store is nil.
func New(store *statestore.Store) *Store {
	if store == nil {
		panic("checkpoint: New with a nil *statestore.Store")
	}
	return &Store{cfg: fenced.StoreConfig(store)}
}

// saveAttempts bounds the attempts of Save when a checkpoint id is taken,
// which needs the same session, step, millisecond and 24 random bits.
const saveAttempts = 3

// Save stores cp (Step, State, MessageCount, Metadata; the other fields are
// ignored) as a new checkpoint of session id, fenced by token, and returns
// its id. The checkpoint gets the next sequence number of the session, and
// the session's version grows by one.
//
// cp.MessageCount may not exceed the session's message count
// (ErrInvalidArgument). cp.State, if set, must be JSON and cp.Metadata, if
// set, a JSON object (ErrInvalidDocument); together they may not exceed
// statestore.Options.MaxDocumentBytes (ErrTooLarge). Step and MessageCount
// must be in [0, 2^53-1] (ErrInvalidArgument). Without a session Save
// returns ErrNotFound. A token older than one the session or its lock has
// seen gets a [*fencing.StaleTokenError]; in strict mode, a token the lock
// record does not carry gets a [*statestore.NotHolderError] (matching
// [fencing.ErrNotHolder]); the zero token gets [fencing.ErrInvalidToken].
// Invalid ids get ErrInvalidID. In the unlikely case that the new id is
// taken (same step and millisecond, and the same 24 random bits, three
// times in a row) Save returns ErrExists. On every error nothing is written.
func (s *Store) Save(ctx context.Context, id string, token fencing.Token, cp Checkpoint) (_ string, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opSave, id, token)
	defer sp.End(&err)
	w, err := s.begin(id, token, 6)
	if err != nil {
		return "", err
	}
	if err := s.check(&cp); err != nil {
		return "", err
	}
	w.Args = append(w.Args, id, strconv.FormatInt(cp.Step, 10), strconv.FormatInt(cp.MessageCount, 10),
		"", string(cp.State), string(cp.Metadata))
	for attempt := 1; ; attempt++ {
		w.Args[6] = randomHex()
		arr, err := s.cfg.Exec(ctx, lua.CpSave, w)
		if err != nil {
			if code, detail, ok := scripterr.Parse(err); ok && code == scripterr.Exists && detail == "checkpoint" {
				if attempt < saveAttempts {
					continue
				}
				return "", fmt.Errorf("checkpoint: save %q: %w: %d new checkpoint ids were taken", id, statestore.ErrExists, attempt)
			}
			return "", fenced.Error("checkpoint", "save", id, err)
		}
		if o := s.cfg.Obs; o != nil && o.CpSize.Enabled(ctx) {
			o.CpSize.Record(ctx, int64(len(cp.State)+len(cp.Metadata)))
		}
		return fenced.Str(arr, 0, "cp_save.lua")
	}
}

// begin validates id and token and starts a fenced write.
func (s *Store) begin(id string, token fencing.Token, extra int) (fenced.Write, error) {
	_, w, err := s.cfg.Begin("checkpoint", id, token, extra)
	return w, err
}

// check validates the fields of cp that Save stores.
func (s *Store) check(cp *Checkpoint) error {
	switch {
	case cp.Step < 0 || cp.Step > int64(fencing.MaxToken):
		return fmt.Errorf("checkpoint: %w: step %d (0..%d)", statestore.ErrInvalidArgument, cp.Step, fencing.MaxToken)
	case cp.MessageCount < 0 || cp.MessageCount > int64(fencing.MaxToken):
		return fmt.Errorf("checkpoint: %w: message count %d (0..%d)", statestore.ErrInvalidArgument, cp.MessageCount, fencing.MaxToken)
	}
	if n := len(cp.State) + len(cp.Metadata); n > s.cfg.MaxDocBytes {
		return fmt.Errorf("checkpoint: %w: state and metadata of %d bytes (max %d)", statestore.ErrTooLarge, n, s.cfg.MaxDocBytes)
	}
	if len(cp.State) > 0 && !jsonv.Valid(cp.State) {
		return fmt.Errorf("checkpoint: %w: State is not valid JSON", statestore.ErrInvalidDocument)
	}
	if len(cp.Metadata) > 0 && (!jsonv.Valid(cp.Metadata) || strings.TrimLeft(string(cp.Metadata), " \t\r\n")[0] != '{') {
		return fmt.Errorf("checkpoint: %w: Metadata is not a JSON object", statestore.ErrInvalidDocument)
	}
	return nil
}

// randomHex returns the 6 random hex digits of a new checkpoint id. They
// only keep ids of the same step and millisecond apart; they are no secret.
func randomHex() string {
	const digits = "0123456789abcdef"
	var b [6]byte
	r := rand.Uint32()
	for i := range b {
		b[i] = digits[r&0xf]
		r >>= 4
	}
	return string(b[:])
}

// Get returns checkpoint cpid of session id. It returns ErrNotFound when
// there is no such checkpoint (or session) and ErrInvalidID for an invalid
// session id or a cpid that is not a checkpoint id of the session.
func (s *Store) Get(ctx context.Context, id, cpid string) (_ Checkpoint, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opGet, id, 0)
	defer sp.End(&err)
	k, err := s.cfg.Keys(id)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	if err := checkID(id, cpid); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: get %q: %w", id, err)
	}
	return s.get(ctx, "get", id, []string{k.Cps, k.Cpd}, cpid)
}

// Latest returns the checkpoint of session id saved last (the highest
// Seq). It returns ErrNotFound when the session has none (or there is no
// session) and ErrInvalidID for an invalid id.
func (s *Store) Latest(ctx context.Context, id string) (_ Checkpoint, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opLatest, id, 0)
	defer sp.End(&err)
	k, err := s.cfg.Keys(id)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	return s.get(ctx, "latest", id, []string{k.Cps, k.Cpd}, "")
}

func (s *Store) get(ctx context.Context, op, id string, keys []string, cpid string) (Checkpoint, error) {
	arr, err := lua.CpGet.Exec(ctx, s.cfg.Client, keys, []string{cpid}).ToArray()
	if err != nil {
		return Checkpoint{}, fenced.Error("checkpoint", op, id, err)
	}
	if len(arr) == 0 {
		what := "no checkpoint"
		if cpid != "" {
			what = "checkpoint " + cpid
		}
		return Checkpoint{}, fmt.Errorf("checkpoint: %s %q: %w: %s", op, id, statestore.ErrNotFound, what)
	}
	cp, err := decodeEntry(id, arr, 0, "cp_get.lua")
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: %s %q: %w", op, id, err)
	}
	return cp, nil
}

// Restore resets session id to checkpoint cpid, fenced by token, and
// returns the session's new version: the state's Data becomes the
// checkpoint's State and its Step the checkpoint's Step, and the messages
// are trimmed to the checkpoint's MessageCount. When messages are trimmed,
// message cursors issued before (statestore.Store.Messages) get
// ErrInvalidCursor. Staged changes (package staging) are discarded: they
// belong to the timeline the restore abandons. The status and the other
// state fields stay, and so do
// all checkpoints, including those saved after cpid; but a checkpoint whose
// messages a restore trimmed away can no longer be restored
// ([ErrMessagesTrimmed]).
//
// It returns ErrNotFound without the session or the checkpoint, and
// ErrInvalidID for an invalid session id or a cpid that is not a
// checkpoint id of the session; see Save for the fencing errors. On every
// error nothing is written.
func (s *Store) Restore(ctx context.Context, id string, token fencing.Token, cpid string) (version int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opRestore, id, token)
	defer sp.End(&err)
	w, err := s.begin(id, token, 1)
	if err != nil {
		return 0, err
	}
	if err := checkID(id, cpid); err != nil {
		return 0, fmt.Errorf("checkpoint: restore %q: %w", id, err)
	}
	w.Args = append(w.Args, cpid)
	arr, err := s.cfg.Exec(ctx, lua.CpRestore, w)
	if err != nil {
		if code, detail, ok := scripterr.Parse(err); ok && code == scripterr.NotFound {
			if counts, ok := strings.CutPrefix(detail, "messages "); ok {
				need, intact, _ := strings.Cut(counts, " ")
				return 0, fmt.Errorf("checkpoint: restore %q: %w: checkpoint %s covers %s messages, only the first %s are unchanged since it was saved",
					id, ErrMessagesTrimmed, cpid, need, intact)
			}
		}
		return 0, fenced.Error("checkpoint", "restore", id, err)
	}
	return fenced.Int(arr, 0, "cp_restore.lua")
}

// Prune deletes all but the keepLast newest checkpoints of session id
// (by Seq), fenced by token, and returns how many it deleted. When there is
// nothing to delete it writes nothing and the version stays. A negative
// keepLast gets ErrInvalidArgument and no session ErrNotFound; see Save for
// the fencing errors.
func (s *Store) Prune(ctx context.Context, id string, token fencing.Token, keepLast int) (_ int, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opPrune, id, token)
	defer sp.End(&err)
	w, err := s.begin(id, token, 1)
	if err != nil {
		return 0, err
	}
	if keepLast < 0 {
		return 0, fmt.Errorf("checkpoint: %w: keepLast %d", statestore.ErrInvalidArgument, keepLast)
	}
	w.Args = append(w.Args, strconv.Itoa(keepLast))
	arr, err := s.cfg.Exec(ctx, lua.CpPrune, w)
	if err != nil {
		return 0, fenced.Error("checkpoint", "prune", id, err)
	}
	n, err := fenced.Int(arr, 0, "cp_prune.lua")
	return int(n), err
}
