package run

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/fencekit/fencekit/chaos/history"
)

// FaultCounts counts the faults of r by kind.
func (r *Result) FaultCounts() map[string]int {
	m := map[string]int{}
	for _, f := range r.Faults {
		m[f.Kind]++
	}
	return m
}

// OpCount is the number of client operations (invocations of the
// workload, not final or nemesis records).
func (r *Result) OpCount() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// UnavailStats returns p50 and max unavailability per fault kind (faults
// with a measurement only).
func (r *Result) UnavailStats() map[string][2]time.Duration {
	by := map[string][]time.Duration{}
	for _, f := range r.Faults {
		if f.Unavail >= 0 {
			by[f.Kind] = append(by[f.Kind], f.Unavail)
		}
	}
	out := map[string][2]time.Duration{}
	for k, v := range by {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		out[k] = [2]time.Duration{v[len(v)/2], v[len(v)-1]}
	}
	return out
}

// Amnesia reports whether a fault of r wiped the server's data on purpose
// (a restart without persistence): acknowledged writes before it are lost
// by design, so C3 cannot hold across it.
func (r *Result) Amnesia() bool { return r.FaultCounts()[FaultRestart] > 0 }

// MustBeZero lists the local counts r's mode requires to be zero and that
// are not: C2 (stale accepted) and stream duplicates always; C1 in the
// durable mode and on standalone (no replicas: time-seeded tokens alone
// must do); C3 in the durable mode unless an amnesia fault ran.
func (r *Result) MustBeZero() []string {
	var bad []string
	l := r.Local
	add := func(name string, n int) {
		if n != 0 {
			bad = append(bad, fmt.Sprintf("%s=%d", name, n))
		}
	}
	add("C2 stale writes accepted", l.StaleAccepted)
	add("duplicate stream appends", l.DupAppends)
	if r.Mode == "durable" || r.Topology == "standalone" {
		add("C1 duplicate tokens", l.DupTokens)
		add("C1 token order violations", l.OrderViolations)
	}
	if r.Mode == "durable" && !r.Amnesia() {
		add("C3 version regressions", l.VersionRegressions)
		add("C3 final state behind", l.FinalBehind)
		add("C3 lost appends", l.LostAppends)
	}
	return bad
}

// Print writes a human-readable summary of r.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "== %s / %s  (%v, history %s)\n", r.Topology, r.Mode, r.Elapsed.Round(time.Second), r.Dir)
	fmt.Fprintf(w, "  ops %d: ok %d, fail %d, unknown %d\n", r.OpCount(), r.Counts[history.OK], r.Counts[history.Fail], r.Counts[history.Unknown])
	fc := r.FaultCounts()
	us := r.UnavailStats()
	var kinds []string
	for k := range fc {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "  faults %d:\n", len(r.Faults))
	for _, k := range kinds {
		u := "-"
		if s, ok := us[k]; ok {
			u = fmt.Sprintf("p50 %v, max %v", s[0].Round(time.Millisecond), s[1].Round(time.Millisecond))
		}
		fmt.Fprintf(w, "    %-24s %4d   unavailability %s\n", k, fc[k], u)
	}
	l := r.Local
	fmt.Fprintf(w, "  local C1: dup tokens %d, order violations %d | C2: stale accepted %d | C3: version regressions %d, final behind %d, lost appends %d | dup appends %d\n",
		l.DupTokens, l.OrderViolations, l.StaleAccepted, l.VersionRegressions, l.FinalBehind, l.LostAppends, l.DupAppends)
	if r.Incr.Acked > 0 {
		fmt.Fprintf(w, "  INCR baseline: %d acked, dup values %d, order violations %d\n", r.Incr.Acked, r.Incr.DupTokens, r.Incr.OrderViolations)
	}
	if bad := r.MustBeZero(); len(bad) > 0 {
		fmt.Fprintf(w, "  VIOLATIONS (must be zero in this mode): %s\n", strings.Join(bad, ", "))
	}
}
