package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/statestore"
)

// BenchmarkSessionScriptCPU measures where Redis spends its CPU in a
// fenced Save of a 4 KiB document and a fenced stream Append of 256 bytes
// (issue 13), piece by piece, like BenchmarkScriptCPU: each op is one
// command sent in pipelines of 100, so the per-command network cost is
// amortised as it is under load, and srv-cpu-µs/op (the server's used_cpu
// delta per op) is the meaningful metric. Pieces:
//
//	HSET-4k                the raw command (the floor of Save)
//	EVALSHA-return-1       a script "return 1" with Save's KEYS and ARGV
//	                       (what passing them into Lua costs)
//	EVALSHA-libs-return-1  lib_base.lua and lib_fence.lua as state_save.lua
//	                       includes them, then return 1 (defining the
//	                       library's local functions on every call)
//	EVALSHA-libs-fk_check  the same, then the fence check (3 reads)
//	state_save-eventlog    state_save.lua with the event log (mode "S")
//	state_save             state_save.lua without it (mode "SQ", the default)
//	state_save-no-ttl      the same, session ttl "0": no PEXPIRE of the keys
//	XADD-256               the raw command (the floor of Append)
//	stream_append          stream_append.lua (mode "SQ")
//	stream_append-no-ttl   the same, session ttl "0"
func BenchmarkSessionScriptCPU(b *testing.B) {
	s := redistest.NewRedis(b)
	c := s.NewClient(b)
	ctx := context.Background()
	prefix := s.Prefix(b)
	const id = "cpu"
	locker, err := lock.New(c, lock.Options{Prefix: prefix, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer locker.Close()
	lk, err := locker.TryAcquire(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	defer lk.Release(ctx)
	store, err := statestore.New(c, statestore.Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	doc := string(benchDoc(saveDocBytes))
	if _, err := store.Create(ctx, id, lk.Token(), benchState(benchDoc(saveDocBytes))); err != nil {
		b.Fatal(err)
	}
	defer store.Delete(ctx, id, lk.Token())
	k := keys.ForSession(prefix, id)
	sessKeys := []string{k.Lock, k.Fence, k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events, k.Out, k.OutMeta, k.Inc}
	tok := lk.Token().String()
	ttl := "604800000"
	save := func(mode, ttl string) rueidis.Completed {
		return c.B().Evalsha().Sha1(lua.StateSave.SHA1()).Numkeys(int64(len(sessKeys))).Key(sessKeys...).
			Arg(tok, mode, ttl, "", "bench", "running", "1", doc, "", "", "").Build()
	}
	chunk := string(streamChunk())
	appendCmd := func(ttl string) rueidis.Completed {
		return c.B().Evalsha().Sha1(lua.StreamAppend.SHA1()).Numkeys(int64(len(sessKeys))).Key(sessKeys...).
			Arg(tok, "SQ", ttl, "3600000", "0", "c", "1000", chunk).Build()
	}
	src := lua.StateSave.Source()
	body := src
	if i := strings.Index(src, "\nlocal tok, e1 = fk_check("); i >= 0 {
		body = src[:i]
	} else {
		b.Fatal("cannot find the fence check in state_save.lua's source")
	}
	load := func(src string) string {
		sha, err := c.Do(ctx, c.B().ScriptLoad().Script(src).Build()).ToString()
		if err != nil {
			b.Fatal(err)
		}
		return sha
	}
	ret1, libs1, check1 := load("return 1"), load(body+"\nreturn 1"),
		load(body+"\nlocal tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])\nif not tok then return e1 end\nreturn 1")
	saveArgs := func(sha string) rueidis.Completed {
		return c.B().Evalsha().Sha1(sha).Numkeys(int64(len(sessKeys))).Key(sessKeys...).
			Arg(tok, "SQ", ttl, "", "bench", "running", "1", doc, "", "", "").Build()
	}
	floor := prefix + ":{cpu}:floor"
	xfloor := prefix + ":{cpu}:xfloor"
	defer c.Do(ctx, c.B().Del().Key(floor, xfloor).Build())
	pieces := []struct {
		name string
		cmd  func() rueidis.Completed
	}{
		{"HSET-4k", func() rueidis.Completed { return c.B().Hset().Key(floor).FieldValue().FieldValue("data", doc).Build() }},
		{"EVALSHA-return-1", func() rueidis.Completed { return saveArgs(ret1) }},
		{"EVALSHA-libs-return-1", func() rueidis.Completed { return saveArgs(libs1) }},
		{"EVALSHA-libs-fk_check", func() rueidis.Completed { return saveArgs(check1) }},
		{"state_save-eventlog", func() rueidis.Completed { return save("S", ttl) }},
		{"state_save", func() rueidis.Completed { return save("SQ", ttl) }},
		{"state_save-no-ttl", func() rueidis.Completed { return save("SQ", "0") }},
		{"XADD-256", func() rueidis.Completed {
			return c.B().Xadd().Key(xfloor).Maxlen().Almost().Threshold("1000").Id("*").FieldValue().FieldValue("d", chunk).Build()
		}},
		{"stream_append", func() rueidis.Completed { return appendCmd(ttl) }},
		{"stream_append-no-ttl", func() rueidis.Completed { return appendCmd("0") }},
	}
	// Load the scripts (EVALSHA above needs them).
	for _, sc := range []*lua.Script{lua.StateSave, lua.StreamAppend} {
		if err := c.Do(ctx, c.B().ScriptLoad().Script(sc.Source()).Build()).Error(); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range pieces {
		b.Run("piece="+p.name, func(b *testing.B) {
			pipelinedCPU(b, s, c, func() []rueidis.Completed { return []rueidis.Completed{p.cmd()} })
		})
	}
}
