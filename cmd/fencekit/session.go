package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

var sessionCmd = &command{
	name:    "session",
	args:    "ID",
	summary: "a session: status, version, token, step, staged, checkpoint",
	nargs:   1,
	run:     runSession,
}

var checkpointsCmd = &command{
	name:    "checkpoints",
	args:    "ID",
	summary: "a session's checkpoints, newest first, paged",
	nargs:   1,
	flags: func(fs *flag.FlagSet, a *app) {
		fs.IntVar(&a.limit, "limit", 20, "checkpoints per page (1..1000)")
		fs.StringVar(&a.cursor, "cursor", "", "cursor printed by the previous page")
	},
	check: func(a *app) error {
		if a.limit < 1 || a.limit > checkpoint.MaxPageSize {
			return usageErr("--limit %d: want 1..%d", a.limit, checkpoint.MaxPageSize)
		}
		return nil
	},
	run: runCheckpoints,
}

var checkpointCmd = &command{
	name:    "checkpoint",
	args:    "ID CPID",
	summary: "one checkpoint as pretty JSON",
	nargs:   2,
	run:     runCheckpoint,
}

// sessionJSON is the output of session --json (schema/session.schema.json).
type sessionJSON struct {
	ID               string          `json:"id"`
	AgentType        string          `json:"agent_type"`
	Status           string          `json:"status"`
	Version          int64           `json:"version"`
	AcceptedToken    string          `json:"accepted_token"`
	ResumeCount      int64           `json:"resume_count"`
	Step             int64           `json:"step"`
	MessageCount     int64           `json:"message_count"`
	CreatedAt        *string         `json:"created_at"`
	UpdatedAt        *string         `json:"updated_at"`
	Error            string          `json:"error,omitempty"`
	Staged           []stagedJSON    `json:"staged"`
	LatestCheckpoint *checkpointSumm `json:"latest_checkpoint"`
	Lock             lockJSON        `json:"lock"`
	DataBytes        int             `json:"data_bytes"`
	OutputBytes      int             `json:"output_bytes"`
}

type stagedJSON struct {
	Step       int64   `json:"step"`
	ToolCallID string  `json:"tool_call_id"`
	Token      string  `json:"token"`
	Timestamp  *string `json:"timestamp"`
}

// checkpointSumm is a checkpoint without its documents.
type checkpointSumm struct {
	ID           string  `json:"id"`
	Seq          int64   `json:"seq"`
	Step         int64   `json:"step"`
	MessageCount int64   `json:"message_count"`
	Token        string  `json:"token"`
	CreatedAt    *string `json:"created_at"`
	StateBytes   int     `json:"state_bytes"`
}

func summarize(cp checkpoint.Checkpoint) checkpointSumm {
	return checkpointSumm{ID: cp.ID, Seq: cp.Seq, Step: cp.Step, MessageCount: cp.MessageCount,
		Token: cp.Token.String(), CreatedAt: jsonTime(cp.CreatedAt), StateBytes: len(cp.State)}
}

func runSession(ctx context.Context, a *app, args []string) error {
	id := args[0]
	ctx, cancel := a.reqCtx(ctx)
	defer cancel()
	store, err := a.newStore()
	if err != nil {
		return err
	}
	st, err := store.Load(ctx, id)
	if err != nil {
		if errors.Is(err, statestore.ErrNotFound) {
			return notFound("session %q not found under prefix %q", id, a.prefix)
		}
		return err
	}
	staged, err := staging.New(store).List(ctx, id)
	if err != nil && !errors.Is(err, statestore.ErrNotFound) {
		return err
	}
	var latest *checkpoint.Checkpoint
	cp, err := checkpoint.New(store).Latest(ctx, id)
	switch {
	case err == nil:
		latest = &cp
	case !errors.Is(err, statestore.ErrNotFound):
		return err
	}
	lk, err := a.newLocker()
	if err != nil {
		return err
	}
	defer lk.Close()
	li, err := lk.Inspect(ctx, id)
	if err != nil {
		return err
	}

	if a.json {
		out := sessionJSON{
			ID: st.ID, AgentType: st.AgentType, Status: string(st.Status), Version: st.Version,
			AcceptedToken: st.Fence.String(), ResumeCount: st.ResumeCount, Step: st.Step,
			MessageCount: st.MessageCount, CreatedAt: jsonTime(st.CreatedAt), UpdatedAt: jsonTime(st.UpdatedAt),
			Error: st.Error, Staged: make([]stagedJSON, 0, len(staged)), Lock: toLockJSON(li),
			DataBytes: len(st.Data), OutputBytes: len(st.Output),
		}
		for _, s := range staged {
			out.Staged = append(out.Staged, stagedJSON{Step: s.Step, ToolCallID: s.ToolCallID, Token: s.Token.String(), Timestamp: jsonTime(s.Timestamp)})
		}
		if latest != nil {
			s := summarize(*latest)
			out.LatestCheckpoint = &s
		}
		return a.writeJSON(out)
	}

	tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "session:\t%s\n", st.ID)
	fmt.Fprintf(tw, "agent type:\t%s\n", st.AgentType)
	fmt.Fprintf(tw, "status:\t%s\n", st.Status)
	if st.Error != "" {
		fmt.Fprintf(tw, "error:\t%s\n", st.Error)
	}
	fmt.Fprintf(tw, "version:\t%d\n", st.Version)
	fmt.Fprintf(tw, "accepted token:\t%s\t(token of the last accepted write)\n", st.Fence)
	fmt.Fprintf(tw, "resume count:\t%d\n", st.ResumeCount)
	fmt.Fprintf(tw, "step:\t%d\n", st.Step)
	fmt.Fprintf(tw, "messages:\t%d\n", st.MessageCount)
	fmt.Fprintf(tw, "document:\t%d bytes data, %d bytes output\n", len(st.Data), len(st.Output))
	fmt.Fprintf(tw, "created at:\t%s\n", fmtTime(st.CreatedAt))
	fmt.Fprintf(tw, "updated at:\t%s\n", fmtTime(st.UpdatedAt))
	if li.Held {
		fmt.Fprintf(tw, "lock:\theld by %s, token %s, ttl %s\n", li.Owner, li.Token, fmtTTL(li.TTL))
	} else {
		fmt.Fprintf(tw, "lock:\tnot held (fence %s)\n", tokenStr(li.Fence))
	}
	if latest != nil {
		fmt.Fprintf(tw, "latest checkpoint:\t%s (seq %d, step %d, %d messages, %s)\n",
			latest.ID, latest.Seq, latest.Step, latest.MessageCount, fmtTime(latest.CreatedAt))
	} else {
		fmt.Fprintf(tw, "latest checkpoint:\tnone\n")
	}
	fmt.Fprintf(tw, "staged changes:\t%d\n", len(staged))
	tw.Flush()
	if len(staged) > 0 {
		tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tTOOL CALL\tTOKEN\tSTAGED AT")
		for _, s := range staged {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", s.Step, s.ToolCallID, s.Token, fmtTime(s.Timestamp))
		}
		tw.Flush()
	}
	return nil
}

// checkpointsJSON is the output of checkpoints --json
// (schema/checkpoints.schema.json).
type checkpointsJSON struct {
	ID          string           `json:"id"`
	Total       int64            `json:"total"`
	Checkpoints []checkpointSumm `json:"checkpoints"`
	HasMore     bool             `json:"has_more"`
	NextCursor  string           `json:"next_cursor"`
}

func runCheckpoints(ctx context.Context, a *app, args []string) error {
	id := args[0]
	ctx, cancel := a.reqCtx(ctx)
	defer cancel()
	cps, err := a.newCheckpoints()
	if err != nil {
		return err
	}
	p, err := cps.List(ctx, id, a.cursor, a.limit)
	if err != nil {
		if errors.Is(err, statestore.ErrNotFound) {
			return notFound("session %q not found under prefix %q", id, a.prefix)
		}
		if errors.Is(err, statestore.ErrInvalidCursor) {
			return usageErr("--cursor: %v", err)
		}
		return err
	}
	if a.json {
		out := checkpointsJSON{ID: id, Total: p.Total, Checkpoints: make([]checkpointSumm, 0, len(p.Checkpoints)), HasMore: p.HasMore, NextCursor: p.Next}
		for _, cp := range p.Checkpoints {
			out.Checkpoints = append(out.Checkpoints, summarize(cp))
		}
		return a.writeJSON(out)
	}
	if len(p.Checkpoints) == 0 {
		fmt.Fprintf(a.stdout, "no checkpoints (session %q has %d)\n", id, p.Total)
	} else {
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tID\tSTEP\tMESSAGES\tTOKEN\tCREATED AT\tSTATE")
		for _, cp := range p.Checkpoints {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%d B\n", cp.Seq, cp.ID, cp.Step, cp.MessageCount, cp.Token, fmtTime(cp.CreatedAt), len(cp.State))
		}
		tw.Flush()
	}
	if p.HasMore {
		fmt.Fprintf(a.stdout, "%d of %d shown; next page: --cursor %s\n", len(p.Checkpoints), p.Total, p.Next)
	} else {
		fmt.Fprintf(a.stdout, "%d checkpoint(s) in all; no more pages\n", p.Total)
	}
	return nil
}

// checkpointJSON is the output of checkpoint, with or without --json
// (schema/checkpoint.schema.json).
type checkpointJSON struct {
	ID           string          `json:"id"`
	Session      string          `json:"session"`
	Seq          int64           `json:"seq"`
	Step         int64           `json:"step"`
	MessageCount int64           `json:"message_count"`
	Token        string          `json:"token"`
	CreatedAt    *string         `json:"created_at"`
	State        json.RawMessage `json:"state"`
	Metadata     json.RawMessage `json:"metadata"`
}

func runCheckpoint(ctx context.Context, a *app, args []string) error {
	id, cpid := args[0], args[1]
	ctx, cancel := a.reqCtx(ctx)
	defer cancel()
	cps, err := a.newCheckpoints()
	if err != nil {
		return err
	}
	cp, err := cps.Get(ctx, id, cpid)
	if err != nil {
		if errors.Is(err, statestore.ErrNotFound) {
			return notFound("checkpoint %q of session %q not found under prefix %q", cpid, id, a.prefix)
		}
		return err
	}
	out := checkpointJSON{ID: cp.ID, Session: id, Seq: cp.Seq, Step: cp.Step, MessageCount: cp.MessageCount,
		Token: cp.Token.String(), CreatedAt: jsonTime(cp.CreatedAt), State: rawOrNull(cp.State), Metadata: rawOrNull(cp.Metadata)}
	return a.writeJSON(out)
}

func rawOrNull(b json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return json.RawMessage("null")
	}
	return b
}
