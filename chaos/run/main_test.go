package run

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// executorBin is the binary the tests start as executors: cmd/chaos built
// without -race (the orchestrator under test runs with -race; executors
// are many and busy, and the race detector would slow them tenfold).
var executorBin string

func TestMain(m *testing.M) {
	MaybeExecutor()
	dir, err := os.MkdirTemp("", "fencekit-chaos-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	executorBin = filepath.Join(dir, "chaos")
	out, err := exec.Command("go", "build", "-o", executorBin, "../cmd/chaos").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the executor binary: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
