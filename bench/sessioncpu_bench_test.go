package bench

import (
	"context"
	"fmt"
	"strconv"
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
//	EVALSHA-return-1-doc40 the same with a 40-byte document instead of
//	                       4 KiB (the difference: the document's bytes;
//	                       Lua hashes every byte of a string it is given)
//	EVALSHA-return-1-nokeys the same 11 ARGV, 4 KiB document, no KEYS (the
//	                       difference: the 11 declared keys)
//	EVALSHA-libs-return-1  lib_base.lua and lib_fence.lua as state_save.lua
//	                       includes them, then return 1 (defining the
//	                       library's local functions on every call)
//	EVALSHA-libs-fk_check  the same, then the fence check (3 reads)
//	state_save-eventlog    state_save.lua with the event log (mode "S")
//	state_save             state_save.lua without it (mode "SQ", the default)
//	state_save-no-ttl      the same, session ttl "0": no PEXPIRE of the keys
//	state_save-every-key   state_save.lua with the TTL refresh before
//	                       2026-12-05: a PEXPIRE of every key on every write
//	state_save-dockey-proto a prototype, not fencekit's layout: the document
//	                       in a string key of its own, sent as MULTI, SET
//	                       <pending> <doc>, EVALSHA of state_save.lua
//	                       changed to RENAME <pending> to the document key
//	                       instead of taking the document as an argument,
//	                       EXEC: what a Save would cost if the document
//	                       never entered Lua
//	XADD-256               the raw command (the floor of Append)
//	stream_append          stream_append.lua (mode "SQ")
//	stream_append-no-ttl   the same, session ttl "0"
//
// and, for each other fenced write (issue 13: CAS status, one appended
// message, one staged change, a checkpoint of a 1 KiB state), four pieces:
// <write>-raw the raw command it stands for, <write>-call "return 1" with
// the script's KEYS and ARGV, <write>-no-ttl the script with session ttl
// "0", <write>-every-key the script with the old TTL refresh (every key on
// every write), and <write> the script as the store sends it:
//
//	cas        state_status.lua running -> running; raw HSET of one field
//	append1    msgs_append.lua, one 256 B message; raw RPUSH
//	stage1     stage_put.lua, the same step and tool call each time; raw HSET
//	cpsave1k   cp_save.lua, a new checkpoint (1 KiB state) each time; raw
//	           HSET of a new field holding the same document
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
	small := `{"k":"0123456789012345678901234567890"}`
	// The document-key prototype: state_save.lua without the document
	// argument, renaming a pending key (SET in the same MULTI) onto the
	// document's key instead.
	protoSrc := strings.Replace(src, "'data', ARGV[8], ", "", 1)
	protoSrc = strings.Replace(protoSrc, "local v = fk_stamp(", "redis.call('RENAME', KEYS[12], KEYS[13])\nlocal v = fk_stamp(", 1)
	if protoSrc == src || !strings.Contains(protoSrc, "RENAME") {
		b.Fatal("cannot derive the document-key prototype from state_save.lua")
	}
	proto := load(protoSrc)
	saveEvery := load(everyKeyTTL(b, src))
	pending, docKey := prefix+":{cpu}:pending", prefix+":{cpu}:doc"
	protoKeys := append(append([]string(nil), sessKeys...), pending, docKey)
	floor := prefix + ":{cpu}:floor"
	xfloor := prefix + ":{cpu}:xfloor"
	defer c.Do(ctx, c.B().Del().Key(floor, floor+"c", xfloor, xfloor+"l", pending, docKey).Build())
	one := func(f func() rueidis.Completed) func() []rueidis.Completed {
		return func() []rueidis.Completed { return []rueidis.Completed{f()} }
	}
	pieces := []cpuPiece{
		{"HSET-4k", one(func() rueidis.Completed { return c.B().Hset().Key(floor).FieldValue().FieldValue("data", doc).Build() })},
		{"EVALSHA-return-1", one(func() rueidis.Completed { return saveArgs(ret1) })},
		{"EVALSHA-return-1-doc40", one(func() rueidis.Completed {
			return c.B().Evalsha().Sha1(ret1).Numkeys(int64(len(sessKeys))).Key(sessKeys...).
				Arg(tok, "SQ", ttl, "", "bench", "running", "1", small, "", "", "").Build()
		})},
		{"EVALSHA-return-1-nokeys", one(func() rueidis.Completed {
			return c.B().Evalsha().Sha1(ret1).Numkeys(0).Arg(tok, "SQ", ttl, "", "bench", "running", "1", doc, "", "", "").Build()
		})},
		{"EVALSHA-libs-return-1", one(func() rueidis.Completed { return saveArgs(libs1) })},
		{"EVALSHA-libs-fk_check", one(func() rueidis.Completed { return saveArgs(check1) })},
		{"state_save-eventlog", one(func() rueidis.Completed { return save("S", ttl) })},
		{"state_save", one(func() rueidis.Completed { return save("SQ", ttl) })},
		{"state_save-no-ttl", one(func() rueidis.Completed { return save("SQ", "0") })},
		{"state_save-every-key", one(func() rueidis.Completed { return saveArgs(saveEvery) })},
		{"state_save-dockey-proto", func() []rueidis.Completed {
			return []rueidis.Completed{
				c.B().Multi().Build(),
				c.B().Set().Key(pending).Value(doc).PxMilliseconds(60000).Build(),
				c.B().Evalsha().Sha1(proto).Numkeys(int64(len(protoKeys))).Key(protoKeys...).
					Arg(tok, "SQ", ttl, "", "bench", "running", "1", "", "", "", "").Build(),
				c.B().Exec().Build(),
			}
		}},
		{"XADD-256", one(func() rueidis.Completed {
			return c.B().Xadd().Key(xfloor).Maxlen().Almost().Threshold("1000").Id("*").FieldValue().FieldValue("d", chunk).Build()
		})},
		{"stream_append", one(func() rueidis.Completed { return appendCmd(ttl) })},
		{"stream_append-no-ttl", one(func() rueidis.Completed { return appendCmd("0") })},
	}
	// The other fenced writes: the scripts take the session's first 10 keys.
	keys10 := sessKeys[:10]
	evalsha := func(sha string, args ...string) rueidis.Completed {
		return c.B().Evalsha().Sha1(sha).Numkeys(int64(len(keys10))).Key(keys10...).Arg(args...).Build()
	}
	msg := string(benchMessage(1))
	change := `{"merge":{"summary":"done"}}`
	cpDoc := string(benchDoc(checkpointDocBytes))
	cpN := 0
	cpArgs := func(ttl string) []string {
		cpN++
		return []string{tok, "SQ", ttl, id, strconv.Itoa(cpN), "0", fmt.Sprintf("%06x", cpN&0xffffff), cpDoc, ""}
	}
	rawN := 0
	writes := []struct {
		name string
		sc   *lua.Script
		raw  func() rueidis.Completed
		args func(ttl string) []string
	}{
		{"cas", lua.StateStatus,
			func() rueidis.Completed {
				return c.B().Hset().Key(floor).FieldValue().FieldValue("status", "running").Build()
			},
			func(ttl string) []string { return []string{tok, "SQ", ttl, "running", "running"} }},
		{"append1", lua.MsgsAppend,
			func() rueidis.Completed { return c.B().Rpush().Key(xfloor + "l").Element(msg).Build() },
			func(ttl string) []string { return []string{tok, "SQ", ttl, msg} }},
		{"stage1", lua.StagePut,
			func() rueidis.Completed {
				return c.B().Hset().Key(floor).FieldValue().FieldValue("1|call-1", change).Build()
			},
			func(ttl string) []string { return []string{tok, "SQ", ttl, "1", "call-1", "", change} }},
		{"cpsave1k", lua.CpSave,
			func() rueidis.Completed {
				rawN++
				return c.B().Hset().Key(floor+"c").FieldValue().FieldValue("s"+strconv.Itoa(rawN), cpDoc).Build()
			},
			cpArgs},
	}
	for _, w := range writes {
		sha, every := w.sc.SHA1(), load(everyKeyTTL(b, w.sc.Source()))
		pieces = append(pieces,
			cpuPiece{w.name + "-raw", one(w.raw)},
			cpuPiece{w.name + "-call", one(func() rueidis.Completed { return evalsha(ret1, w.args(ttl)...) })},
			cpuPiece{w.name + "-no-ttl", one(func() rueidis.Completed { return evalsha(sha, w.args("0")...) })},
			cpuPiece{w.name + "-every-key", one(func() rueidis.Completed { return evalsha(every, w.args(ttl)...) })},
			cpuPiece{w.name, one(func() rueidis.Completed { return evalsha(sha, w.args(ttl)...) })})
	}
	// Load the scripts (EVALSHA above needs them).
	for _, sc := range []*lua.Script{lua.StateSave, lua.StreamAppend, lua.StateStatus, lua.MsgsAppend, lua.StagePut, lua.CpSave} {
		if err := c.Do(ctx, c.B().ScriptLoad().Script(sc.Source()).Build()).Error(); err != nil {
			b.Fatal(err)
		}
	}
	// The prototype's EXEC must have run the script (an error inside EXEC
	// is not an error reply of EXEC itself): check its replies once.
	for _, p := range pieces {
		if p.name != "state_save-dockey-proto" {
			continue
		}
		rs := c.DoMulti(ctx, p.ops()...)
		arr, err := rs[len(rs)-1].ToArray()
		if err != nil {
			b.Fatalf("prototype EXEC: %v", err)
		}
		for i, r := range arr {
			if err := r.Error(); err != nil {
				b.Fatalf("prototype EXEC reply %d: %v", i, err)
			}
		}
		if n, err := c.Do(ctx, c.B().Strlen().Key(docKey).Build()).AsInt64(); err != nil || n != int64(len(doc)) {
			b.Fatalf("prototype: the document key holds %d bytes (%v), want %d", n, err, len(doc))
		}
	}
	for _, p := range pieces {
		b.Run("piece="+p.name, func(b *testing.B) {
			pipelinedCPU(b, s, c, p.ops)
		})
	}
}

// A cpuPiece is one row of BenchmarkSessionScriptCPU: the commands of one op.
type cpuPiece struct {
	name string
	ops  func() []rueidis.Completed
}

// everyKeyTTL returns a session script's source with lib_fence.lua's
// fk_touch as it was before 2026-12-05: a PEXPIRE of every data key on
// every write, instead of only when the session's deadline leaves its
// window. The -every-key pieces measure the old refresh beside the new one
// in the same run.
func everyKeyTTL(b *testing.B, src string) string {
	const head = "local function fk_touch(ttl, ...)\n"
	i := strings.Index(src, head)
	if i < 0 {
		b.Fatal("no fk_touch in the script's source")
	}
	j := strings.Index(src[i:], "\nend\n")
	if j < 0 {
		b.Fatal("no end of fk_touch in the script's source")
	}
	return src[:i] + "local function fk_touch(ttl)\n  if ttl == 0 then return end\n" +
		"  for i = 3, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end" + src[i+j:]
}
