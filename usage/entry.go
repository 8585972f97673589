package usage

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fencekit/fencekit/internal/keys"
)

// Kind is the kind of a usage entry.
type Kind string

// The kinds of entries.
const (
	KindTokens   Kind = "tokens"   // an LLM call: Tokens, Model
	KindTool     Kind = "tool"     // a tool call: Tool
	KindSubAgent Kind = "subagent" // a sub-agent started: SubAgent (its session id)
	KindCustom   Kind = "custom"   // anything else: Custom
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	return k == KindTokens || k == KindTool || k == KindSubAgent || k == KindCustom
}

// MaxAmount is the largest token count, duration (ms), custom value or
// cost (micro-units) an entry or budget may carry: 2^50, so that sums in
// the scripts (Lua numbers are doubles) stay exact.
const MaxAmount = 1 << 50

// MaxNameLen bounds names (model, source, tool, outcome, custom name) in bytes.
const MaxNameLen = 256

// Cost is an amount of money in micro-units (millionths of the currency
// unit): integers, so that sums are exact.
type Cost int64

// CostOf converts an amount in currency units (e.g. 0.0125 dollars) to a
// Cost, rounding to the nearest micro-unit. It returns ErrInvalidArgument
// for NaN, infinities, negative amounts and amounts above MaxAmount
// micro-units.
func CostOf(units float64) (Cost, error) {
	if math.IsNaN(units) || math.IsInf(units, 0) || units < 0 || units*1e6 > MaxAmount {
		return 0, fmt.Errorf("usage: %w: cost %v", ErrInvalidArgument, units)
	}
	return Cost(math.Round(units * 1e6)), nil
}

// String formats c in currency units with six decimals ("0.012500").
func (c Cost) String() string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%06d", sign, c/1e6, c%1e6)
}

// Tokens are the token counts of an LLM call.
type Tokens struct {
	Prompt, Completion, Cached int64
	// Total defaults to Prompt + Completion.
	Total int64
}

// ToolCall describes a tool call.
type ToolCall struct {
	Name     string
	Duration time.Duration // whole milliseconds are kept
	// Outcome is "ok" (the default) or a word naming the failure
	// ("error", "timeout"...); anything but "ok" counts as an error.
	Outcome string
}

// Custom is a named integer amount (e.g. "search_queries", 3).
type Custom struct {
	Name  string
	Value int64
}

// Entry is one usage record of a session.
type Entry struct {
	// ID identifies the entry within its session: recording an entry whose
	// ID was recorded already changes nothing. Derive it from what the
	// entry describes (e.g. "step-7-llm", a tool call id), so that a retry
	// or a resumed executor recording it again is counted once.
	ID   string
	Kind Kind
	// Step is the session step the entry belongs to (0 or more).
	Step int64
	// Time is when the usage happened; zero: when Record is called.
	Time time.Time
	// Source names who spent: an agent type or name. Optional.
	Source string
	// Model is the LLM model; optional, for KindTokens (and any kind that
	// carries a Cost).
	Model string
	// Tokens is for KindTokens only.
	Tokens Tokens
	// Tool is for KindTool only.
	Tool ToolCall
	// SubAgent is the session id of the sub-agent, for KindSubAgent only.
	// Rollup with IncludeSubAgents follows it.
	SubAgent string
	// Custom is for KindCustom only.
	Custom Custom
	// Cost is what the entry cost; optional, any kind.
	Cost Cost
}

// entryJSON is the stored form of an Entry (times in unix ms).
type entryJSON struct {
	ID         string `json:"id"`
	Kind       Kind   `json:"kind"`
	Step       int64  `json:"step"`
	At         int64  `json:"at"`
	Source     string `json:"source,omitempty"`
	Model      string `json:"model,omitempty"`
	Prompt     int64  `json:"prompt,omitempty"`
	Completion int64  `json:"completion,omitempty"`
	Cached     int64  `json:"cached,omitempty"`
	Total      int64  `json:"total,omitempty"`
	Tool       string `json:"tool,omitempty"`
	DurMs      int64  `json:"dur_ms,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	SubAgent   string `json:"subagent,omitempty"`
	CName      string `json:"cname,omitempty"`
	CValue     int64  `json:"cvalue,omitempty"`
	Cost       int64  `json:"cost,omitempty"`
}

func (j *entryJSON) entry() Entry {
	e := Entry{ID: j.ID, Kind: j.Kind, Step: j.Step, Time: time.UnixMilli(j.At), Source: j.Source, Model: j.Model,
		SubAgent: j.SubAgent, Cost: Cost(j.Cost)}
	switch j.Kind {
	case KindTokens:
		e.Tokens = Tokens{Prompt: j.Prompt, Completion: j.Completion, Cached: j.Cached, Total: j.Total}
	case KindTool:
		e.Tool = ToolCall{Name: j.Tool, Duration: time.Duration(j.DurMs) * time.Millisecond, Outcome: j.Outcome}
	case KindCustom:
		e.Custom = Custom{Name: j.CName, Value: j.CValue}
	}
	return e
}

// entryFields is the number of script arguments per entry (usage_record.lua).
const entryFields = 18

func validName(what, s string, mayEmpty bool) error {
	switch {
	case s == "" && !mayEmpty:
		return fmt.Errorf("usage: %w: empty %s", ErrInvalidArgument, what)
	case len(s) > MaxNameLen:
		return fmt.Errorf("usage: %w: %s of %d bytes (max %d)", ErrInvalidArgument, what, len(s), MaxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("usage: %w: %s is not valid UTF-8", ErrInvalidArgument, what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '|' {
			return fmt.Errorf("usage: %w: %s %q contains %q", ErrInvalidArgument, what, s, r)
		}
	}
	return nil
}

func amount(what string, v int64) error {
	if v < 0 || v > MaxAmount {
		return fmt.Errorf("usage: %w: %s %d (0..%d)", ErrInvalidArgument, what, v, int64(MaxAmount))
	}
	return nil
}

// args validates e and appends its script arguments to args. now is used
// for a zero Time.
func (e *Entry) args(args []string, now time.Time, maxBytes int) ([]string, error) {
	if err := keys.ValidateID(e.ID); err != nil {
		return args, fmt.Errorf("usage: entry id: %w", err)
	}
	if !e.Kind.Valid() {
		return args, fmt.Errorf("usage: %w: entry %q: unknown kind %q", ErrInvalidArgument, e.ID, e.Kind)
	}
	at := e.Time
	if at.IsZero() {
		at = now
	}
	j := entryJSON{ID: e.ID, Kind: e.Kind, Step: e.Step, At: at.UnixMilli(), Source: e.Source, Model: e.Model, Cost: int64(e.Cost)}
	bad := func(why string) error {
		return fmt.Errorf("usage: %w: entry %q: %s", ErrInvalidArgument, e.ID, why)
	}
	if j.At < 0 || j.At > MaxAmount {
		return args, bad("time out of range")
	}
	for _, c := range []struct {
		what string
		v    int64
	}{{"step", e.Step}, {"cost", int64(e.Cost)}, {"prompt tokens", e.Tokens.Prompt}, {"completion tokens", e.Tokens.Completion},
		{"cached tokens", e.Tokens.Cached}, {"total tokens", e.Tokens.Total}, {"tool duration", e.Tool.Duration.Milliseconds()},
		{"custom value", e.Custom.Value}} {
		if err := amount(c.what, c.v); err != nil {
			return args, fmt.Errorf("entry %q: %w", e.ID, err)
		}
	}
	if e.Tool.Duration < 0 {
		return args, bad("negative tool duration")
	}
	for _, n := range []struct{ what, v string }{{"source", e.Source}, {"model", e.Model}} {
		if err := validName(n.what, n.v, true); err != nil {
			return args, fmt.Errorf("entry %q: %w", e.ID, err)
		}
	}
	if e.Kind != KindTokens && e.Tokens != (Tokens{}) {
		return args, bad("Tokens on a " + string(e.Kind) + " entry")
	}
	if e.Kind != KindTool && e.Tool != (ToolCall{}) {
		return args, bad("Tool on a " + string(e.Kind) + " entry")
	}
	if e.Kind != KindSubAgent && e.SubAgent != "" {
		return args, bad("SubAgent on a " + string(e.Kind) + " entry")
	}
	if e.Kind != KindCustom && e.Custom != (Custom{}) {
		return args, bad("Custom on a " + string(e.Kind) + " entry")
	}
	switch e.Kind {
	case KindTokens:
		j.Prompt, j.Completion, j.Cached, j.Total = e.Tokens.Prompt, e.Tokens.Completion, e.Tokens.Cached, e.Tokens.Total
		if j.Total == 0 {
			j.Total = j.Prompt + j.Completion
		}
		if j.Total > MaxAmount {
			return args, bad("total tokens out of range")
		}
	case KindTool:
		j.Tool, j.DurMs, j.Outcome = e.Tool.Name, e.Tool.Duration.Milliseconds(), e.Tool.Outcome
		if j.Outcome == "" {
			j.Outcome = "ok"
		}
		if err := validName("tool name", j.Tool, false); err != nil {
			return args, fmt.Errorf("entry %q: %w", e.ID, err)
		}
		if err := validName("tool outcome", j.Outcome, false); err != nil {
			return args, fmt.Errorf("entry %q: %w", e.ID, err)
		}
	case KindSubAgent:
		if err := keys.ValidateID(e.SubAgent); err != nil {
			return args, fmt.Errorf("usage: entry %q: sub-agent: %w", e.ID, err)
		}
		j.SubAgent = e.SubAgent
	case KindCustom:
		if err := validName("custom name", e.Custom.Name, false); err != nil {
			return args, fmt.Errorf("entry %q: %w", e.ID, err)
		}
		j.CName, j.CValue = e.Custom.Name, e.Custom.Value
	}
	raw, err := json.Marshal(&j)
	if err != nil {
		return args, fmt.Errorf("usage: %w: entry %q: %v", ErrInvalidArgument, e.ID, err)
	}
	if len(raw) > maxBytes {
		return args, fmt.Errorf("usage: %w: entry %q of %d bytes (max %d)", ErrTooLarge, e.ID, len(raw), maxBytes)
	}
	i := strconv.FormatInt
	return append(args, j.ID, string(j.Kind), i(j.Step, 10), i(j.At, 10), j.Source, j.Model,
		i(j.Prompt, 10), i(j.Completion, 10), i(j.Cached, 10), i(j.Total, 10), j.Tool, i(j.DurMs, 10), j.Outcome,
		j.SubAgent, j.CName, i(j.CValue, 10), i(j.Cost, 10), string(raw)), nil
}

// kindsArg formats kinds for usage_entries.lua.
func kindsArg(kinds []Kind) (string, error) {
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		if !k.Valid() {
			return "", fmt.Errorf("usage: %w: unknown kind %q", ErrInvalidArgument, k)
		}
		parts[i] = string(k)
	}
	return strings.Join(parts, ","), nil
}
