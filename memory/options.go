package memory

import (
	"fmt"
	"github.com/fencekit/fencekit/telemetry"
	"strings"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
)

// Backend selects how Search finds the nearest records.
type Backend int

// The backends.
const (
	// BackendAuto probes the server once in New and picks BackendFT when
	// FT.* answers and the client is not a cluster client, else
	// BackendVSet when vector sets answer, else BackendScan. The probe
	// result is reported by Store.Features.
	BackendAuto Backend = iota
	// BackendScan scores every candidate record in Go (exact top-k), with
	// the vectors read through rueidis client-side caching.
	BackendScan
	// BackendFT searches one FT index (FT.CREATE ... ON HASH over the
	// record hashes, created on first use) with a KNN query (Redis 8 Query
	// Engine, Redis Stack, valkey-search). It is meant for standalone and
	// Sentinel deployments and for servers whose FT.SEARCH covers a whole
	// cluster (Redis 8 Query Engine with its coordinator, valkey-search);
	// on Redis Stack 7 and other per-shard FT indexes a cluster search
	// sees one shard only, so cluster users should use BackendScan (or
	// BackendVSet) unless their server searches cluster-wide. BackendAuto
	// never picks it on a cluster client.
	BackendFT
	// BackendVSet keeps one Redis 8 vector set per scope next to the
	// record hashes (written by the same scripts) and searches them with
	// VSIM, one per scope of the search.
	BackendVSet
)

// String returns "auto", "scan", "ft" or "vset".
func (b Backend) String() string {
	switch b {
	case BackendAuto:
		return "auto"
	case BackendScan:
		return "scan"
	case BackendFT:
		return "ft"
	case BackendVSet:
		return "vset"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// Defaults and limits.
const (
	DefaultPrefix      = "fencekit"
	DefaultTagDepth    = 1
	DefaultMaxText     = 64 << 10
	DefaultMaxMetadata = 4 << 10
	DefaultScanLimit   = 20000
	DefaultCacheTTL    = 10 * time.Minute
	DefaultVSetEF      = 1000
	DefaultCallTimeout = 5 * time.Second
	// MaxK is the largest SearchOptions.K.
	MaxK = 1000
	// MaxDim is the largest Options.Dim.
	MaxDim = 16384
	// MaxBatch is the most records one Put, Get or Delete takes.
	MaxBatch = 1000
	// MaxScopeLen is the longest scope in bytes.
	MaxScopeLen = 256
	// MaxCategories is the most categories of one record; MaxCategoryLen
	// the longest category in bytes.
	MaxCategories  = 64
	MaxCategoryLen = 128
	// MaxListLimit is the largest List page.
	MaxListLimit = 1000
	// DefaultListLimit is the List page size when ListOptions.Limit is 0.
	DefaultListLimit = 100
)

// Options configure a Store. Dim is required; every other zero field
// means its documented default.
type Options struct {
	// Prefix is the first part of every key. It must be the Prefix of the
	// lock.Locker whose locks fence writes. Default: "fencekit".
	Prefix string

	// Dim is the dimension of every embedding (1..MaxDim). Required.
	Dim int

	// Backend selects the search backend. Default: BackendAuto.
	Backend Backend

	// TagDepth is how many leading segments of a scope form its root, the
	// cluster hash tag "{mem:<root>}" of all its keys. A scope must have at
	// least TagDepth segments. With the default 1, "user/42/project/7"
	// lives in slot {mem:user}: every scope under "user" shares one slot,
	// so a search of "user" with descendants is a single-slot read, but
	// all of "user" lives on one cluster node. With TagDepth 2 the same
	// scope lives in {mem:user/42}: users spread over the cluster, and
	// "user" alone is no longer a valid scope. Default: 1.
	TagDepth int

	// Relaxed changes the check of fenced writes like statestore's
	// Options.Relaxed: the token must be the newest issued for the lock,
	// even if its lease ended. Default: strict (the lock record must carry
	// the token).
	Relaxed bool

	// Telemetry configures spans, metrics (among them the search duration
	// by backend) and logs (the backend chosen); see package telemetry.
	Telemetry telemetry.Options

	// CallTimeout bounds every round trip to Redis, New's probe included,
	// whatever context the caller gives. A call that gets no reply within
	// it (Redis down, unreachable, paused) fails with an error matching
	// fencing.ErrNoReply that wraps the transport or timeout error; a
	// write that fails so may or may not have been applied. Default: 5s.
	CallTimeout time.Duration

	// MaxText bounds Record.Text in bytes. Default: 64 KiB.
	MaxText int

	// MaxMetadata bounds Record.Metadata, measured as the length of its
	// JSON encoding. Default: 4 KiB.
	MaxMetadata int

	// ScanLimit bounds the number of records one scan search scores (after
	// the scope and time-window selection). A search above it fails with a
	// [*ScanLimitError]. At 768 dimensions, 20,000 records hold about 60 MiB
	// of vectors in the client-side cache. Negative: no limit.
	// Default: 20000.
	ScanLimit int

	// FTIndex is the name of the ft backend's index. Default:
	// "<Prefix>:mem:idx". The index is created on first use; an index of
	// that name that already exists is used as it is (so Stores of one
	// Prefix must agree on Dim and FTHNSW).
	FTIndex string

	// FTHNSW makes the ft backend's index HNSW (M 16, EF_CONSTRUCTION
	// 200; approximate) instead of FLAT (exact).
	FTHNSW bool

	// VSetQuant is the quantisation flag of every VADD of the vset
	// backend: "NOQUANT" (float32, the default), "Q8" or "BIN". All Stores
	// writing a scope root must use the same one: the root records the flag
	// of its first vset Put, and a Put with another fails with
	// [ErrInvalidArgument] before anything is written (a vector set would
	// refuse the VADD only when the script reaches it). Reset of the whole
	// root clears the record. Similarities are recomputed from the
	// stored float32 vectors whatever the flag; the flag only changes which
	// candidates the server finds.
	VSetQuant string

	// VSetTruth adds TRUTH to every VSIM: a linear scan of the vector set
	// (exact candidates) instead of the HNSW graph.
	VSetTruth bool

	// VSetEF is the EF of every VSIM of the vset backend: how many
	// candidates the HNSW search keeps while it walks the graph (raised to
	// the COUNT asked for). Larger is slower and finds more of the true
	// nearest records. Default: [DefaultVSetEF] (1000): on 10,000 random
	// unit vectors of 768 dimensions (no structure: the hardest case) it
	// finds at least 97% of the exact top 10, filtered or not, where the
	// server's own default (Redis 8.0: 100) finds under half
	// (TestVSetRecall).
	VSetEF int

	// CacheTTL is the client-side cache lifetime of the keys a scan search
	// reads (the server invalidates them on every write anyway; the TTL
	// only bounds how long unused entries occupy memory). Default: 10 min.
	CacheTTL time.Duration
}

// Validate reports the first invalid field as an error matching
// ErrInvalidArgument.
func (o Options) Validate() error {
	if o.Prefix != "" {
		if err := keys.ValidatePrefix(o.Prefix); err != nil {
			return fmt.Errorf("memory: %w: Prefix: %v", ErrInvalidArgument, err)
		}
	}
	switch {
	case o.Dim < 1 || o.Dim > MaxDim:
		return fmt.Errorf("memory: %w: Dim %d not in [1, %d]", ErrInvalidArgument, o.Dim, MaxDim)
	case o.Backend < BackendAuto || o.Backend > BackendVSet:
		return fmt.Errorf("memory: %w: Backend %v", ErrInvalidArgument, o.Backend)
	case o.TagDepth < 0:
		return fmt.Errorf("memory: %w: TagDepth %d is negative", ErrInvalidArgument, o.TagDepth)
	case o.CallTimeout < 0:
		return fmt.Errorf("memory: %w: CallTimeout %v is negative", ErrInvalidArgument, o.CallTimeout)
	case o.MaxText < 0:
		return fmt.Errorf("memory: %w: MaxText %d is negative", ErrInvalidArgument, o.MaxText)
	case o.MaxMetadata < 0:
		return fmt.Errorf("memory: %w: MaxMetadata %d is negative", ErrInvalidArgument, o.MaxMetadata)
	case o.CacheTTL < 0:
		return fmt.Errorf("memory: %w: CacheTTL %v is negative", ErrInvalidArgument, o.CacheTTL)
	case o.VSetEF < 0:
		return fmt.Errorf("memory: %w: VSetEF %d < 0", ErrInvalidArgument, o.VSetEF)
	case o.VSetQuant != "" && o.VSetQuant != "NOQUANT" && o.VSetQuant != "Q8" && o.VSetQuant != "BIN":
		return fmt.Errorf("memory: %w: VSetQuant %q (NOQUANT, Q8 or BIN)", ErrInvalidArgument, o.VSetQuant)
	case strings.ContainsFunc(o.FTIndex, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("memory: %w: FTIndex %q contains a space or control character", ErrInvalidArgument, o.FTIndex)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.TagDepth == 0 {
		o.TagDepth = DefaultTagDepth
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.MaxText == 0 {
		o.MaxText = DefaultMaxText
	}
	if o.MaxMetadata == 0 {
		o.MaxMetadata = DefaultMaxMetadata
	}
	if o.ScanLimit == 0 {
		o.ScanLimit = DefaultScanLimit
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.FTIndex == "" {
		o.FTIndex = o.Prefix + ":mem:idx"
	}
	if o.VSetQuant == "" {
		o.VSetQuant = "NOQUANT"
	}
	if o.VSetEF == 0 {
		o.VSetEF = DefaultVSetEF
	}
	return o
}
