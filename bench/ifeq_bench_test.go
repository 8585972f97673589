package bench

import (
	"context"
	"testing"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
)

// BenchmarkConditionalCPU measures, on servers with the conditional
// string commands (Valkey >= 8.1: SET IFEQ; Valkey >= 9.0: DELIFEQ), what
// they cost beside the lock's scripts that do the same check: a lease
// renewal (refresh.lua against SET <record> IFEQ <record> PX <ttl> GET)
// and an uncontended release (release.lua's fast path against DELIFEQ).
// Pipelines of 100, as BenchmarkScriptCPU; srv-cpu-µs/op is the server's
// used_cpu delta per op. Skipped on servers without DELIFEQ.
func BenchmarkConditionalCPU(b *testing.B) {
	s := redistest.NewRedis(b)
	if !s.HasCommand(b, "DELIFEQ") {
		b.Skip("the server has no DELIFEQ (Valkey >= 9.0)")
	}
	c := s.NewClient(b)
	ctx := context.Background()
	prefix := s.Prefix(b)
	keys := []string{prefix + ":{n}:lock", prefix + ":{n}:fence", prefix + ":{n}:lockq", prefix + ":{n}:lockqi"}
	const holder, tok, rec = "o|a.1", "1796418481249545", "1796418481249545|1796418481249|o|a.1"
	load := func(src string) string {
		sha, err := c.Do(ctx, c.B().ScriptLoad().Script(src).Build()).ToString()
		if err != nil {
			b.Fatal(err)
		}
		return sha
	}
	refresh, release := load(lua.Refresh.Source()), load(lua.Release.Source())
	set := func() rueidis.Completed { return c.B().Arbitrary("SET").Keys(keys[0]).Args(rec, "PX", "10000").Build() }
	pieces := []struct {
		name string
		cmds func() []rueidis.Completed
	}{
		{"refresh.lua", func() []rueidis.Completed {
			return []rueidis.Completed{c.B().Evalsha().Sha1(refresh).Numkeys(1).Key(keys[0]).Arg(holder, tok, "10000").Build()}
		}},
		{"SET-IFEQ-PX-GET", func() []rueidis.Completed {
			return []rueidis.Completed{c.B().Arbitrary("SET").Keys(keys[0]).Args(rec, "IFEQ", rec, "PX", "10000", "GET").Build()}
		}},
		{"SET-PX+release.lua", func() []rueidis.Completed {
			return []rueidis.Completed{set(), c.B().Evalsha().Sha1(release).Numkeys(4).Key(keys...).Arg(holder, tok, "86400000", prefix+":{n}:wake", "P", "o|a.").Build()}
		}},
		{"SET-PX+DELIFEQ", func() []rueidis.Completed {
			return []rueidis.Completed{set(), c.B().Arbitrary("DELIFEQ").Keys(keys[0]).Args(rec).Build()}
		}},
		{"SET-PX+DEL", func() []rueidis.Completed {
			return []rueidis.Completed{set(), c.B().Del().Key(keys[0]).Build()}
		}},
	}
	if err := c.Do(ctx, set()).Error(); err != nil {
		b.Fatal(err)
	}
	for _, p := range pieces {
		b.Run("piece="+p.name, func(b *testing.B) {
			if err := c.Do(ctx, set()).Error(); err != nil {
				b.Fatal(err)
			}
			pipelinedCPU(b, s, c, p.cmds)
		})
	}
}
