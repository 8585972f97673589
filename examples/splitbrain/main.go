// Command splitbrain shows the failure fencekit exists for, with real
// processes, and that fencing stops it.
//
// Two executor processes work on one agent session. Executor A takes the
// session's lease (a lock.Locker lock with a 1 s TTL), writes step 1, reads
// the state and computes step 2. Then it stalls: the parent freezes it with
// SIGSTOP, as a GC pause, a VM migration or a debugger would, for longer
// than its lease. Executor B takes the lease over (with a newer token),
// does step 2 and finishes the session. The parent thaws A with SIGCONT,
// and A, still believing it holds the session, writes its step 2 without
// looking at its lease first.
//
// The scenario runs twice:
//
//  1. naive: the same lock, but the state is a plain Redis hash, read with
//     HGETALL and updated with HSET. A's stale write is accepted and the
//     session ends corrupted: the report says which of B's fields were lost.
//  2. fencekit: the state is a statestore.Store and every write carries the
//     lock's token (strict mode). A's stale write is rejected with
//     fencing.ErrStaleToken, and the state stays B's, byte for byte.
//
// Both runs write blindly (no expected version), so only the token can stop
// A. The executors are this same program run again (os.Executable) with
// SPLITBRAIN_EXECUTOR set; they take commands on stdin and report as JSON
// lines on stdout, and are killed with the parent (Pdeathsig on Linux).
//
// Run it with an in-process miniredis (which listens on a loopback port the
// executors connect to), or set REDIS_URL (any URL rueidis.ParseURL
// accepts: rediss://, user:password@) to use a real server:
//
//	go run ./examples/splitbrain
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/splitbrain
//
// It exits 0 when the fenced run was clean and the naive run showed the
// corruption, 1 when the fenced store accepted a stale write, and 2 on any
// other failure (the naive run not showing the corruption included). It
// needs Linux (or another Unix) for SIGSTOP.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/embedded"
)

func main() {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(executorMain(role))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs the scenario as the command does and returns the exit code.
func runMain(ctx context.Context, out, errOut io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(errOut, "splitbrain:", err)
		return exitOtherFailed
	}
	o, err := run(ctx, config{RedisURL: os.Getenv(envURL), TTL: time.Second, Exe: exe}, out)
	if err != nil {
		fmt.Fprintln(errOut, "splitbrain: FAIL:", err)
		return exitOtherFailed
	}
	return o.Verdict.Code
}

// config says where and how to run the scenario.
type config struct {
	RedisURL string        // "": an in-process miniredis
	TTL      time.Duration // A's lease
	Exe      string        // the program to run as executors: this one
}

// outcome is what run observed and its verdict.
type outcome struct {
	Naive, Fenced *runResult
	Verdict       verdict
}

// run runs the naive and the fenced scenario, prints their timelines and
// the report to out, and judges them. An error means a run could not be
// carried out (its verdict would be exit code 2).
func run(ctx context.Context, cfg config, out io.Writer) (*outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, env, err := connect(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	client, err := srv.NewClient()
	if err != nil {
		return nil, err
	}
	defer client.Close()

	id := "session-" + randomHex()
	fmt.Fprintf(out, "server: %s\nsession %s, lease TTL %v; executors A and B are subprocesses\n", srv.Description, id, cfg.TTL)
	env = append(env, envSession+"="+id, envTTL+"="+strconv.FormatInt(cfg.TTL.Milliseconds(), 10))

	fmt.Fprintln(out, "\nrun 1, naive: lock.Locker lease, state in a plain hash (HGETALL, then HSET; no token check)")
	naive, err := scenario(ctx, srv, client, cfg, modeNaive, id, env, out)
	if err != nil {
		return nil, fmt.Errorf("naive run: %w", err)
	}
	fmt.Fprintln(out, "\nrun 2, fencekit: lock.Locker lease, state in statestore; every write carries the lock's token (strict mode)")
	fenced, err := scenario(ctx, srv, client, cfg, modeFenced, id, env, out)
	if err != nil {
		return nil, fmt.Errorf("fencekit run: %w", err)
	}
	o := &outcome{Naive: naive, Fenced: fenced, Verdict: judge(naive, fenced)}
	printSummary(out, naive, fenced, o.Verdict)
	return o, nil
}

// connect returns the server named by redisURL, or an in-process miniredis,
// and the environment that tells the executors how to reach it.
func connect(redisURL string) (*embedded.Server, []string, error) {
	if redisURL == "" {
		srv, err := embedded.StartMini()
		if err != nil {
			return nil, nil, err
		}
		srv.Description = "embedded miniredis at " + srv.Mini.Addr() + " (set REDIS_URL for a real server)"
		return srv, []string{envURL + "=redis://" + srv.Mini.Addr(), envMini + "=1"}, nil
	}
	opt, err := rueidis.ParseURL(redisURL)
	if err != nil {
		// The parse error quotes the URL, password and all.
		return nil, nil, fmt.Errorf("%s %s: not a URL rueidis.ParseURL accepts", envURL, embedded.RedactURL(redisURL))
	}
	// rediss:// with the REDIS_TLS_* files, as embedded.Start reads them
	// (the executors inherit the variables).
	if err := embedded.TLSFilesFromEnv(nil).Apply(&opt); err != nil {
		return nil, nil, err
	}
	opt.Dialer.Timeout = 2 * time.Second
	opt.ConnWriteTimeout = 5 * time.Second
	return &embedded.Server{Option: opt, Description: "Redis at " + embedded.RedactURL(redisURL)}, []string{envURL + "=" + redisURL}, nil
}

// scenario runs the split-brain scenario once, in mode.
func scenario(ctx context.Context, srv *embedded.Server, client rueidis.Client, cfg config, mode, id string, env []string, out io.Writer) (*runResult, error) {
	const step = 10 * time.Second // bound on every single step of an executor
	res := &runResult{Mode: mode}
	tl := &timeline{out: out, start: time.Now()}
	env = append(env, envMode+"="+mode)

	a, err := startProc(cfg.Exe, "A", env)
	if err != nil {
		return nil, err
	}
	defer a.kill()
	r, err := a.expect(ctx, "acquired", step)
	if err != nil {
		return nil, err
	}
	res.TokenA = r.Token
	tl.log("A", "acquired the lease: token %d, TTL %v", r.Token, cfg.TTL)
	if r, err = a.expect(ctx, "wrote", step); err != nil {
		return nil, err
	}
	tl.log("A", "wrote step 1 (version %d)", r.Version)
	if r, err = a.expect(ctx, "ready", step); err != nil {
		return nil, err
	}
	tl.log("A", "read version %d, computed step 2, about to write it", r.Version)

	if err := freeze(a.cmd.Process); err != nil {
		return nil, err
	}
	if err := waitStopped(ctx, a.cmd.Process.Pid); err != nil {
		return nil, err
	}
	tl.log("--", "A frozen (SIGSTOP)")
	// A is told to go on now: from here only the freeze holds it back.
	if err := a.send(cmdGo); err != nil {
		return nil, err
	}
	if err := sleep(ctx, srv, cfg.TTL+cfg.TTL/4); err != nil {
		return nil, err
	}
	tl.log("--", "A's lease has run out (A still frozen)")

	b, err := startProc(cfg.Exe, "B", env)
	if err != nil {
		return nil, err
	}
	defer b.kill()
	if r, err = b.expect(ctx, "acquired", step); err != nil {
		return nil, err
	}
	res.TokenB = r.Token
	tl.log("B", "acquired the lease: token %d", r.Token)
	if r, err = b.expect(ctx, "wrote", step); err != nil {
		return nil, err
	}
	res.BState = r.State
	tl.log("B", "wrote step 2 and finished the session (version %d)", r.Version)

	if err := thaw(a.cmd.Process); err != nil {
		return nil, err
	}
	tl.log("--", "A resumed (SIGCONT)")
	if res.AWrite, err = a.expect(ctx, "write", step); err != nil {
		return nil, err
	}
	switch w := res.AWrite; {
	case w.Accepted:
		tl.log("A", "writes its step 2 with token %d: ACCEPTED", res.TokenA)
	default:
		tl.log("A", "writes its step 2 with token %d: REJECTED: %s", res.TokenA, w.Err)
	}
	if res.AWrite.LeaseErr != "" {
		tl.log("A", "(had A asked first, lk.Err() would have said: %s)", res.AWrite.LeaseErr)
	}
	if res.Final, err = client.Do(ctx, client.B().Hgetall().Key(stateKey(mode, id)).Build()).AsStrMap(); err != nil {
		return nil, fmt.Errorf("read the final state: %w", err)
	}

	// Both finish: A releases (its lease is gone, so it cannot touch B's
	// lock), then B.
	for _, p := range []*proc{a, b} {
		if err := p.stop(5 * time.Second); err != nil {
			return nil, err
		}
		for _, r := range p.rest() {
			if r.Event == "released" {
				tl.log(p.name, "released: %s", orOK(r.Err))
			}
		}
	}
	return res, nil
}

// sleep waits d, or less if ctx ends. miniredis expires keys only when
// told that time passed, so its clock is moved on by d too.
func sleep(ctx context.Context, srv *embedded.Server, d time.Duration) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(d):
	}
	if srv.Mini != nil {
		srv.Mini.FastForward(d)
	}
	return nil
}

func orOK(s string) string {
	if s == "" {
		return "ok"
	}
	return s
}

func randomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails, see crypto/rand.Read
	return hex.EncodeToString(b)
}
