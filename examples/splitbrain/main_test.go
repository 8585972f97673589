package main

import (
	"strings"
	"testing"
)

func TestSplitBrain(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	var out strings.Builder
	stale, err := run(&out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if stale {
		t.Fatal("the fenced store accepted a stale write")
	}
	for _, want := range []string{"B's work is lost", "A's write rejected: fencing: stale token", "holder now: executor-B"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
