package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/chaos/history"
	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
	"github.com/fencekit/fencekit/usage"
)

// readFinal reads what the store holds for session id after the run: state,
// whole event log, whole stream and every checkpoint (history.Final).
func readFinal(ctx context.Context, store *statestore.Store, id string) history.Final {
	var f history.Final
	st, err := store.Load(ctx, id)
	if errors.Is(err, statestore.ErrNotFound) {
		return f
	}
	if err != nil {
		f.Err = "load: " + err.Error()
		return f
	}
	f.Found = true
	f.State = history.FinalState{Version: st.Version, Token: uint64(st.Fence), Value: valueOf(st.Data), Status: string(st.Status), Step: st.Step}
	after := ""
	for {
		evs, next, err := store.Events(ctx, id, after, 10000)
		if err != nil {
			f.Err = "events: " + err.Error()
			return f
		}
		for _, e := range evs {
			f.Events = append(f.Events, history.FinalEvent{Version: e.Version, Token: uint64(e.Token), Type: string(e.Type), Fields: e.Fields})
		}
		if len(evs) == 0 || next == after {
			break
		}
		after = next
	}
	streams := stream.New(store)
	var at stream.Seq
	for {
		pg, err := streams.Read(ctx, id, at, stream.MaxPageSize)
		if errors.Is(err, stream.ErrUnknownStream) {
			break
		}
		if err != nil {
			f.Err = "stream: " + err.Error()
			return f
		}
		for _, c := range pg.Chunks {
			f.Stream = append(f.Stream, history.FinalChunk{Seq: c.Seq.String(), Kind: string(c.Kind), Data: string(c.Data)})
		}
		if !pg.More || pg.Next == at {
			break
		}
		at = pg.Next
	}
	cps := checkpoint.New(store)
	cursor := ""
	for {
		pg, err := cps.List(ctx, id, cursor, checkpoint.MaxPageSize)
		if err != nil {
			f.Err = "checkpoints: " + err.Error()
			return f
		}
		for _, c := range pg.Checkpoints {
			f.Checkpoints = append(f.Checkpoints, history.FinalCheckpoint{ID: c.ID, Seq: c.Seq, Token: uint64(c.Token), Step: c.Step})
		}
		if pg.Next == "" || pg.Next == cursor {
			break
		}
		cursor = pg.Next
	}
	return f
}

func valueOf(data []byte) string {
	var d struct {
		V string `json:"v"`
	}
	if err := jsonUnmarshal(data, &d); err != nil {
		return fmt.Sprintf("<bad data: %v>", err)
	}
	return d.V
}

func jsonUnmarshal(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

// readUsage reads session id's usage: every entry, the rollup, the
// session's budget and the workload's scope budget (history.FinalUsage).
// It returns nil when the session has no usage and no budget.
func readUsage(ctx context.Context, meter *usage.Store, id string) (*history.FinalUsage, string) {
	u := &history.FinalUsage{Entries: []string{}, EntryTokens: []int64{}}
	q := usage.Query{Limit: usage.MaxPageSize}
	for {
		p, err := meter.Entries(ctx, id, q)
		if err != nil {
			return nil, "usage entries: " + err.Error()
		}
		for _, e := range p.Entries {
			u.Entries = append(u.Entries, e.ID)
			u.EntryTokens = append(u.EntryTokens, e.Tokens.Total)
		}
		if !p.HasMore {
			break
		}
		q.Cursor = p.Next
	}
	r, err := meter.Rollup(ctx, id)
	switch {
	case err == nil:
		u.RollupEntries, u.RollupTokens = r.Entries, r.Total
	case !errors.Is(err, usage.ErrNotFound):
		return nil, "usage rollup: " + err.Error()
	}
	b, err := meter.SessionBudget(ctx, id)
	switch {
	case err == nil:
		u.Budget = &history.FinalBudget{Limit: b.Limit.Tokens, Spent: b.Spent.Tokens, Held: b.Held.Tokens}
	case !errors.Is(err, usage.ErrNotFound):
		return nil, "session budget: " + err.Error()
	}
	b, err = meter.Budget(ctx, BudgetScope)
	switch {
	case err == nil:
		u.Scope = &history.FinalBudget{Limit: b.Limit.Tokens, Spent: b.Spent.Tokens, Held: b.Held.Tokens}
	case !errors.Is(err, usage.ErrNotFound):
		return nil, "scope budget: " + err.Error()
	}
	return u, ""
}
