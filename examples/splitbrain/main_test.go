package main

import (
	"context"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/redistest"
)

func TestMain(m *testing.M) {
	// The scenario runs this test binary again as its executors: dispatch
	// them before anything of the test framework (or the leak check) runs.
	if role := os.Getenv(envRole); role != "" {
		os.Exit(executorMain(role))
	}
	redistest.Main(m)
}

// runScenario runs the whole example, with executor subprocesses, against
// redisURL ("": an in-process miniredis).
func runScenario(t *testing.T, redisURL string) *outcome {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	o, err := run(ctx, config{RedisURL: redisURL, TTL: time.Second, Exe: exe}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// checkOutcome asserts what the example promises, from the verdict and
// from the states read back from Redis.
func checkOutcome(t *testing.T, o *outcome) {
	t.Helper()
	v := o.Verdict
	if v.Code != exitOK {
		t.Errorf("verdict code %d, want %d: %v", v.Code, exitOK, v.Problems)
	}
	for _, r := range []*runResult{o.Naive, o.Fenced} {
		if !r.TokenB.Newer(r.TokenA) {
			t.Errorf("%s: B's token %d is not newer than A's %d", r.Mode, r.TokenB, r.TokenA)
		}
	}

	// Naive: A's stale write went through and B's messages are gone.
	n := o.Naive
	if !n.AWrite.Accepted || !v.NaiveCorrupted {
		t.Errorf("naive: A's write accepted %v, corrupted %v; want both", n.AWrite.Accepted, v.NaiveCorrupted)
	}
	if data := n.Final["data"]; !strings.Contains(data, "A: step 2") || strings.Contains(data, "B: step 2") {
		t.Errorf("naive: final data %q, want A's step 2 over B's", data)
	}
	if n.Final["status"] != "completed" || n.BState["status"] != "completed" {
		t.Errorf("naive: status %q (B wrote %q), want B's completed kept", n.Final["status"], n.BState["status"])
	}
	if len(v.NaiveLost) != 1 || v.NaiveLost[0].Field != "data" {
		t.Errorf("naive: lost %+v, want exactly B's data", v.NaiveLost)
	}

	// Fenced: rejected with ErrStaleToken naming both tokens; B's state.
	f := o.Fenced
	if f.AWrite.Accepted || !f.AWrite.Stale || !v.FencedStale {
		t.Errorf("fenced: A's write %+v; want rejected with fencing.ErrStaleToken", f.AWrite)
	}
	if f.AWrite.Presented != f.TokenA || f.AWrite.Highest != f.TokenB {
		t.Errorf("fenced: StaleTokenError presented %d highest %d; want A's %d and B's %d",
			f.AWrite.Presented, f.AWrite.Highest, f.TokenA, f.TokenB)
	}
	if len(f.BState) == 0 || !maps.Equal(f.Final, f.BState) || !v.FencedIsB {
		t.Errorf("fenced: final state differs from B's: %+v", diffFields(f.BState, f.Final))
	}
	if f.Final["fence"] != f.TokenB.String() {
		t.Errorf("fenced: state fence %q, want B's token %d", f.Final["fence"], f.TokenB)
	}
}

func TestSplitBrainMiniredis(t *testing.T) {
	checkOutcome(t, runScenario(t, ""))
}

func TestSplitBrainRedis(t *testing.T) {
	s := redistest.NewRedis(t) // skips without redis-server, fails with FENCEKIT_REQUIRE_REDIS=1
	checkOutcome(t, runScenario(t, "redis://"+s.Addrs[0]))
}

// fabricated returns runs shaped like real ones in which everything went
// as it must; the verdict tests break them one way at a time.
func fabricated() (naive, fenced *runResult) {
	bNaive := map[string]string{"status": "completed", "step": "2", "data": `["u","B"]`, "output": "patch", "version": "2"}
	naive = &runResult{
		Mode: modeNaive, TokenA: 100, TokenB: 200,
		AWrite: report{Event: "write", Accepted: true, Fields: map[string]string{"step": "2", "data": `["u","A"]`, "version": "2"}},
		BState: bNaive,
		Final:  map[string]string{"status": "completed", "step": "2", "data": `["u","A"]`, "output": "patch", "version": "2"},
	}
	bFenced := map[string]string{"status": "completed", "step": "2", "data": `{"messages":["u","B"]}`, "version": "2", "fence": "201"}
	fenced = &runResult{
		Mode: modeFenced, TokenA: 101, TokenB: 201,
		AWrite: report{Event: "write", Stale: true, Presented: 101, Highest: 201, Err: "fencing: stale token 101 (highest 201)"},
		BState: bFenced,
		Final:  maps.Clone(bFenced),
	}
	return naive, fenced
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(naive, fenced *runResult)
		code    int
		problem string // a substring of one of the problems
	}{
		{name: "clean", break_: func(_, _ *runResult) {}, code: exitOK},
		{
			name: "fenced store accepted the stale write",
			break_: func(_, f *runResult) {
				f.AWrite = report{Event: "write", Accepted: true}
				f.Final["data"], f.Final["fence"] = `{"messages":["u","A"]}`, "101"
			},
			code: exitStaleWrite, problem: "ACCEPTED",
		},
		{
			name: "fenced state changed although A reported a rejection",
			break_: func(_, f *runResult) {
				f.Final["data"] = `{"messages":["u","A"]}`
			},
			code: exitStaleWrite, problem: "not B's",
		},
		{
			name:   "fenced state lost a field",
			break_: func(_, f *runResult) { delete(f.Final, "status") },
			code:   exitStaleWrite, problem: "not B's",
		},
		{
			name:   "fenced state gained a field",
			break_: func(_, f *runResult) { f.Final["output"] = `"A's"` },
			code:   exitStaleWrite, problem: "not B's",
		},
		{
			name: "fenced rejection is not ErrStaleToken",
			break_: func(_, f *runResult) {
				f.AWrite = report{Event: "write", NotHolder: true, Err: "fencing: not the lock holder"}
			},
			code: exitOtherFailed, problem: "not with fencing.ErrStaleToken",
		},
		{
			name:   "StaleTokenError names the wrong token",
			break_: func(_, f *runResult) { f.AWrite.Presented = 55 },
			code:   exitOtherFailed, problem: "StaleTokenError",
		},
		{
			name:   "naive run not corrupted",
			break_: func(n, _ *runResult) { n.Final = maps.Clone(n.BState) },
			code:   exitOtherFailed, problem: "naive run did not show the corruption",
		},
		{
			name: "naive stale write failed",
			break_: func(n, _ *runResult) {
				n.AWrite = report{Event: "write", Err: "connection reset"}
				n.Final = maps.Clone(n.BState)
			},
			code: exitOtherFailed, problem: "naive run did not show the corruption",
		},
		{
			name:   "tokens not increasing",
			break_: func(n, _ *runResult) { n.TokenB = n.TokenA },
			code:   exitOtherFailed, problem: "not newer",
		},
		{
			name: "stale write accepted outranks other failures",
			break_: func(n, f *runResult) {
				n.Final = maps.Clone(n.BState)
				f.AWrite = report{Event: "write", Accepted: true}
			},
			code: exitStaleWrite, problem: "ACCEPTED",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			naive, fenced := fabricated()
			tc.break_(naive, fenced)
			v := judge(naive, fenced)
			if v.Code != tc.code {
				t.Errorf("code %d, want %d (problems %q)", v.Code, tc.code, v.Problems)
			}
			if tc.code == exitOK && len(v.Problems) > 0 {
				t.Errorf("problems for a clean run: %q", v.Problems)
			}
			if tc.problem != "" && !strings.Contains(strings.Join(v.Problems, "\n"), tc.problem) {
				t.Errorf("problems %q lack %q", v.Problems, tc.problem)
			}

			var out strings.Builder
			printSummary(&out, naive, fenced, v)
			want := map[int]string{
				exitOK:          "OK: without fencing",
				exitStaleWrite:  "FAIL: the fenced store accepted a stale write.",
				exitOtherFailed: "FAIL: the scenario did not go as it must.",
			}[tc.code]
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		})
	}
}

func TestDiffFields(t *testing.T) {
	b := map[string]string{"a": "1", "b": "2", "c": "3"}
	final := map[string]string{"a": "1", "b": "X", "d": "4"}
	got := diffFields(b, final)
	want := []fieldDiff{{Field: "b", B: "2", Final: "X"}, {Field: "c", B: "3"}, {Field: "d", Final: "4"}}
	if len(got) != len(want) {
		t.Fatalf("diffFields = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("diffFields[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if d := diffFields(b, maps.Clone(b)); len(d) != 0 {
		t.Errorf("equal maps differ: %+v", d)
	}
}
