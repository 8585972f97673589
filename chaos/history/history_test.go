package history

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriterReadRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	want := []Op{
		{Process: 1, Seq: 1, Session: "s1", Kind: KindAcquire, Token: 33, Status: OK, Call: 10, Return: 20},
		{Process: 1, Seq: 2, Session: "s1", Kind: KindSave, Token: 33, In: "v1", Version: 1, SessionStatus: "running", Status: OK, Call: 30, Return: 40},
		{Process: 2, Seq: 1, Session: "s1", Kind: KindSave, Token: 32, In: "v2", Status: Fail, ErrKind: ErrStale, Err: "stale", Call: 35, Return: 45},
	}
	for _, op := range want {
		if err := w.Write(op); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != len(want) {
		t.Fatalf("%d lines, want %d", n, len(want))
	}
	got, tr, err := Read(&buf)
	if err != nil || tr {
		t.Fatalf("Read: %v truncated=%v", err, tr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestReadTruncatedAndCorrupt(t *testing.T) {
	good := `{"p":1,"s":"a","op":"load","st":"ok","call":1,"ret":2}` + "\n"
	ops, tr, err := Read(strings.NewReader(good + good + `{"p":1,"s":"a","op":"lo`))
	if err != nil || !tr || len(ops) != 2 {
		t.Fatalf("truncated tail: ops=%d truncated=%v err=%v", len(ops), tr, err)
	}
	_, _, err = Read(strings.NewReader(good + "{not json}\n" + good))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("corrupt middle line: %v", err)
	}
	ops, tr, err = Read(strings.NewReader(good + "\n\n" + strings.TrimSuffix(good, "\n")))
	if err != nil || tr || len(ops) != 2 {
		t.Fatalf("complete last line without newline: ops=%d truncated=%v err=%v", len(ops), tr, err)
	}
}

func TestCompleteAndMerge(t *testing.T) {
	a := []Op{
		{Process: 1, Seq: 1, Kind: KindSave, Status: Invoke, Call: 10},
		{Process: 1, Seq: 1, Kind: KindSave, Status: OK, Call: 10, Return: 20},
		{Process: 1, Seq: 2, Kind: KindSave, Status: Invoke, Call: 30, Token: 7, In: "x"},
	}
	b := []Op{{Process: 2, Seq: 1, Kind: KindLoad, Status: OK, Call: 15, Return: 16}}
	got := Complete(Merge(a, b))
	if len(got) != 3 {
		t.Fatalf("got %d ops: %+v", len(got), got)
	}
	if got[0].Call != 10 || got[1].Process != 2 || got[2].Seq != 2 {
		t.Fatalf("order: %+v", got)
	}
	if k := got[2]; k.Status != Unknown || k.ErrKind != ErrKilled || k.Return != Never || k.Token != 7 {
		t.Fatalf("killed invocation: %+v", k)
	}
	if err := CheckUnique(got); err != nil {
		t.Fatal(err)
	}
	if err := CheckUnique(append(got, got[0])); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("CheckUnique of a duplicate: %v", err)
	}
}

func TestFinalRoundTripAndFiles(t *testing.T) {
	f := Final{Found: true, State: FinalState{Version: 2, Token: 34, Value: "b", Status: "running"},
		Events: []FinalEvent{{Version: 1, Token: 33, Type: "created", Fields: map[string]string{"status": "pending"}},
			{Version: 2, Token: 34, Type: "saved"}},
		Stream:      []FinalChunk{{Seq: "1-1", Kind: "c", Data: "x"}},
		Checkpoints: []FinalCheckpoint{{ID: "cp", Seq: 1, Token: 33}}}
	op, err := NewFinal("s1", 99, f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "h.jsonl")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewWriter(fh).Write(op); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	ops, tr, err := ReadFiles(p)
	if err != nil || tr != 0 || len(ops) != 1 {
		t.Fatalf("ReadFiles: %d ops, %d truncated, %v", len(ops), tr, err)
	}
	got, err := ops[0].Final()
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("Final: %+v %v", got, err)
	}
	load := Op{Kind: KindLoad}
	if _, err := load.Final(); !errors.Is(err, ErrNotFinal) {
		t.Fatalf("Final of a load: %v", err)
	}
	bad := Op{Kind: KindFinal, Data: []byte(`[1`)}
	if _, err := bad.Final(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Final of bad data: %v", err)
	}
	if _, _, err := ReadFiles(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("ReadFiles of a missing file: no error")
	}
}
