package main

import (
	"strings"
	"testing"
)

func TestAgentLoop(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	var out strings.Builder
	violations, err := run(&out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations {
		t.Error("violation:", v)
	}
	for _, want := range []string{
		"A  CAS pending→running: ok",
		"A  step 2: 3 tool result(s) staged in parallel, promoted",
		"CRASH (lease not released)",
		"resume #1",
		"B  promote of open step 3: 0 applied, 2 skipped (call_A3_1, call_A3_2, token",
		"8 messages (1 of the open step trimmed)",
		"Stage call_A3_3 (late result)    refused: stale token",
		"CAS running→failed               refused: stale token",
		"UpdateStatus failed              refused: stale token (session or lock has seen",
		"B  CAS running→completed: ok",
		"status completed, step 4, resume count 1",
		"changes applied: call_A1_1 call_A1_2 call_A2_1 call_A2_2 call_A2_3 call_B3_1 call_B3_2 call_B3_3 call_B4_1\n",
		"messages: 15 (8 by A before its crash), checkpoints: 4, staged: 0",
		"A's writes after the takeover: 8 tried, 8 refused",
		"OK: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "VIOLATION") {
		t.Error("output reports a violation")
	}
}
