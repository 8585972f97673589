package staging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/statestore"
)

// PromoteOption changes how Promote and SaveStateAndPromote treat the
// staged changes.
type PromoteOption func(*promoteOptions)

type promoteOptions struct {
	adopt bool
}

// AdoptStale makes a promote apply the changes staged under other tokens
// too (those an earlier lock holder left behind), in the same order as the
// promoter's own. Without it they are reported in PromoteResult.Skipped and
// not applied.
func AdoptStale() PromoteOption {
	return func(o *promoteOptions) { o.adopt = true }
}

// PromoteResult is the outcome of Promote and SaveStateAndPromote.
type PromoteResult struct {
	// Version is the session's version after the promote; when nothing was
	// staged for Promote, the version it found (nothing was written).
	Version int64
	// Data is the state document as stored after the promote.
	Data json.RawMessage
	// Applied are the changes applied, in the order they were applied:
	// timestamp, then tool call id.
	Applied []Staged
	// Skipped are the changes staged under another token (by an earlier
	// holder of the session's lock) that were not applied because
	// AdoptStale was not given. They are removed from the stage all the
	// same: a promote leaves nothing staged under its step.
	Skipped []Staged
}

// ApplyTo brings st, a State loaded before the promote, up to date with
// it: st.Data becomes the promoted document and st.Version the version
// after the promote, so st can be passed to a later [statestore.Store.Save]
// that expects that version. Nothing is changed when nothing was promoted
// (Version 0 or no Data).
func (r PromoteResult) ApplyTo(st *statestore.State) {
	if st == nil || r.Version == 0 || r.Data == nil {
		return
	}
	st.Data, st.Version = r.Data, r.Version
}

// Promote applies the changes staged under step of session id to the
// session's state document and removes them from the stage, fenced by
// token, as one write: the document and the stage never go apart.
//
// Only the changes staged under token are applied, in the order of their
// timestamps, then tool call ids; each change's patches first, then its
// merge. An empty or null document is taken as {}. Changes staged under
// other tokens (an earlier lock holder's late tool results) are not applied
// unless AdoptStale is given; they are returned in PromoteResult.Skipped
// and removed with the others.
//
// Promote reads the state and the stage in one round trip, applies the
// changes in Go and writes the result with a second one that checks the
// version read. Every write to the session bumps its version, so a change
// staged or discarded in between makes the write fail; Promote then starts
// over, up to the store's MaxRetries times, and returns a
// [*statestore.ConflictError] after the last. If the session was deleted
// and created again between the read and the write, the changes read
// belong to a session that is gone: Promote writes nothing and returns a
// [*statestore.ReplacedError] (matching statestore.ErrSessionReplaced and
// ErrConflict) without starting over. A promote racing a Discard of
// the same step therefore either applies every change the Discard would
// have dropped, or none.
//
// With nothing staged under step, Promote writes nothing and returns the
// current version and document (one round trip).
//
// When a change cannot be applied (a failing "test" operation, a path that
// does not exist) Promote returns ErrInvalidPatch as a [*PatchError] naming
// the change; when the document would exceed the store's MaxDocumentBytes,
// statestore.ErrTooLarge. Nothing is written then and the stage stays as it
// was: discard the step or stage a replacement for the change. Without a
// session it returns statestore.ErrNotFound; see Stage for the fencing
// errors, which are also checked before any work is done.
func (s *Stager) Promote(ctx context.Context, id string, step int64, token fencing.Token, opts ...PromoteOption) (_ PromoteResult, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opPromote, id, token)
	defer sp.End(&err)
	res, err := s.promote(ctx, "promote", id, step, token, nil, opts)
	s.countPromotion(ctx, &res, err)
	return res, err
}

// SaveStateAndPromote stores st as the state of session id, as
// statestore.Store.Save would, with the changes staged under step applied
// on top of st.Data, and removes them from the stage: one fenced write, in
// the shape of helix v7's saveStateAndPromoteStaging. The session must
// exist (statestore.ErrNotFound otherwise). st.Version, when not 0, is the
// version the caller expects the stored state to have: if it has another,
// nothing is written and the error is a [*statestore.ConflictError]
// (without retrying). With st.Version 0 it retries on conflicts like
// Promote. st is written even if nothing is staged.
//
// Invalid st gets statestore.ErrInvalidDocument, ErrTooLarge or
// ErrInvalidArgument before anything is sent; see Promote for the rest.
func (s *Stager) SaveStateAndPromote(ctx context.Context, id string, step int64, token fencing.Token, st statestore.State, opts ...PromoteOption) (_ PromoteResult, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opSaveStateAndPromote, id, token)
	defer sp.End(&err)
	if err := st.Validate(s.cfg.MaxDocBytes); err != nil {
		return PromoteResult{}, fmt.Errorf("staging: save and promote %q: %w", id, err)
	}
	res, err := s.promote(ctx, "save and promote", id, step, token, &st, opts)
	s.countPromotion(ctx, &res, err)
	return res, err
}

// otherBytes is what st counts against the size limit besides Data.
func otherBytes(st *statestore.State) int { return st.Size() - len(st.Data) }

func (s *Stager) promote(ctx context.Context, op, id string, step int64, token fencing.Token, st *statestore.State, opts []PromoteOption) (PromoteResult, error) {
	var o promoteOptions
	for _, opt := range opts {
		opt(&o)
	}
	k, _, err := s.begin(id, step, token, 0)
	if err != nil {
		return PromoteResult{}, err
	}
	stepArg := strconv.FormatInt(step, 10)
	var last error
	for attempt := range max(s.maxRetries, 1) {
		res, err := s.promoteOnce(ctx, op, id, &k, stepArg, token, st, o)
		if err == nil {
			return res, nil
		}
		var ce *statestore.ConflictError
		if !errors.As(err, &ce) || (st != nil && st.Version != 0) {
			return PromoteResult{}, err
		}
		last = err
		pause := time.Duration(rand.N(1+attempt)) * time.Millisecond
		select {
		case <-ctx.Done():
			return PromoteResult{}, errors.Join(last, ctx.Err())
		case <-time.After(pause):
		}
	}
	return PromoteResult{}, last
}

// promoteOnce is one read, apply and commit.
func (s *Stager) promoteOnce(ctx context.Context, op, id string, k *keys.Session, step string, token fencing.Token, st *statestore.State, o promoteOptions) (PromoteResult, error) {
	var res PromoteResult
	r, err := s.read(ctx, op, id, k, token, step, st == nil)
	if err != nil {
		return res, err
	}
	if st != nil && st.Version != 0 && st.Version != r.version {
		return res, fmt.Errorf("staging: %s %q: %w", op, id,
			&statestore.ConflictError{ID: id, Expected: st.Version, Current: r.version})
	}
	if st == nil && len(r.staged) == 0 {
		return PromoteResult{Version: r.version, Data: r.data}, nil
	}
	sortStaged(r.staged)
	for _, c := range r.staged {
		if c.Token == token || o.adopt {
			res.Applied = append(res.Applied, c)
		} else {
			res.Skipped = append(res.Skipped, c)
		}
	}
	base, other := r.data, r.other
	if st != nil {
		base, other = st.Data, otherBytes(st)
	}
	data, err := applyAll(id, base, res.Applied, s.cfg.MaxDocBytes-other)
	if err != nil {
		var pe *PatchError
		if errors.As(err, &pe) {
			return PromoteResult{}, err
		}
		return PromoteResult{}, fmt.Errorf("staging: %s %q: %w", op, id, err)
	}

	w := s.cfg.NewWrite(k, token, 9+len(r.staged))
	w.Args = append(w.Args, strconv.FormatInt(r.version, 10), r.inc, string(data))
	if st != nil {
		w.Args = append(w.Args, "1", st.AgentType, string(st.Status), strconv.FormatInt(st.Step, 10), string(st.Output), st.Error)
	} else {
		w.Args = append(w.Args, "0", "", "", "", "", "")
	}
	for _, c := range r.staged {
		w.Args = append(w.Args, step+"|"+c.ToolCallID)
	}
	arr, err := s.cfg.Exec(ctx, lua.StageCommit, w)
	if err != nil {
		err = fenced.Error("staging", op, id, err)
		var ce *statestore.ConflictError
		if errors.As(err, &ce) {
			ce.Expected = r.version
			if st != nil && st.Version != 0 {
				ce.Expected = st.Version
			}
		}
		return PromoteResult{}, err
	}
	if res.Version, err = fenced.Int(arr, 0, "stage_commit.lua"); err != nil {
		return PromoteResult{}, err
	}
	if len(data) > 0 {
		res.Data = data
	}
	return res, nil
}
