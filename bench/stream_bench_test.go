package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

// BenchmarkStream measures package stream on the real redis-server: the
// fenced Append of a 256-byte chunk beside a raw XADD floor of the same
// bytes and trimming, at parallelism 1 and 64, and a resumable Read of a
// page of 1,000 chunks. Sub-benchmarks are named
// op=<op>/impl=<impl>/par=<goroutines>, so
//
//	benchstat -filter .name:Stream -row /op,/par -col /impl out.txt
//
// puts fencekit and the floor side by side. It reuses the harness of
// BenchmarkState (runState: histograms, ops/s, p50/p99, CPU per op,
// FENCEKIT_BENCH_CMDSTATS). See README.md.
func BenchmarkStream(b *testing.B) {
	for _, sb := range streamBenches {
		b.Run(fmt.Sprintf("op=%s/impl=%s/par=%d", sb.op, sb.impl, sb.par), func(b *testing.B) {
			runState(b, sb)
		})
	}
}

const (
	streamChunkBytes = 256  // every appended chunk
	streamPage       = 1000 // chunks per Read
	streamPrefill    = 2000 // chunks in the read session (2 pages)
	streamMaxLen     = stream.DefaultMaxLen
)

var streamBenches = []stateBench{
	// The floor first: benchstat takes the first column as the base.
	{"append256", "xadd-floor", 1, openXaddFloor},
	{"append256", "fencekit", 1, openAppendFencekit},
	{"append256", "xadd-floor", 64, openXaddFloor},
	{"append256", "fencekit", 64, openAppendFencekit},
	{"read1000", "fencekit", 1, openStreamRead},
}

// streamChunk returns the 256-byte chunk every append writes.
func streamChunk() []byte {
	c := bytes.Repeat([]byte("x"), streamChunkBytes)
	copy(c, `{"type":"token","text":"`)
	return c
}

// newStreams returns Streams over store with MaxLen set explicitly to the
// production default, so the floor's MAXLEN ~ matches it.
func newStreams(b *testing.B, store *statestore.Store) *stream.Streams {
	ss, err := stream.NewWithOptions(store, stream.Options{MaxLen: streamMaxLen})
	if err != nil {
		b.Fatalf("stream.NewWithOptions: %v", err)
	}
	return ss
}

// --- append256: Streams.Append vs XADD MAXLEN ~ ---

type appendWorker struct {
	ss    *stream.Streams
	id    string
	token fencing.Token
	chunk []byte
}

// openAppendFencekit gives goroutine i a session of its own (created, its
// lock held for the whole run, all before the timer); every op appends the
// same 256-byte chunk to that session's stream: strict fencing, MAXLEN ~
// 10,000 trimming, TTL extension.
func openAppendFencekit(b *testing.B, ctx context.Context, e *stateEnv, i int) stateWorker {
	id, tok := e.session(b, ctx, "a"+strconv.Itoa(i), benchDoc(checkpointDocBytes))
	return &appendWorker{ss: newStreams(b, e.store), id: id, token: tok, chunk: streamChunk()}
}

func (w *appendWorker) do(ctx context.Context) error {
	_, err := w.ss.Append(ctx, w.id, w.token, w.chunk)
	return err
}

type xaddWorker struct {
	c   rueidis.Client
	cmd rueidis.Completed
}

// openXaddFloor gives goroutine i a stream key of its own, named like a
// session's output stream: the floor is XADD <key> MAXLEN ~ 10000 * c
// <the same 256 bytes>, no fencing, no metadata, no TTL. The command is
// built once and pinned (rueidis would otherwise recycle it after Do).
func openXaddFloor(b *testing.B, _ context.Context, e *stateEnv, i int) stateWorker {
	key := e.prefix + ":{f" + strconv.Itoa(i) + "}:out"
	e.floorKeys = append(e.floorKeys, key)
	cmd := e.c.B().Xadd().Key(key).Maxlen().Almost().Threshold(strconv.FormatInt(streamMaxLen, 10)).
		Id("*").FieldValue().FieldValue("c", string(streamChunk())).Build().Pin()
	return &xaddWorker{c: e.c, cmd: cmd}
}

func (w *xaddWorker) do(ctx context.Context) error {
	return w.c.Do(ctx, w.cmd).Error()
}

// --- read1000: Streams.Read of a page of 1,000 chunks ---

// streamReadWorker reads pages of 1,000 chunks, alternating between the
// first page (after the zero Seq) and the second (after the first page's
// Next), and fails unless each Read is exactly one round trip.
type streamReadWorker struct {
	ss     *stream.Streams
	cc     *redistest.CountingClient
	id     string
	afters [2]stream.Seq
	n      int
}

// openStreamRead creates a session, appends streamPrefill chunks of 256
// bytes to its stream and reads it once through a Streams whose store's
// client counts round trips (which also loads the read script).
func openStreamRead(b *testing.B, ctx context.Context, e *stateEnv, _ int) stateWorker {
	id, tok := e.session(b, ctx, "r0", benchDoc(checkpointDocBytes))
	ss := newStreams(b, e.store)
	chunk := streamChunk()
	for range streamPrefill {
		if _, err := ss.Append(ctx, id, tok, chunk); err != nil {
			b.Fatalf("prefill append: %v", err)
		}
	}
	cc := redistest.Counting(e.c)
	cstore, err := statestore.New(cc, statestore.Options{Prefix: e.prefix})
	if err != nil {
		b.Fatalf("statestore.New: %v", err)
	}
	w := &streamReadWorker{ss: newStreams(b, cstore), cc: cc, id: id}
	first, err := w.ss.Read(ctx, id, stream.Seq{}, streamPage)
	if err != nil {
		b.Fatalf("first page: %v", err)
	}
	if len(first.Chunks) != streamPage || !first.More {
		b.Fatalf("first page: %d chunks, more %v; want %d and more", len(first.Chunks), first.More, streamPage)
	}
	w.afters[1] = first.Next
	return w
}

func (w *streamReadWorker) do(ctx context.Context) error {
	w.n++
	after := w.afters[w.n%2]
	var (
		p   stream.Page
		err error
	)
	trips := w.cc.Count(func() { p, err = w.ss.Read(ctx, w.id, after, streamPage) })
	if err != nil {
		return err
	}
	if trips != 1 {
		return fmt.Errorf("read of %d chunks after %v: %d round trips, want 1", streamPage, after, trips)
	}
	if len(p.Chunks) != streamPage || p.Skipped != 0 {
		return fmt.Errorf("read after %v: %d chunks, %d skipped; want %d and 0", after, len(p.Chunks), p.Skipped, streamPage)
	}
	if want := after.N() + 1; p.Chunks[0].Seq.N() != want {
		return fmt.Errorf("read after %v: first chunk %v, want number %d", after, p.Chunks[0].Seq, want)
	}
	return nil
}
