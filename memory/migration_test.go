package memory_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/memory"
)

// clusterNode is a master of the test cluster.
type clusterNode struct {
	id, addr string
	c        rueidis.Client // to this node only
}

// slotNodes returns the master serving slot and another master, each with
// a client of its own.
func slotNodes(t *testing.T, s *redistest.Server, slot int) (src, dst clusterNode) {
	t.Helper()
	m := s.Do(t, "CLUSTER", "NODES")
	nodes, err := m.ToString()
	require.NoError(t, err)
	nodes = strings.TrimPrefix(nodes, "txt:") // a RESP3 verbatim string
	var others []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") {
			continue
		}
		n := clusterNode{id: f[0], addr: strings.Split(f[1], "@")[0]}
		serves := false
		for _, r := range f[8:] {
			lo, hi, _ := strings.Cut(r, "-")
			if hi == "" {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				serves = true
			}
		}
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{n.addr}, ForceSingleClient: true, DisableCache: true})
		require.NoError(t, err)
		t.Cleanup(c.Close)
		n.c = c
		if serves {
			src = n
		} else {
			others = append(others, n)
		}
	}
	require.NotEmpty(t, src.id, "no master serves slot %d:\n%s", slot, nodes)
	require.NotEmpty(t, others)
	return src, others[0]
}

// do runs a command on the node and fails the test on any error.
func (n clusterNode) do(t *testing.T, args ...string) rueidis.RedisResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := n.c.Do(ctx, n.c.B().Arbitrary(args...).Build())
	require.NoError(t, res.Error(), "%s on %s", args, n.addr)
	return res
}

// TestSlotMigration runs Put (a batch), Delete and Reset while the slot of
// their scope root is being migrated and keys they touch without declaring
// them (a scope index, records) already moved: each must fail before it
// writes anything, and run normally once the keys are back.
func TestSlotMigration(t *testing.T) {
	s := redistest.NewCluster(t)
	e := newEnv(t, s, memory.Options{})
	ctx := context.Background()
	locker, err := lock.New(e.client, lock.Options{Prefix: e.prefix, TTL: time.Minute})
	require.NoError(t, err)
	defer locker.Close()
	name, err := e.store.LockName("mig")
	require.NoError(t, err)
	lk, err := locker.Acquire(ctx, name)
	require.NoError(t, err)
	defer lk.Release(ctx)
	tok := memory.WithToken(lk.Token())

	var ids []string
	var recs []memory.Record
	for _, sc := range []struct {
		scope string
		n     int
	}{{"mig/a", 20}, {"mig/b", 20}, {"mig/c", 5}} {
		for i := range sc.n {
			id := fmt.Sprintf("%s%d", sc.scope[len(sc.scope)-1:], i)
			r := rec(id, sc.scope, vec(1, float32(i)))
			if i == 0 {
				r.TTL = time.Hour // the expiry index and the TTL hash exist
			}
			recs = append(recs, r)
			ids = append(ids, id)
		}
	}
	require.NoError(t, e.store.Put(ctx, recs, tok))
	scopes := []string{"mig/a", "mig/b", "mig/c"}
	all := e.rootKeys("mig", ids, scopes)

	k := keys.ForMemory(e.prefix, "mig")
	m := s.Do(t, "CLUSTER", "KEYSLOT", k.Meta)
	slot, err := m.AsInt64()
	require.NoError(t, err)
	src, dst := slotNodes(t, s, int(slot))
	moved := []string{k.Record("b1"), k.Record("b2"), k.Record("b3"), k.ScopeIndex("mig/c")}
	migrate := func(from, to clusterNode, ks []string) {
		host, port, err := net.SplitHostPort(to.addr)
		require.NoError(t, err)
		from.do(t, append([]string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}, ks...)...)
	}
	slotStr := strconv.FormatInt(slot, 10)
	dst.do(t, "CLUSTER", "SETSLOT", slotStr, "IMPORTING", src.id)
	src.do(t, "CLUSTER", "SETSLOT", slotStr, "MIGRATING", dst.id)
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		// The source takes the keys back once it is stable again (a
		// migrating node answers ASK for keys it lacks); MIGRATE works on
		// the importing node's open slot and skips missing keys.
		src.do(t, "CLUSTER", "SETSLOT", slotStr, "STABLE")
		migrate(dst, src, moved)
		dst.do(t, "CLUSTER", "SETSLOT", slotStr, "STABLE")
	}
	t.Cleanup(restore)

	// While the slot is MIGRATING but every key is here, writes run.
	require.NoError(t, e.store.Put(ctx, []memory.Record{rec("a1", "mig/a", vec(0, 1))}, tok))
	before := e.s.Snapshot(t, all...)

	migrate(src, dst, moved)
	// Reset reads every record of the scopes it deletes: b1..b3 are gone
	// from this node.
	_, err = e.store.Reset(ctx, "mig", tok)
	assert.Error(t, err, "Reset")
	t.Logf("Reset: %v", err)
	assert.Equal(t, before, e.s.Snapshot(t, all...), "Reset changed keys")
	// Put moves c1 out of mig/c, whose index moved away; a2 would be
	// written first.
	err = e.store.Put(ctx, []memory.Record{rec("a2", "mig/a", vec(0, 0, 1)), rec("c1", "mig/a", vec(0, 1))}, tok)
	assert.Error(t, err, "Put")
	t.Logf("Put: %v", err)
	assert.Equal(t, before, e.s.Snapshot(t, all...), "Put changed keys")
	// Delete of a3 (here) and c2 (its scope index moved).
	_, err = e.store.Delete(ctx, "mig", []string{"a3", "c2"}, tok)
	assert.Error(t, err, "Delete")
	t.Logf("Delete: %v", err)
	assert.Equal(t, before, e.s.Snapshot(t, all...), "Delete changed keys")

	restore()
	assert.Equal(t, before, e.s.Snapshot(t, all...))
	n, err := e.store.Reset(ctx, "mig", tok)
	require.NoError(t, err)
	assert.Equal(t, len(ids), n)
	cnt, err := e.store.Count(ctx, "mig", true)
	require.NoError(t, err)
	assert.Zero(t, cnt)
}
