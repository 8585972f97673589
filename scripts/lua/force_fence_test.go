package lua_test

import (
	"testing"

	"github.com/fencekit/fencekit/scripts/lua"
)

// TestForceReleaseKeepsFenceRetention: force_release.lua never shortens the
// fence's retention. A fence kept forever (Lockers with FenceTTL < 0) stays
// so, a longer remaining PTTL is kept, a shorter one or none is raised to
// the requested TTL (issue 21 §2).
func TestForceReleaseKeepsFenceRetention(t *testing.T) {
	frA := []string{"90000", "$wake", "$mode", "maintenance", "ops@host"}
	lockd := setLock(f0, other, 20000)
	cases := []tcase{
		{name: "fence without expiry keeps none", setup: cat(lockd, setFence(f0)),
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, "", 0),
				state: states{"lock": gone(), "fence": strKey(f1, noTTL)},
			}}},
		{name: "longer remaining ttl is kept", setup: cat(lockd, setFence(f0)+" PX 200000"),
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, "", 0),
				state: states{"lock": gone(), "fence": strKey(f1, ttlIn(200000))},
			}}},
		{name: "shorter remaining ttl is raised", setup: cat(lockd, setFence(f0)+" PX 5000"),
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, "", 0),
				state: states{"lock": gone(), "fence": strKey(f1, ttlIn(90000))},
			}}},
		{name: "no fence: the requested ttl",
			steps: []step{{
				argv: frA, reply: arr(0, "", "", capture("t", nowToken()), "", 0),
				state: states{"fence": strKey(same("t"), ttlIn(90000))},
			}}},
		{name: "no expiry requested over a fence with one", setup: cat(lockd, setFence(f0)+" PX 5000"),
			steps: []step{{
				argv: with(frA, 1, "0"), reply: arr(1, other, f0, f1, "", 0),
				state: states{"lock": gone(), "fence": strKey(f1, noTTL)},
			}}},
		{name: "hand-off keeps a fence without expiry",
			setup: cat(lockd, setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, w1, 20000), pub: []string{w1},
				state: states{
					"lock": strKey(rec(f1, nowMs(0), w1), ttlIn(20000)), "fence": strKey(f1, noTTL),
					"q": gone(), "qi": gone(),
				},
			}}},
	}
	runTable(t, lua.ForceRelease, cases)
}
