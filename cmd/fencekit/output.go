package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/fencing"
)

// writeJSON prints v as indented JSON.
func (a *app) writeJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// writeJSONLine prints v as one line of JSON (for --watch streams).
func (a *app) writeJSONLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// fmtTime formats a server time in UTC with milliseconds; the zero time is "-".
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// jsonTime is fmtTime for JSON: RFC 3339 with nanoseconds, or nil.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// fmtTTL rounds a remaining lease to milliseconds.
func fmtTTL(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return d.Round(time.Millisecond).String()
}

// tokenStr formats a token; the zero token (none) is "0".
func tokenStr(t fencing.Token) string {
	return t.String()
}
