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

// MustBeZero lists what fails r: package check's failing checkers and
// input errors in r's check mode (C2, C4 and the stream check always; C1
// and C3 in the durable mode). On amnesia, whose restarts wipe the
// server, only C1 and the stream check count, and C1 counts in every mode:
// the state a restart throws away makes C2-C4 fail by design there, while
// time-seeded tokens must keep growing across it.
func (r *Result) MustBeZero() []string {
	var bad []string
	if r.Report == nil {
		return []string{"not checked"}
	}
	for _, res := range r.Report.Results() {
		amnesiaOK := res == r.Report.C1 || res == r.Report.Stream || res == r.Report.Election
		switch {
		case r.Topology == "amnesia" && amnesiaOK && res.Violations > 0:
			bad = append(bad, fmt.Sprintf("%s=%d", res.Name, res.Violations))
		case r.Topology != "amnesia" && res.Fails:
			bad = append(bad, fmt.Sprintf("%s=%d", res.Name, res.Violations))
		}
	}
	if r.Topology != "amnesia" {
		for _, e := range r.Report.Errors {
			bad = append(bad, "input: "+e)
		}
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
	fmt.Fprintf(w, "  runner's naive counts (lost writes included): C1 dup tokens %d, order violations %d | C2: stale accepted %d | C3: version regressions %d, final behind %d, lost appends %d | dup appends %d\n",
		l.DupTokens, l.OrderViolations, l.StaleAccepted, l.VersionRegressions, l.FinalBehind, l.LostAppends, l.DupAppends)
	if r.Report != nil {
		rep := r.Report.String()
		if r.Topology == "amnesia" {
			// Restarts without persistence lose data by design; only C1
			// and the stream check judge this run, so the loss details
			// are noise.
			var keep []string
			for _, l := range strings.Split(rep, "\n") {
				if !strings.HasPrefix(l, "    - [") {
					keep = append(keep, l)
				}
			}
			rep = strings.Join(keep, "\n")
			fmt.Fprintf(w, "  (amnesia: judged on C1 and the stream check only; C2-C4 show the data the restarts threw away)\n")
		}
		fmt.Fprintf(w, "  check (mode %s): %s", r.CheckMode, indent(rep))
	}
	for _, a := range r.Artifacts {
		fmt.Fprintf(w, "  artifact: %s\n", a)
	}
	if r.Incr.Acked > 0 {
		fmt.Fprintf(w, "  INCR baseline: %d acked, dup values %d, order violations %d\n", r.Incr.Acked, r.Incr.DupTokens, r.Incr.OrderViolations)
	}
	if bad := r.MustBeZero(); len(bad) > 0 {
		fmt.Fprintf(w, "  VIOLATIONS (must be zero in this mode): %s\n", strings.Join(bad, ", "))
	}
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}
