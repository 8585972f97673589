package stream

import (
	"context"
	"fmt"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Append adds chunk to the output stream of session id, fenced by token,
// and returns its Seq. It is one round trip (one script), which creates the
// stream on first use, trims it (MAXLEN ~), extends its TTL and refreshes
// the TTL of the session's other keys (the state store's TTL), so a session
// whose stream is written does not expire under it.
//
// Errors: ErrTooLarge for a chunk longer than MaxChunkBytes, ErrInvalidID,
// ErrInvalidArgument for a zero token (before anything is sent); an
// [*EndedError] after End or Fail; [*fencing.StaleTokenError] or
// [*NotHolderError] for a writer that no longer holds the session (see the
// package documentation). A rejected append writes nothing.
//
// Append is not retried after a lost reply (it would append twice).
func (s *Streams) Append(ctx context.Context, id string, token fencing.Token, chunk []byte) (_ Seq, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opAppend, id, token)
	defer sp.End(&err)
	return s.write(ctx, "append", id, token, KindChunk, chunk)
}

// End appends the terminal marker of a stream that completed: readers see
// status ended after every chunk before it, and later appends get
// ErrEnded. The stream's keys get the finished TTL. Errors as for Append;
// ending a stream twice gets ErrEnded.
func (s *Streams) End(ctx context.Context, id string, token fencing.Token) (_ Seq, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opEnd, id, token)
	defer sp.End(&err)
	return s.write(ctx, "end", id, token, KindEnd, nil)
}

// Fail is End for a stream that failed, with a reason (at most
// MaxChunkBytes) that readers get in [Page.Reason].
func (s *Streams) Fail(ctx context.Context, id string, token fencing.Token, reason string) (_ Seq, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opFail, id, token)
	defer sp.End(&err)
	return s.write(ctx, "fail", id, token, KindFail, []byte(reason))
}

func (s *Streams) write(ctx context.Context, op, id string, token fencing.Token, kind Kind, data []byte) (Seq, error) {
	k, _, err := s.streamKeys(op, id)
	if err != nil {
		return Seq{}, err
	}
	if err := fenced.CheckToken(token); err != nil {
		return Seq{}, fmt.Errorf("stream: %s %q: %w", op, id, err)
	}
	if len(data) > s.opts.MaxChunkBytes {
		return Seq{}, fmt.Errorf("stream: %s %q: %w: %d bytes (max %d)", op, id, ErrTooLarge, len(data), s.opts.MaxChunkBytes)
	}
	// The session's fenced-write layout (fenced.NewWrite): the script
	// refreshes every key of the session, not only the stream's.
	w := s.cfg.NewWrite(&k, token, 5)
	w.Args = append(w.Args, s.ttlArg, s.fttlArg, string(kind), s.maxLenArg, string(data))
	arr, err := s.cfg.Exec(ctx, lua.StreamAppend, w)
	if err != nil {
		return Seq{}, scriptError(op, id, err)
	}
	str, err := fenced.Str(arr, 0, "stream_append.lua")
	if err != nil {
		return Seq{}, err
	}
	q, err := ParseSeq(str)
	if err != nil {
		return Seq{}, fmt.Errorf("%w: stream_append.lua returned id %q", ErrProtocol, str)
	}
	return q, nil
}
