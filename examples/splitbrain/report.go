package main

// This file judges the two runs and prints the report.

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fencekit/fencekit/fencing"
)

// runResult is what one run of the scenario observed.
type runResult struct {
	Mode           string
	TokenA, TokenB fencing.Token
	// AWrite is A's stale write as A reported it (event "write").
	AWrite report
	// BState is the raw state hash right after B's write, as B read it
	// back; Final is the same hash after A's stale write, read by the
	// parent.
	BState, Final map[string]string
}

// fieldDiff is a field of the state hash whose final value is not the one
// B wrote.
type fieldDiff struct {
	Field, B, Final string
}

// diffFields returns the fields of b that final lost or changed, and the
// fields final has that b has not, sorted by name.
func diffFields(b, final map[string]string) []fieldDiff {
	var d []fieldDiff
	for _, f := range slices.Sorted(maps.Keys(b)) {
		if v, ok := final[f]; !ok || v != b[f] {
			d = append(d, fieldDiff{Field: f, B: b[f], Final: v})
		}
	}
	for _, f := range slices.Sorted(maps.Keys(final)) {
		if _, ok := b[f]; !ok {
			d = append(d, fieldDiff{Field: f, Final: final[f]})
		}
	}
	return d
}

// Exit codes.
const (
	exitOK          = 0 // the fenced run was clean and the naive run showed the corruption
	exitStaleWrite  = 1 // the fenced store accepted a stale write
	exitOtherFailed = 2 // anything else
)

// verdict is the judgement on the two runs.
type verdict struct {
	Code int
	// NaiveCorrupted: the naive store accepted A's stale write and lost
	// (part of) what B wrote; NaiveLost says which fields.
	NaiveCorrupted bool
	NaiveLost      []fieldDiff
	// FencedStale: the fenced store rejected A's write with
	// fencing.ErrStaleToken. FencedIsB: its final state is B's, byte for
	// byte; FencedLost says how it is not.
	FencedStale bool
	FencedIsB   bool
	FencedLost  []fieldDiff
	// Problems explain a non-zero Code.
	Problems []string
}

// judge compares what the runs observed with what must happen. The fenced
// run is judged on the state in Redis as well as on A's report: a state
// that differs from B's counts as an accepted stale write even if A said
// its write failed.
func judge(naive, fenced *runResult) verdict {
	var v verdict
	problem := func(code int, format string, args ...any) {
		if v.Code != exitStaleWrite { // an accepted stale write outranks the rest
			v.Code = code
		}
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}

	v.FencedLost = diffFields(fenced.BState, fenced.Final)
	v.FencedIsB = len(fenced.BState) > 0 && len(v.FencedLost) == 0
	v.FencedStale = !fenced.AWrite.Accepted && fenced.AWrite.Stale
	if fenced.AWrite.Accepted {
		problem(exitStaleWrite, "the fenced store ACCEPTED A's stale write (token %d, B's is %d)", fenced.TokenA, fenced.TokenB)
	}
	if !v.FencedIsB {
		problem(exitStaleWrite, "the fenced state is not B's: %s", describeDiffs(v.FencedLost))
	}
	if !fenced.AWrite.Accepted && !fenced.AWrite.Stale {
		problem(exitOtherFailed, "A's write was refused, but not with fencing.ErrStaleToken: %s", fenced.AWrite.Err)
	}
	if v.FencedStale && (fenced.AWrite.Presented != fenced.TokenA || fenced.AWrite.Highest < fenced.TokenB) {
		problem(exitOtherFailed, "the StaleTokenError names token %d (highest %d); A's token is %d, B's %d",
			fenced.AWrite.Presented, fenced.AWrite.Highest, fenced.TokenA, fenced.TokenB)
	}

	v.NaiveLost = diffFields(naive.BState, naive.Final)
	v.NaiveCorrupted = naive.AWrite.Accepted && len(naive.BState) > 0 && len(v.NaiveLost) > 0
	if !v.NaiveCorrupted {
		how := "A's write failed: " + naive.AWrite.Err
		if naive.AWrite.Accepted {
			how = "the final state is still B's"
		}
		problem(exitOtherFailed, "the naive run did not show the corruption (%s), so this run proves nothing", how)
	}

	for _, r := range []*runResult{naive, fenced} {
		if !r.TokenB.Newer(r.TokenA) {
			problem(exitOtherFailed, "%s run: B's token %d is not newer than A's %d", r.Mode, r.TokenB, r.TokenA)
		}
	}
	return v
}

func describeDiffs(d []fieldDiff) string {
	if len(d) == 0 {
		return "no difference"
	}
	var parts []string
	for _, f := range d {
		b, final := tails(f.B, f.Final)
		parts = append(parts, fmt.Sprintf("%s: B wrote %s, now %s", f.Field, b, final))
	}
	return strings.Join(parts, "; ")
}

// quote shows a stored value, shortened; as a Go string if it has
// characters that do not print.
func quote(s string) string {
	if s == "" {
		return "(nothing)"
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// tails returns a and b quoted, without the long prefix they share, so
// that where they differ shows.
func tails(a, b string) (string, string) {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	if n < 24 || a == "" || b == "" {
		return quote(a), quote(b)
	}
	// Start at the element (of a JSON list, of a sentence) that differs.
	if i := strings.LastIndexAny(a[:n], ", "); i > 0 {
		n = i + 1
	}
	return "..." + quote(a[n:]), "..." + quote(b[n:])
}

// timeline prints what happens in a run as it happens, with the time since
// the run started.
type timeline struct {
	out   io.Writer
	start time.Time
}

func (t *timeline) log(who, format string, args ...any) {
	fmt.Fprintf(t.out, "  t=%5.3fs  %-2s  %s\n", time.Since(t.start).Seconds(), who, fmt.Sprintf(format, args...))
}

// printSummary prints the two runs side by side, how the naive state was
// corrupted, and the verdict.
func printSummary(out io.Writer, naive, fenced *runResult, v verdict) {
	fmt.Fprintln(out, "\nside by side:")
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "  \tnaive lock, plain HSET\tfencekit statestore\n")
	fmt.Fprintf(tw, "  A's token (frozen holder)\t%d\t%d\n", naive.TokenA, fenced.TokenA)
	fmt.Fprintf(tw, "  B's token (new holder)\t%d\t%d\n", naive.TokenB, fenced.TokenB)
	fmt.Fprintf(tw, "  A's stale write\t%s\t%s\n", writeOutcome(naive.AWrite), writeOutcome(fenced.AWrite))
	fmt.Fprintf(tw, "  final state\t%s\t%s\n", stateOutcome(naive, v.NaiveLost), stateOutcome(fenced, v.FencedLost))
	_ = tw.Flush()

	fmt.Fprintln(out, "\nnaive run:")
	if len(v.NaiveLost) == 0 {
		fmt.Fprintln(out, "  the state is B's: no corruption shown")
	} else {
		fmt.Fprintf(out, "  A's stale write replaced %d of the %d fields B wrote:\n", len(v.NaiveLost), len(naive.BState))
		for _, d := range v.NaiveLost {
			b, final := tails(d.B, d.Final)
			fmt.Fprintf(out, "    %-7s B wrote %s\n", d.Field+":", b)
			fmt.Fprintf(out, "    %-7s now is  %s\n", "", final)
		}
		var kept []string
		for _, f := range slices.Sorted(maps.Keys(naive.BState)) {
			if naive.Final[f] == naive.BState[f] && naive.AWrite.Fields[f] == "" {
				kept = append(kept, f)
			}
		}
		if len(kept) > 0 {
			fmt.Fprintf(out, "  still B's: %s; so the session mixes B's and A's work, a state no executor wrote\n", strings.Join(kept, ", "))
		}
		if bv, ok := naive.BState["version"]; ok && naive.Final["version"] == bv {
			fmt.Fprintf(out, "  version is %s, the one B wrote: nothing tells a reader that B's work is gone\n", bv)
		}
	}

	fmt.Fprintln(out, "\nfencekit run:")
	if w := fenced.AWrite; v.FencedStale {
		fmt.Fprintf(out, "  A's write: errors.Is(err, fencing.ErrStaleToken) = true\n")
		whose := "B's token"
		if w.Highest != fenced.TokenB {
			whose = fmt.Sprintf("B's token is %d", fenced.TokenB)
		}
		fmt.Fprintf(out, "  *fencing.StaleTokenError: presented token %d < highest %d (%s)\n", w.Presented, w.Highest, whose)
	} else {
		fmt.Fprintf(out, "  A's write: %s\n", writeOutcome(w))
	}
	if v.FencedIsB {
		fmt.Fprintf(out, "  the state is B's, byte for byte (%d fields, version %s, fence %s)\n",
			len(fenced.Final), fenced.Final["version"], fenced.Final["fence"])
	} else {
		fmt.Fprintf(out, "  the state is NOT B's: %s\n", describeDiffs(v.FencedLost))
	}

	fmt.Fprintln(out)
	switch v.Code {
	case exitOK:
		fmt.Fprintln(out, "OK: without fencing the stale executor corrupted the session; with fencekit its write was rejected and B's state survived.")
	case exitStaleWrite:
		fmt.Fprintln(out, "FAIL: the fenced store accepted a stale write.")
	default:
		fmt.Fprintln(out, "FAIL: the scenario did not go as it must.")
	}
	for _, p := range v.Problems {
		fmt.Fprintln(out, "  -", p)
	}
}

func writeOutcome(w report) string {
	switch {
	case w.Accepted:
		return "accepted"
	case w.Stale:
		return "rejected: fencing.ErrStaleToken"
	case w.NotHolder:
		return "rejected: fencing.ErrNotHolder"
	case w.Err != "":
		return "failed: " + w.Err
	}
	return "not attempted"
}

func stateOutcome(r *runResult, lost []fieldDiff) string {
	switch {
	case len(r.BState) == 0:
		return "unknown (B wrote nothing)"
	case len(lost) == 0:
		return "B's, byte for byte"
	}
	var names []string
	for _, d := range lost {
		names = append(names, d.Field)
	}
	return "CORRUPTED: B's " + strings.Join(names, ", ") + " overwritten"
}
