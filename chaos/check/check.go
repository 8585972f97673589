package check

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/fencekit/fencekit/chaos/history"
)

// Mode is the acknowledgement mode of a run.
type Mode string

// The modes.
const (
	// Durable: every write is acknowledged only after WAIT on all replicas
	// (lock.Options.MinReplicas / the stores' replica count). C1 and C3
	// violations fail the run.
	Durable Mode = "durable"
	// Fast: no WAIT. Failovers may lose acknowledged writes and interleave
	// tokens of two primaries; C1 and C3 are counted, not failed.
	Fast Mode = "fast"
)

// ErrInvalidConfig matches the error of [Config.Validate].
var ErrInvalidConfig = errors.New("check: invalid config")

// Config says how to judge a history.
type Config struct {
	// Mode is the run's acknowledgement mode. Required.
	Mode Mode
	// Timeout bounds each porcupine check of one session (C2 and C4 each).
	// A check that runs out of time is Unknown, which fails the run.
	// Default: 60s.
	Timeout time.Duration
	// MaxDetails is how many violations each checker describes (the counts
	// are always complete). Default: 20.
	MaxDetails int
	// Parallel is how many sessions are checked at once. Default:
	// GOMAXPROCS.
	Parallel int
}

// Validate reports a Config that Check cannot use, as an error matching
// ErrInvalidConfig.
func (c *Config) Validate() error {
	switch {
	case c.Mode != Durable && c.Mode != Fast:
		return fmt.Errorf("%w: mode %q (want %q or %q)", ErrInvalidConfig, c.Mode, Durable, Fast)
	case c.Timeout < 0:
		return fmt.Errorf("%w: negative Timeout %v", ErrInvalidConfig, c.Timeout)
	case c.MaxDetails < 0:
		return fmt.Errorf("%w: negative MaxDetails %d", ErrInvalidConfig, c.MaxDetails)
	case c.Parallel < 0:
		return fmt.Errorf("%w: negative Parallel %d", ErrInvalidConfig, c.Parallel)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if c.MaxDetails == 0 {
		c.MaxDetails = 20
	}
	if c.Parallel == 0 {
		c.Parallel = runtime.GOMAXPROCS(0)
	}
	return c
}

// Violation is one thing a checker found wrong.
type Violation struct {
	Session string
	What    string       // a one-line description
	Ops     []history.Op // the offending operations (a final op's Data is left out)
}

// Result is what one checker found.
type Result struct {
	// Name is the checker's name: "C1 tokens", "C2 fencing", "C3 lost
	// writes", "C4 cas+checkpoints", "stream", "recreate".
	Name string
	// Examined counts the operations the checker looked at.
	Examined int
	// Violations counts what the checker found wrong; Details describes
	// the first Config.MaxDetails of them.
	Violations int
	Details    []Violation
	// Counts breaks Violations down and adds figures that are not
	// violations (see each checker in the package doc for the keys).
	Counts map[string]int
	// ByFault attributes violations to faults (nemesis op In; "none": no
	// fault): C3's lost writes to the fault that lost them, C1's to the
	// fault in effect when the later acquire was called (see the package
	// doc).
	ByFault map[string]int
	// Linearizable is the porcupine result over every session for C2 and
	// C4 (Illegal if any session is Illegal, else Unknown if any is, else
	// Ok); "" for the other checkers. NonOK names the sessions that were
	// not Ok and their result.
	Linearizable porcupine.CheckResult
	NonOK        map[string]porcupine.CheckResult
	// Fails reports whether this checker fails the run in the run's mode.
	Fails bool
}

func newResult(name string) *Result {
	return &Result{Name: name, Counts: map[string]int{}}
}

// Report is the verdict over one history.
type Report struct {
	Mode     Mode
	Ops      int // operations in the history (final and nemesis ops included)
	Sessions int
	Faults   int // nemesis ops
	C1       *Result
	C2       *Result
	C3       *Result
	C4       *Result
	Stream   *Result
	// Recreate is the recreate workload's check (see checkRecreate); it
	// examines nothing in a run without that workload.
	Recreate *Result
	Usage    *Result // package usage: entries counted once, rollups, budgets (see checkUsage)
	// Semaphore and Election are the semaphore and election workloads'
	// checks (see checkSemaphore, checkElection); they examine nothing in
	// a run without those workloads.
	Semaphore *Result
	Election  *Result
	// Errors lists problems with the input itself (a missing or unreadable
	// final op, an unknown status, ...). Any error fails the run.
	Errors []string
	// Elapsed is how long Check took.
	Elapsed time.Duration

	cfg       Config
	artifacts []artifact
}

// Results returns the checkers' results in order C1, C2, C3, C4, stream,
// recreate and usage.
func (r *Report) Results() []*Result {
	return []*Result{r.C1, r.C2, r.C3, r.C4, r.Stream, r.Recreate, r.Usage, r.Semaphore, r.Election}
}

// OK reports whether the run passes: no input errors; zero C2, C4 and
// stream violations with both porcupine checks Ok in every mode; zero C1
// and C3 violations in the durable mode (in the fast mode they are only
// counted).
func (r *Report) OK() bool {
	if len(r.Errors) > 0 {
		return false
	}
	for _, res := range r.Results() {
		if res.Fails {
			return false
		}
	}
	return true
}

// String is a short multi-line summary.
func (r *Report) String() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: mode %s, %d ops, %d sessions, %d faults, checked in %v\n",
		verdict, r.Mode, r.Ops, r.Sessions, r.Faults, r.Elapsed.Round(time.Millisecond))
	for _, res := range r.Results() {
		fail := ""
		if res.Fails {
			fail = "  FAILS"
		}
		lin := ""
		if res.Linearizable != "" {
			lin = fmt.Sprintf(" porcupine=%s", res.Linearizable)
		}
		fmt.Fprintf(&b, "  %-18s examined=%d violations=%d%s%s%s\n", res.Name, res.Examined, res.Violations, lin, countsString(res.Counts), fail)
		if len(res.ByFault) > 0 {
			fmt.Fprintf(&b, "  %-18s lost by fault:%s\n", "", countsString(res.ByFault))
		}
		for _, v := range res.Details {
			fmt.Fprintf(&b, "    - [%s] %s\n", v.Session, v.What)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	return b.String()
}

func countsString(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return b.String()
}

// add records one violation of kind key in res.
func (res *Result) add(cfg *Config, key string, v Violation) {
	res.Violations++
	res.Counts[key]++
	if len(res.Details) < cfg.MaxDetails {
		v.What = key + ": " + v.What
		for i := range v.Ops {
			v.Ops[i].Data = nil
		}
		res.Details = append(res.Details, v)
	}
}

// Check judges ops, the merged history of a run (any order; invocation
// records are resolved with history.Complete), under cfg. It returns an
// error only for an invalid cfg (matching ErrInvalidConfig); problems of the
// history are reported in Report.Errors and the checkers' results.
func Check(ops []history.Op, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	start := time.Now()
	ops = history.Complete(history.Merge(ops))
	r := &Report{Mode: cfg.Mode, Ops: len(ops), cfg: cfg,
		C1: newResult("C1 tokens"), C2: newResult("C2 fencing"), C3: newResult("C3 lost writes"),
		C4: newResult("C4 cas+checkpoints"), Stream: newResult("stream"), Recreate: newResult("recreate"),
		Usage: newResult("usage"), Semaphore: newResult("semaphore"), Election: newResult("election")}
	in := index(ops, r)
	r.Sessions = len(in.sessions)
	r.Faults = len(in.faults)
	checkTokens(in, r)
	checkLog(in, r)
	checkLost(in, r)
	checkCheckpoints(in, r)
	checkStream(in, r)
	checkUsage(in, r)
	checkModels(in, r)
	checkRecreate(in, r)
	checkSemaphore(in, r)
	checkElection(in, r)
	r.C1.Fails = cfg.Mode == Durable && r.C1.Violations > 0
	r.C3.Fails = cfg.Mode == Durable && r.C3.Violations > 0
	r.C2.Fails = r.C2.Violations > 0 || r.C2.Linearizable != porcupine.Ok
	r.C4.Fails = r.C4.Violations > 0 || r.C4.Linearizable != porcupine.Ok
	r.Stream.Fails = r.Stream.Violations > 0
	r.Elapsed = time.Since(start)
	return r, nil
}
