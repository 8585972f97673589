package memory_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/memory"
)

func hx(s string) string { return hex.EncodeToString([]byte(s)) }

// The golden searches through the ft and vset backends, against the exact
// emulation of fakeVector: the pre-filters, the over-fetching and the
// re-ranking must give exactly the scan results.
func TestGoldenEmulated(t *testing.T) {
	for _, b := range []memory.Backend{memory.BackendFT, memory.BackendVSet} {
		t.Run(b.String(), func(t *testing.T) {
			s, _ := newFake(t, b == memory.BackendFT, b == memory.BackendVSet)
			e := newEnv(t, s, memory.Options{Dim: gdim, Backend: b})
			require.Equal(t, b, e.store.Backend())
			golden(t, e)
		})
	}
	// RESP2 replies: VSIM as a flat array.
	t.Run("vset-resp2", func(t *testing.T) {
		s, _ := newFake(t, false, true)
		opt := s.ClientOption()
		opt.AlwaysRESP2 = true
		c, err := rueidis.NewClient(opt)
		require.NoError(t, err)
		t.Cleanup(c.Close)
		prefix := s.Prefix(t)
		st, err := memory.New(c, memory.Options{Prefix: prefix, Dim: gdim, Backend: memory.BackendVSet})
		require.NoError(t, err)
		golden(t, &env{s: s, client: c, store: st, prefix: prefix})
	})
}

// The probe of BackendAuto: ft when FT.* answers, else vset when VCARD
// answers, else scan (miniredis and redis-server 7: scan).
func TestAutoBackend(t *testing.T) {
	for _, tc := range []struct {
		ft, vset bool
		want     memory.Backend
	}{
		{true, true, memory.BackendFT},
		{true, false, memory.BackendFT},
		{false, true, memory.BackendVSet},
		{false, false, memory.BackendScan},
	} {
		s, f := newFake(t, tc.ft, tc.vset)
		st, err := memory.New(s.NewClient(t), memory.Options{Dim: 2})
		require.NoError(t, err)
		assert.Equal(t, tc.want, st.Backend(), "ft %v vset %v", tc.ft, tc.vset)
		assert.Equal(t, memory.Features{FT: tc.ft, VSet: tc.vset}, st.Features())
		var want []string
		if tc.ft {
			want = append(want, "FT.INFO fencekit:mem-probe-idx")
		}
		if tc.vset {
			want = append(want, "VCARD fencekit:{mem-probe}:vs")
		}
		assert.Equal(t, want, f.take())
	}
	// Real servers: the probe must find what COMMAND INFO says the server
	// has (Redis 7.0 and Valkey 9: neither; Redis 8: vector sets).
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		st, err := memory.New(s.NewClient(t), memory.Options{Dim: 2})
		require.NoError(t, err)
		want := memory.Features{FT: s.HasCommand(t, "FT.INFO"), VSet: s.HasCommand(t, "VCARD")}
		assert.Equal(t, want, st.Features())
		wantB := memory.BackendScan
		if want.VSet {
			wantB = memory.BackendVSet
		}
		if want.FT && s.Kind != redistest.Cluster {
			wantB = memory.BackendFT
		}
		assert.Equal(t, wantB, st.Backend())
	})
}

func TestFTCommands(t *testing.T) {
	s, f := newFake(t, true, false)
	c := s.NewClient(t)
	ctx := context.Background()
	st, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendFT})
	require.NoError(t, err)
	assert.Empty(t, f.take(), "no probe, no index before first use")
	at := time.UnixMilli(1700000000000)
	recs := []memory.Record{
		{ID: "a", Scope: "u/1", Text: "A", Embedding: []float32{1, 0}, Categories: []string{"x y", "z"}, Importance: 0.9, CreatedAt: at,
			Metadata: map[string]string{"k": "v"}},
		{ID: "b", Scope: "u/1/s", Text: "B", Embedding: []float32{1, 1}, Categories: []string{"z"}, Importance: 0.2, CreatedAt: at.Add(time.Second)},
		{ID: "c", Scope: "u/1", Text: "C", Embedding: []float32{0, 1}, Importance: 0.5, CreatedAt: at.Add(2 * time.Second)},
	}
	require.NoError(t, st.Put(ctx, recs))
	create := "FT.CREATE p:mem:idx ON HASH PREFIX 1 p:{mem: SCHEMA vec VECTOR FLAT 6 TYPE FLOAT32 DIM 2 DISTANCE_METRIC COSINE " +
		"sc TAG SEPARATOR , sh TAG SEPARATOR , cats TAG SEPARATOR , imp NUMERIC ts NUMERIC"
	assert.Equal(t, []string{create}, f.take(), "the index is created by the first Put")
	// The record hash holds what the index needs.
	assert.Equal(t, hx("u")+","+hx("u/1")+","+hx("u/1/s"), s.Mini.HGet("p:{mem:u}:r:b", "sc"))
	assert.Equal(t, hx("u/1/s"), s.Mini.HGet("p:{mem:u}:r:b", "sh"))
	assert.Equal(t, hx("x y")+","+hx("z"), s.Mini.HGet("p:{mem:u}:r:a", "cats"))

	ret := "RETURN 10 id scope text vec cats meta imp ts exp dist"
	tail := " PARAMS 2 BLOB <8 bytes> DIALECT 2"
	got, err := st.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 2, Scope: "u/1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c"}, ids(got))
	assert.InDelta(t, 0, got[1].Similarity, 1e-12)
	assert.Equal(t, []string{"FT.SEARCH p:mem:idx (@sh:{" + hx("u/1") + "})=>[KNN 8 @vec $BLOB AS dist] " + ret + " LIMIT 0 8" + tail}, f.take())

	got, err = st.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 1, Scope: "u/1", IncludeDescendants: true,
		Categories: []string{"z", "x y"}, MinImportance: 0.1, CreatedAfter: at, CreatedBefore: at.Add(time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, ids(got))
	assert.InDelta(t, 1/1.4142135623730951, got[0].Similarity, 1e-6)
	assert.Equal(t, []string{"FT.SEARCH p:mem:idx (@sc:{" + hx("u/1") + "} @cats:{" + hx("x y") + "|" + hx("z") + "} @imp:[0.1 +inf] @ts:[(1700000000000 (1700003600000])=>[KNN 4 @vec $BLOB AS dist] " +
		ret + " LIMIT 0 4" + tail}, f.take())

	// MatchAll, an open time window; a metadata filter the index cannot
	// express is applied in Go, fetching 4x more while the server may
	// hold more (KNN 4, then 16).
	got, err = st.Search(ctx, []float32{0, 1}, memory.SearchOptions{K: 1, Scope: "u", IncludeDescendants: true,
		Categories: []string{"z", "x y"}, Match: memory.MatchAll, CreatedBefore: at.Add(time.Hour), Metadata: map[string]string{"k": "v"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, ids(got))
	q := "FT.SEARCH p:mem:idx (@sc:{" + hx("u") + "} @cats:{" + hx("x y") + "} @cats:{" + hx("z") + "} @ts:[-inf (1700003600000])=>[KNN %d @vec $BLOB AS dist] " + ret + " LIMIT 0 %d" + tail
	assert.Equal(t, []string{fmt.Sprintf(q, 4, 4)}, f.take(), "one record matches: the server holds no more")
	require.NoError(t, st.Put(ctx, []memory.Record{
		{ID: "d", Scope: "u/2", CreatedAt: at, Embedding: []float32{0, 1}, Categories: []string{"z", "x y"}},
		{ID: "e", Scope: "u/2", CreatedAt: at, Embedding: []float32{0.1, 1}, Categories: []string{"z", "x y"}},
		{ID: "f", Scope: "u/2", CreatedAt: at, Embedding: []float32{0.2, 1}, Categories: []string{"z", "x y"}},
		{ID: "g", Scope: "u/2", CreatedAt: at, Embedding: []float32{0.3, 1}, Categories: []string{"z", "x y"}},
	}))
	got, err = st.Search(ctx, []float32{0, 1}, memory.SearchOptions{K: 1, Scope: "u", IncludeDescendants: true,
		Categories: []string{"z", "x y"}, Match: memory.MatchAll, CreatedBefore: at.Add(time.Hour), Metadata: map[string]string{"k": "v"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, ids(got))
	assert.Equal(t, []string{fmt.Sprintf(q, 4, 4), fmt.Sprintf(q, 16, 16)}, f.take())

	// Another Store finds the index: "Index already exists" is fine, once.
	st2, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendFT, FTHNSW: true, FTIndex: "other"})
	require.NoError(t, err)
	_, err = st2.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 1, Scope: "u/1"})
	require.NoError(t, err)
	_, err = st2.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 1, Scope: "u/1"})
	require.NoError(t, err)
	l := f.take()
	require.Len(t, l, 3)
	assert.Equal(t, "FT.CREATE other ON HASH PREFIX 1 p:{mem: SCHEMA vec VECTOR HNSW 10 TYPE FLOAT32 DIM 2 DISTANCE_METRIC COSINE M 16 EF_CONSTRUCTION 200 "+
		"sc TAG SEPARATOR , sh TAG SEPARATOR , cats TAG SEPARATOR , imp NUMERIC ts NUMERIC", l[0])
	st3, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendFT})
	require.NoError(t, err)
	_, err = st3.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 1, Scope: "u/1"})
	require.NoError(t, err)
	assert.Equal(t, create, f.take()[0])
}

func TestVSetCommands(t *testing.T) {
	s, f := newFake(t, false, true)
	c := s.NewClient(t)
	ctx := context.Background()
	st, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendVSet, VSetQuant: "Q8"})
	require.NoError(t, err)
	at := time.UnixMilli(1700000000000)
	require.NoError(t, st.Put(ctx, []memory.Record{
		{ID: "a", Scope: "u/1", Text: "A", Embedding: []float32{1, 0}, Categories: []string{"x y", "z"}, Importance: 0.9, CreatedAt: at},
		{ID: "b", Scope: "u/1/s", Text: "B", Embedding: []float32{1, 1}, Importance: 0.25, CreatedAt: at.Add(time.Second)},
	}))
	assert.Equal(t, []string{
		"VADD p:{mem:u}:vs:u/1 FP32 <8 bytes> a Q8 SETATTR {\"imp\":0.9,\"ts\":1700000000000,\"cats\":[\"" + hx("x y") + "\",\"" + hx("z") + "\"]}",
		"VADD p:{mem:u}:vs:u/1/s FP32 <8 bytes> b Q8 SETATTR {\"imp\":0.25,\"ts\":1700000001000}",
	}, f.take())

	// Moving a record to another scope removes it from the old set;
	// replacing it in place does not. (The VDIM check of existing sets
	// does not show: miniredis does not see the emulated sets as keys.)
	require.NoError(t, st.Put(ctx, []memory.Record{{ID: "b", Scope: "u/1", Embedding: []float32{1, 1}, CreatedAt: at}}))
	require.NoError(t, st.Put(ctx, []memory.Record{{ID: "b", Scope: "u/1", Embedding: []float32{1, 2}, CreatedAt: at}}))
	assert.Equal(t, []string{
		"VADD p:{mem:u}:vs:u/1 FP32 <8 bytes> b Q8 SETATTR {\"imp\":0,\"ts\":1700000000000}",
		"VREM p:{mem:u}:vs:u/1/s b",
		"VADD p:{mem:u}:vs:u/1 FP32 <8 bytes> b Q8 SETATTR {\"imp\":0,\"ts\":1700000000000}",
	}, f.take())

	got, err := st.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 2, Scope: "u/1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, ids(got))
	assert.InDelta(t, 1/2.23606797749979, got[1].Similarity, 1e-6)
	assert.Equal(t, []string{"VSIM p:{mem:u}:vs:u/1 FP32 <8 bytes> WITHSCORES COUNT 8 EF 1000"}, f.take())

	require.NoError(t, st.Put(ctx, []memory.Record{{ID: "c", Scope: "u/1/t", Embedding: []float32{1, 0.1}, Categories: []string{"z"}, Importance: 1, CreatedAt: at}}))
	f.take()
	got, err = st.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 3, Scope: "u/1", IncludeDescendants: true,
		Categories: []string{"z", "x y"}, MinImportance: 0.5, CreatedAfter: at.Add(-time.Second), CreatedBefore: at.Add(time.Second)})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c"}, ids(got))
	filter := ".imp >= 0.5 and .ts > 1699999999000 and .ts < 1700000001000 and (\"" + hx("x y") + "\" in .cats or \"" + hx("z") + "\" in .cats)"
	assert.Equal(t, []string{
		"VSIM p:{mem:u}:vs:u/1 FP32 <8 bytes> WITHSCORES COUNT 12 EF 1000 FILTER " + filter + " FILTER-EF 2147483647",
		"VSIM p:{mem:u}:vs:u/1/t FP32 <8 bytes> WITHSCORES COUNT 12 EF 1000 FILTER " + filter + " FILTER-EF 2147483647",
	}, f.take())
	truth, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendVSet, VSetQuant: "Q8", VSetTruth: true})
	require.NoError(t, err)
	_, err = truth.Search(ctx, []float32{1, 0}, memory.SearchOptions{K: 1, Scope: "u/1", Categories: []string{"z", "x y"}, Match: memory.MatchAll})
	require.NoError(t, err)
	assert.Equal(t, []string{"VSIM p:{mem:u}:vs:u/1 FP32 <8 bytes> WITHSCORES COUNT 4 EF 1000 FILTER \"" + hx("x y") + "\" in .cats and \"" + hx("z") + "\" in .cats FILTER-EF 2147483647 TRUTH"}, f.take())

	n, err := st.Delete(ctx, "u", []string{"a"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"VREM p:{mem:u}:vs:u/1 a"}, f.take())
	_, err = st.Reset(ctx, "u/1")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"DEL p:{mem:u}:vs:u/1", "DEL p:{mem:u}:vs:u/1/t"}, f.take())

	// Expired records leave their set when swept (here by Count).
	require.NoError(t, st.Put(ctx, []memory.Record{{ID: "x", Scope: "u/9", Embedding: []float32{1, 0}, TTL: time.Second}}))
	f.take()
	s.Mini.SetTime(time.Now().Add(2 * time.Second)) // script TIME
	s.Mini.FastForward(2 * time.Second)             // key expiry
	_, err = st.Count(ctx, "u", true)
	require.NoError(t, err)
	assert.Equal(t, []string{"VREM p:{mem:u}:vs:u/9 x"}, f.take())

	// A scan store on the same data sends no vector-set command.
	scan, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendScan})
	require.NoError(t, err)
	require.NoError(t, scan.Put(ctx, []memory.Record{{ID: "y", Scope: "u/9", Embedding: []float32{1, 0}}}))
	_, err = scan.Delete(ctx, "u", []string{"y"})
	require.NoError(t, err)
	assert.Empty(t, f.take())
}

// TestVSetQuantisation: VADD fails on a set of another quantisation only
// when it reaches that set, after the VADDs of earlier records of the
// batch. The tag records its quantisation, so a Store with another
// VSetQuant is refused before any write; Reset of the whole tag clears it.
func TestVSetQuantisation(t *testing.T) {
	s, f := newFake(t, false, true)
	c := s.NewClient(t)
	ctx := context.Background()
	q8, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendVSet, VSetQuant: "Q8"})
	require.NoError(t, err)
	bin, err := memory.New(c, memory.Options{Prefix: "p", Dim: 2, Backend: memory.BackendVSet, VSetQuant: "BIN"})
	require.NoError(t, err)
	require.NoError(t, q8.Put(ctx, []memory.Record{{ID: "a", Scope: "u/1", Embedding: []float32{1, 0}}}))
	f.take()

	// u/2 has no set yet, u/1 has a Q8 set: without the recorded
	// quantisation the VADD into u/2 would run before the one into u/1 fails.
	err = bin.Put(ctx, []memory.Record{
		{ID: "x", Scope: "u/2", Embedding: []float32{1, 0}},
		{ID: "y", Scope: "u/1", Embedding: []float32{0, 1}},
	})
	require.ErrorIs(t, err, memory.ErrInvalidArgument)
	require.ErrorContains(t, err, "vector sets use Q8")
	assert.Empty(t, f.take(), "no vector-set command may run")
	for _, r := range [][2]string{{"u/2", "x"}, {"u/1", "y"}} {
		_, err := q8.Get(ctx, r[0], r[1])
		require.ErrorIs(t, err, memory.ErrNotFound)
	}
	// A scope of the tag that has no set yet is refused just the same.
	err = bin.Put(ctx, []memory.Record{{ID: "x", Scope: "u/3", Embedding: []float32{1, 0}}})
	require.ErrorIs(t, err, memory.ErrInvalidArgument)
	require.NoError(t, q8.Put(ctx, []memory.Record{{ID: "b", Scope: "u/2", Embedding: []float32{0, 1}}}))
	f.take()

	// Reset of part of the tag keeps the quantisation; of all of it, clears it.
	_, err = q8.Reset(ctx, "u/2")
	require.NoError(t, err)
	require.ErrorIs(t, bin.Put(ctx, []memory.Record{{ID: "x", Scope: "u/2", Embedding: []float32{1, 0}}}), memory.ErrInvalidArgument)
	_, err = q8.Reset(ctx, "u")
	require.NoError(t, err)
	f.take()
	require.NoError(t, bin.Put(ctx, []memory.Record{{ID: "x", Scope: "u/1", Embedding: []float32{1, 0}, CreatedAt: time.UnixMilli(1700000000000)}}))
	assert.Equal(t, []string{"VADD p:{mem:u}:vs:u/1 FP32 <8 bytes> x BIN SETATTR {\"imp\":0,\"ts\":1700000000000}"}, f.take())
}

// Live conformance: the golden searches against a server with FT.*
// (FENCEKIT_SEARCH_URL, e.g. redis://localhost:6380 running Redis 8 with
// the Query Engine, Redis Stack or valkey-bundle) or with vector sets
// (FENCEKIT_VSET_URL, Redis 8). FLAT and TRUTH make both exact.
func TestLiveFT(t *testing.T)   { live(t, "FENCEKIT_SEARCH_URL", memory.BackendFT) }
func TestLiveVSet(t *testing.T) { live(t, "FENCEKIT_VSET_URL", memory.BackendVSet) }

func live(t *testing.T, envVar string, b memory.Backend) {
	url := os.Getenv(envVar)
	if url == "" {
		t.Skipf("%s is not set: the %v backend is tested by command shape and emulation only (set it to a redis:// URL of a server with %s to run the live conformance test)",
			envVar, b, map[memory.Backend]string{memory.BackendFT: "FT.* (Redis 8 Query Engine, Redis Stack, valkey-search)", memory.BackendVSet: "vector sets (Redis 8)"}[b])
	}
	opt, err := rueidis.ParseURL(url)
	require.NoError(t, err)
	c, err := rueidis.NewClient(opt)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	prefix := fmt.Sprintf("fktest%d", time.Now().UnixNano())
	o := memory.Options{Prefix: prefix, Dim: gdim, Backend: b, VSetTruth: true}
	st, err := memory.New(c, o)
	require.NoError(t, err)
	probed, err := memory.New(c, memory.Options{Prefix: prefix, Dim: gdim})
	require.NoError(t, err)
	if b == memory.BackendFT {
		assert.True(t, probed.Features().FT, "probe")
	} else {
		assert.True(t, probed.Features().VSet, "probe")
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = st.Reset(ctx, "g")
		if b == memory.BackendFT {
			_ = c.Do(ctx, c.B().Arbitrary("FT.DROPINDEX").Args(st.Options().FTIndex).Build()).Error()
		}
	})
	golden(t, &env{client: c, store: st, prefix: prefix})
}
