package run

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fencekit/fencekit/internal/skew"
)

// FaultClockJump steps the wall clock of a Redis data node (what TIME
// returns and key expiry counts by) to a new offset from the host's clock,
// 1-10 s either way, and leaves it there: later faults, failovers included,
// run with the skew. The node runs under the LD_PRELOAD library of
// package internal/skew.
const FaultClockJump = "clock-jump"

// clockFaults builds the shim for a topology in dir. Without a C compiler
// the topology runs without clock faults, said on stderr, unless
// FENCEKIT_REQUIRE_REDIS=1 (CI), where that is an error.
func clockFaults(dir string) (string, error) {
	lib, err := skew.Build(dir)
	if err == nil {
		return lib, nil
	}
	if os.Getenv("FENCEKIT_REQUIRE_REDIS") == "1" {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "run: %v; running without %s\n", err, FaultClockJump)
	return "", nil
}

// withSkew makes a node run under the clock shim lib ("" : without).
func withSkew(lib string) func(*node) {
	return func(n *node) { n.skewLib = lib }
}

// setSkew steps the node's wall clock to off from the host's and waits
// until its TIME shows it (within 250 ms), so a shim that did not load
// is an error rather than a fault that never happened.
func (n *node) setSkew(off time.Duration) error {
	if n.skewLib == "" {
		return errors.New("run: node runs without the clock shim")
	}
	if err := skew.Set(n.skewFile(), off); err != nil {
		return err
	}
	return waitFor(5*time.Second, n.addr()+" clock at "+off.String(), func() error {
		v, err := rawDo(n.addr(), time.Second, "TIME")
		if err != nil {
			return err
		}
		a, ok := v.([]any)
		if !ok || len(a) != 2 {
			return fmt.Errorf("TIME: %v", v)
		}
		sec, err1 := strconv.ParseInt(fmt.Sprint(a[0]), 10, 64)
		us, err2 := strconv.ParseInt(fmt.Sprint(a[1]), 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("TIME: %v", v)
		}
		got := time.Unix(sec, us*1000).Sub(time.Now())
		if d := got - off; d > 250*time.Millisecond || d < -250*time.Millisecond {
			return fmt.Errorf("clock off by %v, want %v", got, off)
		}
		return nil
	})
}

func (n *node) skewFile() string { return filepath.Join(n.dir, "skew") }

// jumpClock is FaultClockJump on n.
func jumpClock(n *node, rng *rand.Rand, start func()) (string, error) {
	off := time.Duration(1000+rng.IntN(9001)) * time.Millisecond
	if rng.IntN(2) == 0 {
		off = -off
	}
	start()
	return n.addr() + " " + off.String(), n.setSkew(off)
}
