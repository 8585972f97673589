package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/fencekit/fencekit/usage"
)

func init() {
	// Before doctor, which stays last.
	commands = append(commands[:len(commands)-1], usageCmd, commands[len(commands)-1])
}

var usageCmd = &command{
	name:    "usage",
	args:    "SESSION",
	summary: "a session's usage rollup (tokens, cost, tools, sub-agents) and budgets",
	nargs:   1,
	flags: func(fs *flag.FlagSet, a *app) {
		fs.BoolVar(&a.subAgents, "subagents", false, "add the rollups of the sub-agent sessions it reaches")
		fs.StringVar(&a.scopes, "scopes", "", "comma-separated budget scopes to show (e.g. a tenant)")
	},
	run: runUsage,
}

// usageJSON is the output of usage --json (schema/usage.schema.json).
type usageJSON struct {
	Session    string               `json:"session"`
	SubAgents  bool                 `json:"include_subagents"`
	Entries    int64                `json:"entries"`
	ByKind     map[string]int64     `json:"by_kind"`
	Tokens     tokensJSON           `json:"tokens"`
	CostMicros int64                `json:"cost_micros"`
	Cost       string               `json:"cost"`
	ToolCalls  int64                `json:"tool_calls"`
	ToolErrors int64                `json:"tool_errors"`
	ToolMs     int64                `json:"tool_ms"`
	Children   []string             `json:"children"`
	Sessions   []string             `json:"sessions"`
	Missing    []string             `json:"missing"`
	Truncated  bool                 `json:"truncated"`
	MinStep    int64                `json:"min_step"`
	MaxStep    int64                `json:"max_step"`
	First      *string              `json:"first"`
	Last       *string              `json:"last"`
	Updated    *string              `json:"updated"`
	ByModel    map[string]modelJSON `json:"by_model"`
	ByTool     map[string]toolJSON  `json:"by_tool"`
	BySource   map[string]modelJSON `json:"by_source"`
	Custom     map[string]int64     `json:"custom"`
	Budgets    []budgetJSON         `json:"budgets"`
}

type tokensJSON struct {
	Prompt     int64 `json:"prompt"`
	Completion int64 `json:"completion"`
	Cached     int64 `json:"cached"`
	Total      int64 `json:"total"`
}

type modelJSON struct {
	Entries int64 `json:"entries"`
	tokensJSON
	CostMicros int64 `json:"cost_micros"`
}

type toolJSON struct {
	Calls      int64 `json:"calls"`
	Errors     int64 `json:"errors"`
	Ms         int64 `json:"ms"`
	CostMicros int64 `json:"cost_micros"`
}

type amountJSON struct {
	Tokens     int64 `json:"tokens"`
	CostMicros int64 `json:"cost_micros"`
}

type budgetJSON struct {
	Name  string     `json:"name"`
	Limit amountJSON `json:"limit"`
	Spent amountJSON `json:"spent"`
	Held  amountJSON `json:"held"`
	Holds int        `json:"holds"`
	TTLMs int64      `json:"ttl_ms"`
}

func amountOf(a usage.Amount) amountJSON { return amountJSON{a.Tokens, int64(a.Cost)} }

func runUsage(ctx context.Context, a *app, args []string) error {
	id := args[0]
	ctx, cancel := a.reqCtx(ctx)
	defer cancel()
	meter, err := usage.New(a.client, usage.Options{Prefix: a.prefix})
	if err != nil {
		return err
	}
	var opts []usage.RollupOption
	if a.subAgents {
		opts = append(opts, usage.IncludeSubAgents)
	}
	r, err := meter.Rollup(ctx, id, opts...)
	if err != nil {
		if errors.Is(err, usage.ErrNotFound) {
			return notFound("no usage for session %q under prefix %q", id, a.prefix)
		}
		return err
	}
	var budgets []usage.BudgetState
	if b, err := meter.SessionBudget(ctx, id); err == nil {
		budgets = append(budgets, b)
	} else if !errors.Is(err, usage.ErrNotFound) {
		return err
	}
	for _, sc := range strings.Split(a.scopes, ",") {
		if sc = strings.TrimSpace(sc); sc == "" {
			continue
		}
		b, err := meter.Budget(ctx, sc)
		if errors.Is(err, usage.ErrNotFound) {
			return notFound("no budget for scope %q under prefix %q", sc, a.prefix)
		}
		if err != nil {
			return err
		}
		budgets = append(budgets, b)
	}

	if a.json {
		out := usageJSON{Session: id, SubAgents: a.subAgents, Entries: r.Entries, ByKind: map[string]int64{},
			Tokens:     tokensJSON{r.Prompt, r.Completion, r.Cached, r.Total},
			CostMicros: int64(r.Cost), Cost: r.Cost.String(), ToolCalls: r.ToolCalls, ToolErrors: r.ToolErrors,
			ToolMs: r.ToolTime.Milliseconds(), Children: nonNil(r.Children), Sessions: nonNil(r.Sessions),
			Missing: nonNil(r.Missing), Truncated: r.Truncated, MinStep: r.MinStep, MaxStep: r.MaxStep,
			First: jsonTime(r.First), Last: jsonTime(r.Last), Updated: jsonTime(r.Updated),
			ByModel: map[string]modelJSON{}, ByTool: map[string]toolJSON{}, BySource: map[string]modelJSON{},
			Custom: r.Custom, Budgets: []budgetJSON{}}
		for k, n := range r.ByKind {
			out.ByKind[string(k)] = n
		}
		for m, t := range r.ByModel {
			out.ByModel[m] = modelJSON{t.Entries, tokensJSON{t.Prompt, t.Completion, t.Cached, t.Total}, int64(t.Cost)}
		}
		for m, t := range r.BySource {
			out.BySource[m] = modelJSON{t.Entries, tokensJSON{t.Prompt, t.Completion, t.Cached, t.Total}, int64(t.Cost)}
		}
		for n, t := range r.ByTool {
			out.ByTool[n] = toolJSON{t.Calls, t.Errors, t.Time.Milliseconds(), int64(t.Cost)}
		}
		for _, b := range budgets {
			out.Budgets = append(out.Budgets, budgetJSON{Name: b.Name, Limit: amountOf(b.Limit), Spent: amountOf(b.Spent),
				Held: amountOf(b.Held), Holds: b.Holds, TTLMs: b.TTL.Milliseconds()})
		}
		return a.writeJSON(out)
	}

	tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "session:\t%s\n", id)
	if a.subAgents {
		fmt.Fprintf(tw, "sessions summed:\t%d (%s)\n", len(r.Sessions), strings.Join(r.Sessions, ", "))
		if len(r.Missing) > 0 {
			fmt.Fprintf(tw, "missing sub-agents:\t%s\n", strings.Join(r.Missing, ", "))
		}
		if r.Truncated {
			fmt.Fprintf(tw, "truncated:\tyes (depth or session bound reached)\n")
		}
	}
	kinds := make([]string, 0, len(r.ByKind))
	for k, n := range r.ByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(tw, "entries:\t%d (%s)\n", r.Entries, strings.Join(kinds, ", "))
	fmt.Fprintf(tw, "tokens:\t%d (prompt %d, completion %d, cached %d)\n", r.Total, r.Prompt, r.Completion, r.Cached)
	fmt.Fprintf(tw, "cost:\t%s\n", r.Cost)
	fmt.Fprintf(tw, "tool calls:\t%d (%d failed, %s)\n", r.ToolCalls, r.ToolErrors, r.ToolTime)
	fmt.Fprintf(tw, "sub-agents:\t%d (%s)\n", r.SubAgents, strings.Join(r.Children, ", "))
	fmt.Fprintf(tw, "steps:\t%d..%d\n", r.MinStep, r.MaxStep)
	fmt.Fprintf(tw, "updated:\t%s\n", fmtTime(r.Updated))
	tw.Flush()
	if len(r.ByModel) > 0 {
		tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  MODEL\tENTRIES\tPROMPT\tCOMPLETION\tTOTAL\tCOST")
		for _, m := range sortedKeys(r.ByModel) {
			t := r.ByModel[m]
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\n", m, t.Entries, t.Prompt, t.Completion, t.Total, t.Cost)
		}
		tw.Flush()
	}
	if len(r.ByTool) > 0 {
		tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TOOL\tCALLS\tFAILED\tTIME\tCOST")
		for _, n := range sortedKeys(r.ByTool) {
			t := r.ByTool[n]
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\n", n, t.Calls, t.Errors, t.Time, t.Cost)
		}
		tw.Flush()
	}
	if len(budgets) > 0 {
		tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  BUDGET\tLIMIT TOKENS\tSPENT\tHELD\tLIMIT COST\tSPENT\tHELD\tHOLDS")
		for _, b := range budgets {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\n", b.Name, limitStr(b.Limit.Tokens), b.Spent.Tokens, b.Held.Tokens,
				costLimitStr(b.Limit.Cost), b.Spent.Cost, b.Held.Cost, b.Holds)
		}
		tw.Flush()
	}
	return nil
}

func limitStr(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func costLimitStr(c usage.Cost) string {
	if c == 0 {
		return "-"
	}
	return c.String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
