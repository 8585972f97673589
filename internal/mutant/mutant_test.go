package mutant_test

import (
	"strings"
	"testing"

	"github.com/fencekit/fencekit/internal/mutant"
	"github.com/fencekit/fencekit/scripts/lua"
)

func TestOf(t *testing.T) {
	const old = "Retryable: no"
	if !strings.Contains(lua.StreamAppend.Source(), old) {
		t.Fatalf("stream_append.lua has no %q", old)
	}
	m, err := mutant.Of(lua.StreamAppend, old, "Retryable: yes (mutant)", true)
	if err != nil {
		t.Fatal(err)
	}
	if m == lua.StreamAppend || m.SHA1() == lua.StreamAppend.SHA1() || !m.Retryable() || lua.StreamAppend.Retryable() {
		t.Errorf("mutant %s (retryable %v) is not a retryable copy of %s", m.Name(), m.Retryable(), lua.StreamAppend.Name())
	}
	if strings.Contains(m.Source(), old) || !strings.Contains(m.Source(), "Retryable: yes (mutant)") {
		t.Error("the mutant's source was not rewritten")
	}
	if _, err := mutant.Of(lua.StreamAppend, "no such text", "x", false); err == nil {
		t.Error("a replacement of text the script lacks was accepted")
	}
}
