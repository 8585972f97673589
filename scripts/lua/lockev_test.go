package lua_test

// Lock events (KEYS[5] event log, KEYS[6] open grant) of acquire.lua,
// release.lua and force_release.lua, and force_release.lua itself, on the
// three servers of the harness.

import (
	"testing"

	"github.com/fencekit/fencekit/scripts/lua"
)

func grantOf2(tok, holder string) string { return "SET $grant " + tok + "|" + holder }

// lockevTTL is FK_LOCKEV_TTL: the lifetime of an event log created by a
// lock event, and of the open grant, when the fence is kept forever.
const lockevTTL = 86400000

func grantKey(tok, holder string) kw { return strKey(tok+"|"+holder, ttlIn(lockevTTL)) }

func TestAcquireEvents(t *testing.T) {
	lockOf := func(h string, ttl int64) kw { return strKey(rec(f1, nowMs(0), h), ttlIn(ttl)) }
	fence1 := strKey(f1, noTTL)
	cases := []tcase{
		{name: "free: lock_acquired, grant opened", events: true, setup: cat(setFence(f0)),
			steps: []step{{
				argv: acqA, reply: arr(1, f1, 30000, nowMs(0)),
				state: states{
					"lock": lockOf(me, 30000), "fence": fence1,
					"ev":    streamKey(ttlIn(lockevTTL), lockEv("lock_acquired", f1, me, "ttl", "30000")),
					"grant": grantKey(f1, me),
				},
			}}},
		{name: "free after an unreleased grant expired: lock_lost, then lock_acquired", events: true,
			setup: cat(setFence(f0), grantOf2(f0, other)),
			steps: []step{{
				argv: acqA, reply: arr(1, f1, 30000, nowMs(0)),
				state: states{
					"lock": lockOf(me, 30000), "fence": fence1,
					"ev": streamKey(ttlIn(lockevTTL),
						lockEv("lock_lost", f0, other, "cause", "expired"),
						lockEv("lock_acquired", f1, me, "ttl", "30000")),
					"grant": grantKey(f1, me),
				},
			}}},
		{name: "grant and fence keep the fence ttl", events: true, setup: cat(setFence(f0)),
			steps: []step{{
				argv: acq(5, "90000"), reply: arr(1, f1, 30000, nowMs(0)),
				state: states{
					"lock": lockOf(me, 30000), "fence": strKey(f1, ttlIn(90000)),
					"ev":    streamKey(ttlIn(90000), lockEv("lock_acquired", f1, me, "ttl", "30000")),
					"grant": strKey(f1+"|"+me, ttlIn(90000)),
				},
			}}},
		{name: "held by another: no event", events: true,
			setup: cat(setLock(f0, other, 20000), setFence(f0), grantOf2(f0, other), "XADD $ev * type x v 0 tok 1 holder h"),
			steps: []step{{argv: acqA, reply: arr(0, f0, ttlIn(20000), at0n, other)}}},
		{name: "retry by the holder: no event", events: true,
			setup: cat(setLock(f0, me, 20000), setFence(f0), grantOf2(f0, me)),
			steps: []step{{argv: acqA, reply: arr(1, f0, ttlIn(20000), at0n)}}},
		{name: "hand-off to the head waiter: lock_acquired names the waiter", events: true,
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: acqA, reply: arr(0, f1, 20000, nowMs(0), w1), pub: []string{w1},
				state: states{
					"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone(),
					"ev":    streamKey(ttlIn(lockevTTL), lockEv("lock_acquired", f1, w1, "ttl", "20000")),
					"grant": grantKey(f1, w1),
				},
			}}},
		{name: "corrupt open grant: refused, nothing written", events: true,
			setup: cat(setFence(f0), "SET $grant junk"),
			steps: []step{{argv: acqA, reply: fkErr(corrupt, "grant $grant")}}},
		{name: "open grant with a bad token: refused", events: true,
			setup: cat(setFence(f0), "SET $grant 0|o2|a1"),
			steps: []step{{argv: acqA, reply: fkErr(corrupt, "grant $grant")}}},
		{name: "event log of another type: refused, nothing written", events: true,
			setup: cat(setFence(f0), "SET $ev x"),
			steps: []step{{argv: acqA, reply: wrongType()}}},
		{name: "events off: log and grant not touched",
			setup: cat(setFence(f0), grantOf2(f0, other), "SET $ev x"),
			steps: []step{{
				argv: acqA, reply: arr(1, f1, 30000, nowMs(0)),
				state: states{"lock": lockOf(me, 30000), "fence": fence1},
			}}},
	}
	runTable(t, lua.Acquire, cases)
}

func TestReleaseEvents(t *testing.T) {
	none := arr(1, "", "", 0)
	held := cat(setLock(f0, me, 20000), setFence(f0), grantOf2(f0, me))
	cases := []tcase{
		{name: "released, nobody waits: lock_released, grant closed", events: true, setup: held,
			steps: []step{{
				argv: relA, reply: none,
				state: states{"lock": gone(), "grant": gone(), "ev": streamKey(ttlIn(lockevTTL), lockEv("lock_released", f0, me))},
			}}},
		{name: "released to a waiter: lock_released, then lock_acquired", events: true,
			setup: cat(held, queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: relA, reply: arr(1, w1, f1, 20000), pub: []string{w1},
				state: states{
					"lock": strKey(rec(f1, nowMs(0), w1), ttlIn(20000)), "fence": strKey(f1, noTTL),
					"q": gone(), "qi": gone(), "grant": grantKey(f1, w1),
					"ev": streamKey(ttlIn(lockevTTL),
						lockEv("lock_released", f0, me),
						lockEv("lock_acquired", f1, w1, "ttl", "20000")),
				},
			}}},
		{name: "lease already expired: lock_lost, grant closed", events: true,
			setup: cat(setFence(f0), grantOf2(f0, me)),
			steps: []step{{
				argv: relA, reply: arr(0, "", "", 0),
				state: states{"grant": gone(), "ev": streamKey(ttlIn(lockevTTL), lockEv("lock_lost", f0, me, "cause", "expired"))},
			}}},
		{name: "held by another: no event", events: true,
			setup: cat(setLock(f0, other, 20000), setFence(f0), grantOf2(f0, other)),
			steps: []step{{argv: relA, reply: arr(-1, other, f0, ttlIn(20000))}}},
		{name: "event log of another type: refused before the delete", events: true,
			setup: cat(held, "SET $ev x"),
			steps: []step{{argv: relA, reply: wrongType()}}},
		{name: "corrupt open grant: refused before the delete", events: true,
			setup: cat(setLock(f0, me, 20000), setFence(f0), "SET $grant 1|nobar"),
			steps: []step{{argv: relA, reply: fkErr(corrupt, "grant $grant")}}},
	}
	runTable(t, lua.Release, cases)
}

func TestForceRelease(t *testing.T) {
	frA := []string{"0", "$wake", "$mode", "maintenance", "ops@host"}
	fr := func(kv ...any) []string { return with(frA, kv...) }
	held := cat(setLock(f0, other, 20000), setFence(f0))
	cases := []tcase{
		{name: "held: holder removed, fence raised", setup: held,
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, "", 0),
				state: states{"lock": gone(), "fence": strKey(f1, noTTL)},
			}}},
		{name: "free, no fence: a time-seeded fence is minted",
			steps: []step{{
				argv: frA, reply: arr(0, "", "", capture("t", nowToken()), "", 0),
				state: states{"fence": strKey(same("t"), noTTL)},
			}}},
		{name: "fence ttl applies", setup: cat(setLock(f0, other, 20000), setFence(f0)+" PX 5000"),
			steps: []step{{
				argv: fr(1, "90000"), reply: arr(1, other, f0, f1, "", 0),
				state: states{"lock": gone(), "fence": strKey(f1, ttlIn(90000))},
			}}},
		{name: "a live waiter takes over with the new token",
			setup: cat(held, queued(w1, "100", stale+"|20000", w2, "200", live+"|25000")),
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, w2, 25000), pub: []string{w2},
				state: states{
					"lock": strKey(rec(f1, nowMs(0), w2), ttlIn(25000)), "fence": strKey(f1, noTTL),
					"q": gone(), "qi": gone(),
				},
			}}},
		{name: "events: lock_force_released with reason and who", events: true,
			setup: cat(held, grantOf2(f0, other)),
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, "", 0),
				state: states{
					"lock": gone(), "fence": strKey(f1, noTTL), "grant": gone(),
					"ev": streamKey(ttlIn(lockevTTL), lockEv("lock_force_released", f1, other,
						"holder_tok", f0, "reason", "maintenance", "by", "ops@host")),
				},
			}}},
		{name: "events: expired grant logged as lost first", events: true,
			setup: cat(setFence(f0), grantOf2(f0, other)),
			steps: []step{{
				argv: frA, reply: arr(0, "", "", f1, "", 0),
				state: states{
					"fence": strKey(f1, noTTL), "grant": gone(),
					"ev": streamKey(ttlIn(lockevTTL),
						lockEv("lock_lost", f0, other, "cause", "expired"),
						lockEv("lock_force_released", f1, "", "holder_tok", "", "reason", "maintenance", "by", "ops@host")),
				},
			}}},
		{name: "events: hand-off logged after the force release", events: true,
			setup: cat(held, grantOf2(f0, other), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: frA, reply: arr(1, other, f0, f1, w1, 20000), pub: []string{w1},
				state: states{
					"lock": strKey(rec(f1, nowMs(0), w1), ttlIn(20000)), "fence": strKey(f1, noTTL),
					"q": gone(), "qi": gone(), "grant": grantKey(f1, w1),
					"ev": streamKey(ttlIn(lockevTTL),
						lockEv("lock_force_released", f1, other, "holder_tok", f0, "reason", "maintenance", "by", "ops@host"),
						lockEv("lock_acquired", f1, w1, "ttl", "20000")),
				},
			}}},
		{name: "corrupt lock record: refused", setup: cat("SET $lock junk", setFence(f0)),
			steps: []step{{argv: frA, reply: fkErr(corrupt, "lock $lock")}}},
		{name: "corrupt fence: refused", setup: cat(held, "SET $fence x"),
			steps: []step{{argv: frA, reply: fkErr(corrupt, "fence $fence")}}},
		{name: "fence at the last token: refused", setup: cat(setLock(f0, other, 20000), setFence(maxToken)),
			steps: []step{{argv: frA, reply: fkErr(corrupt, "fence $fence")}}},
		{name: "event log of another type: refused", events: true, setup: cat(held, "SET $ev x"),
			steps: []step{{argv: frA, reply: wrongType()}}},
	}
	cases = append(cases, errCases("bad fence ttl", held, frA, 1, "fence_ttl", "", "-1", "1.5", "x")...)
	cases = append(cases, errCases("bad mode", held, frA, 3, "mode", "X", "")...)
	cases = append(cases, errCases("bad reason", held, frA, 4, "reason", "")...)
	cases = append(cases, errCases("bad by", held, frA, 5, "by", "")...)
	runTable(t, lua.ForceRelease, cases)
}
