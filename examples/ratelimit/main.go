//go:build unix

// Command ratelimit shows a fair counting semaphore with expiring permits,
// with real processes: eight executors share four LLM slots (package
// semaphore), and one executor is killed (SIGKILL) while it holds a slot.
//
// Each executor is this program run again with RATELIMIT_EXECUTOR set. It
// makes three "LLM calls" (100-250 ms each), each under one slot taken
// with Acquire (FIFO, lease TTL 1 s kept alive by the watchdog), and
// reports on stdout when it got a slot, the end of its lease while it
// holds it, and when it is about to give it back. The parent kills
// executor E3 as soon as it holds its first slot: the slot stays taken
// until its lease ends, then goes to the next waiter.
//
// The parent prints the timeline with the number of slots in use, and
// checks, from the executors' reports (an interval from "acquired" to
// "releasing", both inside the real hold; for the killed executor, to the
// last lease end it reported) and from the server's own count sampled
// every few milliseconds, that never more than four slots were held at
// once, and that all four slots are free again at the end.
//
//	go run ./examples/ratelimit
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/ratelimit
//
// It exits 0 when the invariants held, 1 when one broke, 2 on any other
// failure.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/semaphore"
)

const (
	envExec   = "RATELIMIT_EXECUTOR"
	envURL    = "RATELIMIT_REDIS_URL"
	envMini   = "RATELIMIT_MINI"
	envPrefix = "RATELIMIT_PREFIX"

	slotsName = "llm-slots"
	limit     = 4
	executors = 8
	calls     = 3
	ttl       = time.Second
	victim    = "E3"
)

func main() {
	if name := os.Getenv(envExec); name != "" {
		os.Exit(executorMain(name))
	}
	os.Exit(run())
}

func run() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "ratelimit: FAIL: "+format+"\n", args...)
		return 2
	}
	srv, err := embedded.Start()
	if err != nil {
		return fail("%v", err)
	}
	defer srv.Close()
	url := os.Getenv("REDIS_URL")
	var env []string
	if srv.Mini != nil {
		url = "redis://" + srv.Mini.Addr()
		env = append(env, envMini+"=1")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "fkdemo" + hex.EncodeToString(b[:])
	env = append(env, envURL+"="+url, envPrefix+"="+prefix)
	exe, err := os.Executable()
	if err != nil {
		return fail("%v", err)
	}
	client, err := srv.NewClient()
	if err != nil {
		return fail("%v", err)
	}
	defer client.Close()
	slots, err := semaphore.New(client, slotsName, semaphore.Options{Prefix: prefix, Limit: limit, TTL: ttl})
	if err != nil {
		return fail("%v", err)
	}
	defer slots.Close()
	fmt.Printf("server: %s\n%d executors share %d slots of %q (lease TTL %v); %s is killed holding a slot\n\n",
		srv.Description, executors, limit, slotsName, ttl, victim)

	// The server's own count, sampled while the executors run.
	var serverMax int64
	sampling, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampling.Err() == nil {
			if info, err := slots.Inspect(sampling); err == nil && info.Used > serverMax {
				serverMax = info.Used
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	start := time.Now()
	events := make(chan event, 1024)
	xs := map[string]*executor{}
	defer func() {
		for _, x := range xs {
			x.kill()
		}
	}()
	for i := 1; i <= executors; i++ {
		name := fmt.Sprintf("E%d", i)
		x, err := startExecutor(exe, name, env, events)
		if err != nil {
			return fail("%v", err)
		}
		xs[name] = x
	}

	var all []event
	var killedAt time.Time
	finished := 0
	timeout := time.After(30 * time.Second)
	for finished < executors-1 {
		select {
		case e := <-events:
			all = append(all, e)
			switch e.Ev {
			case "error":
				return fail("executor %s: %s", e.Exec, e.Err)
			case "done":
				finished++
			case "acquired":
				if e.Exec == victim && killedAt.IsZero() {
					xs[victim].kill()
					killedAt = time.Now()
				}
			}
		case <-timeout:
			return fail("timed out: %d of %d executors finished", finished, executors-1)
		}
	}
	stopSampling()
	<-sampled

	// Every slot is free again: the killed executor's once its lease ended.
	free := time.Now().Add(3 * ttl)
	var info semaphore.Info
	for {
		if info, err = slots.Inspect(ctx); err != nil {
			return fail("inspect: %v", err)
		}
		if info.Used == 0 || time.Now().After(free) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	all4, err := slots.TryAcquire(ctx, limit)
	if err == nil {
		err = all4.Release(ctx)
	}

	maxAtOnce := printTimeline(all, start)
	fmt.Printf("\n%s was killed %.3fs in, holding a slot\n", victim, killedAt.Sub(start).Seconds())
	fmt.Printf("most slots held at once: %d by the executors' reports, %d by the server's count\n", maxAtOnce, serverMax)
	switch {
	case maxAtOnce > limit || serverMax > limit:
		fmt.Printf("VERDICT: FAIL: more than %d slots held at once\n", limit)
		return 1
	case info.Used != 0 || err != nil:
		fmt.Printf("VERDICT: FAIL: a slot was lost: %d in use at the end (%v)\n", info.Used, err)
		return 1
	case maxAtOnce < limit:
		return fail("the slots were never all in use (%d): the run did not contend", maxAtOnce)
	}
	fmt.Printf("VERDICT: ok: never more than %d at once; all %d slots free again after %s died\n", limit, limit, victim)
	return 0
}

// printTimeline prints the hand-outs and returns the most slots held at
// once by the executors' reports.
func printTimeline(all []event, start time.Time) int {
	type point struct {
		at    int64
		delta int
		line  string
	}
	var pts []point
	open := map[string]event{}    // executor -> its acquired event
	lastEnd := map[string]int64{} // executor -> the lease end it reported last
	for _, e := range all {
		switch e.Ev {
		case "acquired":
			open[e.Exec] = e
			lastEnd[e.Exec] = e.Deadline
			pts = append(pts, point{e.At, +1, fmt.Sprintf("%s got a slot (token %d)", e.Exec, e.Token)})
		case "hold":
			lastEnd[e.Exec] = e.Deadline
		case "releasing":
			delete(open, e.Exec)
			pts = append(pts, point{e.At, -1, e.Exec + " gives its slot back"})
		}
	}
	for x := range open { // killed holding it: held until its lease ended
		pts = append(pts, point{lastEnd[x], -1, x + "'s slot freed: its lease ended (killed)"})
	}
	sort.SliceStable(pts, func(i, j int) bool {
		if pts[i].at != pts[j].at {
			return pts[i].at < pts[j].at
		}
		return pts[i].delta < pts[j].delta // a release before a grant at the same instant
	})
	in, most := 0, 0
	for _, p := range pts {
		in += p.delta
		most = max(most, in)
		fmt.Printf("%6.3fs  [%-4s] %d in use  %s\n", time.Unix(0, p.at).Sub(start).Seconds(), strings.Repeat("#", in), in, p.line)
	}
	return most
}
