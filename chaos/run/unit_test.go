package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/chaos/history"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/skew"
	"github.com/fencekit/fencekit/statestore"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		st   history.Status
		kind string
	}{
		{nil, history.OK, ""},
		{fmt.Errorf("save: %w", &fencing.StaleTokenError{}), history.Fail, history.ErrStale},
		{fmt.Errorf("save: %w", fencing.ErrNotHolder), history.Fail, history.ErrNotHolder},
		{errCASMismatch, history.Fail, history.ErrConflict},
		{fmt.Errorf("x: %w", statestore.ErrConflict), history.Fail, history.ErrConflict},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), history.Unknown, history.ErrTimeout},
		{io.EOF, history.Unknown, history.ErrConn},
		{fmt.Errorf("x: %w", syscall.ECONNRESET), history.Unknown, history.ErrConn},
		{fmt.Errorf("%w: WAIT: x", errNotReplicated), history.Unknown, "not_replicated"},
		{errors.New("something else"), history.Unknown, history.ErrOther},
	} {
		st, kind := classify(tc.err)
		if st != tc.st || kind != tc.kind {
			t.Errorf("classify(%v) = %s/%s, want %s/%s", tc.err, st, kind, tc.st, tc.kind)
		}
	}
	// An error reply: refused, except UNBLOCKED, which only a WAIT cut
	// short after the write gets.
	for msg, want := range map[string]history.Status{
		"FENCEKIT_CORRUPT x":                         history.Fail,
		"READONLY You can't write against a replica": history.Fail,
		"UNBLOCKED force unblock from blocking":      history.Unknown,
	} {
		err := redisErr(t, msg)
		if st, _ := classify(fmt.Errorf("x: %w", err)); st != want {
			t.Errorf("classify(%q) = %s, want %s", msg, st, want)
		}
	}
}

// redisErr gets a real *rueidis.RedisError: a script on a real
// redis-server replies msg as an error.
func redisErr(t *testing.T, msg string) error {
	t.Helper()
	needRedis(t)
	n, err := newNode(t.TempDir(), false, false, dataLines())
	if err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{n.addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = c.Do(ctx, c.B().Eval().Script("return redis.error_reply(ARGV[1])").Numkeys(0).Arg(msg).Build()).Error()
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		t.Fatalf("%v is not a RedisError", err)
	}
	return err
}

func TestProxyModes(t *testing.T) {
	// An echo server behind the proxy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	p, err := NewProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	roundTrip := func() error {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "ping"); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ping" {
			return fmt.Errorf("echo %q", buf)
		}
		return nil
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("pass: %v", err)
	}
	p.SetMode(ProxyLatency, time.Millisecond)
	if err := roundTrip(); err != nil {
		t.Fatalf("latency: %v", err)
	}
	p.SetMode(ProxyDropReply, 0)
	if err := roundTrip(); err == nil {
		t.Fatal("drop-reply: the reply came through")
	}
	p.SetMode(ProxyPass, 0)
	if err := roundTrip(); err != nil {
		t.Fatalf("pass after drop-reply: %v", err)
	}
	// A held connection: the reply arrives once the blackhole ends.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.SetMode(ProxyBlackhole, 0)
	io.WriteString(c, "late")
	p.SetMode(ProxyPass, 0)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
		t.Fatalf("after blackhole: %q %v", buf, err)
	}
	p.Reset()
	if _, err := c.Read(buf); err == nil {
		t.Fatal("read after Reset succeeded")
	}
}

func TestOrderCheck(t *testing.T) {
	ops := []tokOp{{1, 2, 10}, {3, 4, 11}, {5, 6, 9}, {5, 7, 11}}
	dups, order := orderCheck(ops)
	if dups != 1 || order != 2 {
		t.Fatalf("dups %d order %d, want 1 and 2", dups, order)
	}
}

// TestClockShim: a server under the clock shim reports the skewed time in
// TIME and expires keys by it, forward and back; a node without the shim
// refuses setSkew.
func TestClockShim(t *testing.T) {
	needRedis(t)
	dir := t.TempDir()
	lib, err := skew.Build(dir)
	if err != nil {
		if os.Getenv("FENCEKIT_REQUIRE_REDIS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	n, err := newNode(dir, false, false, dataLines(), withSkew(lib))
	if err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	if _, err := n.do("SET", "k", "v", "PX", "5000"); err != nil {
		t.Fatal(err)
	}
	if err := n.setSkew(-20 * time.Second); err != nil {
		t.Fatal(err)
	}
	v, err := rawDo(n.addr(), time.Second, "PTTL", "k")
	if pttl, perr := strconv.ParseInt(fmt.Sprint(v), 10, 64); err != nil || perr != nil || pttl <= 20000 || pttl > 25000 {
		t.Fatalf("PTTL after a 20 s step back = %v (%v), want in (20000, 25000]", v, err)
	}
	if err := n.setSkew(6 * time.Second); err != nil { // 26 s forward: past the expiry
		t.Fatal(err)
	}
	if v, err := rawDo(n.addr(), time.Second, "EXISTS", "k"); err != nil || fmt.Sprint(v) != "0" {
		t.Fatalf("EXISTS after the jump past the expiry = %v, %v; want 0", v, err)
	}

	plain, err := newNode(dir, false, false, dataLines())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.stop()
	if err := plain.setSkew(time.Second); err == nil {
		t.Fatal("setSkew on a node without the shim succeeded")
	}
}

func needRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("FENCEKIT_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server: %v", err)
		}
		t.Skipf("redis-server: %v", err)
	}
}

// TestNodePortTaken: a port that another process binds between FreePort
// and the server's start (CI saw "Address already in use" once) makes
// newNode set the node up again on another port instead of failing.
func TestNodePortTaken(t *testing.T) {
	needRedis(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	orig := freePort
	freePort = func(bus bool) (int, error) {
		calls++
		if calls == 1 {
			return takenPort, nil
		}
		return orig(bus)
	}
	defer func() { freePort = orig }()
	n, err := newNode(t.TempDir(), false, false, dataLines())
	if err != nil {
		t.Fatalf("newNode with its first port taken: %v", err)
	}
	defer n.stop()
	if calls != 2 || n.port == takenPort {
		t.Fatalf("newNode took %d ports, runs on %d (the taken one is %d); want a second, other port", calls, n.port, takenPort)
	}
	if v, err := n.do("PING"); err != nil || v != "PONG" {
		t.Fatalf("PING = %q, %v", v, err)
	}
}
