package check

import (
	"encoding/json"
	"testing"

	"github.com/fencekit/fencekit/chaos/history"
)

const ms = int64(1e6)

func semGrant(p int, tok uint64, n string, from, call, ret int64) history.Op {
	d, _ := json.Marshal(history.SemGrant{Limit: 2, TTL: 500 * ms, From: from})
	return history.Op{Process: p, Seq: int64(tok), Session: "sem-0", Kind: history.KindSemAcquire, In: n, Token: tok,
		Status: history.OK, Call: call, Return: ret, Data: d}
}

func semOp(p int, kind string, tok uint64, in string, st history.Status, call, ret int64) history.Op {
	return history.Op{Process: p, Seq: 1000 + call, Session: "sem-0", Kind: kind, Token: tok, In: in, Status: st, Call: call, Return: ret}
}

func checkOps(t *testing.T, mode Mode, ops ...history.Op) *Report {
	t.Helper()
	r, err := Check(ops, Config{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("input errors: %v", r.Errors)
	}
	return r
}

func TestSemaphoreChecker(t *testing.T) {
	// Limit 2: p1 holds 1 from 10 ms (lease to 510 ms less the allowance),
	// p2 is granted 2 at 100-110 ms: 3 > 2.
	over := []history.Op{semGrant(1, 1, "1", 10*ms, 10*ms, 12*ms), semGrant(2, 2, "2", 100*ms, 100*ms, 110*ms)}
	r := checkOps(t, Durable, over...)
	if got := r.Semaphore.Counts["over_limit"]; got != 1 || !r.Semaphore.Fails {
		t.Errorf("over_limit = %d, fails %v; want 1, true\n%s", got, r.Semaphore.Fails, r)
	}
	if r := checkOps(t, Fast, over...); r.Semaphore.Violations != 1 || r.Semaphore.Fails {
		t.Errorf("fast mode: %d violations, fails %v; want 1, false", r.Semaphore.Violations, r.Semaphore.Fails)
	}
	// Released before the second grant's window began: fine.
	ok := append(append([]history.Op{}, over...), semOp(1, history.KindSemRelease, 1, "", history.OK, 50*ms, 52*ms))
	if r := checkOps(t, Durable, ok...); r.Semaphore.Violations != 0 {
		t.Errorf("released holder counted:\n%s", r)
	}
	// The first lease ended (500 ms TTL) before the second grant: fine.
	late := []history.Op{semGrant(1, 1, "1", 10*ms, 10*ms, 12*ms), semGrant(2, 2, "2", 600*ms, 600*ms, 610*ms)}
	if r := checkOps(t, Durable, late...); r.Semaphore.Violations != 0 {
		t.Errorf("ended lease counted:\n%s", r)
	}
	// A lease "starting" after its Acquire returned (a pttl inflated by a
	// server clock stepped back, seen in CI) is neither dated nor
	// counted: p2's grants made before p1's lease "began" are fine.
	inflated := []history.Op{semGrant(1, 1, "2", 7000*ms, 10*ms, 500*ms), semGrant(2, 2, "2", 600*ms, 600*ms, 610*ms)}
	if r := checkOps(t, Durable, inflated...); r.Semaphore.Violations != 0 || r.Semaphore.Counts["uncounted_leases"] != 1 {
		t.Errorf("a lease dated after its Acquire returned was used:\n%s", r)
	}
	// A clock jump inside the Acquire (before the lease start its holder
	// computed) makes the lease uncounted too.
	jumped := append([]history.Op{semGrant(1, 1, "2", 400*ms, 10*ms, 410*ms), semGrant(2, 2, "2", 420*ms, 420*ms, 430*ms)},
		history.Op{Kind: history.KindNemesis, In: "clock-jump", Status: history.OK, Call: 100 * ms, Return: 110 * ms})
	if r := checkOps(t, Durable, jumped...); r.Semaphore.Violations != 0 {
		t.Errorf("a lease whose Acquire spans a clock jump was counted:\n%s", r)
	}
	// ... unless a refresh extended it.
	refreshed := append(append([]history.Op{}, late...), semOp(1, history.KindSemRefresh, 1, "", history.OK, 300*ms, 301*ms))
	if r := checkOps(t, Durable, refreshed...); r.Semaphore.Violations != 1 {
		t.Errorf("refreshed lease not counted:\n%s", r)
	}
	// A limit raised to 3 before the grant, or possibly (unknown), makes
	// room; one superseded by an acknowledged change to 2 does not.
	raised := append(append([]history.Op{}, over...), semOp(3, history.KindSemLimit, 0, "3", history.OK, 1*ms, 2*ms))
	if r := checkOps(t, Durable, raised...); r.Semaphore.Violations != 0 {
		t.Errorf("raised limit ignored:\n%s", r)
	}
	maybe := append(append([]history.Op{}, over...), semOp(3, history.KindSemLimit, 0, "3", history.Unknown, 105*ms, 0))
	if r := checkOps(t, Durable, maybe...); r.Semaphore.Violations != 0 {
		t.Errorf("limit change in flight ignored:\n%s", r)
	}
	lowered := append(append([]history.Op{}, raised...), semOp(3, history.KindSemLimit, 0, "2", history.OK, 3*ms, 4*ms))
	if r := checkOps(t, Durable, lowered...); r.Semaphore.Violations != 1 {
		t.Errorf("superseded limit counted:\n%s", r)
	}
	// A lease across a clock jump is never counted.
	jump := append(append([]history.Op{}, over...), history.Op{Kind: history.KindNemesis, In: "clock-jump", Status: history.OK, Call: 50 * ms, Return: 60 * ms})
	if r := checkOps(t, Durable, jump...); r.Semaphore.Violations != 0 {
		t.Errorf("lease across a clock jump counted:\n%s", r)
	}
	// A drain that could not take every permit fails every mode.
	drain := semOp(0, history.KindSemDrain, 0, "2", history.Fail, 900*ms, 901*ms)
	if r := checkOps(t, Fast, drain); r.Semaphore.Counts["lost_permits"] != 1 || !r.Semaphore.Fails {
		t.Errorf("lost permits not failed:\n%s", r)
	}
}

func elOp(p int, kind string, tok uint64, st history.Status, call, ret int64) history.Op {
	return history.Op{Process: p, Seq: call, Session: "el-0", Kind: kind, Token: tok, Status: st, Call: call, Return: ret}
}

func TestElectionChecker(t *testing.T) {
	good := []history.Op{
		elOp(1, history.KindElCampaign, 10, history.OK, 1, 2),
		elOp(1, history.KindElWrite, 10, history.OK, 3, 4),
		elOp(2, history.KindElCampaign, 20, history.OK, 2, 6),
		elOp(1, history.KindElWrite, 10, history.Fail, 7, 8), // stale: refused
		elOp(2, history.KindElWrite, 20, history.OK, 7, 8),
	}
	if r := checkOps(t, Durable, good...); r.Election.Violations != 0 || r.Election.Counts["refused"] != 1 {
		t.Errorf("clean history:\n%s", r)
	}
	for name, c := range map[string]struct {
		op   history.Op
		kind string
	}{
		"stale write accepted": {elOp(1, history.KindElWrite, 10, history.OK, 9, 10), "stale_write"},
		"term reused":          {elOp(3, history.KindElCampaign, 20, history.OK, 9, 10), "dup_term"},
		"term not above":       {elOp(3, history.KindElCampaign, 15, history.OK, 9, 10), "term_order"},
		"write of another's":   {elOp(3, history.KindElWrite, 20, history.OK, 9, 10), "foreign_write"},
	} {
		r := checkOps(t, Durable, append(append([]history.Op{}, good...), c.op)...)
		if r.Election.Counts[c.kind] == 0 || !r.Election.Fails {
			t.Errorf("%s: %s not found:\n%s", name, c.kind, r)
		}
	}
}
