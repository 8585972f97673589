package stream

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/scripts/lua"
)

// Group creates the consumer group group on the stream of session id,
// delivering entries from the start of the stream; it reports whether it
// created the group (false: it existed, which is not an error). It creates
// an empty stream if there is none, with the running TTL. One round trip.
func (s *Streams) Group(ctx context.Context, id, group string) (_ bool, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opGroup, id, 0)
	defer sp.End(&err)
	k, _, err := s.streamKeys("group", id)
	if err != nil {
		return false, err
	}
	if err := checkName("group", group); err != nil {
		return false, fmt.Errorf("stream: group %q: %w", id, err)
	}
	n, err := lua.StreamGroup.Exec(ctx, s.cfg.Client, []string{k.Out}, []string{group, s.ttlArg}).AsInt64()
	if err != nil {
		return false, scriptError("group", id, err)
	}
	return n == 1, nil
}

// ReadGroup delivers up to count entries of the stream of session id that
// group has not delivered yet to consumer (XREADGROUP ... >), waiting up to
// block for one (0: do not wait). Entries stay pending for the group until
// acknowledged with Ack. Every entry is delivered, the terminal marker
// included (Chunk.Kind). A gap in Chunk.Seq.N() between consecutive
// deliveries of a group means entries were trimmed before the group read
// them. ErrUnknownGroup without the group.
func (s *Streams) ReadGroup(ctx context.Context, id, group, consumer string, count int, block time.Duration) (_ []Chunk, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opReadGroup, id, 0)
	defer sp.End(&err)
	k, _, err := s.streamKeys("read group", id)
	if err != nil {
		return nil, err
	}
	if err := checkGroupArgs(group, consumer, count); err != nil {
		return nil, fmt.Errorf("stream: read group %q: %w", id, err)
	}
	if block < 0 {
		return nil, fmt.Errorf("stream: read group %q: %w: negative block %v", id, ErrInvalidArgument, block)
	}
	c := s.cfg.Client
	var cmd rueidis.Completed
	if block > 0 {
		cmd = c.B().Xreadgroup().Group(group, consumer).Count(int64(count)).Block(max(block.Milliseconds(), 1)).
			Streams().Key(k.Out).Id(">").Build()
	} else {
		cmd = c.B().Xreadgroup().Group(group, consumer).Count(int64(count)).
			Streams().Key(k.Out).Id(">").Build()
	}
	res, err := c.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, scriptError("read group", id, err)
	}
	var out []Chunk
	for _, es := range res {
		for _, e := range es {
			ch, err := parseEntry(e)
			if err != nil {
				return nil, fmt.Errorf("stream: read group %q: %w", id, err)
			}
			out = append(out, ch)
		}
	}
	return out, nil
}

// Ack acknowledges entries delivered to group and returns how many were
// pending. One round trip.
func (s *Streams) Ack(ctx context.Context, id, group string, seqs ...Seq) (acked int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opAck, id, 0)
	defer sp.End(&err)
	k, _, err := s.streamKeys("ack", id)
	if err != nil {
		return 0, err
	}
	if err := checkName("group", group); err != nil {
		return 0, fmt.Errorf("stream: ack %q: %w", id, err)
	}
	if len(seqs) == 0 {
		return 0, nil
	}
	ids := make([]string, len(seqs))
	for i, q := range seqs {
		if q.IsZero() {
			return 0, fmt.Errorf("stream: ack %q: %w: zero Seq", id, ErrInvalidSeq)
		}
		ids[i] = q.String()
	}
	c := s.cfg.Client
	n, err := c.Do(ctx, c.B().Xack().Key(k.Out).Group(group).Id(ids...).Build()).AsInt64()
	if err != nil {
		return 0, scriptError("ack", id, err)
	}
	return n, nil
}

// Claimed is what Claim returns.
type Claimed struct {
	// Chunks are the pending entries now delivered to the claiming
	// consumer (they stay pending until acknowledged).
	Chunks []Chunk
	// Next is where to continue claiming; the zero Seq when the scan of
	// the pending list is complete.
	Next Seq
	// Deleted are pending entries that are no longer in the stream
	// (trimmed); Redis removed them from the pending list. Always empty on
	// miniredis, which leaves them pending (see the package documentation).
	Deleted []Seq
}

// Claim transfers to consumer up to count entries pending for group for at
// least minIdle (delivered to a consumer that has not acknowledged them,
// e.g. because it crashed), scanning the pending list from start (the zero
// Seq: from the beginning), with XAUTOCLAIM. One round trip.
func (s *Streams) Claim(ctx context.Context, id, group, consumer string, minIdle time.Duration, start Seq, count int) (_ Claimed, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opClaim, id, 0)
	defer sp.End(&err)
	k, _, err := s.streamKeys("claim", id)
	if err != nil {
		return Claimed{}, err
	}
	if err := checkGroupArgs(group, consumer, count); err != nil {
		return Claimed{}, fmt.Errorf("stream: claim %q: %w", id, err)
	}
	if minIdle < 0 {
		return Claimed{}, fmt.Errorf("stream: claim %q: %w: negative minIdle %v", id, ErrInvalidArgument, minIdle)
	}
	c := s.cfg.Client
	arr, err := c.Do(ctx, c.B().Xautoclaim().Key(k.Out).Group(group).Consumer(consumer).
		MinIdleTime(fmt.Sprint(minIdle.Milliseconds())).Start(start.String()).Count(int64(count)).Build()).ToArray()
	if err != nil {
		return Claimed{}, scriptError("claim", id, err)
	}
	if len(arr) < 2 {
		return Claimed{}, fmt.Errorf("stream: claim %q: %w: XAUTOCLAIM returned %d elements", id, ErrProtocol, len(arr))
	}
	var r Claimed
	next, err := arr[0].ToString()
	if err == nil {
		r.Next, err = ParseSeq(next)
	}
	if err != nil {
		return Claimed{}, fmt.Errorf("stream: claim %q: %w: next id: %v", id, ErrProtocol, err)
	}
	es, err := arr[1].AsXRange()
	if err != nil {
		return Claimed{}, fmt.Errorf("stream: claim %q: %w: entries: %v", id, ErrProtocol, err)
	}
	for _, e := range es {
		if e.FieldValues == nil {
			continue // deleted (Redis 6.2 reports them like this)
		}
		ch, err := parseEntry(e)
		if err != nil {
			return Claimed{}, fmt.Errorf("stream: claim %q: %w", id, err)
		}
		r.Chunks = append(r.Chunks, ch)
	}
	if len(arr) > 2 {
		del, err := arr[2].AsStrSlice()
		if err != nil {
			return Claimed{}, fmt.Errorf("stream: claim %q: %w: deleted ids: %v", id, ErrProtocol, err)
		}
		for _, d := range del {
			q, err := ParseSeq(d)
			if err != nil {
				return Claimed{}, fmt.Errorf("stream: claim %q: %w: deleted id %q", id, ErrProtocol, d)
			}
			r.Deleted = append(r.Deleted, q)
		}
	}
	return r, nil
}

// Pending returns how many entries are pending (delivered, not
// acknowledged) for group. One round trip.
func (s *Streams) Pending(ctx context.Context, id, group string) (pending int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opPending, id, 0)
	defer sp.End(&err)
	k, _, err := s.streamKeys("pending", id)
	if err != nil {
		return 0, err
	}
	if err := checkName("group", group); err != nil {
		return 0, fmt.Errorf("stream: pending %q: %w", id, err)
	}
	c := s.cfg.Client
	arr, err := c.Do(ctx, c.B().Xpending().Key(k.Out).Group(group).Build()).ToArray()
	if err != nil {
		return 0, scriptError("pending", id, err)
	}
	if len(arr) == 0 {
		return 0, fmt.Errorf("stream: pending %q: %w: empty XPENDING reply", id, ErrProtocol)
	}
	return arr[0].AsInt64()
}

func checkGroupArgs(group, consumer string, count int) error {
	if err := checkName("group", group); err != nil {
		return err
	}
	if err := checkName("consumer", consumer); err != nil {
		return err
	}
	if count < 1 || count > MaxPageSize {
		return fmt.Errorf("%w: count %d (1..%d)", ErrInvalidArgument, count, MaxPageSize)
	}
	return nil
}

// checkName accepts group and consumer names: 1..256 bytes of valid UTF-8
// without control characters.
func checkName(what, s string) error {
	if s == "" || len(s) > 256 || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s name %q", ErrInvalidArgument, what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s name %q contains a control character", ErrInvalidArgument, what, s)
		}
	}
	return nil
}
