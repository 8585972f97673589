package stream

import (
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/statestore"
)

// Defaults applied to zero fields of Options.
const (
	DefaultMaxLen        = 10_000
	DefaultMaxChunkBytes = 256 << 10
	DefaultFinishedTTL   = time.Hour
	DefaultBlock         = 5 * time.Second
	// MaxPageSize bounds the count of Read, ReadGroup and Claim.
	MaxPageSize = 10_000
)

// Options configure Streams. The zero value is ready to use.
type Options struct {
	// MaxLen bounds each stream with XADD MAXLEN ~ MaxLen (approximate
	// trimming; see the package documentation for exactly what it drops).
	// Negative: no trimming. Default: DefaultMaxLen.
	MaxLen int64
	// MaxChunkBytes bounds each chunk and failure reason. Default:
	// DefaultMaxChunkBytes.
	MaxChunkBytes int
	// RunningTTL is the TTL of a running stream's keys, extended (never
	// shortened) by each Append. Negative: no expiry. Default: the state
	// store's TTL.
	RunningTTL time.Duration
	// FinishedTTL is the TTL End and Fail give the stream's keys.
	// Negative: keep the running TTL. Default: DefaultFinishedTTL, or the
	// running TTL if that is shorter.
	FinishedTTL time.Duration
	// Block bounds each blocking XREAD of Follow; the follower checks the
	// stream still exists between blocks. Default: DefaultBlock.
	Block time.Duration
}

// Validate reports the first invalid field as an error matching
// ErrInvalidArgument.
func (o Options) Validate() error {
	switch {
	case o.MaxChunkBytes < 0:
		return fmt.Errorf("stream: %w: MaxChunkBytes %d is negative", ErrInvalidArgument, o.MaxChunkBytes)
	case o.RunningTTL > 0 && o.RunningTTL < time.Millisecond:
		return fmt.Errorf("stream: %w: RunningTTL %v is shorter than 1ms", ErrInvalidArgument, o.RunningTTL)
	case o.FinishedTTL > 0 && o.FinishedTTL < time.Millisecond:
		return fmt.Errorf("stream: %w: FinishedTTL %v is shorter than 1ms", ErrInvalidArgument, o.FinishedTTL)
	case o.Block < 0 || (o.Block > 0 && o.Block < time.Millisecond):
		return fmt.Errorf("stream: %w: Block %v is not a positive number of ms", ErrInvalidArgument, o.Block)
	}
	return nil
}

// Status is the status of a stream.
type Status string

// Statuses.
const (
	StatusRunning Status = "running"
	StatusEnded   Status = "ended"
	StatusFailed  Status = "failed"
)

// Done reports whether s is terminal (ended or failed).
func (s Status) Done() bool { return s == StatusEnded || s == StatusFailed }

// Kind is the kind of a stream entry.
type Kind string

// Entry kinds: the field name of the entry.
const (
	KindChunk Kind = "c"
	KindEnd   Kind = "end"
	KindFail  Kind = "fail"
)

// Chunk is one entry of a stream. Read and Follow return data chunks only
// (KindChunk) and report the terminal marker through the status; consumer
// groups deliver every entry, the terminal marker included.
type Chunk struct {
	Seq  Seq
	Kind Kind
	// Data is the chunk, or the failure reason of a KindFail entry.
	Data []byte
}

// Streams appends to and reads the output streams of the sessions of a
// [statestore.Store], sharing its client, key prefix, fencing mode and
// (by default) TTL. A Streams is safe for concurrent use.
type Streams struct {
	cfg  *fenced.Config
	opts Options

	maxLenArg, ttlArg, fttlArg string
}

// New returns Streams for the sessions of store with default Options. It
// panics if store is nil.
func New(store *statestore.Store) *Streams {
	s, err := NewWithOptions(store, Options{})
	if err != nil {
		panic(err) // the zero Options are valid
	}
	return s
}

// NewWithOptions is New with options; invalid options get an error
// matching ErrInvalidArgument. It panics if store is nil.
func NewWithOptions(store *statestore.Store, opts Options) (*Streams, error) {
	if store == nil {
		panic("stream: New with a nil *statestore.Store")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg := fenced.StoreConfig(store)
	if opts.MaxLen == 0 {
		opts.MaxLen = DefaultMaxLen
	}
	if opts.MaxChunkBytes == 0 {
		opts.MaxChunkBytes = DefaultMaxChunkBytes
	}
	if opts.RunningTTL == 0 {
		opts.RunningTTL = cfg.TTL
		if opts.RunningTTL <= 0 {
			opts.RunningTTL = -1
		}
	}
	if opts.FinishedTTL == 0 {
		opts.FinishedTTL = DefaultFinishedTTL
		if opts.RunningTTL > 0 && opts.RunningTTL < opts.FinishedTTL {
			opts.FinishedTTL = opts.RunningTTL
		}
	}
	if opts.Block == 0 {
		opts.Block = DefaultBlock
	}
	s := &Streams{cfg: cfg, opts: opts, maxLenArg: "0", ttlArg: "0", fttlArg: "0"}
	if opts.MaxLen > 0 {
		s.maxLenArg = strconv.FormatInt(opts.MaxLen, 10)
	}
	if opts.RunningTTL > 0 {
		s.ttlArg = strconv.FormatInt(opts.RunningTTL.Milliseconds(), 10)
	}
	if opts.FinishedTTL > 0 {
		s.fttlArg = strconv.FormatInt(opts.FinishedTTL.Milliseconds(), 10)
	}
	return s, nil
}

// Options returns the options in effect, defaults filled in (a negative
// TTL: no expiry).
func (s *Streams) Options() Options { return s.opts }

// MetaKey returns the key of the metadata hash of the stream of session id
// under prefix: "<prefix>:{<id>}:outmeta", in the session's hash slot.
func MetaKey(prefix, id string) string { return keys.ForSession(prefix, id).OutMeta }

// streamKeys validates id and returns the session's keys and the metadata key.
func (s *Streams) streamKeys(op, id string) (keys.Session, string, error) {
	k, err := s.cfg.Keys(id)
	if err != nil {
		return k, "", fmt.Errorf("stream: %s: %w", op, err)
	}
	return k, MetaKey(s.cfg.Prefix, id), nil
}

func redisErr(err error) (string, bool) {
	rerr, ok := rueidis.IsRedisErr(err)
	if !ok || rueidis.IsRedisNil(err) {
		return "", false
	}
	return rerr.Error(), true
}

// parseEntry turns a stream entry into a Chunk.
func parseEntry(e rueidis.XRangeEntry) (Chunk, error) {
	q, err := ParseSeq(e.ID)
	if err != nil || q.IsZero() {
		return Chunk{}, fmt.Errorf("%w: entry id %q", ErrCorrupt, e.ID)
	}
	if len(e.FieldValues) != 1 {
		return Chunk{}, fmt.Errorf("%w: entry %s has %d fields", ErrCorrupt, e.ID, len(e.FieldValues))
	}
	for f, v := range e.FieldValues {
		switch k := Kind(f); k {
		case KindChunk, KindEnd, KindFail:
			return Chunk{Seq: q, Kind: k, Data: []byte(v)}, nil
		}
		return Chunk{}, fmt.Errorf("%w: entry %s has field %q", ErrCorrupt, e.ID, f)
	}
	panic("unreachable")
}

func statusOf(k Kind) Status {
	switch k {
	case KindEnd:
		return StatusEnded
	case KindFail:
		return StatusFailed
	}
	return StatusRunning
}
