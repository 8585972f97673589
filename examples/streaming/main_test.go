package main

import (
	"strings"
	"testing"
)

func TestStreaming(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	var out strings.Builder
	err := run(&out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connection 2: read", "stream ended after 61 entries", "received all 60 chunks exactly once"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
