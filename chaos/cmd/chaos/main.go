// Command chaos runs fencekit's fault suite: executor subprocesses drive
// the fencekit packages against Redis topologies on loopback while a
// nemesis injects faults; the merged histories are checked.
//
//	go run ./cmd/chaos -profile short -topology standalone,amnesia,sentinel,cluster -mode durable -seed 1 -out /tmp/chaos
//	go run ./cmd/chaos -profile short -topology sentinel -mode fast -seed 1 -out /tmp/chaos
//	go run ./cmd/chaos -topology sentinel,cluster -faults primary-sigstop,master-sigstop -out /tmp/chaos
//
// -faults keeps the nemesis to the listed kinds (run.AllFaults; kinds of
// other topologies are skipped).
//
// It exits 1 when a checker finds a violation the mode says must be zero,
// 2 on a setup error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fencekit/fencekit/chaos/run"
)

type profile struct {
	dur       map[string]time.Duration
	executors int
	workers   int
	sessions  int
	gap       time.Duration
}

var profiles = map[string]profile{
	"short": {dur: map[string]time.Duration{"standalone": 35 * time.Second, "amnesia": 15 * time.Second, "sentinel": 45 * time.Second, "cluster": 45 * time.Second},
		executors: 4, workers: 4, sessions: 16, gap: 1200 * time.Millisecond},
	"long": {dur: map[string]time.Duration{"standalone": 7 * time.Minute, "amnesia": 3 * time.Minute, "sentinel": 8 * time.Minute, "cluster": 7 * time.Minute},
		executors: 4, workers: 6, sessions: 96, gap: 600 * time.Millisecond},
}

func main() {
	run.MaybeExecutor()
	prof := flag.String("profile", "short", "short (CI) or long")
	tops := flag.String("topology", "standalone,amnesia,sentinel,cluster", "comma-separated topologies: standalone (AOF, kill -9 restarts), amnesia (restarts without persistence), sentinel, cluster")
	modes := flag.String("mode", "durable", "fast, durable, or both comma-separated")
	seed := flag.Uint64("seed", 1, "seed of the workload and the fault schedule")
	out := flag.String("out", "", "directory for histories and reports (default: a new temp dir)")
	mutant := flag.String("mutant", "", "run a negative control (nofence, incr-token, nowait, retry-append, usage-nodedupe, keep-msgs: needs -recreate, sem-uncount, term-reuse)")
	dur := flag.Duration("duration", 0, "override the profile's duration per run")
	faultKinds := flag.String("faults", "", "comma-separated fault kinds to inject (default: every server fault of the topology, executor-sigstop and executor-sigkill)")
	autoRefresh := flag.Bool("autorefresh", false, "executors renew their leases in the background (lock.Options.AutoRefresh)")
	recreate := flag.Bool("recreate", false, "add the recreate workload: executors delete and create again sessions rc-0..rc-3 and readers check they see every acknowledged message and chunk of the incarnation they read")
	semWorkload := flag.Bool("semaphore", true, "add the semaphore workload: executors hold permits of semaphore sem-0 (limit changed at run time); the checker verifies the limit among surely live leases and that no permit is lost")
	electWorkload := flag.Bool("election", true, "add the election workload: executors campaign in election el-0 and proclaim fenced by their term; the checker verifies that terms grow and stale terms' writes are refused")
	flag.Parse()
	p, ok := profiles[*prof]
	if !ok {
		fmt.Fprintf(os.Stderr, "chaos: unknown profile %q\n", *prof)
		os.Exit(2)
	}
	if *out == "" {
		d, err := os.MkdirTemp("", "fencekit-chaos-out-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(2)
		}
		*out = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	var results []*run.Result
	failed := false
	for _, mode := range strings.Split(*modes, ",") {
		for _, top := range strings.Split(*tops, ",") {
			d := p.dur[top]
			if *dur > 0 {
				d = *dur
			}
			cfg := run.Config{
				Topology: top, Durable: mode == "durable", Seed: *seed, Duration: d,
				Executors: p.executors, Workers: p.workers, Sessions: p.sessions, FaultGap: p.gap,
				Incr: top == "sentinel" && mode == "fast", Mutant: *mutant, Out: *out, Log: os.Stdout,
				AutoRefresh: *autoRefresh, Recreate: *recreate, Semaphore: *semWorkload, Election: *electWorkload,
			}
			if *faultKinds != "" {
				cfg.Faults = strings.Split(*faultKinds, ",")
			}
			if mode != "fast" && mode != "durable" {
				fmt.Fprintf(os.Stderr, "chaos: unknown mode %q\n", mode)
				os.Exit(2)
			}
			res, err := run.Run(ctx, cfg)
			if err != nil {
				fmt.Fprintf(os.Stderr, "chaos: %s/%s: %v\n", top, mode, err)
				os.Exit(2)
			}
			res.Print(os.Stdout)
			if len(res.MustBeZero()) > 0 {
				failed = true
			}
			results = append(results, res)
			if ctx.Err() != nil {
				fmt.Fprintln(os.Stderr, "chaos: interrupted")
				os.Exit(2)
			}
		}
	}
	ops, faults := 0, 0
	for _, r := range results {
		ops += r.OpCount()
		faults += len(r.Faults)
	}
	fmt.Printf("== total: %d operations, %d faults, %v; histories in %s\n", ops, faults, time.Since(began).Round(time.Second), *out)
	if failed {
		fmt.Println("FAIL: violations the mode requires to be zero")
		os.Exit(1)
	}
}
