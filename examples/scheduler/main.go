//go:build unix

// Command scheduler shows leader election with fencing, with real
// processes: three replicas elect a scheduler, the leader is frozen
// (SIGSTOP) past its lease, another replica takes over with a larger term,
// and when the old leader wakes up its writes are refused.
//
// Each replica is this program run again with SCHEDULER_REPLICA set. It
// campaigns in the election "scheduler" (package election, lease TTL
// 1 s, kept alive by the watchdog) and, as leader, writes the schedule to
// the statestore session named like the election every 100 ms with its
// term as the fencing token, without looking at its lease first. The
// parent prints the timeline, including the election's own history read
// with Observe, and checks the invariant: every accepted write came from
// the leader of a term no older than any write accepted before it, and the
// old leader's write after the freeze was refused.
//
//	go run ./examples/scheduler
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/scheduler
//
// It exits 0 when the invariant held, 1 when a stale write was accepted,
// and 2 on any other failure.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

const (
	envReplica = "SCHEDULER_REPLICA"
	envURL     = "SCHEDULER_REDIS_URL"
	envMini    = "SCHEDULER_MINI"
	envPrefix  = "SCHEDULER_PREFIX"
	envTTL     = "SCHEDULER_TTL_MS"

	electionName = "scheduler"
	tickEvery    = 100 * time.Millisecond
	ttl          = time.Second
)

func main() {
	if name := os.Getenv(envReplica); name != "" {
		os.Exit(replicaMain(name))
	}
	os.Exit(run())
}

func run() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "scheduler: FAIL: "+format+"\n", args...)
		return 2
	}
	srv, err := embedded.Start()
	if err != nil {
		return fail("%v", err)
	}
	defer srv.Close()
	url := os.Getenv("REDIS_URL")
	env := []string{}
	if srv.Mini != nil {
		url = "redis://" + srv.Mini.Addr()
		env = append(env, envMini+"=1")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "fkdemo" + hex.EncodeToString(b[:])
	env = append(env, envURL+"="+url, envPrefix+"="+prefix, envTTL+"="+strconv.FormatInt(ttl.Milliseconds(), 10))
	exe, err := os.Executable()
	if err != nil {
		return fail("%v", err)
	}
	client, err := srv.NewClient()
	if err != nil {
		return fail("%v", err)
	}
	defer client.Close()
	fmt.Printf("server: %s\nelection %q, lease TTL %v; replicas A, B and C are subprocesses\n\n", srv.Description, electionName, ttl)

	start := time.Now()
	logAt := func(at time.Time, who, format string, args ...any) {
		fmt.Printf("%6.3fs  %-8s %s\n", at.Sub(start).Seconds(), who, fmt.Sprintf(format, args...))
	}
	logf := func(who, format string, args ...any) { logAt(time.Now(), who, format, args...) }

	// The election's own history, as any observer sees it.
	obs, err := election.New(client, electionName, election.Options{Lock: lock.Options{Prefix: prefix, Owner: "observer"}})
	if err != nil {
		return fail("%v", err)
	}
	defer obs.Close()
	octx, stopObs := context.WithCancel(ctx)
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		for ld, err := range obs.Observe(octx) {
			if err != nil {
				return
			}
			if ld.Change != "" && ld.Change != "proclaimed" {
				logf("observe", "%s: %s term %d", ld.Change, ld.Owner, ld.Term)
			}
		}
	}()
	defer func() { stopObs(); <-observed }()

	events := make(chan event, 256)
	reps := map[string]*replica{}
	defer func() {
		for _, r := range reps {
			r.kill()
		}
	}()
	for _, name := range []string{"A", "B", "C"} {
		r, err := startReplica(exe, name, env, events)
		if err != nil {
			return fail("%v", err)
		}
		reps[name] = r
	}

	// next returns the next event that satisfies want, logging every
	// event and checking the invariant on the way.
	var highest uint64 // the largest term of an accepted write
	violated := ""
	next := func(what string, d time.Duration, want func(event) bool) (event, error) {
		timer := time.NewTimer(d)
		defer timer.Stop()
		for {
			select {
			case e := <-events:
				logf := func(who, format string, args ...any) { logAt(time.Unix(0, e.At), who, format, args...) }
				switch e.Ev {
				case "leader":
					logf(e.Replica, "elected, term %d", e.Term)
				case "wrote":
					if e.Term < highest && violated == "" {
						violated = fmt.Sprintf("replica %s wrote with term %d after term %d had written", e.Replica, e.Term, highest)
					}
					highest = max(highest, e.Term)
					logf(e.Replica, "wrote tick %d with term %d: accepted", e.Tick, e.Term)
				case "refused":
					logf(e.Replica, "wrote tick %d with term %d: REFUSED (fenced: %v)", e.Tick, e.Term, e.Fenced)
				case "error":
					return e, fmt.Errorf("replica %s: %s", e.Replica, e.Err)
				}
				if want(e) {
					return e, nil
				}
			case <-timer.C:
				return event{}, fmt.Errorf("timed out waiting for %s", what)
			}
		}
	}

	// The leader to freeze: whoever has written three ticks in one term
	// (on a loaded machine a leader may lose its lease before that, and
	// another takes over: the one that gets to three is frozen).
	first, err := next("3 writes by a leader", 20*time.Second, func(e event) bool { return e.Ev == "wrote" && e.Tick >= 3 })
	if err != nil {
		return fail("%v", err)
	}
	old := first.Replica
	if err := reps[old].signal(syscall.SIGSTOP); err != nil {
		return fail("%v", err)
	}
	logf("--", "%s frozen (SIGSTOP) for %v, past its lease", old, ttl+ttl/2)
	// miniredis expires keys only when told time passed: Sleep tells it.
	srv.Sleep(ttl + ttl/2)
	second, err := next("a new leader", 10*time.Second, func(e event) bool { return e.Ev == "leader" && e.Replica != old && e.Term > first.Term })
	if err != nil {
		return fail("%v", err)
	}
	if _, err := next("2 writes by the new leader", 10*time.Second, func(e event) bool {
		return e.Replica == second.Replica && e.Ev == "wrote" && e.Tick >= 2
	}); err != nil {
		return fail("%v", err)
	}
	if err := reps[old].signal(syscall.SIGCONT); err != nil {
		return fail("%v", err)
	}
	logf("--", "%s thawed (SIGCONT); it still believes it leads with term %d", old, first.Term)
	stale, err := next("the old leader's next write", 10*time.Second, func(e event) bool {
		return e.Replica == old && (e.Ev == "refused" || e.Ev == "wrote") && e.Term == first.Term
	})
	if err != nil {
		return fail("%v", err)
	}
	// A moment more of the new leader's writes.
	_, _ = next("", 300*time.Millisecond, func(event) bool { return false })

	store, err := statestore.New(client, statestore.Options{Prefix: prefix, TTL: time.Minute})
	if err != nil {
		return fail("%v", err)
	}
	st, err := store.Load(ctx, electionName)
	if err != nil {
		return fail("load: %v", err)
	}
	var doc struct {
		Leader string `json:"leader"`
		Term   uint64 `json:"term"`
	}
	_ = json.Unmarshal(st.Data, &doc)
	fmt.Printf("\nfinal schedule written by %s with term %d\n", doc.Leader, doc.Term)
	switch {
	case stale.Ev == "wrote":
		fmt.Printf("VERDICT: FAIL: the old leader %s wrote with term %d after %s took over with term %d\n", old, first.Term, second.Replica, second.Term)
		return 1
	case violated != "":
		fmt.Println("VERDICT: FAIL:", violated)
		return 1
	case !stale.Fenced:
		return fail("the old leader's write failed, but not by fencing: %s", stale.Err)
	case second.Term <= first.Term:
		return fail("the new term %d is not larger than %d", second.Term, first.Term)
	}
	fmt.Printf("VERDICT: ok: %s took over with term %d > %d; the old leader %s was refused (fencing.ErrFenced) and wrote nothing after its term ended\n",
		second.Replica, second.Term, first.Term, old)
	return 0
}
