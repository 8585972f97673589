package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/redistest"
)

// TestOperationsWalkthrough runs the walkthrough of docs/OPERATIONS.md as a
// user would (issue 14: a user must be able to run one example and then
// each CLI command of the docs against what it left behind): examples/operator
// against a fresh redis-server, then every "$ fencekit" line of the block
// between the walkthrough markers, comparing what each prints (stderr, then
// stdout) with the docs once tokens, times, durations and cursors are
// masked. The doctor's output depends on the server and the machine: only
// its exit code is checked.
func TestOperationsWalkthrough(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps := walkthrough(t, string(doc))
	if len(steps) < 8 {
		t.Fatalf("the walkthrough has %d commands, want the 8 or more the docs show", len(steps))
	}
	s := redistest.NewPrivateRedis(t)
	url := serverURL(s)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./examples/operator")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./examples/operator: %v\n%s", err, out)
	}

	for _, st := range steps {
		args := append(splitArgs(t, st.cmd), "--url", url)
		r := cli(t, args...)
		if r.code != exitOK {
			t.Errorf("fencekit %s: exit %d\nstdout: %s\nstderr: %s", st.cmd, r.code, r.stdout, r.stderr)
			continue
		}
		if strings.HasSuffix(st.cmd, " doctor") {
			continue
		}
		got := normalise(strings.ReplaceAll(r.stderr+r.stdout, url, "$REDIS_URL"), "")
		want := normalise(st.out, "")
		if got != want {
			t.Errorf("fencekit %s prints, masked:\n%s\ndocs/OPERATIONS.md shows, masked:\n%s", st.cmd, got, want)
		}
	}
}

type walkStep struct{ cmd, out string }

// walkthrough returns the commands and outputs of the console block
// between "<!-- walkthrough: begin -->" and "<!-- walkthrough: end -->".
func walkthrough(t *testing.T, doc string) []walkStep {
	_, rest, ok := strings.Cut(doc, "<!-- walkthrough: begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- walkthrough: end -->")
	if !ok || !ok2 {
		t.Fatal("docs/OPERATIONS.md has no walkthrough markers")
	}
	var steps []walkStep
	for _, line := range strings.SplitAfter(block, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
		case strings.HasPrefix(line, "$ fencekit "):
			steps = append(steps, walkStep{cmd: strings.TrimSpace(strings.TrimPrefix(line, "$ fencekit "))})
		case len(steps) > 0:
			steps[len(steps)-1].out += line
		}
	}
	return steps
}

// splitArgs splits a command line at spaces, keeping "double-quoted"
// arguments whole.
func splitArgs(t *testing.T, s string) []string {
	var args []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			args, s = append(args, s[1:end+1]), s[end+2:]
			continue
		}
		arg, rest, _ := strings.Cut(s, " ")
		args, s = append(args, arg), rest
	}
	return args
}
