package run

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fencekit/fencekit/chaos/history"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

// recreateSessions is how many sessions the recreate workload uses.
const recreateSessions = 4

// errRecreateUnseen: a reader's loads or pages saw more than one
// incarnation (or none), so it read no single incarnation; recorded as a
// failed rc-read, which the checker skips.
var errRecreateUnseen = errors.New("run: the session was replaced (or gone) while it was read")

// recreateRound is one round of the recreate workload (Config.Recreate):
// half the time a writer takes the lock of an "rc-" session, deletes it,
// creates it again and appends messages and chunks to the new incarnation;
// otherwise a reader reads one without the lock.
func (e *executor) recreateRound(ctx context.Context, rng *rand.Rand) {
	s := history.RecreatePrefix + strconv.Itoa(rng.IntN(recreateSessions))
	if rng.IntN(2) == 0 {
		e.recreateRead(ctx, s)
		return
	}
	actx, cancel := context.WithTimeout(ctx, 4*e.cfg.TTL+e.cfg.OpTimeout)
	lk, err := e.locker.Acquire(actx, s)
	cancel()
	if err != nil {
		time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		return
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.OpTimeout)
		_ = lk.Release(rctx)
		cancel()
	}()
	tok := lk.Token()
	p := e.cfg.Process
	op := history.Op{Process: p, Session: s, Kind: history.KindRecreate, Token: uint64(tok)}
	var inc string
	err = e.call(ctx, &op, func(ctx context.Context) error {
		if _, err := e.store.Delete(ctx, s, tok); err != nil {
			return err
		}
		if _, err := e.store.Create(ctx, s, tok, statestore.State{AgentType: "chaos", Status: statestore.StatusRunning}); err != nil {
			return err
		}
		st, err := e.store.Load(ctx, s)
		if err != nil {
			return err
		}
		inc = strconv.FormatInt(st.Incarnation, 10)
		op.Out = inc
		return nil
	})
	if err != nil {
		return
	}
	for range 1 + rng.IntN(4) {
		v := e.uniq()
		op := history.Op{Process: p, Session: s, Kind: history.KindRcMsg, Token: uint64(tok), In: v, Out: inc}
		_ = e.call(ctx, &op, func(ctx context.Context) error {
			_, err := e.store.AppendMessages(ctx, s, tok, json.RawMessage(strconv.Quote(v)))
			return err
		})
		c := e.uniq()
		op = history.Op{Process: p, Session: s, Kind: history.KindRcChunk, Token: uint64(tok), In: c, Out: inc}
		_ = e.call(ctx, &op, func(ctx context.Context) error {
			_, err := e.streams.Append(ctx, s, tok, []byte(c))
			return err
		})
	}
}

// recreateRead reads session s without the lock: Load, every page of its
// messages and of its stream, Load again. It records an ok rc-read only
// when both loads saw the same incarnation and no page was refused as of
// another one: then every page was of that incarnation.
func (e *executor) recreateRead(ctx context.Context, s string) {
	op := history.Op{Process: e.cfg.Process, Session: s, Kind: history.KindRcRead}
	_ = e.call(ctx, &op, func(ctx context.Context) error {
		before, err := e.store.Load(ctx, s)
		if err != nil {
			return unseen(err)
		}
		r := history.RecreateRead{Incarnation: strconv.FormatInt(before.Incarnation, 10), Messages: []string{}, Chunks: []string{}}
		cursor := ""
		for {
			p, err := e.store.Messages(ctx, s, cursor, 50)
			if err != nil {
				return unseen(err)
			}
			for _, m := range p.Messages {
				v, err := strconv.Unquote(string(m))
				if err != nil {
					v = string(m)
				}
				r.Messages = append(r.Messages, v)
			}
			if !p.HasMore {
				break
			}
			cursor = p.Next
		}
		var at stream.Seq
		for {
			p, err := e.streams.Read(ctx, s, at, 50)
			if errors.Is(err, stream.ErrUnknownStream) && at.IsZero() {
				break // no chunk yet
			}
			if err != nil {
				return unseen(err)
			}
			for _, c := range p.Chunks {
				r.Chunks = append(r.Chunks, string(c.Data))
			}
			at = p.Next
			if !p.More {
				break
			}
		}
		after, err := e.store.Load(ctx, s)
		if err != nil {
			return unseen(err)
		}
		if after.Incarnation != before.Incarnation {
			return errRecreateUnseen
		}
		op.Data, _ = json.Marshal(r)
		op.Out = r.Incarnation
		return nil
	})
}

// unseen turns the errors that only say the reader saw no single
// incarnation into errRecreateUnseen; others stay as they are.
func unseen(err error) error {
	if errors.Is(err, statestore.ErrNotFound) || errors.Is(err, statestore.ErrSessionReplaced) {
		return errors.Join(errRecreateUnseen, err)
	}
	return err
}
