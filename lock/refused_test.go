package lock_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// A notice is not a grant (issue 12 §1). Each lock script that hands the
// lock to a waiter runs while the server refuses writes, with a waiter
// blocked in Acquire on another Locker (so it learns of hand-offs by
// pub/sub). The script must either be refused with nothing written - the
// caller gets fencing.ErrWriteRefused wrapping the server's reply, and the
// waiter gets no Lock - or, where the server lets the script write (OOM
// only refuses commands that grow memory, so a script whose first write is
// a ZREM goes through), be complete, with the waiter holding what Redis
// holds. miniredis cannot refuse writes, so this runs on real servers.

// refusal makes a server refuse writes (on) and accept them again (off).
type refusal struct {
	code    string // the error code the server answers with
	on, off func(t *testing.T)
}

// nodeClients returns one single-node client per server process.
func nodeClients(t *testing.T, s *redistest.Server) []rueidis.Client {
	var out []rueidis.Client
	for _, addr := range s.Addrs {
		o := s.ClientOption()
		o.InitAddress, o.ForceSingleClient, o.DisableCache = []string{addr}, true, true
		c, err := rueidis.NewClient(o)
		require.NoError(t, err)
		t.Cleanup(c.Close)
		out = append(out, c)
	}
	return out
}

func doAll(t *testing.T, cs []rueidis.Client, args ...string) {
	t.Helper()
	for _, c := range cs {
		require.NoError(t, c.Do(context.Background(), c.B().Arbitrary(args...).Build()).Error(), "%v", args)
	}
}

func refusals(t *testing.T, s *redistest.Server) []refusal {
	nodes := nodeClients(t, s)
	set := func(param, on, off string) (func(*testing.T), func(*testing.T)) {
		return func(t *testing.T) { doAll(t, nodes, "CONFIG", "SET", param, on) },
			func(t *testing.T) { doAll(t, nodes, "CONFIG", "SET", param, off) }
	}
	var rs []refusal
	on, off := set("min-replicas-to-write", "1", "0")
	rs = append(rs, refusal{"NOREPLICAS", on, off})
	on, off = set("maxmemory", "1", "0")
	rs = append(rs, refusal{"OOM", on, off})
	if s.Kind != redistest.Redis {
		return rs // a cluster node cannot be made a replica of nothing, nor moved to another dir
	}
	c := nodes[0]
	// A primary demoted by a failover: a replica of a primary it cannot
	// reach keeps its data and refuses writes.
	rs = append(rs, refusal{"READONLY",
		func(t *testing.T) { doAll(t, nodes, "REPLICAOF", "127.0.0.1", "1") },
		func(t *testing.T) { doAll(t, nodes, "REPLICAOF", "NO", "ONE") }})
	// A snapshot that failed, with stop-writes-on-bgsave-error (the
	// default) and a save point configured.
	dir := filepath.Join(t.TempDir(), "rdb")
	rs = append(rs, refusal{"MISCONF",
		func(t *testing.T) {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			doAll(t, nodes, "CONFIG", "SET", "save", "3600 1")
			doAll(t, nodes, "CONFIG", "SET", "dir", dir)
			require.NoError(t, os.RemoveAll(dir)) // the snapshot cannot be written
			snapshotUntil(t, s, c, "err")
		},
		func(t *testing.T) {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			doAll(t, nodes, "CONFIG", "SET", "dir", dir)
			snapshotUntil(t, s, c, "ok")
			doAll(t, nodes, "CONFIG", "SET", "save", "")
		}})
	return rs
}

// snapshotUntil runs BGSAVE until the last one ended with status want ("ok"
// or "err") and none runs any more: a snapshot started earlier (by the
// previous off, say) must end before the next on finds its temp file in
// the directory or its BGSAVE refused. The conditions are read by a plain
// loop, not require.Eventually, so that a failing INFO is reported as
// itself; on time-out the log names every BGSAVE reply and the server's
// log tail (a CI run once saw the status stay "ok" for 10 s).
func snapshotUntil(t *testing.T, s *redistest.Server, c rueidis.Client, want string) {
	t.Helper()
	persistence := func() (inProgress, status string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		txt, err := c.Do(ctx, c.B().Info().Section("persistence").Build()).ToString()
		if err != nil {
			return "", "", err
		}
		for _, line := range strings.Split(txt, "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "rdb_bgsave_in_progress:"); ok {
				inProgress = v
			} else if v, ok := strings.CutPrefix(line, "rdb_last_bgsave_status:"); ok {
				status = v
			}
		}
		return inProgress, status, nil
	}
	var replies []string
	started := false // a BGSAVE was started by this call and has ended
	deadline := time.Now().Add(30 * time.Second)
	for {
		inProgress, status, err := persistence()
		require.NoError(t, err, "INFO persistence")
		if inProgress == "0" {
			if started && status == want {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			reply, err := c.Do(ctx, c.B().Bgsave().Build()).ToString()
			cancel()
			if err != nil {
				reply = err.Error()
			} else {
				started = true
			}
			if len(replies) < 20 {
				replies = append(replies, reply)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("last snapshot status %q (in progress %q), want %q, after 30 s; BGSAVE replies %q\n%s",
				status, inProgress, want, replies, s.LogTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// refusalServers returns a private standalone server (it is reconfigured)
// and the shared cluster.
func refusalServers(t *testing.T) []*redistest.Server {
	// CONFIG SET dir (for MISCONF) is a protected config since Redis 7.
	return []*redistest.Server{redistest.NewPrivateRedis(t, "--enable-protected-configs", "yes"), redistest.NewCluster(t)}
}

func TestWriteRefusedNoPhantomGrant(t *testing.T) {
	servers := refusalServers(t)
	for _, s := range servers {
		t.Run(s.Name(), func(t *testing.T) {
			c := s.NewClient(t)
			for _, r := range refusals(t, s) {
				for _, sc := range []string{"release.lua", "force_release.lua", "acquire.lua"} {
					t.Run(r.code+"/"+sc, func(t *testing.T) {
						refusedHandOff(t, s, c, r, sc)
					})
				}
			}
		})
	}
}

// refusedHandOff runs one script under one refusal; see above.
func refusedHandOff(t *testing.T, s *redistest.Server, c rueidis.Client, r refusal, script string) {
	ctx := ctxT(t, 30*time.Second)
	prefix := s.Prefix(t)
	const name = "sess"
	k := keys.ForLock(prefix, name)
	holderTTL := time.Minute
	if script == "acquire.lua" {
		holderTTL = 300 * time.Millisecond // over when the hand-off runs
	}
	a := newLockerOn(t, c, s, lock.Options{Prefix: prefix, Owner: "a", TTL: holderTTL})
	// b's looks are refused too, so they do not keep its queue entry
	// alive: RetryInterval is long enough for the entry (alive for
	// 4×RetryInterval) to outlast the test.
	b := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "b", TTL: 5 * time.Second, RetryInterval: time.Second})
	held, err := a.TryAcquire(ctx, name)
	require.NoError(t, err)

	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	type result struct {
		lk  *lock.Lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		lk, err := b.Acquire(waitCtx, name)
		got <- result{lk, err}
	}()
	waitQueued(t, a, name, 1)
	time.Sleep(100 * time.Millisecond) // b is subscribed

	r.on(t)
	refusing := true
	defer func() {
		if refusing {
			r.off(t)
		}
	}()
	if script == "acquire.lua" {
		time.Sleep(holderTTL) // a's lease is over; b's own looks are refused meanwhile
	}
	before := s.Snapshot(t, k.Lock, k.Fence, k.Queue, k.QueueInfo)

	switch script {
	case "release.lua":
		err = held.Release(ctx)
	case "force_release.lua":
		_, err = lock.ForceRelease(ctx, c, name, lock.ForceOptions{Prefix: prefix, Reason: "test"})
	case "acquire.lua":
		var lk *lock.Lock
		lk, err = a.TryAcquire(ctx, name)
		if err == nil {
			_ = lk.Release(ctx)
			t.Fatalf("TryAcquire took a lock promised to a queued waiter")
		}
		if errors.Is(err, lock.ErrNotAcquired) {
			err = nil // the hand-off was written (see below)
		}
	}

	if err == nil {
		// The server let the script write: the hand-off must be whole.
		t.Logf("%s: %s was not refused: the hand-off went through", r.code, script)
		r.off(t)
		refusing = false
		res := <-got
		require.NoError(t, res.err)
		info, err := a.Inspect(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, "b", info.Owner)
		assert.Equal(t, res.lk.Token(), info.Token, "b holds what Redis holds")
		require.NoError(t, res.lk.Release(ctx))
		return
	}
	require.ErrorIs(t, err, fencing.ErrWriteRefused, "a refused write is reported as such")
	var rerr *rueidis.RedisError
	require.ErrorAs(t, err, &rerr, "the server's reply is wrapped")
	assert.True(t, strings.HasPrefix(rerr.Error(), r.code), "reply %q, want code %s", rerr.Error(), r.code)
	assert.Equal(t, before, s.Snapshot(t, k.Lock, k.Fence, k.Queue, k.QueueInfo), "a refused script wrote")

	// The waiter must not have been told of a grant.
	select {
	case res := <-got:
		t.Fatalf("the waiter returned while writes were refused: lock %v, err %v", res.lk, res.err)
	case <-time.After(300 * time.Millisecond):
	}
	stopWaiting()
	res := <-got
	assert.Nil(t, res.lk, "phantom grant: the waiter holds a lock Redis never granted")
	require.ErrorIs(t, res.err, context.Canceled)
	info, err := a.Inspect(ctx, name)
	require.NoError(t, err)
	if script == "acquire.lua" {
		assert.False(t, info.Held && info.Owner == "b", "Redis names the waiter")
	} else {
		assert.Equal(t, "a", info.Owner, "the holder still holds the lock")
		assert.Equal(t, held.Token(), info.Token)
	}
	r.off(t)
	refusing = false
	if script != "acquire.lua" {
		require.NoError(t, held.Release(ctx))
	}
}
