package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
)

// Writer writes Ops as JSON lines. Each record is one Write call on the
// underlying writer (no buffering), so on an *os.File a record is in the
// kernel once Write returns and survives a SIGKILL of the process. A Writer
// is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes op as one line. It returns the error of the underlying
// writer, or of encoding op.
func (w *Writer) Write(op Op) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	if err := json.NewEncoder(&w.buf).Encode(op); err != nil { // Encode ends with '\n'
		return fmt.Errorf("history: encode: %w", err)
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("history: write: %w", err)
	}
	return nil
}

// maxLine bounds one record (final ops carry whole event logs).
const maxLine = 256 << 20

// Read reads JSON lines from r. A last line without its newline that does
// not decode is the record a killed process was writing: it is dropped and
// truncated is true. Any other undecodable line gets an error matching
// ErrCorrupt (with its line number); blank lines are skipped.
func Read(r io.Reader) (ops []Op, truncated bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, rerr := br.ReadBytes('\n')
		if len(b) > maxLine {
			return ops, false, fmt.Errorf("%w: line %d longer than %d bytes", ErrCorrupt, line, maxLine)
		}
		last := rerr != nil
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var op Op
			if jerr := json.Unmarshal(t, &op); jerr != nil {
				if last && !bytes.HasSuffix(b, []byte("\n")) {
					return ops, true, nil
				}
				return ops, false, fmt.Errorf("%w: line %d: %v", ErrCorrupt, line, jerr)
			}
			ops = append(ops, op)
		}
		if rerr == io.EOF {
			return ops, false, nil
		}
		if rerr != nil {
			return ops, false, fmt.Errorf("history: read: %w", rerr)
		}
	}
}

// ReadFile reads the JSON lines of one file (see [Read]).
func ReadFile(path string) (ops []Op, truncated bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	ops, truncated, err = Read(f)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return ops, truncated, err
}

// ReadFiles reads every file and merges them with [Merge] after
// [Complete]; truncated counts the files whose last record was cut off.
func ReadFiles(paths ...string) (ops []Op, truncated int, err error) {
	var all [][]Op
	for _, p := range paths {
		o, tr, err := ReadFile(p)
		if err != nil {
			return nil, truncated, err
		}
		if tr {
			truncated++
		}
		all = append(all, o)
	}
	return Complete(Merge(all...)), truncated, nil
}

// Merge returns the ops of every history in one slice ordered by Call, then
// Return, then Process and Seq (a stable, deterministic order).
func Merge(hs ...[]Op) []Op {
	type ref struct{ h, i int }
	var refs []ref
	for h := range hs {
		for i := range hs[h] {
			refs = append(refs, ref{h, i})
		}
	}
	// Sort references, not the (large) ops; ties keep the input order.
	slices.SortFunc(refs, func(x, y ref) int {
		a, b := &hs[x.h][x.i], &hs[y.h][y.i]
		switch {
		case a.Call != b.Call:
			return cmp64(a.Call, b.Call)
		case a.Return != b.Return:
			return cmp64(a.Return, b.Return)
		case a.Process != b.Process:
			return a.Process - b.Process
		case a.Seq != b.Seq:
			return cmp64(a.Seq, b.Seq)
		case x.h != y.h:
			return x.h - y.h
		}
		return x.i - y.i
	})
	out := make([]Op, len(refs))
	for k, r := range refs {
		out[k] = hs[r.h][r.i]
	}
	return out
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Never is the Return of an operation that never returned (an invocation
// without completion): later than any time of the history.
const Never = math.MaxInt64

// ErrDuplicate matches the error of [CheckUnique].
var ErrDuplicate = errors.New("history: duplicate record")

// Complete resolves invocation records (Status Invoke): an invocation with a
// completion record of the same Process and Seq is dropped; one without
// becomes an Unknown op with ErrKind ErrKilled and Return [Never]. Records
// without Seq are kept as they are. The order of ops is kept.
func Complete(ops []Op) []Op {
	type key struct {
		p int
		n int64
	}
	done := make(map[key]bool)
	for i := range ops {
		if ops[i].Status != Invoke && ops[i].Seq != 0 {
			done[key{ops[i].Process, ops[i].Seq}] = true
		}
	}
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		if op.Status == Invoke {
			if op.Seq != 0 && done[key{op.Process, op.Seq}] {
				continue
			}
			op.Status, op.ErrKind, op.Return = Unknown, ErrKilled, Never
		}
		out = append(out, op)
	}
	return out
}

// CheckUnique returns an error matching ErrDuplicate if two completion
// records share a Process and Seq (Seq 0 is not checked).
func CheckUnique(ops []Op) error {
	type key struct {
		p int
		n int64
	}
	seen := make(map[key]bool)
	for _, op := range ops {
		if op.Status == Invoke || op.Seq == 0 {
			continue
		}
		k := key{op.Process, op.Seq}
		if seen[k] {
			return fmt.Errorf("%w: process %d seq %d", ErrDuplicate, op.Process, op.Seq)
		}
		seen[k] = true
	}
	return nil
}
