package leakcheck

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ModulePath is the import path prefix (with a trailing slash) that marks a
// stack frame as code of this module.
const ModulePath = "github.com/fencekit/fencekit/"

// ignoredPackages are module packages whose own goroutines are never leaks.
// Each entry is a package path followed by a dot, so that the external test
// packages (leakcheck_test, redistest_test) do not match. internal/child
// starts redistest's servers from a goroutine that lives as long as the
// test binary.
var ignoredPackages = []string{
	ModulePath + "internal/child.",
	ModulePath + "internal/leakcheck.",
	ModulePath + "internal/redistest.",
}

// stderr is where Check reports leaks, and checkWait how long Check lets
// goroutines finish; tests in this package replace them.
var (
	stderr    io.Writer = os.Stderr
	checkWait           = 2 * time.Second
)

// Find returns the stacks of goroutines that are still running code from
// module github.com/fencekit/fencekit (excluding the calling goroutine,
// testing framework goroutines, and the leakcheck, redistest and child
// packages themselves), after retrying for up to wait. It returns nil as soon as no
// such goroutine is left, so a clean run costs a single stack dump.
func Find(wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	delay := time.Millisecond
	for {
		leaks := find()
		left := time.Until(deadline)
		if len(leaks) == 0 || left <= 0 {
			return leaks
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Check is meant to run after m.Run: when code is 0 (the tests passed) and
// Find(2*time.Second) reports goroutines, it prints their stacks to standard
// error and returns 1. Otherwise it returns code unchanged. A non-zero code
// skips the check, because failed tests often leave goroutines behind.
func Check(code int) int {
	if code != 0 {
		return code
	}
	leaks := Find(checkWait)
	if len(leaks) == 0 {
		return code
	}
	fmt.Fprintf(stderr, "leakcheck: %d goroutine(s) running %s code are still alive after the tests passed:\n\n%s\n\n",
		len(leaks), strings.TrimSuffix(ModulePath, "/"), strings.Join(leaks, "\n\n"))
	return 1
}

// find takes one snapshot of all goroutines and returns the leaked ones.
func find() []string {
	self := goroutineID(stack(false))
	var leaks []string
	for _, g := range strings.Split(stack(true), "\n\n") {
		g = strings.TrimSpace(g)
		if g == "" || goroutineID(g) == self {
			continue
		}
		if isLeak(g) {
			leaks = append(leaks, g)
		}
	}
	return leaks
}

// stack returns runtime.Stack output, growing the buffer until it fits.
func stack(all bool) string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, all)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineID parses the number from a "goroutine 18 [running]:" header, or
// returns -1.
func goroutineID(g string) int64 {
	header, _, _ := strings.Cut(g, "\n")
	fields := strings.Fields(header)
	if len(fields) < 2 || fields[0] != "goroutine" {
		return -1
	}
	id, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return -1
	}
	return id
}

// isLeak reports whether the stack of one goroutine (header included) runs
// or was started by module code outside the ignored packages.
func isLeak(g string) bool {
	lines := strings.Split(g, "\n")
	var funcs []string
	createdBy := ""
	for _, l := range lines[1:] {
		switch {
		case l == "", strings.HasPrefix(l, "\t"), strings.HasPrefix(l, "..."):
			// File:line lines, "...additional frames elided...".
		case strings.HasPrefix(l, "created by "):
			createdBy = strings.TrimPrefix(l, "created by ")
			funcs = append(funcs, createdBy)
		default:
			funcs = append(funcs, l)
		}
	}
	if createdBy == "" || strings.HasPrefix(createdBy, "testing.") {
		// The main goroutine (blocked in m.Run when Find runs inside a test)
		// or a goroutine running a test, benchmark or fuzz function.
		return false
	}
	for _, f := range funcs {
		if isModuleFunc(f) {
			return true
		}
	}
	return false
}

// isModuleFunc reports whether a function line of a stack trace belongs to
// the module and not to an ignored package.
func isModuleFunc(f string) bool {
	if !strings.HasPrefix(f, ModulePath) {
		return false
	}
	for _, p := range ignoredPackages {
		if strings.HasPrefix(f, p) {
			return false
		}
	}
	return true
}
