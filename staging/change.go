package staging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/jsonv"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/statestore"
)

// Change is what one tool call did to a session's state document.
type Change struct {
	// ToolCallID identifies the tool call. Staging the same step and
	// ToolCallID again replaces the change. It follows the rules of session
	// ids (non-empty, at most 256 bytes, no '{', '}', '|' or control
	// characters).
	ToolCallID string

	// Patches is an RFC 6902 JSON Patch: a JSON array of operations such as
	// [{"op":"add","path":"/items/-","value":1}]. Empty: none. It is stored
	// without insignificant whitespace.
	Patches json.RawMessage

	// Merge is an RFC 7386 JSON Merge Patch, a JSON object, applied after
	// Patches: members set fields, null members remove them. Empty: none.
	Merge json.RawMessage

	// Timestamp orders the changes of a step when they are promoted (ties
	// are broken by ToolCallID). It is kept with millisecond precision and
	// may not lie before 1970. Zero: the server time when the change is
	// staged.
	Timestamp time.Time
}

// Staged is a change as it is kept: under a step, with the fencing token of
// the writer that staged it.
type Staged struct {
	// Step is the step the change was staged under.
	Step int64
	// Token is the fencing token of the writer that staged the change.
	Token fencing.Token
	// Change is the change; Timestamp is the one stored (milliseconds).
	Change
}

// encodeChange validates c and returns the body stage_put.lua stores
// (the script adds the token and the timestamp) and the timestamp argument.
func encodeChange(id string, step int64, c *Change, maxBytes int) (body, ts string, err error) {
	if err := keys.ValidateID(c.ToolCallID); err != nil {
		return "", "", fmt.Errorf("tool call id: %w", err)
	}
	bad := func(format string, args ...any) error {
		return &PatchError{ID: id, Step: step, ToolCallID: c.ToolCallID, Err: fmt.Errorf(format, args...)}
	}
	if !c.Timestamp.IsZero() {
		ms := c.Timestamp.UnixMilli()
		if ms < 0 {
			return "", "", fmt.Errorf("%w: timestamp %v is before 1970", statestore.ErrInvalidArgument, c.Timestamp)
		}
		ts = strconv.FormatInt(ms, 10)
	}
	if n := len(c.Patches) + len(c.Merge); n > maxBytes {
		return "", "", fmt.Errorf("%w: change of %d bytes (max %d)", statestore.ErrTooLarge, n, maxBytes)
	}
	var b bytes.Buffer
	b.Grow(len(c.Patches) + len(c.Merge) + 24)
	b.WriteString(`{"patches":`)
	if len(bytes.TrimSpace(c.Patches)) == 0 {
		b.WriteString("[]")
	} else {
		p, err := jsonpatch.DecodePatch(c.Patches)
		if err != nil {
			return "", "", bad("patches: %w", err)
		}
		for i, op := range p {
			// RFC 6902 §4.6; the library does not check it and fails on it.
			if _, ok := op["value"]; op.Kind() == "test" && !ok {
				return "", "", bad("patches: operation %d: test without a value", i)
			}
		}
		if t := bytes.TrimSpace(c.Patches); t[0] != '[' {
			return "", "", bad("patches are not a JSON array")
		}
		if err := json.Compact(&b, c.Patches); err != nil {
			return "", "", bad("patches: %w", err)
		}
	}
	if len(bytes.TrimSpace(c.Merge)) > 0 {
		if t := bytes.TrimSpace(c.Merge); t[0] != '{' || !jsonv.Valid(t) {
			return "", "", bad("merge is not a JSON object")
		}
		b.WriteString(`,"merge":`)
		if err := json.Compact(&b, c.Merge); err != nil {
			return "", "", bad("merge: %w", err)
		}
	}
	b.WriteByte('}')
	if b.Len() > maxBytes {
		return "", "", fmt.Errorf("%w: change of %d bytes (max %d)", statestore.ErrTooLarge, b.Len(), maxBytes)
	}
	return b.String(), ts, nil
}

// stored is a change as stage_put.lua keeps it.
type stored struct {
	Token   *fencing.Token  `json:"token"`
	TS      *int64          `json:"ts"`
	Patches json.RawMessage `json:"patches"`
	Merge   json.RawMessage `json:"merge"`
}

var errBadField = errors.New("not a staged change")

// decodeStaged parses a stage hash field "<step>|<tool call id>" and its
// value.
func decodeStaged(field, value string) (Staged, error) {
	var s Staged
	step, call, ok := strings.Cut(field, "|")
	n, err := strconv.ParseInt(step, 10, 64)
	if !ok || err != nil || n < 0 || call == "" {
		return s, fmt.Errorf("%w: field %q", errBadField, field)
	}
	var v stored
	if err := json.Unmarshal([]byte(value), &v); err != nil || v.Token == nil || v.TS == nil {
		return s, fmt.Errorf("%w: field %q", errBadField, field)
	}
	s.Step, s.Token = n, *v.Token
	s.ToolCallID = call
	s.Timestamp = time.UnixMilli(*v.TS)
	if len(v.Patches) > 0 && string(v.Patches) != "[]" {
		s.Patches = v.Patches
	}
	s.Merge = v.Merge
	return s, nil
}

// sortStaged orders changes by step, timestamp and tool call id: the order
// in which they are applied.
func sortStaged(list []Staged) {
	sort.Slice(list, func(i, j int) bool {
		a, b := &list[i], &list[j]
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.Before(b.Timestamp)
		}
		return a.ToolCallID < b.ToolCallID
	})
}
