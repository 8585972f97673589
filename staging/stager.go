package staging

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/statestore"
)

// Stager stages changes to the state documents of a statestore.Store's
// sessions and promotes them. It shares the store's client, key prefix,
// session TTL, fencing mode, size limit and retry bound. A Stager is safe
// for concurrent use.
type Stager struct {
	cfg        *fenced.Config
	maxRetries int
}

// New returns a Stager for the sessions of store. It panics if store is nil.
func New(store *statestore.Store) *Stager {
	if store == nil {
		panic("staging: New with a nil store")
	}
	return &Stager{cfg: fenced.StoreConfig(store), maxRetries: store.Options().MaxRetries}
}

// begin validates id, step and token and starts a fenced write.
func (s *Stager) begin(id string, step int64, token fencing.Token, extra int) (keys.Session, fenced.Write, error) {
	k, w, err := s.cfg.Begin("staging", id, token, extra)
	if err != nil {
		return k, w, err
	}
	if step < 0 {
		return k, fenced.Write{}, fmt.Errorf("staging: %w: step %d", statestore.ErrInvalidArgument, step)
	}
	return k, w, nil
}

// Stage records change c of session id under step, fenced by token, and
// returns the session's new version (every Stage is a write of the
// session). The change keeps token, so Promote can tell changes of the
// current lock holder from those an earlier holder left behind. Staging the
// same step and c.ToolCallID again replaces the change. One round trip.
//
// Stage checks the change before sending it: patches that are not an RFC
// 6902 array, or a merge that is not a JSON object, get ErrInvalidPatch (a
// [*PatchError]); a change larger than the store's MaxDocumentBytes gets
// statestore.ErrTooLarge; an invalid id or tool call id gets
// statestore.ErrInvalidID; a negative step or a timestamp before 1970 gets
// statestore.ErrInvalidArgument. Whether the patches apply is only known
// when they are promoted.
//
// Like every session write, Stage checks token inside its script: a token
// older than one the session or its lock has seen gets a
// [*fencing.StaleTokenError]; in strict mode, a token the lock record does
// not carry gets a [*statestore.NotHolderError] (matching
// fencing.ErrNotHolder). Without a session it returns statestore.ErrNotFound.
func (s *Stager) Stage(ctx context.Context, id string, step int64, token fencing.Token, c Change) (version int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opStage, id, token)
	defer sp.End(&err)
	_, w, err := s.begin(id, step, token, 4)
	if err != nil {
		return 0, err
	}
	body, ts, err := encodeChange(id, step, &c, s.cfg.MaxDocBytes)
	if err != nil {
		var pe *PatchError
		if errors.As(err, &pe) {
			return 0, err
		}
		return 0, fmt.Errorf("staging: stage %q: %w", id, err)
	}
	w.Args = append(w.Args, strconv.FormatInt(step, 10), c.ToolCallID, ts, body)
	arr, err := s.cfg.Exec(ctx, lua.StagePut, w)
	if err != nil {
		return 0, fenced.Error("staging", "stage", id, err)
	}
	return fenced.Int(arr, 0, "stage_put.lua")
}

// Discard drops every change staged under step of session id, fenced by
// token, and returns how many it dropped. Dropping changes bumps the
// session's version; with nothing staged under step nothing is written and
// Discard returns 0 (the token is checked all the same). One round trip.
// Without a session it returns statestore.ErrNotFound; see Stage for the
// fencing errors.
func (s *Stager) Discard(ctx context.Context, id string, step int64, token fencing.Token) (_ int, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opDiscard, id, token)
	defer sp.End(&err)
	_, w, err := s.begin(id, step, token, 1)
	if err != nil {
		return 0, err
	}
	w.Args = append(w.Args, strconv.FormatInt(step, 10))
	arr, err := s.cfg.Exec(ctx, lua.StageDiscard, w)
	if err != nil {
		return 0, fenced.Error("staging", "discard", id, err)
	}
	n, err := fenced.Int(arr, 0, "stage_discard.lua")
	if o := s.cfg.Obs; err == nil && n > 0 && o != nil && o.Discards.Enabled(ctx) {
		o.Discards.Add(ctx, 1)
	}
	return int(n), err
}

// List returns every change staged in session id, ordered by step,
// timestamp and tool call id, in one round trip. It returns
// statestore.ErrNotFound without a session.
func (s *Stager) List(ctx context.Context, id string) (_ []Staged, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opList, id, 0)
	defer sp.End(&err)
	k, err := s.cfg.Keys(id)
	if err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	r, err := s.read(ctx, "list", id, &k, 0, "", false)
	if err != nil {
		return nil, err
	}
	sortStaged(r.staged)
	return r.staged, nil
}

// readReply is the decoded reply of stage_read.lua.
type readReply struct {
	version int64
	inc     string // the incarnation read, which the commit checks
	data    []byte
	other   int // bytes of output, error and agent type
	staged  []Staged
}

// read runs stage_read.lua: with a token the fence is checked first; step
// "" reads every step. No session gives ErrNotFound.
func (s *Stager) read(ctx context.Context, op, id string, k *keys.Session, token fencing.Token, step string, withData bool) (readReply, error) {
	var r readReply
	args := []string{"", "S", step, "0"}
	if token != 0 {
		w := s.cfg.NewWrite(k, token, 0)
		args[0], args[1] = w.Args[0], w.Args[1]
	}
	if withData {
		args[3] = "1"
	}
	arr, err := lua.StageRead.Exec(ctx, s.cfg.Client, []string{k.Lock, k.Fence, k.State, k.Stage}, args).ToArray()
	if err != nil {
		return r, fenced.Error("staging", op, id, err)
	}
	if len(arr) == 0 {
		return r, fmt.Errorf("staging: %s %q: %w: session", op, id, statestore.ErrNotFound)
	}
	if len(arr) < 4 || len(arr)%2 != 0 {
		return r, fmt.Errorf("%w: stage_read.lua returned %d elements", statestore.ErrProtocol, len(arr))
	}
	if r.version, err = fenced.Int(arr, 0, "stage_read.lua"); err != nil {
		return r, err
	}
	if r.inc, err = fenced.Str(arr, 1, "stage_read.lua"); err != nil {
		return r, err
	}
	data, err := fenced.Str(arr, 2, "stage_read.lua")
	if err != nil {
		return r, err
	}
	if data != "" {
		r.data = []byte(data)
	}
	other, err := fenced.Int(arr, 3, "stage_read.lua")
	if err != nil {
		return r, err
	}
	r.other = int(other)
	if n := (len(arr) - 4) / 2; n > 0 {
		r.staged = make([]Staged, 0, n)
	}
	for i := 4; i+1 < len(arr); i += 2 {
		f, err1 := arr[i].ToString()
		v, err2 := arr[i+1].ToString()
		if err1 != nil || err2 != nil {
			return r, fmt.Errorf("%w: stage_read.lua: element %d", statestore.ErrProtocol, i)
		}
		st, err := decodeStaged(f, v)
		if err != nil {
			return r, fmt.Errorf("staging: %s %q: %w: %s: %v", op, id, statestore.ErrCorrupt, k.Stage, err)
		}
		r.staged = append(r.staged, st)
	}
	return r, nil
}
