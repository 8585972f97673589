package leakcheck_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/leakcheck"
)

func TestMain(m *testing.M) {
	os.Exit(leakcheck.Check(m.Run()))
}

// parked blocks until stop is closed; its name is what the tests look for.
func parked(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	<-stop
}

// startParked starts parked and returns once it runs, so that its stack
// shows the parked frame.
func startParked(stop <-chan struct{}, done chan<- struct{}) {
	running := make(chan struct{})
	go func() {
		close(running)
		parked(stop, done)
	}()
	<-running
}

func TestFindReportsLeakedGoroutine(t *testing.T) {
	stop, done := make(chan struct{}), make(chan struct{})
	startParked(stop, done)

	leaks := leakcheck.Find(0)
	if len(leaks) != 1 {
		close(stop)
		t.Fatalf("Find(0) returned %d stacks, want 1:\n%s", len(leaks), strings.Join(leaks, "\n\n"))
	}
	if !strings.Contains(leaks[0], "internal/leakcheck_test.") {
		t.Errorf("leaked stack does not mention package leakcheck_test:\n%s", leaks[0])
	}

	close(stop)
	<-done
	if leaks := leakcheck.Find(2 * time.Second); len(leaks) != 0 {
		t.Fatalf("Find after stopping the goroutine returned:\n%s", strings.Join(leaks, "\n\n"))
	}
}

func TestFindWaitsForExitingGoroutine(t *testing.T) {
	stop, done := make(chan struct{}), make(chan struct{})
	startParked(stop, done)
	time.AfterFunc(100*time.Millisecond, func() { close(stop) })

	start := time.Now()
	if leaks := leakcheck.Find(5 * time.Second); len(leaks) != 0 {
		t.Fatalf("Find(5s) returned:\n%s", strings.Join(leaks, "\n\n"))
	}
	if elapsed := time.Since(start); elapsed < 90*time.Millisecond || elapsed > 4*time.Second {
		t.Errorf("Find(5s) returned after %v, want about 100ms", elapsed)
	}
	<-done
}

func TestFindGivesUpAfterWait(t *testing.T) {
	stop, done := make(chan struct{}), make(chan struct{})
	startParked(stop, done)
	defer func() { close(stop); <-done }()

	start := time.Now()
	leaks := leakcheck.Find(300 * time.Millisecond)
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("Find(300ms) returned after %v", elapsed)
	}
	if len(leaks) != 1 {
		t.Errorf("Find(300ms) returned %d stacks, want 1", len(leaks))
	}
}

func TestFindExcludesCaller(t *testing.T) {
	// The calling goroutine runs module code (this test package) and was not
	// started by package testing, so only the self-exclusion hides it.
	result := make(chan []string)
	go func() { result <- leakcheck.Find(0) }()
	if leaks := <-result; len(leaks) != 0 {
		t.Fatalf("Find(0) from a helper goroutine returned:\n%s", strings.Join(leaks, "\n\n"))
	}
}

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	defer leakcheck.SetCheckOutput(&out, 50*time.Millisecond)()

	if got := leakcheck.Check(0); got != 0 || out.Len() != 0 {
		t.Fatalf("Check(0) without leaks = %d, output %q", got, out.String())
	}

	stop, done := make(chan struct{}), make(chan struct{})
	startParked(stop, done)
	defer func() { close(stop); <-done }()

	if got := leakcheck.Check(3); got != 3 || out.Len() != 0 {
		t.Errorf("Check(3) = %d with output %q; want 3 and no check", got, out.String())
	}
	if got := leakcheck.Check(0); got != 1 {
		t.Errorf("Check(0) with a leak = %d, want 1", got)
	}
	if s := out.String(); !strings.Contains(s, "leakcheck: 1 goroutine(s)") || !strings.Contains(s, "internal/leakcheck_test.") {
		t.Errorf("Check output does not report the leak:\n%s", s)
	}
}
