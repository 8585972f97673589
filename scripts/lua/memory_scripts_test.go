package lua_test

// Table tests of the vector-memory scripts on miniredis, a real
// redis-server and the Cluster: every refusal leaves every key of the tag
// unchanged, and the sweep, re-put, Reset and List rows check the state
// they leave.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
)

// memCase is one call of a memory script. Key names in setup, keys, watch
// and want are "$lock", "$fence", "$meta", "$exp", "$scopes", "$ttls" or
// "$b" followed by the rest of a key ("$br:x" is record x); "\n" in an
// argument is a newline.
type memCase struct {
	name   string
	setup  [][]string
	script *lua.Script
	keys   []string
	argv   []string
	// reply: the reply printed with %v, or "ERR <code>" for an error
	// reply containing code (miniredis wraps errors of redis.call); ""
	// skips the check.
	reply string
	// watch lists the keys whose content is checked: unchanged after an
	// error reply, else equal to want (missing from want: must not exist).
	watch []string
	want  map[string]string
}

// putArgs returns the 11 mem_put.lua arguments of one record (a 2-float
// vector, no categories) with created ms ts and ttl ms.
func putArgs(id, scope string, ts, ttl int) []string {
	return []string{id, scope, "text", "\x00\x00\x80\x3f\x00\x00\x00\x00", "", "", "", "", "0.5", strconv.Itoa(ts), strconv.Itoa(ttl)}
}

func memCases() []memCase {
	fixed := []string{"$lock", "$fence", "$meta", "$exp", "$scopes", "$ttls"}
	head := []string{"", "S", "$b", ""}
	put := func(recs ...[]string) []string {
		out := append([]string(nil), head...)
		for _, r := range recs {
			out = append(out, r...)
		}
		return out
	}
	withRecs := func(ks ...string) []string { return append(append([]string(nil), fixed...), ks...) }
	// A record x living in scope s/old, indexed and counted.
	xOld := [][]string{
		{"HSET", "$br:x", "id", "x", "scope", "s/old", "ts", "5"},
		{"ZADD", "$bsx:s/old", "5", "x"},
		{"HSET", "$scopes", "s/old", "1"},
		{"HSET", "$meta", "ep", "3"},
	}
	watchX := []string{"$meta", "$exp", "$scopes", "$ttls", "$br:x", "$bsx:s/old", "$bsx:s/new"}
	with := func(extra ...[]string) [][]string { return append(append([][]string(nil), xOld...), extra...) }
	return []memCase{
		{name: "put: index of the scope left is not a zset", setup: with([]string{"DEL", "$bsx:s/old"}, []string{"SET", "$bsx:s/old", "str"}),
			script: lua.MemPut, keys: withRecs("$br:x", "$bsx:s/new"), argv: put(putArgs("x", "s/new", 7, 0)),
			reply: "ERR FENCEKIT_CORRUPT", watch: watchX},
		{name: "put: count is not an integer", setup: with([]string{"HSET", "$scopes", "s/new", "abc"}),
			script: lua.MemPut, keys: withRecs("$br:x", "$bsx:s/new"), argv: put(putArgs("x", "s/new", 7, 0)),
			reply: "ERR FENCEKIT_CORRUPT", watch: watchX},
		{name: "put: expiry index is not a zset", setup: with([]string{"SET", "$exp", "str"}),
			script: lua.MemPut, keys: withRecs("$br:x", "$bsx:s/new"), argv: put(putArgs("x", "s/new", 7, 0)),
			reply: "ERR FENCEKIT_CORRUPT", watch: watchX},
		{name: "put: TTL hash is not a hash", setup: with([]string{"SET", "$ttls", "str"}),
			script: lua.MemPut, keys: withRecs("$br:x", "$bsx:s/new"), argv: put(putArgs("x", "s/new", 7, 0)),
			reply: "ERR FENCEKIT_CORRUPT", watch: watchX},
		{name: "put: epoch is not an integer", setup: with([]string{"HSET", "$meta", "ep", "x"}),
			script: lua.MemPut, keys: withRecs("$br:x", "$bsx:s/new"), argv: put(putArgs("x", "s/new", 7, 0)),
			reply: "ERR FENCEKIT_CORRUPT", watch: watchX},
		{name: "put: moves a record, in place", setup: xOld,
			script: lua.MemPut, keys: withRecs("$br:x", "$bsx:s/new"), argv: put(putArgs("x", "s/new", 7, 0)),
			reply: "[7]", watch: watchX, want: map[string]string{
				"$meta":      `hash:"ep"="4"`,
				"$scopes":    `hash:"s/new"="1"`,
				"$br:x":      `hash:"cats"="" "id"="x" "imp"="0.5" "meta"="" "sc"="" "scope"="s/new" "sh"="" "text"="text" "ts"="7" "vec"="\x00\x00\x80?\x00\x00\x00\x00"`,
				"$bsx:s/new": `zset:["x" "7"]`,
			}},
		{name: "put: re-put of an expired id cleans its previous life", setup: [][]string{
			{"ZADD", "$bsx:s/old", "5", "x"}, {"HSET", "$scopes", "s/old", "1"}, {"HSET", "$ttls", "x", "s/old"},
			{"ZADD", "$exp", "9999999999999", "s/old\nx"}, {"HSET", "$meta", "ep", "3"}},
			script: lua.MemPut, keys: withRecs("$br:x", "$bsx:s/new"), argv: put(putArgs("x", "s/new", 7, 0)),
			reply: "[7]", watch: watchX, want: map[string]string{
				"$meta":      `hash:"ep"="4"`,
				"$scopes":    `hash:"s/new"="1"`,
				"$br:x":      `hash:"cats"="" "id"="x" "imp"="0.5" "meta"="" "sc"="" "scope"="s/new" "sh"="" "text"="text" "ts"="7" "vec"="\x00\x00\x80?\x00\x00\x00\x00"`,
				"$bsx:s/new": `zset:["x" "7"]`,
			}},
		{name: "delete: index of the record's scope is not a zset", setup: with([]string{"DEL", "$bsx:s/old"}, []string{"SET", "$bsx:s/old", "str"}),
			script: lua.MemDelete, keys: withRecs("$br:x"), argv: append(append([]string(nil), head...), "s", "x"),
			reply: "ERR FENCEKIT_CORRUPT", watch: watchX},
		{name: "reset: index is not a zset", setup: with([]string{"DEL", "$bsx:s/old"}, []string{"SET", "$bsx:s/old", "str"}),
			script: lua.MemReset, keys: fixed, argv: append(append([]string(nil), head...), "s"),
			reply: "ERR FENCEKIT_CORRUPT", watch: watchX},
		{name: "reset: a record key of another type", setup: with([]string{"DEL", "$br:x"}, []string{"SET", "$br:x", "str"}),
			script: lua.MemReset, keys: fixed, argv: append(append([]string(nil), head...), "s"),
			reply: "ERR WRONGTYPE", watch: watchX},
		{name: "reset: keeps a record that lives outside the scope", setup: with(
			[]string{"ZADD", "$bsx:s/new", "5", "x"}, []string{"HSET", "$scopes", "s/new", "1"}),
			script: lua.MemReset, keys: fixed, argv: append(append([]string(nil), head...), "s/new"),
			reply: "1", watch: watchX, want: map[string]string{
				"$meta":      `hash:"ep"="4"`,
				"$scopes":    `hash:"s/old"="1"`,
				"$br:x":      `hash:"id"="x" "scope"="s/old" "ts"="5"`,
				"$bsx:s/old": `zset:["x" "5"]`,
			}},
		{name: "stats: a ghost entry goes with its index entry", setup: with(
			[]string{"ZADD", "$bsx:s/new", "5", "x"}, []string{"HSET", "$scopes", "s/new", "1"}, []string{"ZADD", "$exp", "1", "s/new\nx"}),
			script: lua.MemStats, keys: []string{"$exp", "$scopes", "$ttls"}, argv: []string{"$b", ""},
			reply: "[0 s/old 1]", watch: watchX, want: map[string]string{
				"$meta":      `hash:"ep"="3"`,
				"$scopes":    `hash:"s/old"="1"`,
				"$br:x":      `hash:"id"="x" "scope"="s/old" "ts"="5"`,
				"$bsx:s/old": `zset:["x" "5"]`,
			}},
		{name: "stats: an expired record leaves every index", setup: [][]string{
			{"ZADD", "$bsx:s/old", "5", "x"}, {"HSET", "$scopes", "s/old", "1"}, {"HSET", "$ttls", "x", "s/old"},
			{"ZADD", "$exp", "1", "s/old\nx"}},
			script: lua.MemStats, keys: []string{"$exp", "$scopes", "$ttls"}, argv: []string{"$b", ""},
			reply: "[0]", watch: watchX, want: map[string]string{}},
		{name: "list: ids of one created time in byte order", setup: [][]string{
			{"ZADD", "$bsx:s", "5", "a", "5", "z", "5", "\xc3\xa9"}},
			script: lua.MemList, keys: []string{"$bsx:s"}, argv: []string{"$b", "5", "\xc3\xa9", "1"},
			reply: "[1 5 z <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil>]"},
	}
}

func TestMemoryScripts(t *testing.T) {
	cases := memCases()
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := s.NewClient(t)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				k := keys.ForMemory(s.Prefix(t), "s")
				names := strings.NewReplacer("$lock", k.Lock, "$fence", k.Fence, "$meta", k.Meta, "$exp", k.Exp,
					"$scopes", k.Scopes, "$ttls", k.TTLs, "$b", k.Base)
				ex := func(in []string) []string {
					out := make([]string, len(in))
					for i, a := range in {
						out[i] = names.Replace(a)
					}
					return out
				}
				for _, cmd := range tc.setup {
					if m := s.Do(t, ex(cmd)...); m.Error() != nil {
						t.Fatalf("setup %q: %v", cmd, m.Error())
					}
				}
				watch := ex(tc.watch)
				before := s.Snapshot(t, watch...)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				got, isErr := fromResult(t, tc.script.Exec(ctx, c, ex(tc.keys), ex(tc.argv)))
				switch {
				case tc.reply == "":
				case strings.HasPrefix(tc.reply, "ERR "):
					if !isErr || !strings.Contains(fmt.Sprint(got), strings.TrimPrefix(tc.reply, "ERR ")) {
						t.Errorf("reply %v, want an error containing %q", got, strings.TrimPrefix(tc.reply, "ERR "))
					}
				case isErr || fmt.Sprint(got) != tc.reply:
					t.Errorf("reply %v, want %s", got, tc.reply)
				}
				after := s.Snapshot(t, watch...)
				for i, key := range watch {
					want, ok := before[key]
					if !isErr {
						want, ok = tc.want[tc.watch[i]]
					}
					if got, has := after[key]; has != ok || got != want {
						t.Errorf("key %s: %q (exists %v), want %q (exists %v)", tc.watch[i], got, has, want, ok)
					}
				}
			})
		}
	})
}
