package lua_test

// Lock events after a Delete of the session (issue 19): the lock scripts
// read the id floor of the session's inc key (KEYS[7]) and give the first
// lock event an id above it, so a reader that kept the deleted log's last
// id never skips a lock event of the log that follows. The floor is set in
// the future here, which forces the case the same millisecond makes
// possible: the server's next id would lie below it.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
)

func TestLockEventsAboveDeleteFloor(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		c := s.NewClient(t)
		prefix := s.Prefix(t)
		floor := time.Now().UnixMilli() + 3_600_000 // an hour ahead of every clock here
		fl := strconv.FormatInt(floor, 10)
		mode := "P"
		if s.Kind == redistest.Cluster {
			mode = "S"
		}
		do := func(args ...string) rueidis.RedisResult {
			return c.Do(ctx, c.B().Arbitrary(args[0]).Keys(args[1]).Args(args[2:]...).Build())
		}
		run := func(sc *lua.Script, k keys.Lock, args ...string) rueidis.RedisResult {
			return sc.Exec(ctx, c, []string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant, k.Inc}, args)
		}
		ids := func(k keys.Lock) (ids, types []string) {
			ents, err := c.Do(ctx, c.B().Xrange().Key(k.Events).Start("-").End("+").Build()).AsXRange()
			require.NoError(t, err)
			for _, e := range ents {
				ids, types = append(ids, e.ID), append(types, e.FieldValues["type"])
			}
			return ids, types
		}
		const holder, other = "exec-a|1", "exec-b|1"
		acquire := func(h string) []string { return []string{h, "30000", "0", "5000", "0", "", mode, "", "0"} }

		t.Run("empty log", func(t *testing.T) {
			k := keys.ForLock(prefix, "empty")
			require.NoError(t, do("HSET", k.Inc, "inc", "5", "floor", fl).Error())
			require.NoError(t, run(lua.Acquire, k, acquire(holder)...).Error())
			require.NoError(t, run(lua.Release, k, holder, "0", "0", "", mode, "").Error())
			got, types := ids(k)
			assert.Equal(t, []string{"lock_acquired", "lock_released"}, types)
			require.Len(t, got, 2)
			assert.Equal(t, strconv.FormatInt(floor+1, 10)+"-1", got[0], "the first event lies above the floor")
			assert.Equal(t, strconv.FormatInt(floor+1, 10)+"-2", got[1], "the next follows it")
		})
		t.Run("log below the floor", func(t *testing.T) {
			// Events appended before the Delete's floor was known (a log
			// that the session's TTL left, say): the event goes above the
			// floor all the same.
			k := keys.ForLock(prefix, "below")
			require.NoError(t, do("HSET", k.Inc, "inc", "5", "floor", fl).Error())
			require.NoError(t, do("XADD", k.Events, "1000-1", "type", "x").Error())
			require.NoError(t, run(lua.Acquire, k, acquire(holder)...).Error())
			got, _ := ids(k)
			assert.Equal(t, []string{"1000-1", strconv.FormatInt(floor+1, 10) + "-1"}, got)
		})
		t.Run("log above the floor", func(t *testing.T) {
			// The new incarnation's created event lies above the floor:
			// lock events take the server's next id after it.
			k := keys.ForLock(prefix, "above")
			above := strconv.FormatInt(floor+5, 10)
			require.NoError(t, do("HSET", k.Inc, "inc", "5", "floor", fl).Error())
			require.NoError(t, do("XADD", k.Events, above+"-3", "type", "created").Error())
			_, err := lua.ForceRelease.Exec(ctx, c, []string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant, k.Inc},
				[]string{"0", k.Wake, mode, "test", "op"}).ToArray()
			require.NoError(t, err)
			got, types := ids(k)
			assert.Equal(t, []string{"created", "lock_force_released"}, types)
			assert.Equal(t, []string{above + "-3", above + "-4"}, got)
		})
		t.Run("corrupt floor", func(t *testing.T) {
			k := keys.ForLock(prefix, "corrupt")
			require.NoError(t, do("HSET", k.Inc, "floor", "x").Error())
			err := run(lua.Acquire, k, acquire(other)...).Error()
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "FENCEKIT_CORRUPT "+k.Inc), "%v", err)
			n, err := c.Do(ctx, c.B().Exists().Key(k.Lock, k.Fence, k.Events, k.Grant).Build()).AsInt64()
			require.NoError(t, err)
			assert.Zero(t, n, "nothing written")
		})
		t.Run("inc key of another type", func(t *testing.T) {
			k := keys.ForLock(prefix, "wrongtype")
			require.NoError(t, do("SET", k.Inc, "x").Error())
			err := run(lua.Acquire, k, acquire(other)...).Error()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "WRONGTYPE")
			n, err := c.Do(ctx, c.B().Exists().Key(k.Lock, k.Fence, k.Events, k.Grant).Build()).AsInt64()
			require.NoError(t, err)
			assert.Zero(t, n, "nothing written")
		})
	})
}
