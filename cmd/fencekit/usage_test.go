package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/usage"
)

// TestUsage seeds usage with package usage on every server kind and checks
// `fencekit usage` against golden files and its --json output against
// schema/usage.schema.json.
func TestUsage(t *testing.T) {
	schemas := loadSchemas(t)
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		prefix := s.Prefix(t)
		ctx := context.Background()
		meter, err := usage.New(s.NewClient(t), usage.Options{Prefix: prefix, AllowUnfenced: true})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		rec := func(id string, es ...usage.Entry) {
			t.Helper()
			for i := range es {
				es[i].Time = at
			}
			if _, err := meter.Record(ctx, id, 0, es...); err != nil {
				t.Fatal(err)
			}
		}
		rec("root",
			usage.Entry{ID: "l1", Kind: usage.KindTokens, Step: 1, Model: "model-a", Source: "planner", Tokens: usage.Tokens{Prompt: 900, Completion: 100, Cached: 300}, Cost: 3000},
			usage.Entry{ID: "t1", Kind: usage.KindTool, Step: 1, Tool: usage.ToolCall{Name: "grep", Duration: 40 * time.Millisecond}},
			usage.Entry{ID: "t2", Kind: usage.KindTool, Step: 2, Tool: usage.ToolCall{Name: "grep", Duration: 10 * time.Millisecond, Outcome: "error"}},
			usage.Entry{ID: "s1", Kind: usage.KindSubAgent, Step: 2, SubAgent: "kid"},
			usage.Entry{ID: "s2", Kind: usage.KindSubAgent, Step: 2, SubAgent: "gone"})
		rec("kid", usage.Entry{ID: "l1", Kind: usage.KindTokens, Step: 1, Model: "model-b", Tokens: usage.Tokens{Prompt: 50, Completion: 5}, Cost: 165})
		if err := meter.SetBudget(ctx, "acme", usage.Limit{Tokens: 5000}); err != nil {
			t.Fatal(err)
		}
		if err := meter.SetSessionBudget(ctx, "root", usage.Limit{Cost: 1_000_000}); err != nil {
			t.Fatal(err)
		}
		res, err := meter.Reserve(ctx, "root", usage.Amount{Tokens: 1000, Cost: 3000}, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Commit(ctx, usage.Amount{Tokens: 1000, Cost: 3000}); err != nil {
			t.Fatal(err)
		}

		base := []string{"--url", serverURL(s), "--prefix", prefix}
		runOK := func(args ...string) result {
			t.Helper()
			r := cli(t, append(append([]string{}, args[:1]...), append(base, args[1:]...)...)...)
			if r.code != exitOK {
				t.Fatalf("fencekit %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
			}
			return r
		}
		golden(t, "usage", runOK("usage", "root", "--scopes", "acme").stdout, prefix)
		golden(t, "usage_subagents", runOK("usage", "root", "--subagents").stdout, prefix)

		r := runOK("usage", "root", "--subagents", "--scopes", "acme", "--json")
		if err := schemas.validate("usage.schema.json", []byte(r.stdout)); err != nil {
			t.Fatalf("usage --json does not follow the schema: %v\n%s", err, r.stdout)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatal(err)
		}
		tok := m["tokens"].(map[string]any)
		if tok["total"] != float64(1055) || m["cost_micros"] != float64(3165) || len(m["budgets"].([]any)) != 2 ||
			strings.Join(strs(m["missing"]), ",") != "gone" || strings.Join(strs(m["sessions"]), ",") != "root,kid" {
			t.Errorf("usage --json: %s", r.stdout)
		}

		if r := cli(t, append([]string{"usage"}, append(base, "nobody")...)...); r.code != exitNotFound {
			t.Errorf("usage nobody: exit %d, want %d (%s)", r.code, exitNotFound, r.stderr)
		}
		if r := cli(t, append([]string{"usage"}, append(base, "root", "--scopes", "nope")...)...); r.code != exitNotFound {
			t.Errorf("usage --scopes nope: exit %d, want %d (%s)", r.code, exitNotFound, r.stderr)
		}
	})
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
