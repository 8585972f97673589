package check

import (
	"encoding/json"
	"testing"

	"github.com/fencekit/fencekit/chaos/history"
)

// rcHistory is one recreate session: incarnation 10 with messages m1, m2
// and chunk c1, then incarnation 20 with message m3 and chunk c2, each
// acknowledged by time 10 of its round; then read reads at time 100.
func rcHistory(t *testing.T, read history.RecreateRead, st history.Status) []history.Op {
	t.Helper()
	h := newHB()
	s := history.RecreatePrefix + "0"
	add := func(kind, in, out string, call, ret int64) {
		h.add(history.Op{Process: 1, Session: s, Kind: kind, Token: 5, In: in, Out: out, Status: history.OK, Call: call, Return: ret})
	}
	add(history.KindRecreate, "", "10", 1, 2)
	add(history.KindRcMsg, "m1", "10", 3, 4)
	add(history.KindRcChunk, "c1", "10", 5, 6)
	add(history.KindRcMsg, "m2", "10", 7, 8)
	add(history.KindRecreate, "", "20", 20, 21)
	add(history.KindRcMsg, "m3", "20", 22, 23)
	add(history.KindRcChunk, "c2", "20", 24, 25)
	data, err := json.Marshal(read)
	if err != nil {
		t.Fatal(err)
	}
	h.add(history.Op{Process: 2, Session: s, Kind: history.KindRcRead, Out: read.Incarnation, Data: data, Status: st, Call: 100, Return: 110})
	return h.ops
}

func TestRecreate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		read   history.RecreateRead
		status history.Status
		mode   Mode
		counts map[string]int
		fails  bool
	}{
		{name: "complete read of the new incarnation",
			read: history.RecreateRead{Incarnation: "20", Messages: []string{"m3"}, Chunks: []string{"c2"}}, counts: map[string]int{"reads": 1}},
		{name: "complete read of the old incarnation",
			read: history.RecreateRead{Incarnation: "10", Messages: []string{"m1", "m2"}, Chunks: []string{"c1"}}, counts: map[string]int{"reads": 1}},
		{name: "a message of the old incarnation in the new",
			read:   history.RecreateRead{Incarnation: "20", Messages: []string{"m1", "m3"}, Chunks: []string{"c2"}},
			counts: map[string]int{"reads": 1, "foreign_message": 1}, fails: true},
		{name: "a chunk of the old incarnation in the new",
			read:   history.RecreateRead{Incarnation: "20", Messages: []string{"m3"}, Chunks: []string{"c1", "c2"}},
			counts: map[string]int{"reads": 1, "foreign_chunk": 1}, fails: true},
		{name: "an acknowledged message missing (durable: fails)",
			read:   history.RecreateRead{Incarnation: "20", Messages: []string{}, Chunks: []string{"c2"}},
			counts: map[string]int{"reads": 1, "missing_message": 1}, fails: true},
		{name: "an acknowledged chunk missing (fast: counted)", mode: Fast,
			read:   history.RecreateRead{Incarnation: "10", Messages: []string{"m1", "m2"}, Chunks: []string{}},
			counts: map[string]int{"reads": 1, "missing_chunk": 1}},
		{name: "a phantom message",
			read:   history.RecreateRead{Incarnation: "20", Messages: []string{"m3", "zz"}, Chunks: []string{"c2"}},
			counts: map[string]int{"reads": 1, "phantom_message": 1}, fails: true},
		{name: "a read that saw two incarnations is not checked", status: history.Fail,
			read: history.RecreateRead{}, counts: map[string]int{"replaced_reads": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, mode := tc.status, tc.mode
			if st == "" {
				st = history.OK
			}
			if mode == "" {
				mode = Durable
			}
			rep, err := Check(rcHistory(t, tc.read, st), Config{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Errors) > 0 {
				t.Fatalf("input errors: %v", rep.Errors)
			}
			got := map[string]int{}
			for k, v := range rep.Recreate.Counts {
				if v != 0 {
					got[k] = v
				}
			}
			if len(got) != len(tc.counts) {
				t.Errorf("counts %v, want %v", got, tc.counts)
			}
			for k, v := range tc.counts {
				if got[k] != v {
					t.Errorf("counts %v, want %v", got, tc.counts)
				}
			}
			if rep.Recreate.Fails != tc.fails || rep.OK() == tc.fails {
				t.Errorf("Fails %v, OK %v; want Fails %v\n%s", rep.Recreate.Fails, rep.OK(), tc.fails, rep)
			}
		})
	}
}
