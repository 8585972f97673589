// Package skew builds c/skew.c, an LD_PRELOAD library that shifts the wall
// clock of the process it is loaded into by an offset read from a file,
// for tests and the fault suite: a redis-server started with Env(lib,
// file) answers TIME, and expires keys, by its own skewed clock, and Set
// steps it at run time. CLOCK_MONOTONIC is left alone.
package skew

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

//go:embed c/skew.c
var source []byte

// Build compiles the library into dir with the system's C compiler and
// returns its path. The error says how to install one when there is none.
func Build(dir string) (string, error) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		if cc, err = exec.LookPath("gcc"); err != nil {
			return "", fmt.Errorf("skew: clock faults need a C compiler (Debian: apt-get install -y gcc): %w", err)
		}
	}
	src := filepath.Join(dir, "skew.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", err
	}
	lib := filepath.Join(dir, "libskew.so")
	if out, err := exec.Command(cc, "-O2", "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("skew: building the clock shim: %v: %s", err, out)
	}
	return lib, nil
}

// Env is what a process needs in its environment to run under lib with
// its offset in file.
func Env(lib, file string) []string {
	return []string{"LD_PRELOAD=" + lib, "FENCEKIT_SKEW_FILE=" + file}
}

// Set writes off (whole milliseconds) to file atomically; a process under
// the library picks it up within 50 ms.
func Set(file string, off time.Duration) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(off.Milliseconds(), 10)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
