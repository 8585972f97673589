package stream

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Page is what Read returns.
type Page struct {
	// Chunks are the data chunks after the requested Seq, oldest first
	// (terminal markers are not chunks: see Status).
	Chunks []Chunk
	// Next is the position to read from next: the last entry read
	// (terminal marker included), or the requested Seq if none was.
	Next Seq
	// Status is the stream's status as seen at Next: StatusRunning until
	// the terminal marker has been read, then StatusEnded or StatusFailed.
	// A reader is done when Status.Done().
	Status Status
	// Reason is the failure reason when Status is StatusFailed.
	Reason string
	// Last is the stream's newest entry; More reports that entries after
	// Next exist (Next.Less(Last)).
	Last Seq
	More bool
	// Skipped is the number of entries between the requested Seq and the
	// first entry returned that are no longer in the stream (trimmed,
	// MAXLEN). 0 means the page continues the reader's position exactly.
	Skipped int64
}

// Read returns up to count entries of the stream of session id after
// after (exclusive; the zero Seq reads from the start) in one round trip.
// Pass Page.Next to continue. count is 1..MaxPageSize.
//
// Errors: ErrUnknownStream when the session has no stream (never written
// or expired); a [*ReplacedError] (matching ErrSessionReplaced) when after
// is a position in a stream that was deleted since (with its session, or
// expired) and this is a new one; ErrInvalidArgument, ErrInvalidID.
func (s *Streams) Read(ctx context.Context, id string, after Seq, count int) (_ Page, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opRead, id, 0)
	defer sp.End(&err)
	k, _, err := s.streamKeys("read", id)
	if err != nil {
		return Page{}, err
	}
	if count < 1 || count > MaxPageSize {
		return Page{}, fmt.Errorf("stream: read %q: %w: count %d (1..%d)", id, ErrInvalidArgument, count, MaxPageSize)
	}
	start := "-"
	if !after.IsZero() {
		start = "(" + after.String()
	}
	arr, err := lua.StreamRead.Exec(ctx, s.cfg.Client, []string{k.Out, k.OutMeta}, []string{start, strconv.Itoa(count)}).ToArray()
	if err != nil {
		return Page{}, scriptError("read", id, err)
	}
	if len(arr) != 2 {
		return Page{}, fmt.Errorf("stream: read %q: %w: stream_read.lua returned %d elements", id, ErrProtocol, len(arr))
	}
	te, err := arr[0].AsXRangeEntry()
	if err != nil {
		return Page{}, fmt.Errorf("stream: read %q: %w: newest entry: %v", id, ErrProtocol, err)
	}
	top, err := parseEntry(te)
	if err != nil {
		return Page{}, fmt.Errorf("stream: read %q: %w", id, err)
	}
	es, err := arr[1].AsXRange()
	if err != nil {
		return Page{}, fmt.Errorf("stream: read %q: %w: entries: %v", id, ErrProtocol, err)
	}
	p := Page{Next: after, Status: StatusRunning, Last: top.Seq, Chunks: make([]Chunk, 0, len(es))}
	for i, e := range es {
		c, err := parseEntry(e)
		if err != nil {
			return Page{}, fmt.Errorf("stream: read %q: %w", id, err)
		}
		if i == 0 {
			p.Skipped = c.Seq.N() - after.N() - 1
		}
		p.Next = c.Seq
		if c.Kind != KindChunk {
			p.Status, p.Reason = statusOf(c.Kind), string(c.Data)
			continue
		}
		p.Chunks = append(p.Chunks, c)
	}
	if len(es) == 0 {
		if after == top.Seq && top.Kind != KindChunk {
			// The reader is past the terminal marker already.
			p.Status, p.Reason = statusOf(top.Kind), string(top.Data)
		}
		if after.Less(top.Seq) {
			// Entries after `after` existed but are gone... which XRANGE
			// cannot return empty for: the newest entry is never trimmed.
			p.Skipped = top.Seq.N() - after.N()
		}
	}
	if p.Skipped < 0 {
		// The entries after `after` are numbered from below it: they are
		// not of the stream that issued it (one without an origin recorded,
		// which the script checks otherwise).
		return Page{}, fenced.Wrap("stream", "read", id, &ReplacedError{ID: id, What: "stream position"})
	}
	p.More = p.Next.Less(top.Seq)
	return p, nil
}

// Follower iterates over the chunks of a stream with blocking reads, in the
// style of bufio.Scanner:
//
//	f := streams.Follow(id, lastSeen)
//	for f.Next(ctx) {
//		use(f.Chunk())
//	}
//	if err := f.Err(); err != nil { ... }
//	// f.Status() is StatusEnded or StatusFailed (f.Reason()).
//
// Next stops (returns false) at the terminal marker, on an error, or when
// ctx is done. To resume later, possibly in another process, Follow again
// from f.Last(): the follower continues exactly after it, without gaps or
// duplicates. A Follower is not safe for concurrent use.
type Follower struct {
	s         *Streams
	id        string
	last      Seq
	buf       []Chunk
	cur       Chunk
	status    Status
	reason    string
	err       error
	checked   bool // the stream was read with the script since the last timeout
	PageSize  int  // entries per read; default 256
	blockTime time.Duration
}

// Follow returns a Follower of the stream of session id, starting after
// after (the zero Seq: from the start). Nothing is sent before Next.
func (s *Streams) Follow(id string, after Seq) *Follower {
	return &Follower{s: s, id: id, last: after, status: StatusRunning, PageSize: 256, blockTime: s.opts.Block}
}

// Chunk returns the chunk Next advanced to.
func (f *Follower) Chunk() Chunk { return f.cur }

// Last returns the Seq of the last entry consumed: the chunk returned by
// Chunk, or the terminal marker once Next returned false at the end.
func (f *Follower) Last() Seq { return f.last }

// Status returns StatusRunning until the follower reached the terminal
// marker.
func (f *Follower) Status() Status { return f.status }

// Reason returns the failure reason once Status is StatusFailed.
func (f *Follower) Reason() string { return f.reason }

// Err returns the error that stopped Next, nil at the terminal marker. A
// [*TrimmedError] means entries after Last were trimmed before the follower
// read them; a [*ReplacedError] that the stream was deleted (with its
// session, or expired) and written again since Last, so its entries are
// not a continuation; ctx errors are returned as they are.
func (f *Follower) Err() error { return f.err }

// Next advances to the next chunk, blocking (XREAD BLOCK, at most
// Options.Block per round trip) until one is appended, the stream ends or
// fails, or ctx is done.
func (f *Follower) Next(ctx context.Context) bool {
	for {
		if f.err != nil || f.status.Done() {
			return false
		}
		if len(f.buf) > 0 {
			c := f.buf[0]
			f.buf = f.buf[1:]
			if c.Seq.N() != f.last.N()+1 {
				// Trimmed entries, or a stream that was deleted and
				// written again: the script read tells which.
				f.buf, f.checked = nil, false
				continue
			}
			f.last = c.Seq
			if c.Kind != KindChunk {
				f.status, f.reason = statusOf(c.Kind), string(c.Data)
				f.buf = nil
				return false
			}
			f.cur = c
			return true
		}
		if err := ctx.Err(); err != nil {
			f.err = err
			return false
		}
		if !f.checked {
			// One script read: detects a missing stream and a follower
			// already past the terminal marker.
			p, err := f.s.Read(ctx, f.id, f.last, f.pageSize())
			if err != nil {
				f.err = err
				return false
			}
			f.checked = true
			if p.Skipped > 0 {
				f.err = &TrimmedError{ID: f.id, After: f.last, Next: p.Next, Missed: p.Skipped}
				return false
			}
			if len(p.Chunks) == 0 && p.Status.Done() {
				f.last, f.status, f.reason = p.Next, p.Status, p.Reason
				return false
			}
			f.buf = append(f.buf, p.Chunks...)
			if p.Next != f.last && (len(p.Chunks) == 0 || p.Chunks[len(p.Chunks)-1].Seq != p.Next) {
				// The page ends with the terminal marker.
				f.buf = append(f.buf, Chunk{Seq: p.Next, Kind: kindOf(p.Status), Data: []byte(p.Reason)})
			}
			continue
		}
		es, err := f.block(ctx)
		if err != nil {
			f.err = err
			return false
		}
		if es == nil {
			f.checked = false // timed out: check the stream again
		}
		f.buf = append(f.buf, es...)
	}
}

func (f *Follower) pageSize() int {
	if f.PageSize < 1 || f.PageSize > MaxPageSize {
		return 256
	}
	return f.PageSize
}

// block runs one XREAD BLOCK after f.last; nil, nil on timeout.
func (f *Follower) block(ctx context.Context) ([]Chunk, error) {
	k, _, err := f.s.streamKeys("follow", f.id)
	if err != nil {
		return nil, err
	}
	wait := f.blockTime
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < wait {
			wait = max(d, time.Millisecond)
		}
	}
	c := f.s.cfg.Client
	res, err := c.Do(ctx, c.B().Xread().Count(int64(f.pageSize())).Block(wait.Milliseconds()).
		Streams().Key(k.Out).Id(f.last.String()).Build()).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, scriptError("follow", f.id, err)
	}
	var out []Chunk
	for _, es := range res {
		for _, e := range es {
			ch, err := parseEntry(e)
			if err != nil {
				return nil, fmt.Errorf("stream: follow %q: %w", f.id, err)
			}
			out = append(out, ch)
		}
	}
	if out == nil {
		out = []Chunk{}
	}
	return out, nil
}

func kindOf(s Status) Kind {
	switch s {
	case StatusEnded:
		return KindEnd
	case StatusFailed:
		return KindFail
	}
	return KindChunk
}
