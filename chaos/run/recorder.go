package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/chaos/history"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/usage"
)

// recorder writes one executor's history with a history.Writer: an
// invocation record before each call and the completion after it, each one
// write(2), so a SIGKILL loses nothing already written.
type recorder struct {
	f   *os.File
	w   *history.Writer
	seq atomic.Int64
}

func newRecorder(path string) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &recorder{f: f, w: history.NewWriter(f)}, nil
}

// begin numbers op, stamps its call time and writes the invocation.
func (r *recorder) begin(op *history.Op) {
	op.Seq = r.seq.Add(1)
	op.Call = Mono()
	op.Return = 0
	op.Status = history.Invoke
	_ = r.w.Write(*op)
}

// end stamps the return time, classifies err and writes the completion.
func (r *recorder) end(op *history.Op, err error) {
	op.Return = Mono()
	op.Status, op.ErrKind = classify(err)
	if err != nil {
		op.Err = err.Error()
		if len(op.Err) > 200 {
			op.Err = op.Err[:200]
		}
	}
	_ = r.w.Write(*op)
}

func (r *recorder) close() error { return r.f.Close() }

// errNotReplicated marks a write the server applied but too few replicas
// acknowledged within the timeout (durable mode): it may be lost.
var errNotReplicated = errors.New("run: write not acknowledged by every replica")

// errCASMismatch: a status CAS found another status (recorded as a
// refusal with ErrKind conflict, as package history asks).
var errCASMismatch = fmt.Errorf("run: %w: status CAS found another status", statestore.ErrConflict)

// errCommitUnknown: a budget op's Commit failed after its reservation
// held: some budgets may have charged it.
var errCommitUnknown = errors.New("run: commit outcome unknown")

// classify maps an error to a status: fail only when the reply proves the
// operation did not take effect, unknown for everything that might have.
func classify(err error) (history.Status, string) {
	if err == nil {
		return history.OK, ""
	}
	switch {
	case errors.Is(err, errNotReplicated), errors.Is(err, lock.ErrNotReplicated):
		return history.Unknown, "not_replicated"
	case errors.Is(err, fencing.ErrStaleToken):
		return history.Fail, history.ErrStale
	case errors.Is(err, fencing.ErrNotHolder):
		return history.Fail, history.ErrNotHolder
	case errors.Is(err, statestore.ErrConflict):
		return history.Fail, history.ErrConflict
	case errors.Is(err, errCommitUnknown):
		return history.Unknown, history.ErrOther
	case errors.Is(err, usage.ErrOverBudget):
		return history.Fail, history.ErrOverBudget
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return history.Unknown, history.ErrTimeout
	}
	var re *rueidis.RedisError
	if errors.As(err, &re) && strings.HasPrefix(re.Error(), "UNBLOCKED") {
		// The WAIT after a write was cut short by a failover (the lock's
		// MinReplicas path returns it as the acquire's error): the write
		// itself ran.
		return history.Unknown, "not_replicated"
	}
	if errors.As(err, &re) {
		// An error reply: the command (or script, which checks everything
		// before its first write) did not apply.
		return history.Fail, history.ErrOther
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return history.Unknown, history.ErrTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		// Refused at connect: nothing was sent on this connection, but a
		// pipelined client may have sent earlier bytes elsewhere; stay safe.
		return history.Unknown, history.ErrConn
	}
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, rueidis.ErrClosing) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return history.Unknown, history.ErrConn
	}
	return history.Unknown, history.ErrOther
}

// Merge reads every executor history (proc-*.jsonl) in dir and returns
// them merged and completed (history.ReadFiles): an invocation without its
// completion, from a killed process, becomes an unknown op that never
// returned.
func Merge(dir string) ([]history.Op, error) {
	files, err := filepath.Glob(filepath.Join(dir, "proc-*.jsonl"))
	if err != nil {
		return nil, err
	}
	ops, _, err := history.ReadFiles(files...)
	return ops, err
}
