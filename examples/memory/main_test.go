package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	s := out.String()
	for _, want := range []string{"top 5 in the whole tree (5 results)", "similarity >= 0.99 (none expected) (0 results)", "newest 3 in project/app:"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The top results of a programming query are programming memories.
	top := s[strings.Index(s, "top 5 in the whole tree"):]
	top = top[:strings.Index(top, "\n\n")]
	for _, ph := range []string{"Go for services", "table-driven", "global state", "PRs"} {
		if strings.Contains(top, ph) {
			return
		}
	}
	t.Errorf("no programming memory in the top 5:\n%s", top)
}
