package check

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/fencekit/fencekit/chaos/history"
)

const ok, fail, unknown = history.OK, history.Fail, history.Unknown

// kleppmann: executor 1 takes token 33, pauses; executor 2 takes 34 and
// writes; executor 1 wakes and writes with 33.
func kleppmann(stale history.Status) *hb {
	h := newHB().
		acquire(1, 33, 10, 20).
		save(1, 33, "a", "running", 1, ok, 30, 40).
		acquire(2, 34, 100, 110).
		save(2, 34, "b", "running", 2, ok, 120, 130)
	if stale == ok {
		h.save(1, 33, "c", "running", 3, ok, 140, 150)
	} else {
		h.save(1, 33, "c", "running", 0, fail, 140, 150)
	}
	return h
}

func TestKleppmannFencedPasses(t *testing.T) {
	h := kleppmann(fail).load(2, 34, "b", "running", 2, 160, 170)
	ops := h.final(t, "b", "running", history.Final{},
		ev(1, 33, "created", "status", "running"), ev(2, 34, "saved", "status", "running"))
	for _, mode := range []Mode{Durable, Fast} {
		r := mustCheck(t, ops, mode)
		wantPass(t, r)
		if r.C2.Linearizable != porcupine.Ok || r.C2.Examined == 0 {
			t.Fatalf("C2 %s examined %d", r.C2.Linearizable, r.C2.Examined)
		}
	}
}

// Mutant (a): fencing comparison removed — the store acknowledges 33 after 34.
func TestMutantFencingRemoved(t *testing.T) {
	t.Run("logged", func(t *testing.T) {
		ops := kleppmann(ok).final(t, "c", "running", history.Final{},
			ev(1, 33, "created", "status", "running"), ev(2, 34, "saved", "status", "running"), ev(3, 33, "saved", "status", "running"))
		for _, mode := range []Mode{Durable, Fast} {
			r := mustCheck(t, ops, mode)
			wantFail(t, r, r.C2, "token_regressions")
			if r.C2.Linearizable != porcupine.Illegal {
				t.Fatalf("%s: porcupine %s, want Illegal", mode, r.C2.Linearizable)
			}
		}
	})
	// Porcupine alone catches it when the final log never shows the
	// write (durable: the acknowledgement stands).
	t.Run("porcupine", func(t *testing.T) {
		ops := kleppmann(ok).load(2, 33, "c", "running", 3, 160, 170).final(t, "c", "running", history.Final{},
			ev(1, 33, "created", "status", "running"), ev(2, 34, "saved", "status", "running"))
		r := mustCheck(t, ops, Durable)
		if r.C2.Linearizable != porcupine.Illegal || r.OK() {
			t.Fatalf("porcupine %s:\n%s", r.C2.Linearizable, r)
		}
	})
}

// Mutant (b): token not time-seeded and the counter lost (Redis restarted
// empty): tokens start again at 1.
func TestMutantCounterLoss(t *testing.T) {
	h := newHB()
	tm := int64(0)
	for i, tok := range []uint64{1, 2, 3, 4, 1, 2, 3, 5} {
		if i == 4 {
			h.nemesis("redis-restart-nopersist", tm-3, tm-1)
		}
		h.acquire(1+int(tm)%2, tok, tm, tm+5)
		tm += 10
	}
	ops := h.final(t, "", "", history.Final{})
	r := mustCheck(t, ops, Durable)
	wantFail(t, r, r.C1, "duplicates")
	if r.C1.Counts["duplicates"] != 3 || r.C1.Counts["order_violations"] != 3 || r.C1.Counts["max_regression"] != 3 {
		t.Fatalf("counts %v", r.C1.Counts)
	}
	if r.C1.ByFault["redis-restart-nopersist"] != 6 {
		t.Fatalf("by fault %v", r.C1.ByFault)
	}
	// The fast mode counts the same without failing.
	r = mustCheck(t, ops, Fast)
	if !r.OK() || r.C1.Violations != 6 {
		t.Fatalf("fast mode:\n%s", r)
	}
	// Time-seeded tokens after the same fault: clean.
	h = newHB().acquire(1, 1000, 0, 5).acquire(2, 1001, 10, 15).acquire(1, 2500, 20, 25)
	wantPass(t, mustCheck(t, h.final(t, "", "", history.Final{}), Durable))
}

// Mutant (c): WAIT skipped in the durable mode — the primary acknowledged
// v3 and v4, was killed, and the promoted replica never had them.
func lostAfterFailover() *hb {
	return newHB().
		acquire(1, 100, 0, 5).
		save(1, 100, "a", "running", 1, ok, 10, 20).
		save(1, 100, "b", "running", 2, ok, 30, 40).
		save(1, 100, "c", "running", 3, ok, 50, 60).
		cas(1, 100, "running", "done", 4, ok, 70, 80).
		load(1, 100, "c", "done", 4, 85, 90).
		nemesis("kill -9 primary", 95, 300).
		acquire(2, 200, 400, 410).
		load(2, 100, "b", "running", 2, 415, 420).
		save(2, 200, "d", "running", 3, ok, 430, 440).
		load(2, 200, "d", "running", 3, 450, 460)
}

func TestMutantWaitSkipped(t *testing.T) {
	ops := lostAfterFailover().final(t, "d", "running", history.Final{},
		ev(1, 100, "created", "status", "running"), ev(2, 100, "saved", "status", "running"), ev(3, 200, "saved", "status", "running"))
	r := mustCheck(t, ops, Durable)
	wantFail(t, r, r.C3, "lost_save")
	if r.C3.Counts["lost_save"] != 1 || r.C3.Counts["lost_cas"] != 1 || r.C3.ByFault["kill -9 primary"] != 2 {
		t.Fatalf("C3 %v %v", r.C3.Counts, r.C3.ByFault)
	}
	// Fast mode: the same loss is counted, and fencing still holds.
	r = mustCheck(t, ops, Fast)
	if !r.OK() || r.C3.Violations != 2 || r.C2.Linearizable != porcupine.Ok || r.C4.Linearizable != porcupine.Ok {
		t.Fatalf("fast mode:\n%s", r)
	}
	if r.C2.Counts["lost_left_out"] != 2 || r.C2.Counts["dirty_reads"] != 1 {
		t.Fatalf("C2 counts %v", r.C2.Counts)
	}
}

// Mutant (d): a non-idempotent append marked retryable: one append, two
// entries.
func TestMutantRetriedAppend(t *testing.T) {
	h := newHB().acquire(1, 7, 0, 5).
		appendChunk(1, 7, "x1", "1-1", ok, 10, 20).
		appendChunk(1, 7, "x2", "1-3", ok, 30, 40)
	ops := h.final(t, "", "", history.Final{Stream: []history.FinalChunk{
		{Seq: "1-1", Kind: "c", Data: "x1"}, {Seq: "1-2", Kind: "c", Data: "x2"}, {Seq: "1-3", Kind: "c", Data: "x2"}}})
	for _, mode := range []Mode{Durable, Fast} {
		r := mustCheck(t, ops, mode)
		wantFail(t, r, r.Stream, "duplicates")
	}
}

func TestUnknownWrites(t *testing.T) {
	base := func() *hb {
		return newHB().acquire(1, 10, 0, 5).save(1, 10, "a", "running", 1, ok, 10, 20)
	}
	cases := []struct {
		name   string
		h      *hb
		val    string
		events []history.FinalEvent
		pass   bool
	}{
		{"applied, seen later", base().save(1, 10, "b", "running", 0, unknown, 30, 0).load(1, 10, "b", "running", 2, 100, 110),
			"b", []history.FinalEvent{ev(1, 10, "created", "status", "running"), ev(2, 10, "saved", "status", "running")}, true},
		{"not applied", base().save(1, 10, "b", "running", 0, unknown, 30, 0).load(1, 10, "a", "running", 1, 100, 110),
			"a", []history.FinalEvent{ev(1, 10, "created", "status", "running")}, true},
		{"applied late, after a read that missed it", base().save(1, 10, "b", "running", 0, unknown, 30, 0).
			load(2, 10, "a", "running", 1, 100, 110).load(2, 10, "b", "running", 2, 120, 130),
			"b", []history.FinalEvent{ev(1, 10, "created", "status", "running"), ev(2, 10, "saved", "status", "running")}, true},
		{"two unknowns of one token, one applied", base().save(1, 10, "b", "running", 0, unknown, 30, 0).
			save(2, 10, "c", "running", 0, unknown, 35, 0).load(1, 10, "c", "running", 2, 100, 110),
			"c", []history.FinalEvent{ev(1, 10, "created", "status", "running"), ev(2, 10, "saved", "status", "running")}, true},
		{"a read of a value never written", base().save(1, 10, "b", "running", 0, unknown, 30, 0).load(1, 10, "zzz", "running", 2, 100, 110),
			"b", []history.FinalEvent{ev(1, 10, "created", "status", "running"), ev(2, 10, "saved", "status", "running")}, false},
		{"an event nobody wrote", base(),
			"a", []history.FinalEvent{ev(1, 10, "created", "status", "running"), ev(2, 10, "saved", "status", "running")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, mode := range []Mode{Durable, Fast} {
				r := mustCheck(t, c.h.final(t, c.val, "running", history.Final{}, c.events...), mode)
				if r.OK() != c.pass {
					t.Fatalf("%s: OK=%v, want %v:\n%s", mode, r.OK(), c.pass, r)
				}
			}
		})
	}
}

// A demoted primary serves an old state after the new primary has
// acknowledged a newer one: counted as stale, not a violation.
func TestStaleReadCounted(t *testing.T) {
	h := newHB().acquire(1, 10, 0, 5).
		save(1, 10, "a", "running", 1, ok, 10, 20).
		save(2, 10, "b", "running", 2, ok, 30, 40).
		load(3, 10, "a", "running", 1, 50, 60)
	r := mustCheck(t, h.final(t, "b", "running", history.Final{},
		ev(1, 10, "created", "status", "running"), ev(2, 10, "saved", "status", "running")), Durable)
	wantPass(t, r)
	if r.C2.Counts["stale_reads"] != 1 {
		t.Fatalf("counts %v", r.C2.Counts)
	}
}

func TestCAS(t *testing.T) {
	base := func() *hb {
		return newHB().acquire(1, 10, 0, 5).save(1, 10, "a", "pending", 1, ok, 10, 20)
	}
	events := func(more ...history.FinalEvent) []history.FinalEvent {
		return append([]history.FinalEvent{ev(1, 10, "created", "status", "pending")}, more...)
	}
	t.Run("racing cas, one wins", func(t *testing.T) {
		h := base().cas(1, 10, "pending", "running", 2, ok, 30, 60).conflict(2, 10, "pending", "done", "running", 2, 31, 61)
		r := mustCheck(t, h.final(t, "a", "running", history.Final{}, events(ev(2, 10, "status", "from", "pending", "status", "running"))...), Durable)
		wantPass(t, r)
		if r.C4.Linearizable != porcupine.Ok || r.C4.Examined == 0 {
			t.Fatalf("C4 %s", r.C4.Linearizable)
		}
	})
	t.Run("both win", func(t *testing.T) {
		h := base().cas(1, 10, "pending", "running", 2, ok, 30, 40).cas(2, 10, "pending", "done", 3, ok, 50, 60)
		r := mustCheck(t, h.final(t, "a", "done", history.Final{}, events(
			ev(2, 10, "status", "from", "pending", "status", "running"), ev(3, 10, "status", "from", "running", "status", "done"))...), Durable)
		wantFail(t, r, r.C4, "porcupine_Illegal")
	})
	t.Run("conflict while the status matched", func(t *testing.T) {
		h := base().conflict(2, 10, "pending", "done", "running", 1, 30, 40)
		r := mustCheck(t, h.final(t, "a", "pending", history.Final{}, events()...), Durable)
		wantFail(t, r, r.C4, "")
	})
	t.Run("unknown cas applied", func(t *testing.T) {
		h := base().cas(1, 10, "pending", "running", 0, unknown, 30, 0).load(2, 10, "a", "running", 2, 100, 110)
		r := mustCheck(t, h.final(t, "a", "running", history.Final{}, events(ev(2, 10, "status", "from", "pending", "status", "running"))...), Fast)
		wantPass(t, r)
	})
}

func TestCheckpoints(t *testing.T) {
	base := func() *hb {
		return newHB().acquire(1, 10, 0, 5).save(1, 10, "a", "pending", 1, ok, 10, 20).
			checkpoint(1, 10, "cp1", ok, 30, 40).checkpoint(1, 10, "cp2", ok, 50, 60)
	}
	logged := []history.FinalEvent{ev(1, 10, "created", "status", "pending"),
		ev(2, 10, "checkpoint", "id", "cp1", "seq", "1"), ev(3, 10, "checkpoint", "id", "cp2", "seq", "2")}
	good := []history.FinalCheckpoint{{ID: "cp1", Seq: 1, Token: 10}, {ID: "cp2", Seq: 2, Token: 10}}
	r := mustCheck(t, base().final(t, "a", "pending", history.Final{Checkpoints: good}, logged...), Durable)
	wantPass(t, r)

	swapped := []history.FinalCheckpoint{{ID: "cp1", Seq: 2, Token: 10}, {ID: "cp2", Seq: 1, Token: 10}}
	swappedLog := []history.FinalEvent{logged[0],
		ev(2, 10, "checkpoint", "id", "cp1", "seq", "2"), ev(3, 10, "checkpoint", "id", "cp2", "seq", "1")}
	r = mustCheck(t, base().final(t, "a", "pending", history.Final{Checkpoints: swapped}, swappedLog...), Durable)
	wantFail(t, r, r.C4, "seq_realtime")
	if r.C4.Counts["seq_order"] != 1 {
		t.Fatalf("counts %v", r.C4.Counts)
	}

	dup := []history.FinalCheckpoint{{ID: "cp1", Seq: 1, Token: 10}, {ID: "cp2", Seq: 1, Token: 10}}
	r = mustCheck(t, base().final(t, "a", "pending", history.Final{Checkpoints: dup}, logged...), Durable)
	wantFail(t, r, r.C4, "duplicate_seqs")

	// Durable: an acknowledged checkpoint missing at the end is lost.
	r = mustCheck(t, base().final(t, "a", "pending", history.Final{Checkpoints: good[:1]}, logged[:2]...), Durable)
	wantFail(t, r, r.C3, "lost_checkpoint")
}

func TestStream(t *testing.T) {
	h := newHB().acquire(1, 7, 0, 5).acquire(2, 8, 6, 9).
		appendChunk(1, 7, "a", "1-1", ok, 10, 20).
		appendChunk(2, 8, "b", "1-2", ok, 30, 40).
		appendChunk(1, 7, "late", "", fail, 50, 60).
		appendChunk(2, 8, "c", "1-3", ok, 70, 80)
	chunk := func(n, data string) history.FinalChunk {
		return history.FinalChunk{Seq: "1-" + n, Kind: "c", Data: data}
	}
	good := []history.FinalChunk{chunk("1", "a"), chunk("2", "b"), chunk("3", "c")}
	wantPass(t, mustCheck(t, h.final(t, "", "", history.Final{Stream: good, StreamToken: 8}), Durable))

	cases := []struct {
		name   string
		stream []history.FinalChunk
		key    string
	}{
		{"refused chunk present", []history.FinalChunk{chunk("1", "a"), chunk("2", "b"), chunk("3", "c"), chunk("4", "late")}, "refused_present"},
		{"never appended", append(append([]history.FinalChunk(nil), good...), chunk("4", "ghost")), "phantom_chunks"},
		{"order", []history.FinalChunk{chunk("1", "b"), chunk("2", "a"), chunk("3", "c")}, "order"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustCheck(t, h.final(t, "", "", history.Final{Stream: c.stream}), Fast)
			wantFail(t, r, r.Stream, c.key)
		})
	}
	r := mustCheck(t, h.final(t, "", "", history.Final{Stream: good[:2]}), Durable)
	wantFail(t, r, r.C3, "lost_append")
	r = mustCheck(t, h.final(t, "", "", history.Final{Stream: good[:2]}), Fast)
	if !r.OK() || r.C3.Counts["lost_append"] != 1 {
		t.Fatalf("fast mode lost append:\n%s", r)
	}
}

func TestInputErrors(t *testing.T) {
	if _, err := Check(nil, Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no mode: %v", err)
	}
	if _, err := Check(nil, Config{Mode: Fast, Timeout: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative timeout: %v", err)
	}
	h := newHB().acquire(1, 1, 0, 1)
	r := mustCheck(t, h.ops, Durable) // no final op
	if r.OK() || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "no final") {
		t.Fatalf("missing final: %v", r.Errors)
	}
	bad := append(h.final(t, "", "", history.Final{}), history.Op{Session: "s", Kind: "frobnicate", Status: ok},
		history.Op{Session: "s", Kind: history.KindLoad, Status: "maybe"}, history.Op{Session: "s", Kind: history.KindFinal, Data: []byte("{")})
	r = mustCheck(t, bad, Durable)
	if r.OK() || len(r.Errors) != 3 {
		t.Fatalf("bad ops: %q", r.Errors)
	}
	r = mustCheck(t, nil, Fast)
	wantPass(t, r)
}

// Lock events in the session log (Version 0) are not state writes.
func TestLockEventsSkipped(t *testing.T) {
	ops := kleppmann(fail).final(t, "b", "running", history.Final{},
		ev(0, 33, "lock_acquired", "holder", "a|1"), ev(1, 33, "created", "status", "running"),
		ev(0, 34, "lock_acquired", "holder", "b|1"), ev(2, 34, "saved", "status", "running"), ev(0, 34, "lock_released"))
	r := mustCheck(t, ops, Durable)
	wantPass(t, r)
}

// A log that lost its oldest entries: writes below its first version are
// not checked, unknown writes stay unknown (nothing proves them absent).
func TestTrimmedLog(t *testing.T) {
	h := newHB().acquire(1, 10, 0, 5).
		save(1, 10, "a", "running", 1, ok, 10, 20).
		save(1, 10, "b", "running", 2, ok, 30, 40).
		save(1, 10, "x", "running", 0, unknown, 45, 0).
		save(1, 10, "c", "running", 3, ok, 50, 60).
		load(1, 10, "c", "running", 3, 70, 80)
	r := mustCheck(t, h.final(t, "c", "running", history.Final{}, ev(3, 10, "saved", "status", "running")), Durable)
	wantPass(t, r)
	if r.C3.Counts["below_horizon"] != 2 || r.C2.Counts["unknown_absent"] != 0 {
		t.Fatalf("C3 %v C2 %v", r.C3.Counts, r.C2.Counts)
	}
}

func TestWriteArtifacts(t *testing.T) {
	dir := t.TempDir()
	pass := mustCheck(t, kleppmann(fail).final(t, "b", "running", history.Final{},
		ev(1, 33, "created", "status", "running"), ev(2, 34, "saved", "status", "running")), Durable)
	paths, err := pass.WriteArtifacts(filepath.Join(dir, "pass"))
	if err != nil || len(paths) != 0 {
		t.Fatalf("passing run wrote %v, %v", paths, err)
	}
	failing := mustCheck(t, kleppmann(ok).final(t, "c", "running", history.Final{},
		ev(1, 33, "created", "status", "running"), ev(2, 34, "saved", "status", "running"), ev(3, 33, "saved", "status", "running")), Durable)
	paths, err = failing.WriteArtifacts(filepath.Join(dir, "fail"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range paths {
		names[filepath.Base(p)] = true
	}
	for _, want := range []string{"report.txt", "c2-violations.jsonl", "c2-s.html", "c2-s.jsonl"} {
		if !names[want] {
			t.Fatalf("missing %s in %v", want, paths)
		}
	}
	html, err := os.ReadFile(filepath.Join(dir, "fail", "c2-s.html"))
	if err != nil || !strings.Contains(string(html), "save(tok=33") {
		t.Fatalf("visualization: %v (%d bytes)", err, len(html))
	}
	ops, _, err := history.ReadFile(filepath.Join(dir, "fail", "c2-s.jsonl"))
	if err != nil || len(ops) != 3 { // the three saves the model was given
		t.Fatalf("history slice: %d ops, %v", len(ops), err)
	}
}

// The INCR baseline: tokens checked outside the session workload.
func TestTokensHelper(t *testing.T) {
	var ops []history.Op
	for i, v := range []uint64{1, 2, 3, 2, 4} {
		ops = append(ops, history.Op{Session: "incr", Kind: "incr", Token: v, Status: ok, Call: int64(10 * i), Return: int64(10*i + 5)})
	}
	res, err := Tokens(ops, "incr", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fails || res.Counts["duplicates"] != 1 || res.Counts["order_violations"] != 1 || res.Examined != 5 {
		t.Fatalf("%+v", res)
	}
	if _, err := Tokens(ops, "incr", Config{Parallel: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
}

// Redis restarted without persistence: the session and its log are gone,
// versions start again at 1 (the amnesia topology, fast mode).
func TestRestartWithoutPersistence(t *testing.T) {
	h := newHB().acquire(1, 100, 0, 5).
		save(1, 100, "a", "running", 1, ok, 10, 20).
		save(1, 100, "b", "running", 2, ok, 30, 40).
		nemesis("redis-restart-nopersist", 50, 60).
		acquire(2, 200, 70, 80).
		// Load of a missing session: the runner leaves the holder's token.
		load(2, 200, "", "", 0, 85, 90).
		save(2, 200, "c", "running", 1, ok, 100, 110).
		load(2, 200, "c", "running", 1, 120, 130)
	ops := h.final(t, "c", "running", history.Final{}, ev(1, 200, "created", "status", "running"))
	r := mustCheck(t, ops, Fast)
	wantPass(t, r)
	if r.C3.Violations != 2 || r.C3.ByFault["redis-restart-nopersist"] != 2 {
		t.Fatalf("C3 %v %v", r.C3.Counts, r.C3.ByFault)
	}
	r = mustCheck(t, ops, Durable)
	wantFail(t, r, r.C3, "lost_save")
}

// A read on the lost lineage of a state whose last write was a lost
// checkpoint (which reports no version) is dirty, not a violation.
func TestDirtyReadAfterLostCheckpoint(t *testing.T) {
	h := newHB().acquire(1, 100, 0, 5).
		save(1, 100, "a", "running", 1, ok, 10, 20).
		acquire(2, 150, 25, 28).
		save(2, 150, "x", "running", 2, ok, 30, 40).
		checkpoint(2, 150, "cpx", ok, 45, 50).
		load(2, 150, "x", "running", 3, 55, 60).
		nemesis("primary-kill9", 65, 70).
		acquire(3, 200, 80, 85).
		save(3, 200, "c", "running", 2, ok, 90, 100).
		checkpoint(3, 200, "cpc", ok, 105, 110).
		load(3, 200, "c", "running", 3, 120, 130)
	ops := h.final(t, "c", "running", history.Final{Checkpoints: []history.FinalCheckpoint{{ID: "cpc", Seq: 1, Token: 200}}},
		ev(1, 100, "created", "status", "running"), ev(2, 200, "saved", "status", "running"), ev(3, 200, "checkpoint", "id", "cpc", "seq", "1"))
	r := mustCheck(t, ops, Fast)
	wantPass(t, r)
	if r.C2.Counts["dirty_reads"] != 1 || r.C3.Counts["lost_checkpoint"] != 1 || r.C3.Counts["lost_save"] != 1 {
		t.Fatalf("C2 %v C3 %v", r.C2.Counts, r.C3.Counts)
	}
}
