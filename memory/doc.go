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
// # Keys and cluster slots
//
// A scope is a '/'-separated path ("user/42/project/7"). Its first
// Options.TagDepth segments are its root, and every key of a root carries
// the hash tag {mem:<root>}, so a root's records, indexes and counters
// share one cluster slot and every script and every search (descendants
// included) touches a single slot:
//
//	<prefix>:{mem:<root>}:r:<id>      hash: id scope text vec cats sc meta imp ts [exp]
//	<prefix>:{mem:<root>}:sx:<scope>  zset: id -> created_at ms (one per scope)
//	<prefix>:{mem:<root>}:mscopes     hash: scope -> number of records
//	<prefix>:{mem:<root>}:mexp        zset: "<scope>\n<id>" -> expiry ms (records with a TTL)
//	<prefix>:{mem:<root>}:mmeta       hash: fence (highest token accepted)
//	<prefix>:{mem:<root>}:lock/fence  the lock named "mem:<root>" (package lock)
//
// The trade-off of the default TagDepth 1 is that everything under one
// first segment lives on one cluster node; TagDepth 2 spreads "user/1",
// "user/2", ... over the cluster but makes "user" alone an invalid scope
// (a search across users would span slots). Record ids are unique per
// root. cats and sc hold hex-encoded categories and scope ancestors
// (comma-separated), the layout a future FT index can use as TAG fields.
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
// Only the scan backend is implemented: exact top-k in Go (a heap) over
// the candidates' vectors, read with rueidis DoMultiCache so that a
// repeated search on a client with client-side caching (rueidis' default
// on real Redis) costs no network until a write invalidates the keys it
// touched. Candidate count is bounded by Options.ScanLimit (default 20,000;
// beyond it a [*ScanLimitError]). On clients with DisableCache (required
// for miniredis) every search reads everything again: three or four round
// trips. Freshness: the first read of every search is a cacheable read
// with a negative client-side TTL, so rueidis always sends it to the
// server, on the connection that carries the slot's cached reads; its reply
// arrives after the invalidations of every write that completed before the
// search began, so a write by another client is seen by the next search
// (tested on a real redis-server). Searches running concurrently may share
// one such read (rueidis coalesces in-flight cache misses). BackendAuto probes the server once (FT.INFO on a missing index,
// VCARD on a missing key; see [Store.Features]) and currently still
// chooses scan; BackendFT and BackendVSet make New fail with
// [ErrUnsupportedBackend]. The ft and vset backends are not built: there
// are no command-shape tests and no live conformance runs for them
// (FENCEKIT_SEARCH_URL / FENCEKIT_VSET_URL are not used yet). The record
// layout (hex TAG-ready cats and sc, NUMERIC-ready imp and ts, exact
// dim*4-byte vec) is the one an FT index over "<prefix>:{mem:" needs.
//
// Records with a TTL expire with their hash; their index entries are swept
// by later writes and by Count and Scopes, and searches and lists skip
// records that are gone.
package memory
