package usage

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
)

// Totals are summed usage figures.
type Totals struct {
	// Entries counts the entries summed.
	Entries int64
	// Token counts of KindTokens entries.
	Prompt, Completion, Cached, Total int64
	// Cost sums the Cost of every entry.
	Cost Cost
}

// ToolTotals sum the tool calls of one tool.
type ToolTotals struct {
	Calls, Errors int64
	Time          time.Duration
	Cost          Cost
}

// Rollup is the summed usage of a session (and, with IncludeSubAgents, of
// the sub-agent sessions it reaches).
type Rollup struct {
	// Session is the session asked for.
	Session string
	// Totals over every entry summed.
	Totals
	// ToolCalls, ToolErrors and ToolTime sum the KindTool entries;
	// SubAgents counts the KindSubAgent entries.
	ToolCalls, ToolErrors int64
	ToolTime              time.Duration
	SubAgents             int64
	// ByKind counts entries per kind.
	ByKind map[Kind]int64
	// ByModel sums per model (entries that name one); ByTool per tool;
	// BySource per source (Prompt, Completion and Cached stay 0 there).
	ByModel  map[string]Totals
	ByTool   map[string]ToolTotals
	BySource map[string]Totals
	// Custom sums KindCustom values per name.
	Custom map[string]int64
	// MinStep and MaxStep bound the steps of the entries; First and Last
	// their times; Updated is the last Record of any session summed.
	MinStep, MaxStep int64
	First, Last      time.Time
	Updated          time.Time
	// Children are the sub-agent sessions Session's entries name, sorted.
	Children []string
	// Sessions are the sessions summed: Session first, then (with
	// IncludeSubAgents) every session reached through sub-agent links,
	// each once however many paths lead to it (a cycle adds nothing).
	Sessions []string
	// Missing are linked sub-agent sessions without usage (never recorded,
	// expired or deleted), sorted.
	Missing []string
	// Truncated reports that MaxSubAgentDepth or MaxSubAgentSessions cut
	// the walk short: some reachable sessions are not summed.
	Truncated bool
}

// RollupOption changes what Rollup sums.
type RollupOption int

// IncludeSubAgents makes Rollup add the rollups of the sub-agent sessions
// the session reaches (KindSubAgent entries, followed transitively).
const IncludeSubAgents RollupOption = 1

// Rollup returns the rollup of session id, kept up to date by Record, so
// reading it never scans entries: one round trip for the session, plus
// one per level of sub-agents with IncludeSubAgents (at most
// MaxSubAgentDepth levels and MaxSubAgentSessions sessions; see
// Rollup.Truncated). It returns ErrNotFound when the session has no usage,
// ErrInvalidID for a bad id, and ErrCorrupt for a rollup fencekit did not
// write.
func (s *Store) Rollup(ctx context.Context, id string, opts ...RollupOption) (*Rollup, error) {
	if err := keys.ValidateID(id); err != nil {
		return nil, fmt.Errorf("usage: session: %w", err)
	}
	subs := false
	for _, o := range opts {
		if o == IncludeSubAgents {
			subs = true
		}
	}
	r := &Rollup{Session: id, ByKind: map[Kind]int64{}, ByModel: map[string]Totals{}, ByTool: map[string]ToolTotals{},
		BySource: map[string]Totals{}, Custom: map[string]int64{}, MinStep: -1}
	seen := map[string]bool{id: true}
	level := []string{id}
	missing := map[string]bool{}
	for depth := 0; len(level) > 0; depth++ {
		cmds := make(rueidis.Commands, 0, 2*len(level))
		for _, sid := range level {
			k := keys.ForUsage(s.opts.Prefix, sid)
			cmds = append(cmds, s.client.B().Hgetall().Key(k.Meta).Build(), s.client.B().Smembers().Key(k.Kids).Build())
		}
		res := s.client.DoMulti(ctx, cmds...)
		var next []string
		for i, sid := range level {
			m, err := res[2*i].AsStrMap()
			if err != nil {
				return nil, fenced.Error("usage", "rollup", sid, err)
			}
			kids, err := res[2*i+1].AsStrSlice()
			if err != nil {
				return nil, fenced.Error("usage", "rollup", sid, err)
			}
			if len(m) == 0 {
				if sid == id {
					return nil, fmt.Errorf("usage: rollup %q: %w: no usage", id, ErrNotFound)
				}
				missing[sid] = true
				continue
			}
			if err := r.add(m); err != nil {
				return nil, fmt.Errorf("usage: rollup %q: %w", sid, err)
			}
			r.Sessions = append(r.Sessions, sid)
			sort.Strings(kids)
			if sid == id {
				r.Children = kids
			}
			if !subs {
				continue
			}
			for _, kid := range kids {
				if seen[kid] {
					continue
				}
				if keys.ValidateID(kid) != nil {
					return nil, fmt.Errorf("usage: rollup %q: %w: sub-agent id %q", sid, ErrCorrupt, kid)
				}
				if len(seen) >= s.opts.MaxSubAgentSessions || depth+1 > s.opts.MaxSubAgentDepth {
					r.Truncated = true
					continue
				}
				seen[kid] = true
				next = append(next, kid)
			}
		}
		level = next
	}
	for m := range missing {
		r.Missing = append(r.Missing, m)
	}
	sort.Strings(r.Missing)
	if r.MinStep < 0 {
		r.MinStep = 0
	}
	return r, nil
}

// add sums one session's rollup hash into r.
func (r *Rollup) add(m map[string]string) error {
	for f, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: rollup field %q = %q", ErrCorrupt, f, v)
		}
		switch f {
		case "n":
			r.Entries += n
		case "prompt":
			r.Prompt += n
		case "completion":
			r.Completion += n
		case "cached":
			r.Cached += n
		case "total":
			r.Total += n
		case "cost":
			r.Cost += Cost(n)
		case "tools":
			r.ToolCalls += n
		case "tool_err":
			r.ToolErrors += n
		case "tool_ms":
			r.ToolTime += time.Duration(n) * time.Millisecond
		case "subagents":
			r.SubAgents += n
		case "step_min":
			if r.MinStep < 0 || n < r.MinStep {
				r.MinStep = n
			}
		case "step_max":
			r.MaxStep = max(r.MaxStep, n)
		case "first_ms":
			if t := time.UnixMilli(n); r.First.IsZero() || t.Before(r.First) {
				r.First = t
			}
		case "last_ms":
			if t := time.UnixMilli(n); t.After(r.Last) {
				r.Last = t
			}
		case "updated_ms":
			if t := time.UnixMilli(n); t.After(r.Updated) {
				r.Updated = t
			}
		case "fence", "epoch":
		default:
			if err := r.addNamed(f, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// addNamed sums a field "<p>|<name>|<what>" or "n|<kind>" or "c|<name>".
func (r *Rollup) addNamed(f string, n int64) error {
	p, rest, ok := strings.Cut(f, "|")
	if !ok {
		return nil // a field of a later version: ignored
	}
	switch p {
	case "n":
		r.ByKind[Kind(rest)] += n
		return nil
	case "c":
		r.Custom[rest] += n
		return nil
	}
	i := strings.LastIndexByte(rest, '|')
	if i < 0 {
		return fmt.Errorf("%w: rollup field %q", ErrCorrupt, f)
	}
	name, what := rest[:i], rest[i+1:]
	switch p {
	case "m", "s":
		mp := r.ByModel
		if p == "s" {
			mp = r.BySource
		}
		t := mp[name]
		switch what {
		case "n":
			t.Entries += n
		case "prompt":
			t.Prompt += n
		case "completion":
			t.Completion += n
		case "cached":
			t.Cached += n
		case "total":
			t.Total += n
		case "cost":
			t.Cost += Cost(n)
		}
		mp[name] = t
	case "t":
		t := r.ByTool[name]
		switch what {
		case "n":
			t.Calls += n
		case "err":
			t.Errors += n
		case "ms":
			t.Time += time.Duration(n) * time.Millisecond
		case "cost":
			t.Cost += Cost(n)
		}
		r.ByTool[name] = t
	}
	return nil
}
