package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
)

// BenchmarkScriptCPU measures where Redis spends its CPU in the lock's
// uncontended path, piece by piece: each op is one command (or one
// acquire+release pair), sent in pipelines of 100 so that the per-command
// network cost, which dominates one-at-a-time calls, is amortised as it
// is under load. srv-cpu-µs/op is the server's used_cpu delta per op; the
// other metrics of this benchmark describe the client and mean little.
func BenchmarkScriptCPU(b *testing.B) {
	s := redistest.NewRedis(b)
	c := s.NewClient(b)
	ctx := context.Background()
	prefix := s.Prefix(b)
	keys := []string{prefix + ":{n}:lock", prefix + ":{n}:fence", prefix + ":{n}:lockq", prefix + ":{n}:lockqi"}
	load := func(src string) string {
		sha, err := c.Do(ctx, c.B().ScriptLoad().Script(src).Build()).ToString()
		if err != nil {
			b.Fatal(err)
		}
		return sha
	}
	ev := func(sha string, args ...string) rueidis.Completed {
		return c.B().Evalsha().Sha1(sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
	}
	// The libraries as acquire.lua includes them (lib_base.lua, lib_lock.lua).
	src := lua.Acquire.Source()
	i, j := strings.Index(src, "-- lib_base.lua:"), strings.Index(src, "\nlocal holder = ARGV[1]")
	if i < 0 || j < i {
		b.Fatal("cannot find the libraries in acquire.lua's source")
	}
	libs := src[i:j]
	ret1, libRet1 := load("return 1"), load(libs+"\nreturn 1")
	get1, get6 := load("redis.call('GET', KEYS[1]) return 1"), load("for i = 1, 6 do redis.call('GET', KEYS[1]) end return 1")
	acq, rel := load(lua.Acquire.Source()), load(lua.Release.Source())
	acqArgs := []string{"o|a.1", "10000", "0", "400", "86400000", prefix + ":{n}:wake", "P", "o|a.", "0"}
	relArgs := []string{"o|a.1", "0", "86400000", prefix + ":{n}:wake", "P", "o|a."}
	pieces := []struct {
		name string
		cmds func() []rueidis.Completed
	}{
		{"PING", func() []rueidis.Completed { return []rueidis.Completed{c.B().Ping().Build()} }},
		{"SET-NX-PX+DEL", func() []rueidis.Completed {
			return []rueidis.Completed{c.B().Arbitrary("SET").Keys(keys[0]).Args("1", "NX", "PX", "10000").Build(), c.B().Del().Key(keys[0]).Build()}
		}},
		{"EVALSHA-return-1", func() []rueidis.Completed { return []rueidis.Completed{ev(ret1)} }},
		{"EVALSHA-libraries-return-1", func() []rueidis.Completed { return []rueidis.Completed{ev(libRet1)} }},
		{"EVALSHA-1-GET", func() []rueidis.Completed { return []rueidis.Completed{ev(get1)} }},
		{"EVALSHA-6-GET", func() []rueidis.Completed { return []rueidis.Completed{ev(get6)} }},
		{"acquire.lua+release.lua", func() []rueidis.Completed {
			return []rueidis.Completed{ev(acq, acqArgs...), ev(rel, relArgs...)}
		}},
	}
	for _, p := range pieces {
		b.Run("piece="+p.name, func(b *testing.B) { pipelinedCPU(b, s, c, p.cmds) })
	}
}
