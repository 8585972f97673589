// Package memory keeps long-term agent memory in Redis: records with a
// text, an embedding, a hierarchical scope, categories, metadata, an
// importance and a creation time, searchable by cosine similarity with
// exact filters.
//
// A [Store] is made with [New] from a rueidis client and [Options] (Dim is
// required). [Store.Put] writes one record or a batch atomically (one Lua
// script), [Store.Get], [Store.GetMany], [Store.Delete], [Store.List]
// (cursor pages, newest first), [Store.Count], [Store.Scopes],
// [Store.Categories] and [Store.Reset] manage them, and [Store.Search]
// returns the top K records for a query vector with [SearchOptions].
// Vectors are stored L2-normalised as little-endian float32 blobs, so the
// similarity is a dot product. Bad input fails with the sentinel errors of
// errors.go, before anything is sent.
//
//	store, err := memory.New(client, memory.Options{Dim: 3})
//	...
//	err = store.Put(ctx, []memory.Record{
//		{ID: "tea", Scope: "user/42", Text: "prefers green tea", Embedding: []float32{1, 0.1, 0}},
//	})
//	...
//	res, err := store.Search(ctx, []float32{1, 0, 0},
//		memory.SearchOptions{K: 5, Scope: "user/42", IncludeDescendants: true})
//
// (the package Example runs this on an in-process server). The default
// backend is chosen by what the server has: FT.* (ft, not on a cluster
// client), else vector sets
// (vset, Redis 8: approximate, recall@10 of 0.97 or more on 10,000 random
// 768-dimension vectors with the default [Options].VSetEF), else the exact
// scan in Go (any server, e.g. Redis 7 and Valkey 9). The rest of this
// page is the detail: keys, fencing, backends, consistency.
//
// # Keys and cluster slots
//
// A scope is a '/'-separated path ("user/42/project/7"). Its first
// Options.TagDepth segments are its root, and every key of a root carries
// the hash tag {mem:<root>}, so a root's records, indexes and counters
// share one cluster slot and every script and every search (descendants
// included) touches a single slot:
//
//	<prefix>:{mem:<root>}:r:<id>      hash: id scope text vec cats sc sh meta imp ts [exp]
//	<prefix>:{mem:<root>}:sx:<scope>  zset: id -> created_at ms (one per scope)
//	<prefix>:{mem:<root>}:vs:<scope>  vector set of the scope (vset backend only)
//	<prefix>:{mem:<root>}:mscopes     hash: scope -> number of records
//	<prefix>:{mem:<root>}:mexp        zset: "<scope>\n<id>" -> expiry ms (records with a TTL)
//	<prefix>:{mem:<root>}:mttl        hash: id -> scope (records with a TTL, until swept)
//	<prefix>:{mem:<root>}:mmeta       hash: fence (highest token accepted), ep (write epoch), vq
//	<prefix>:{mem:<root>}:lock/fence  the lock named "mem:<root>" (package lock)
//
// The trade-off of the default TagDepth 1 is that everything under one
// first segment lives on one cluster node; TagDepth 2 spreads "user/1",
// "user/2", ... over the cluster but makes "user" alone an invalid scope
// (a search across users would span slots). Record ids are unique per
// root. cats, sc and sh hold hex-encoded categories, scope ancestors
// (comma-separated, the scope included) and the scope: the TAG fields of
// the ft backend's index, whose values need no escaping in hex.
//
// The scripts declare the root's fixed keys and the records and indexes a
// call names; the other keys they write (the index, count and vector set
// of a scope a record leaves, every record of a Reset, the keys of swept
// entries) they read before their first write, and they never write a key
// they emptied in the same call (a record put again is rewritten in
// place). While a Cluster slot is being migrated, a call whose keys are
// not all on the node fails before it changes anything: TRYAGAIN or ASK
// for the declared keys (retried for lua.RefusalBudget), or the error
// "Script attempted to access a non local key" for the others (not
// retried; call again once the migration is done). The fixed keys, scope
// indexes and counts are type-checked first ([ErrCorrupt]).
//
// # Fencing
//
// Writes take an optional [WithToken]. The token must come from the lock
// named [Store.LockName] of the scope ("mem:<root>"), acquired through a
// lock.Locker with the same Prefix; its lock record then lives in the
// root's slot and the write's script checks it exactly like the state
// store does (see package statestore): in strict mode the lock record must
// carry the token ([*NotHolderError], matching fencing.ErrNotHolder), and
// a token older than one the lock issued or the root accepted fails with a
// [*fencing.StaleTokenError]. A refused write changes nothing. Writes
// without a token are not checked.
//
// # Backends
//
// Every backend returns the same results for the same data: the K records
// with the highest canonical cosine similarity (the dot product of the
// normalised query and the stored normalised float32 vector, computed in
// Go in float64, clamped to [-1, 1]) among those passing every filter,
// ties broken by id. [BackendAuto] probes the server once (FT.INFO on a
// missing index, VCARD on a missing key; see [Store.Features]) and picks
// ft, else vset, else scan.
//
// scan: exact top-k in Go (a heap) over the candidates' vectors, read with
// rueidis DoMultiCache so that a repeated search on a client with
// client-side caching (rueidis' default on real Redis) costs no network
// until a write invalidates the keys it touched. Candidate count is
// bounded by Options.ScanLimit (default 20,000; beyond it a
// [*ScanLimitError]). On clients with DisableCache (required for
// miniredis) every search reads everything again: four or five round
// trips. Freshness: every write script increments the root's write epoch
// (field ep of mmeta). A search reads the epoch and the scope counts from
// the server, uncached (the one round trip of a warm search), then reads
// the epoch again through the client-side cache. The cached reads of a
// root share one connection with the invalidations the server sends for
// them, in order, so a cached epoch at least the server's proves that the
// cache holds nothing older than the writes that completed before the
// search began; when the cached epoch is behind (an invalidation still on
// its way, or a read that rueidis shares with an earlier search still in
// flight), the search reads everything from the server. So a search sees
// every write that completed before it started, also while other
// goroutines search on the same client (tested with 5 concurrent
// searchers across two clients on redis-server and the Cluster). Every
// candidate's scope is checked on the read of its fields, and every result
// against every filter after the final read (an index entry can outlive
// its record until swept).
//
// ft (Redis 8 Query Engine, Redis Stack, valkey-search): one index,
// created on the first Put or Search of the Store ("Index already exists"
// is fine; FT.CREATE indexes existing records in the background):
//
//	FT.CREATE <prefix>:mem:idx ON HASH PREFIX 1 <prefix>:{mem: SCHEMA
//	  vec VECTOR FLAT 6 TYPE FLOAT32 DIM <d> DISTANCE_METRIC COSINE
//	  sc TAG SEPARATOR , sh TAG SEPARATOR , cats TAG SEPARATOR , imp NUMERIC ts NUMERIC
//
// (HNSW with Options.FTHNSW), searched with the portable query
//
//	FT.SEARCH <idx> "(@sh:{<hex scope>} @cats:{<hex>|<hex>} @imp:[0.5 +inf] @ts:[(<after> (<before>])=>[KNN <n> @vec $BLOB AS dist]"
//	  RETURN 10 id scope text vec cats meta imp ts exp dist LIMIT 0 <n> PARAMS 2 BLOB <vector> DIALECT 2
//
// (@sc instead of @sh with descendants): only the vector in PARAMS, tag
// values hex-encoded inline, no SORTBY (valkey-search cannot sort by
// distance). FT indexes are per shard on Redis Stack 7 and some managed
// services: ft is for standalone and Sentinel deployments and servers
// whose FT.SEARCH covers the cluster; BackendAuto does not pick it on a
// cluster client, and cluster users should use scan (or vset) otherwise.
//
// vset (Redis 8 vector sets): one vector set per scope, in the root's
// slot, written by the same scripts as the records (VADD key FP32 <vec>
// <id> <Options.VSetQuant> SETATTR {"imp":..,"ts":..,"cats":[hex..]} on Put,
// VREM when a record leaves its scope, is deleted or its expiry is swept,
// DEL on Reset), searched with one VSIM key FP32 <vec> WITHSCORES COUNT
// <n> EF <max(Options.VSetEF, n)> [FILTER <expr> FILTER-EF 2147483647]
// [TRUTH] per scope of the search (the scope's descendants listed by the
// mscopes hash), merged in Go. A vset Store's
// Put fails on a server without vector sets; Stores of other backends do
// not maintain the sets (use one backend per Prefix). The scope root's meta
// hash records the VSetQuant its sets were made with, so a Store with
// another flag is refused before any write.
//
// ft and vset over-fetch: they ask the server for [OverFetch]*K
// candidates, read the ones whose fields the server did not return (one
// uncached HMGET each, in one round trip), re-check every filter in Go
// (metadata and MinSimilarity are applied only there) and recompute the
// similarity from the stored vector, and ask for OverFetch times more while
// fewer than K survived and the server may hold more, up to [MaxFetch].
// So their results equal scan's whenever the server's candidates include
// the true top K (always with FLAT, TRUTH, or the exact server-side
// filters). They are not bounded by ScanLimit. Categories reads the scope
// indexes and records like scan with every backend.
//
// Testing: the local redis-server (7.0.15) and miniredis have neither
// FT.* nor vector sets, so in CI ft and vset are tested by command shape:
// the exact command lines (also those sent from inside the scripts) are
// compared with expected strings, and the golden searches run against an
// exact emulation of FT.SEARCH and VSIM registered in miniredis. The live
// conformance tests run the same golden searches when FENCEKIT_SEARCH_URL
// (ft) or FENCEKIT_VSET_URL (vset) name servers with those features, and
// skip with a message otherwise.
//
// Records with a TTL expire with their hash; their index entries are swept
// by later writes and by Count and Scopes, and searches and lists skip
// records that are gone. A sweep examines at most 1000 due expiry entries
// per call, and each one it examines leaves the due range (a gone record
// loses its index entries; an entry of a scope its record no longer lives
// in goes with that scope's index entry; a live record's entry moves to
// its real expiry), so the sweep advances whatever the backlog; Count and
// Scopes sweep until nothing due is left. Putting an id again removes
// every index entry of the record it replaces, also when that record's
// hash already expired (mttl keeps its scope).
package memory
