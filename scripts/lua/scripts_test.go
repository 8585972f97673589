package lua_test

// Differential table tests of the Lua scripts: every case runs on miniredis,
// a real redis-server and a real Redis Cluster (redistest.Each) against one
// shared expectation of the reply and of the resulting state of every key
// of the lock. Keys a step does not list must be unchanged, and an error
// reply must leave every key unchanged ("no partial state"). See
// harness_test.go for the machinery.

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const (
	me    = "o1|a1" // the caller
	me2   = "o1|a2" // another attempt of the caller's owner
	other = "o2|a1"
	w1    = "w1|a"
	w2    = "w2|a"
	w3    = "w3|a"
	w4    = "w4|a"
	w5    = "w5|a"

	f0       = "4000000000000000" // a fence ahead of the clock: next token f1
	f1       = "4000000000000001"
	f2       = "4000000000000002"
	f3       = "4000000000000003"
	at0      = "1700000000000" // acquired-at of records written by setups
	at0n     = 1700000000000
	maxToken = "9007199254740991" // fencing.MaxToken, 2^53-1

	live  = "9999999999999" // alive-until of a live waiter (year 2286)
	stale = "1000"          // alive-until of a waiter that stopped polling

	badArg  = scripterr.BadArg
	corrupt = scripterr.Corrupt
)

func recOf(tok, holder string) string { return tok + "|" + at0 + "|" + holder }

func setLock(tok, holder string, pxMs int) string {
	return fmt.Sprintf("SET $lock %s PX %d", recOf(tok, holder), pxMs)
}

func setFence(v string) string { return "SET $fence " + v }

// queued returns setup commands for wait queue entries given as triples
// holder, arrival score, info ("-" for an entry without info); both queue
// keys get a TTL of 60 s.
func queued(entries ...string) []string {
	var cmds []string
	for i := 0; i+2 < len(entries); i += 3 {
		cmds = append(cmds, "ZADD $q "+entries[i+1]+" "+entries[i])
		if entries[i+2] != "-" {
			cmds = append(cmds, "HSET $qi "+entries[i]+" "+entries[i+2])
		}
	}
	return append(cmds, "PEXPIRE $q 60000", "PEXPIRE $qi 60000")
}

// deadWaiters returns n queue entries d01|a ... with arrival 1..n whose
// liveness has run out.
func deadWaiters(n int) []string {
	var e []string
	for i := 1; i <= n; i++ {
		e = append(e, fmt.Sprintf("d%02d|a", i), fmt.Sprint(i), stale+"|20000")
	}
	return e
}

// cat flattens strings and string slices into one setup.
func cat(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case []string:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return out
}

// with returns a copy of base with ARGV[i] (1-based) set to v, for pairs
// i, v.
func with(base []string, kv ...any) []string {
	out := append([]string(nil), base...)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(int)-1] = kv[i+1].(string)
	}
	return out
}

// nowUs matches the server time in µs at the script call.
func nowUs() matcher {
	return func(e *env, got any) error {
		return between(e.t0.Add(-clockSlack).UnixMicro(), e.t1.Add(clockSlack).UnixMicro())(e, got)
	}
}

// anything accepts any state of a key (for flows that check state through
// later replies).
func anything() kw { return kw{typ: "*"} }

// states is a shorthand for a step's state expectations.
type states = map[string]kw

var (
	acqA = []string{me, "30000", "0", "5000", "0", "$wake", "$mode", "", "0"}
	relA = []string{me, f0, "0", "$wake", "$mode", ""}
	refA = []string{me, f0, "30000"}
)

func acq(kv ...any) []string { return with(acqA, kv...) }
func rel(kv ...any) []string { return with(relA, kv...) }
func ref(kv ...any) []string { return with(refA, kv...) }

// errCases returns one error case per value of ARGV[i]: each must fail
// with FENCEKIT_BADARG detail and change nothing.
func errCases(prefix string, setup, base []string, i int, detail string, values ...string) []tcase {
	var out []tcase
	for _, v := range values {
		out = append(out, tcase{
			name:  fmt.Sprintf("%s %q", prefix, v),
			setup: setup,
			steps: []step{{argv: with(base, i, v), reply: fkErr(badArg, detail)}},
		})
	}
	return out
}

// --- acquire.lua ---

func TestAcquire(t *testing.T) {
	granted := func(tok any) []any { return arr(1, tok, 30000, nowMs(0)) }
	mine := func(tok any) kw { return strKey(rec(tok, nowMs(0), me), ttlIn(30000)) }
	heldBy := func(h string) []any { return arr(0, f0, ttlIn(20000), at0n, h) }
	handed := func(h string, ttl int) []any { return arr(0, f1, ttl, nowMs(0), h) }
	lockOf := func(h string, ttl int64) kw { return strKey(rec(f1, nowMs(0), h), ttlIn(ttl)) }
	fence1 := strKey(f1, noTTL)
	// A free lock with a fence and a live waiter: any write would show.
	busyFree := cat(setFence(f0), queued(w1, "100", live+"|20000"))
	heldOther := cat(setLock(f0, other, 20000), setFence(f0), queued(w1, "100", live+"|20000"))

	cases := []tcase{
		// Grants of a free lock.
		{name: "free lock without fence: token is the server time in µs", steps: []step{{
			argv:  acqA,
			reply: arr(1, capture("tok", nowToken()), 30000, nowMs(0)),
			state: states{"lock": mine(same("tok")), "fence": strKey(same("tok"), noTTL)},
		}}},
		{name: "free lock, fence ahead of the clock: token is fence+1", setup: cat(setFence(f0)), steps: []step{{
			argv: acqA, reply: granted(f1), state: states{"lock": mine(f1), "fence": fence1},
		}}},
		{name: "free lock, fence behind the clock: token is the server time", setup: cat(setFence("5")), steps: []step{{
			argv:  acqA,
			reply: arr(1, capture("tok", nowToken()), 30000, nowMs(0)),
			state: states{"lock": mine(same("tok")), "fence": strKey(same("tok"), noTTL)},
		}}},
		{name: "fence ttl is set on every grant", setup: cat("SET $fence " + f0 + " PX 5000"), steps: []step{{
			argv: acq(5, "60000"), reply: granted(f1), state: states{"lock": mine(f1), "fence": strKey(f1, ttlIn(60000))},
		}}},
		{name: "fence ttl 0 makes the fence persistent", setup: cat("SET $fence " + f0 + " PX 50000"), steps: []step{{
			argv: acqA, reply: granted(f1), state: states{"lock": mine(f1), "fence": fence1},
		}}},
		{name: "expired lease: the next token goes to the caller", setup: cat(setLock(f0, other, 100), setFence(f0)), steps: []step{{
			advance: 300 * time.Millisecond,
			argv:    acqA, reply: granted(f1), state: states{"lock": mine(f1), "fence": fence1},
		}}},
		{name: "fence one below the largest token", setup: cat(setFence("9007199254740990")), steps: []step{{
			argv: acqA, reply: granted(maxToken), state: states{"lock": mine(maxToken), "fence": strKey(maxToken, noTTL)},
		}}},
		{name: "fence at the largest token: no token is left", setup: cat(setFence(maxToken)), steps: []step{{
			argv: acqA, reply: fkErr(corrupt, "fence $fence"),
		}}},
		{name: "fence 2^53: fence+1 would repeat it", setup: cat(setFence("9007199254740992")), steps: []step{{
			argv: acqA, reply: fkErr(corrupt, "fence $fence"),
		}}},
		{name: "fence beyond 2^53", setup: cat(setFence("99999999999999999999")), steps: []step{{
			argv: acqA, reply: fkErr(corrupt, "fence $fence"),
		}}},

		// A held lock.
		{name: "held by another holder: reported, nothing changes", setup: heldOther, steps: []step{{
			argv: acqA, reply: heldBy(other),
		}}},
		{name: "held by another attempt of the same owner", setup: cat(setLock(f0, me2, 20000), setFence(f0)), steps: []step{{
			argv: acqA, reply: heldBy(me2),
		}}},
		{name: "held by the caller: same token, lease untouched", setup: cat(setLock(f0, me, 20000), setFence(f0)), steps: []step{{
			argv: acqA, reply: arr(1, f0, ttlIn(20000), at0n),
		}}},
		{name: "held by the caller, touch: same token, remaining lease rewritten", setup: cat(setLock(f0, me, 20000), setFence(f0)), steps: []step{{
			argv: acq(9, "1"), reply: arr(1, f0, ttlIn(20000), at0n),
			state: states{"lock": strKey(recOf(f0, me), ttlIn(20000))},
		}}},
		{name: "held by the caller without expiry, touch: not given one", setup: cat("SET $lock "+recOf(f0, me), setFence(f0)), steps: []step{{
			argv: acq(9, "1"), reply: arr(1, f0, -1, at0n),
		}}},
		{name: "held by the caller, fence corrupt: fence not read", setup: cat(setLock(f0, me, 20000), setFence("junk")), steps: []step{{
			argv: acqA, reply: arr(1, f0, ttlIn(20000), at0n),
		}}},
		{name: "held by another, fence corrupt: fence not read", setup: cat(setLock(f0, other, 20000), setFence("junk")), steps: []step{{
			argv: acqA, reply: heldBy(other),
		}}},
		{name: "retry by the same holder returns the same grant", steps: []step{
			{
				argv:  acqA,
				reply: arr(1, capture("tok", nowToken()), 30000, capture("at", nowMs(0))),
				state: states{"lock": mine(same("tok")), "fence": strKey(same("tok"), noTTL)},
			},
			{argv: acqA, reply: arr(1, same("tok"), ttlIn(30000), same("at"))},
			{argv: acq(1, me2), reply: arr(0, same("tok"), ttlIn(30000), same("at"), me)},
		}},
		{name: "held by another, wait: the caller joins the queue", setup: cat(setLock(f0, other, 20000), setFence(f0)), steps: []step{{
			argv: acq(3, "1"), reply: heldBy(other),
			state: states{
				"q":  zsetKey(ttlIn(10000), me, nowUs()),
				"qi": hashKey(ttlIn(10000), me, info(nowMs(5000), "30000")),
			},
		}}},
		{name: "held by another, wait, already queued: arrival kept, liveness renewed",
			setup: cat(setLock(f0, other, 20000), setFence(f0), queued(w1, "50", live+"|20000", me, "100", stale+"|30000")),
			steps: []step{{
				argv: acq(3, "1"), reply: heldBy(other),
				state: states{
					"q":  zsetKey(ttlIn(60000), w1, 50, me, 100),
					"qi": hashKey(ttlIn(60000), w1, live+"|20000", me, info(nowMs(5000), "30000")),
				},
			}}},
		{name: "held by another, wait: queue keys get twice the lease as ttl",
			setup: cat(setLock(f0, other, 20000), setFence(f0), queued(w1, "50", live+"|20000")),
			steps: []step{{
				argv: acq(3, "1", 4, "40000"), reply: heldBy(other),
				state: states{
					"q":  zsetKey(ttlIn(80000), w1, 50, me, nowUs()),
					"qi": hashKey(ttlIn(80000), w1, live+"|20000", me, info(nowMs(40000), "30000")),
				},
			}}},
		{name: "held by another, wait: queue without expiry gets one",
			setup: cat(setLock(f0, other, 20000), setFence(f0), "ZADD $q 50 "+w1, "HSET $qi "+w1+" "+live+"|20000"),
			steps: []step{{
				argv: acq(3, "1"), reply: heldBy(other),
				state: states{
					"q":  zsetKey(ttlIn(10000), w1, 50, me, nowUs()),
					"qi": hashKey(ttlIn(10000), w1, live+"|20000", me, info(nowMs(5000), "30000")),
				},
			}}},
		{name: "held by another, no wait: queue of another type not touched",
			setup: cat(setLock(f0, other, 20000), setFence(f0), "SET $q x", "SET $qi x"),
			steps: []step{{argv: acqA, reply: heldBy(other)}}},

		// Hand-off from the wait queue when the lock is free.
		{name: "live waiter first in line gets the lock, caller not queued",
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000", w2, "200", live+"|25000")),
			steps: []step{{
				argv: acqA, reply: handed(w1, 20000), pub: []string{w1},
				state: states{
					"lock": lockOf(w1, 20000), "fence": fence1,
					"q": zsetKey(ttlIn(60000), w2, 200), "qi": hashKey(ttlIn(60000), w2, live+"|25000"),
				},
			}}},
		{name: "first in line is by arrival score, not insertion order",
			setup: cat(setFence(f0), queued(w1, "300", live+"|20000", w2, "200", live+"|20000", w3, "100", live+"|15000")),
			steps: []step{{
				argv: acqA, reply: handed(w3, 15000), pub: []string{w3},
				state: states{
					"lock": lockOf(w3, 15000), "fence": fence1,
					"q":  zsetKey(ttlIn(60000), w2, 200, w1, 300),
					"qi": hashKey(ttlIn(60000), w1, live+"|20000", w2, live+"|20000"),
				},
			}}},
		{name: "dead entries before the live head are dropped",
			setup: cat(setFence(f0), queued(w1, "100", stale+"|20000", w2, "200", "-", w3, "300", "junk", w4, "400", live+"|0", w5, "500", live+"|20000")),
			steps: []step{{
				argv: acqA, reply: handed(w5, 20000), pub: []string{w5},
				state: states{"lock": lockOf(w5, 20000), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "caller first in line: granted, leaves the queue",
			setup: cat(setFence(f0), queued(me, "100", live+"|30000", w1, "200", live+"|20000")),
			steps: []step{{
				argv: acqA, reply: granted(f1),
				state: states{
					"lock": mine(f1), "fence": fence1,
					"q": zsetKey(ttlIn(60000), w1, 200), "qi": hashKey(ttlIn(60000), w1, live+"|20000"),
				},
			}}},
		{name: "caller first in line with an outdated entry: still first (it is polling)",
			setup: cat(setFence(f0), queued(me, "100", stale+"|30000", w1, "200", live+"|20000")),
			steps: []step{{
				argv: acqA, reply: granted(f1),
				state: states{
					"lock": mine(f1), "fence": fence1,
					"q": zsetKey(ttlIn(60000), w1, 200), "qi": hashKey(ttlIn(60000), w1, live+"|20000"),
				},
			}}},
		{name: "caller behind a live waiter, wait: hand-off to the head, caller keeps its place",
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000", me, "200", stale+"|30000")),
			steps: []step{{
				argv: acq(3, "1"), reply: handed(w1, 20000), pub: []string{w1},
				state: states{
					"lock": lockOf(w1, 20000), "fence": fence1,
					"q":  zsetKey(ttlIn(60000), me, 200),
					"qi": hashKey(ttlIn(60000), me, info(nowMs(5000), "30000")),
				},
			}}},
		{name: "wait, not queued: hand-off to the head, caller joins at the tail",
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: acq(3, "1"), reply: handed(w1, 20000), pub: []string{w1},
				state: states{
					"lock": lockOf(w1, 20000), "fence": fence1,
					"q":  zsetKey(ttlIn(10000), me, nowUs()),
					"qi": hashKey(ttlIn(10000), me, info(nowMs(5000), "30000")),
				},
			}}},
		{name: "only dead entries: all dropped, caller granted",
			setup: cat(setFence(f0), queued(w1, "100", stale+"|20000", w2, "200", "-")),
			steps: []step{{
				argv: acq(3, "1"), reply: granted(f1),
				state: states{"lock": mine(f1), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "live waiter behind 16 dead entries still gets the lock",
			setup: cat(setFence(f0), queued(append(deadWaiters(16), w1, "100", live+"|20000", w2, "200", live+"|20000")...)),
			steps: []step{{
				argv: acqA, reply: handed(w1, 20000), pub: []string{w1},
				state: states{
					"lock": lockOf(w1, 20000), "fence": fence1,
					"q": zsetKey(ttlIn(60000), w2, 200), "qi": hashKey(ttlIn(60000), w2, live+"|20000"),
				},
			}}},
		{name: "40 dead entries: all dropped, caller granted",
			setup: cat(setFence(f0), queued(deadWaiters(40)...)),
			steps: []step{{
				argv: acqA, reply: granted(f1),
				state: states{"lock": mine(f1), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "hand-off to a waiter of the caller's process is not announced",
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: acq(8, "w1|"), reply: handed(w1, 20000),
				state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "hand-off to a waiter of another process is announced",
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: acq(8, "w2"), reply: handed(w1, 20000), pub: []string{w1},
				state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "hand-off without a channel is not announced",
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: acq(6, ""), reply: handed(w1, 20000),
				state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "hand-off sets the fence ttl",
			setup: cat(setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: acq(5, "60000"), reply: handed(w1, 20000), pub: []string{w1},
				state: states{"lock": lockOf(w1, 20000), "fence": strKey(f1, ttlIn(60000)), "q": gone(), "qi": gone()},
			}}},
		{name: "hand-off without fence: token is the server time",
			setup: queued(w1, "100", live+"|20000"),
			steps: []step{{
				argv: acqA, reply: arr(0, capture("tok", nowToken()), 20000, nowMs(0), w1), pub: []string{w1},
				state: states{
					"lock":  strKey(rec(same("tok"), nowMs(0), w1), ttlIn(20000)),
					"fence": strKey(same("tok"), noTTL), "q": gone(), "qi": gone(),
				},
			}}},
		{name: "empty queue: queue info of another type not touched",
			setup: cat(setFence(f0), "SET $qi x"),
			steps: []step{{argv: acqA, reply: granted(f1), state: states{"lock": mine(f1), "fence": fence1}}}},
	}

	// Bad arguments: nothing may change, whatever state the keys are in.
	for _, setup := range []struct {
		name string
		cmds []string
	}{{"free", busyFree}, {"held", heldOther}} {
		p := "bad args (" + setup.name + "):"
		cases = append(cases,
			tcase{name: p + " no ARGV", setup: setup.cmds, steps: []step{{argv: nil, reply: fkErr(badArg, "holder")}}},
			tcase{name: p + " holder checked first", setup: setup.cmds, steps: []step{{argv: acq(1, "x", 2, "x", 4, "x"), reply: fkErr(badArg, "holder")}}},
			tcase{name: p + " only holder and ttl", setup: setup.cmds, steps: []step{{argv: []string{me, "30000"}, reply: fkErr(badArg, "wait")}}},
		)
		cases = append(cases, errCases(p+" holder", setup.cmds, acqA, 1, "holder", "", "o1", "o1|a1|x", "|a1", "o1|")...)
		cases = append(cases, errCases(p+" ttl", setup.cmds, acqA, 2, "ttl", "", "abc", "0", "-1", "1.5", "1e3", " 5", "5 ", "0x10", "9007199254740992")...)
		cases = append(cases, errCases(p+" wait", setup.cmds, acqA, 3, "wait", "", "yes", "2")...)
		cases = append(cases, errCases(p+" lease", setup.cmds, acqA, 4, "lease", "", "x", "-1", "0", "1.5")...)
		cases = append(cases, errCases(p+" fence_ttl", setup.cmds, acqA, 5, "fence_ttl", "", "x", "-1", "1.5")...)
		cases = append(cases, errCases(p+" mode", setup.cmds, acqA, 7, "mode", "", "X", "s", "p")...)
		cases = append(cases, errCases(p+" touch", setup.cmds, acqA, 9, "touch", "", "2", "true")...)
	}

	// Corrupt data and keys of the wrong type: nothing may change.
	for _, r := range []string{"garbage", "''", "0|" + at0 + "|" + other, "01|" + at0 + "|" + other, "1|x|" + other,
		"1|" + at0 + "|o2", "1|" + at0 + "||", "9007199254740992|" + at0 + "|" + other, "1|12345678901234567|" + other} {
		cases = append(cases,
			tcase{name: "corrupt lock record " + r, setup: cat("SET $lock "+r+" PX 20000", busyFree),
				steps: []step{{argv: acqA, reply: fkErr(corrupt, "lock $lock")}}},
			tcase{name: "corrupt lock record, wait " + r, setup: cat("SET $lock "+r, busyFree),
				steps: []step{{argv: acq(3, "1"), reply: fkErr(corrupt, "lock $lock")}}},
		)
	}
	for _, f := range []string{"abc", "''", "-1", "1.5", "1e3", "0x10", "+5"} {
		cases = append(cases, tcase{name: "corrupt fence " + f, setup: cat("SET $fence "+f, queued(w1, "100", live+"|20000")),
			steps: []step{{argv: acqA, reply: fkErr(corrupt, "fence $fence")}}})
	}
	cases = append(cases,
		tcase{name: "wrong type: lock is a hash", setup: cat("HSET $lock a b", busyFree), steps: []step{{argv: acqA, reply: wrongType()}}},
		tcase{name: "wrong type: lock is a list, wait", setup: cat("RPUSH $lock a", busyFree), steps: []step{{argv: acq(3, "1"), reply: wrongType()}}},
		tcase{name: "wrong type: fence is a hash", setup: cat("HSET $fence a b", queued(w1, "100", live+"|20000")), steps: []step{{argv: acqA, reply: wrongType()}}},
		// The fast path (free, nobody queued) must refuse the same way.
		tcase{name: "wrong type: fence is a hash, free, nobody queued", setup: cat("HSET $fence a b"), steps: []step{{argv: acqA, reply: wrongType()}}},
		tcase{name: "wrong type: lock is a hash, nobody queued", setup: cat("HSET $lock a b"), steps: []step{{argv: acqA, reply: wrongType()}}},
		tcase{name: "corrupt fence, free, nobody queued", setup: cat(setFence("junk")), steps: []step{{argv: acqA, reply: fkErr(corrupt, "fence $fence")}}},
		tcase{name: "fence with no token left above it, free, nobody queued", setup: cat(setFence("9007199254740991")), steps: []step{{argv: acqA, reply: fkErr(corrupt, "fence $fence")}}},
		tcase{name: "wrong type: queue is a string", setup: cat(setFence(f0), "SET $q x", "HSET $qi "+w1+" "+live+"|20000"), steps: []step{{argv: acq(3, "1"), reply: wrongType()}}},
		tcase{name: "wrong type: queue info is a string", setup: cat(setFence(f0), "ZADD $q 100 "+w1, "SET $qi x"), steps: []step{{argv: acq(3, "1"), reply: wrongType()}}},
		tcase{name: "wrong type: held, wait, queue is a string", setup: cat(setLock(f0, other, 20000), "SET $q x"), steps: []step{{argv: acq(3, "1"), reply: wrongType()}}},
		tcase{name: "wrong type: held, wait, queue info is a list", setup: cat(setLock(f0, other, 20000), "RPUSH $qi x"), steps: []step{{argv: acq(3, "1"), reply: wrongType()}}},
	)
	runTable(t, lua.Acquire, cases)
}

// --- release.lua ---

func TestRelease(t *testing.T) {
	none := arr(1, "", "", 0)
	lockOf := func(h string, ttl int64) kw { return strKey(rec(f1, nowMs(0), h), ttlIn(ttl)) }
	fence1 := strKey(f1, noTTL)
	held := cat(setLock(f0, me, 20000), setFence(f0))
	heldQ := cat(held, queued(w1, "100", live+"|20000", w2, "200", live+"|25000"))

	cases := []tcase{
		{name: "held by the caller, nobody waits: deleted", setup: held, steps: []step{{
			argv: relA, reply: none, state: states{"lock": gone()},
		}}},
		{name: "token 0 matches any token of the holder", setup: held, steps: []step{{
			argv: rel(2, "0"), reply: none, state: states{"lock": gone()},
		}}},
		{name: "held by the caller under a newer token: not released", setup: cat(setLock(f1, me, 20000), setFence(f1)), steps: []step{{
			argv: relA, reply: arr(-1, me, f1, ttlIn(20000)),
		}}},
		{name: "held by another holder: not released", setup: cat(setLock(f0, other, 20000), setFence(f0)), steps: []step{{
			argv: relA, reply: arr(-1, other, f0, ttlIn(20000)),
		}}},
		{name: "held by another attempt of the same owner, token 0: not released", setup: cat(setLock(f0, me2, 20000), setFence(f0)), steps: []step{{
			argv: rel(2, "0"), reply: arr(-1, me2, f0, ttlIn(20000)),
		}}},
		{name: "held by another holder: the caller leaves the queue",
			setup: cat(setLock(f0, other, 20000), setFence(f0), queued(w1, "100", live+"|20000", me, "200", live+"|30000", w2, "300", live+"|20000")),
			steps: []step{{
				argv: relA, reply: arr(-1, other, f0, ttlIn(20000)),
				state: states{
					"q":  zsetKey(ttlIn(60000), w1, 100, w2, 300),
					"qi": hashKey(ttlIn(60000), w1, live+"|20000", w2, live+"|20000"),
				},
			}}},
		{name: "held by another holder, caller the only waiter: queue keys deleted",
			setup: cat(setLock(f0, other, 20000), setFence(f0), queued(me, "200", live+"|30000")),
			steps: []step{{argv: relA, reply: arr(-1, other, f0, ttlIn(20000)), state: states{"q": gone(), "qi": gone()}}}},
		{name: "free, nobody waits: nothing to do", setup: cat(setFence(f0)), steps: []step{{
			argv: relA, reply: arr(0, "", "", 0),
		}}},
		{name: "free, caller the only waiter: leaves the queue", setup: cat(setFence(f0), queued(me, "200", live+"|30000")), steps: []step{{
			argv: rel(2, "0"), reply: arr(0, "", "", 0), state: states{"q": gone(), "qi": gone()},
		}}},
		{name: "free, live waiter: handed over with status 0", setup: cat(setFence(f0), queued(w1, "100", live+"|20000")), steps: []step{{
			argv: relA, reply: arr(0, w1, f1, 20000), pub: []string{w1},
			state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
		}}},
		{name: "held by the caller: the first live waiter gets the lock", setup: heldQ, steps: []step{{
			argv: relA, reply: arr(1, w1, f1, 20000), pub: []string{w1},
			state: states{
				"lock": lockOf(w1, 20000), "fence": fence1,
				"q": zsetKey(ttlIn(60000), w2, 200), "qi": hashKey(ttlIn(60000), w2, live+"|25000"),
			},
		}}},
		{name: "first in line is by arrival score, not insertion order",
			setup: cat(held, queued(w1, "300", live+"|20000", w2, "200", live+"|20000", w3, "100", live+"|15000")),
			steps: []step{{
				argv: relA, reply: arr(1, w3, f1, 15000), pub: []string{w3},
				state: states{
					"lock": lockOf(w3, 15000), "fence": fence1,
					"q":  zsetKey(ttlIn(60000), w2, 200, w1, 300),
					"qi": hashKey(ttlIn(60000), w1, live+"|20000", w2, live+"|20000"),
				},
			}}},
		{name: "dead entries before the live head are dropped",
			setup: cat(held, queued(w1, "100", stale+"|20000", w2, "200", "-", w3, "300", "junk", w4, "400", live+"|0", w5, "500", live+"|20000")),
			steps: []step{{
				argv: relA, reply: arr(1, w5, f1, 20000), pub: []string{w5},
				state: states{"lock": lockOf(w5, 20000), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "only dead waiters: dropped, lock deleted",
			setup: cat(held, queued(w1, "100", stale+"|20000", w2, "200", "-")),
			steps: []step{{argv: relA, reply: none, state: states{"lock": gone(), "q": gone(), "qi": gone()}}}},
		{name: "caller queued ahead of a live waiter: leaves, the waiter gets the lock",
			setup: cat(held, queued(me, "100", live+"|30000", w1, "200", live+"|20000")),
			steps: []step{{
				argv: relA, reply: arr(1, w1, f1, 20000), pub: []string{w1},
				state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "live waiter behind 16 dead entries still gets the lock",
			setup: cat(held, queued(append(deadWaiters(16), w1, "100", live+"|20000", w2, "200", live+"|20000")...)),
			steps: []step{{
				argv: relA, reply: arr(1, w1, f1, 20000), pub: []string{w1},
				state: states{
					"lock": lockOf(w1, 20000), "fence": fence1,
					"q": zsetKey(ttlIn(60000), w2, 200), "qi": hashKey(ttlIn(60000), w2, live+"|20000"),
				},
			}}},
		{name: "40 dead waiters: dropped, lock deleted",
			setup: cat(held, queued(deadWaiters(40)...)),
			steps: []step{{argv: relA, reply: none, state: states{"lock": gone(), "q": gone(), "qi": gone()}}}},
		{name: "expired lease with a live waiter: status 0, handed over",
			setup: cat(setLock(f0, me, 100), setFence(f0), queued(w1, "100", live+"|20000")),
			steps: []step{{
				advance: 300 * time.Millisecond,
				argv:    relA, reply: arr(0, w1, f1, 20000), pub: []string{w1},
				state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
			}}},
		{name: "hand-off sets the fence ttl", setup: cat(held, queued(w1, "100", live+"|20000")), steps: []step{{
			argv: rel(3, "60000"), reply: arr(1, w1, f1, 20000), pub: []string{w1},
			state: states{"lock": lockOf(w1, 20000), "fence": strKey(f1, ttlIn(60000)), "q": gone(), "qi": gone()},
		}}},
		{name: "hand-off to a waiter of the caller's process is not announced", setup: cat(held, queued(w1, "100", live+"|20000")), steps: []step{{
			argv: rel(6, "w1|"), reply: arr(1, w1, f1, 20000),
			state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
		}}},
		{name: "hand-off without a channel is not announced", setup: cat(held, queued(w1, "100", live+"|20000")), steps: []step{{
			argv: rel(4, ""), reply: arr(1, w1, f1, 20000),
			state: states{"lock": lockOf(w1, 20000), "fence": fence1, "q": gone(), "qi": gone()},
		}}},
		{name: "hand-off without fence: token is the server time",
			setup: cat(setLock("1000", me, 20000), queued(w1, "100", live+"|20000")),
			steps: []step{{
				argv: rel(2, "1000"), reply: arr(1, w1, capture("tok", nowToken()), 20000), pub: []string{w1},
				state: states{
					"lock":  strKey(rec(same("tok"), nowMs(0), w1), ttlIn(20000)),
					"fence": strKey(same("tok"), noTTL), "q": gone(), "qi": gone(),
				},
			}}},
		{name: "held by the caller, nobody waits, fence corrupt: fence not read",
			setup: cat(setLock(f0, me, 20000), setFence("junk")),
			steps: []step{{argv: relA, reply: none, state: states{"lock": gone()}}}},
	}

	// Bad arguments, corrupt data, wrong types: nothing may change.
	for _, setup := range []struct {
		name string
		cmds []string
	}{{"free", cat(setFence(f0), queued(w1, "100", live+"|20000", me, "200", live+"|30000"))}, {"held", heldQ}} {
		p := "bad args (" + setup.name + "):"
		cases = append(cases,
			tcase{name: p + " no ARGV", setup: setup.cmds, steps: []step{{argv: nil, reply: fkErr(badArg, "holder")}}},
			tcase{name: p + " holder checked first", setup: setup.cmds, steps: []step{{argv: rel(1, "x", 2, "x", 3, "x"), reply: fkErr(badArg, "holder")}}},
			tcase{name: p + " only holder and token", setup: setup.cmds, steps: []step{{argv: []string{me, f0}, reply: fkErr(badArg, "fence_ttl")}}},
		)
		cases = append(cases, errCases(p+" holder", setup.cmds, relA, 1, "holder", "", "o1", "o1|a1|x", "|a1", "o1|")...)
		cases = append(cases, errCases(p+" token", setup.cmds, relA, 2, "token", "", "abc", "-1", "1.5", " 1", "1e3")...)
		cases = append(cases, errCases(p+" fence_ttl", setup.cmds, relA, 3, "fence_ttl", "", "x", "-1", "1.5")...)
		cases = append(cases, errCases(p+" mode", setup.cmds, relA, 5, "mode", "", "X", "s")...)
	}
	for _, r := range []string{"garbage", "''", "0|" + at0 + "|" + me, "1|" + at0 + "|o1", "9007199254740992|" + at0 + "|" + me} {
		cases = append(cases, tcase{name: "corrupt lock record " + r,
			setup: cat("SET $lock "+r+" PX 20000", setFence(f0), queued(me, "200", live+"|30000", w1, "300", live+"|20000")),
			steps: []step{{argv: rel(2, "0"), reply: fkErr(corrupt, "lock $lock")}}})
	}
	for _, f := range []string{"abc", "''", "-1", "1e3", maxToken, "99999999999999999999"} {
		cases = append(cases,
			tcase{name: "corrupt fence, held, waiter " + f,
				setup: cat(setLock("1000", me, 20000), "SET $fence "+f, queued(w1, "100", live+"|20000")),
				steps: []step{{argv: rel(2, "1000"), reply: fkErr(corrupt, "fence $fence")}}},
			tcase{name: "corrupt fence, free, waiter " + f,
				setup: cat("SET $fence "+f, queued(w1, "100", live+"|20000")),
				steps: []step{{argv: relA, reply: fkErr(corrupt, "fence $fence")}}},
		)
	}
	cases = append(cases,
		tcase{name: "wrong type: lock is a hash", setup: cat("HSET $lock a b", setFence(f0), queued(me, "1", live+"|1")), steps: []step{{argv: relA, reply: wrongType()}}},
		tcase{name: "wrong type: held, queue is a string", setup: cat(held, "SET $q x"), steps: []step{{argv: relA, reply: wrongType()}}},
		tcase{name: "wrong type: held, queue info is a string", setup: cat(held, "ZADD $q 1 "+w1, "SET $qi x"), steps: []step{{argv: relA, reply: wrongType()}}},
		tcase{name: "wrong type: held, fence is a hash, waiter", setup: cat(setLock(f0, me, 20000), "HSET $fence a b", queued(w1, "1", live+"|1")), steps: []step{{argv: relA, reply: wrongType()}}},
		tcase{name: "wrong type: held by another, queue is a string", setup: cat(setLock(f0, other, 20000), "SET $q x"), steps: []step{{argv: relA, reply: wrongType()}}},
		tcase{name: "wrong type: held by another, queue info is a list", setup: cat(setLock(f0, other, 20000), "ZADD $q 1 "+me, "RPUSH $qi x"), steps: []step{{argv: relA, reply: wrongType()}}},
		tcase{name: "wrong type: free, queue info is a list", setup: cat(setFence(f0), "ZADD $q 1 "+w1, "RPUSH $qi x"), steps: []step{{argv: relA, reply: wrongType()}}},
	)
	runTable(t, lua.Release, cases)
}

// --- refresh.lua ---

func TestRefresh(t *testing.T) {
	held := cat(setLock(f0, me, 5000), setFence(f0))
	cases := []tcase{
		{name: "held by the caller: extended", setup: held, steps: []step{{
			argv: ref(3, "45000"), reply: arr(1, 45000), state: states{"lock": strKey(recOf(f0, me), ttlIn(45000))},
		}}},
		{name: "held by the caller: shortened", setup: held, steps: []step{{
			argv: ref(3, "1000"), reply: arr(1, 1000), state: states{"lock": strKey(recOf(f0, me), ttlIn(1000))},
		}}},
		{name: "record without expiry gets one", setup: cat("SET $lock " + recOf(f0, me)), steps: []step{{
			argv: refA, reply: arr(1, 30000), state: states{"lock": strKey(recOf(f0, me), ttlIn(30000))},
		}}},
		{name: "retry extends to the same", setup: held, steps: []step{
			{argv: refA, reply: arr(1, 30000), state: states{"lock": strKey(recOf(f0, me), ttlIn(30000))}},
			{argv: refA, reply: arr(1, 30000), state: states{"lock": strKey(recOf(f0, me), ttlIn(30000))}},
		}},
		{name: "no record: not brought back", setup: cat(setFence(f0)), steps: []step{{argv: refA, reply: arr(0)}}},
		{name: "expired lease: not brought back", setup: cat(setLock(f0, me, 100), setFence(f0)), steps: []step{{
			advance: 300 * time.Millisecond, argv: refA, reply: arr(0),
		}}},
		{name: "held by another holder", setup: cat(setLock(f0, other, 20000)), steps: []step{{
			argv: refA, reply: arr(-1, other, f0, ttlIn(20000)),
		}}},
		{name: "held by the caller under a newer token", setup: cat(setLock(f1, me, 20000)), steps: []step{{
			argv: refA, reply: arr(-1, me, f1, ttlIn(20000)),
		}}},
		{name: "held by another attempt of the same owner", setup: cat(setLock(f0, me2, 20000)), steps: []step{{
			argv: refA, reply: arr(-1, me2, f0, ttlIn(20000)),
		}}},
		{name: "corrupt record: bad args reported first", setup: cat("SET $lock garbage"), steps: []step{{
			argv: ref(3, "0"), reply: fkErr(badArg, "ttl"),
		}}},
		{name: "wrong type: lock is a hash", setup: cat("HSET $lock a b"), steps: []step{{argv: refA, reply: wrongType()}}},
		{name: "wrong type: lock is a list", setup: cat("RPUSH $lock a"), steps: []step{{argv: refA, reply: wrongType()}}},
		{name: "bad args: no ARGV", setup: held, steps: []step{{argv: nil, reply: fkErr(badArg, "holder")}}},
		{name: "bad args: holder checked first", setup: held, steps: []step{{argv: ref(1, "x", 2, "x", 3, "x"), reply: fkErr(badArg, "holder")}}},
		{name: "bad args: no ttl", setup: held, steps: []step{{argv: []string{me, f0}, reply: fkErr(badArg, "ttl")}}},
	}
	cases = append(cases, errCases("bad args: holder", held, refA, 1, "holder", "", "o1", "o1|a1|x", "|a1", "o1|")...)
	cases = append(cases, errCases("bad args: token", held, refA, 2, "token", "", "0", "01", "abc", "-1", "1.5", " 1", "1e3")...)
	cases = append(cases, errCases("bad args: ttl", held, refA, 3, "ttl", "", "abc", "0", "-1", "1.5", "1e3", " 5", "0x10", "9007199254740992")...)
	for _, r := range []string{"garbage", "''", "0|" + at0 + "|" + me, "1|" + at0 + "|o1", "9007199254740992|" + at0 + "|" + me} {
		cases = append(cases, tcase{name: "corrupt lock record " + r, setup: cat("SET $lock " + r + " PX 20000"),
			steps: []step{{argv: refA, reply: fkErr(corrupt, "lock $lock")}}})
	}
	runTable(t, lua.Refresh, cases)
}

// --- inspect.lua ---

func TestInspect(t *testing.T) {
	cases := []tcase{
		{name: "nothing stored", steps: []step{{reply: arr("", -2, "", 0)}}},
		{name: "fence only", setup: cat(setFence(f0)), steps: []step{{reply: arr("", -2, f0, 0)}}},
		{name: "held, fence, live and dead waiters",
			setup: cat(setLock(f0, other, 20000), setFence(f0), queued(w1, "100", live+"|20000", w2, "50", stale+"|20000", w3, "70", "-")),
			steps: []step{{reply: arr(recOf(f0, other), ttlIn(20000), f0, 3)}}},
		{name: "record without expiry", setup: cat("SET $lock " + recOf(f0, me)), steps: []step{{reply: arr(recOf(f0, me), -1, "", 0)}}},
		{name: "corrupt record is returned as stored", setup: cat("SET $lock garbage PX 20000", "SET $fence junk"),
			steps: []step{{reply: arr("garbage", ttlIn(20000), "junk", 0)}}},
		{name: "ARGV is ignored", setup: cat(setFence(f0)), steps: []step{{argv: []string{"x", "y"}, reply: arr("", -2, f0, 0)}}},
		{name: "wrong type: lock is a hash", setup: cat("HSET $lock a b"), steps: []step{{reply: wrongType()}}},
		{name: "wrong type: fence is a list", setup: cat("RPUSH $fence a"), steps: []step{{reply: wrongType()}}},
		{name: "wrong type: queue is a string", setup: cat("SET $q a"), steps: []step{{reply: wrongType()}}},
	}
	runTable(t, lua.Inspect, cases)
}

// --- the scripts together ---

func TestFlows(t *testing.T) {
	acqBy := func(h string) []string { return acq(1, h, 3, "1") }
	relBy := func(h, tok string) []string { return rel(1, h, 2, tok) }
	inspect := func(reply any) step { return step{script: lua.Inspect, reply: reply} }
	cases := []tcase{
		{name: "acquire, refresh, release, then nothing is held", steps: []step{
			{argv: acqA, reply: arr(1, capture("tok", nowToken()), 30000, nowMs(0)), state: states{"lock": anything(), "fence": anything()}},
			{script: lua.Refresh, argv: []string{me, "${tok}", "45000"}, reply: arr(1, 45000), state: states{"lock": strKey(anyVal(), ttlIn(45000))}},
			{script: lua.Release, argv: rel(2, "${tok}"), reply: arr(1, "", "", 0), state: states{"lock": gone()}},
			{script: lua.Refresh, argv: []string{me, "${tok}", "45000"}, reply: arr(0)},
			{script: lua.Release, argv: rel(2, "${tok}"), reply: arr(0, "", "", 0)},
			inspect(arr("", -2, same("tok"), 0)),
		}},
		{name: "waiters get the lock in arrival order", setup: cat(setLock(f0, other, 20000), setFence(f0)), steps: []step{
			{argv: acqBy(w1), reply: arr(0, f0, ttlIn(20000), at0n, other), state: states{"q": anything(), "qi": anything()}},
			{argv: acqBy(w2), reply: arr(0, f0, ttlIn(20000), at0n, other), state: states{"q": anything(), "qi": anything()}},
			{argv: acqBy(w3), reply: arr(0, f0, ttlIn(20000), at0n, other), state: states{"q": anything(), "qi": anything()}},
			inspect(arr(recOf(f0, other), ttlIn(20000), f0, 3)),
			{script: lua.Release, argv: relBy(other, f0), reply: arr(1, w1, f1, 30000), pub: []string{w1},
				state: states{"lock": anything(), "fence": anything(), "q": anything(), "qi": anything()}},
			{argv: acqBy(w1), reply: arr(1, f1, ttlIn(30000), recent())},
			{argv: acqBy(w3), reply: arr(0, f1, ttlIn(30000), recent(), w1), state: states{"q": anything(), "qi": anything()}},
			{script: lua.Release, argv: relBy(w1, f1), reply: arr(1, w2, f2, 30000), pub: []string{w2},
				state: states{"lock": anything(), "fence": anything(), "q": anything(), "qi": anything()}},
			{script: lua.Release, argv: relBy(w2, "0"), reply: arr(1, w3, f3, 30000), pub: []string{w3},
				state: states{"lock": anything(), "fence": anything(), "q": anything(), "qi": anything()}},
			inspect(arr(rec(f3, recent(), w3), ttlIn(30000), f3, 0)),
			{script: lua.Release, argv: relBy(w3, f3), reply: arr(1, "", "", 0), state: states{"lock": gone()}},
			inspect(arr("", -2, f3, 0)),
		}},
		{name: "a waiter that gives up after being handed the lock releases it",
			setup: cat(setLock(f0, other, 20000), setFence(f0)), steps: []step{
				{argv: acqBy(w1), reply: arr(0, f0, ttlIn(20000), at0n, other), state: states{"q": anything(), "qi": anything()}},
				{script: lua.Release, argv: relBy(other, f0), reply: arr(1, w1, f1, 30000), pub: []string{w1},
					state: states{"lock": anything(), "fence": anything(), "q": gone(), "qi": gone()}},
				{script: lua.Release, argv: relBy(w1, "0"), reply: arr(1, "", "", 0), state: states{"lock": gone()}},
				inspect(arr("", -2, f1, 0)),
			}},
		{name: "tokens grow across expiry", steps: []step{
			{argv: acq(2, "100"), reply: arr(1, capture("t1", nowToken()), 100, nowMs(0)), state: states{"lock": anything(), "fence": anything()}},
			{advance: 300 * time.Millisecond, argv: acq(1, other), reply: arr(1, capture("t2", greaterThan("t1")), 30000, nowMs(0)), state: states{"lock": anything(), "fence": anything()}},
		}},
	}
	runTable(t, lua.Acquire, cases)
}

// greaterThan matches a token larger than the one captured under name.
func greaterThan(name string) matcher {
	return func(e *env, got any) error {
		n, err := num(got)
		if err != nil {
			return err
		}
		prev, err := num(e.vars[name])
		if err != nil {
			return err
		}
		if n <= prev {
			return fmt.Errorf("token %d is not above %s = %d", n, name, prev)
		}
		return nil
	}
}

// --- announcements: PUBLISH and SPUBLISH ---

// TestAnnounceModes hands the lock over (release.lua) with each announcement
// mode on every server. The tables above use "S" on the cluster and "P"
// elsewhere; here both run everywhere. A notice is sent only after the
// grant is written, so a mode the server cannot carry out must not fail
// the script (its writes are done): the hand-off stands, unannounced, and
// the waiter finds it at its next look.
func TestAnnounceModes(t *testing.T) {
	// Whether the server carries out each mode inside a script.
	delivers := map[redistest.Kind]map[string]bool{
		// miniredis has no sharded pub/sub (v2.40.0).
		redistest.Mini:    {"P": true, "S": false},
		redistest.Redis:   {"P": true, "S": true},
		redistest.Cluster: {"P": true, "S": true},
	}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := s.NewClient(t)
		for _, mode := range []string{"P", "S"} {
			t.Run(mode, func(t *testing.T) {
				e := newEnv(t, s, c)
				e.mode = mode
				e.setup(cat(setLock(f0, me, 20000), setFence(f0), queued(w1, "100", live+"|20000")))
				var sub *subscriber
				if delivers[s.Kind][mode] {
					sub = subscribe(t, e)
				}
				got, _ := e.call(lua.Release, relA) // $mode is e.mode
				if err := match(e, arr(1, w1, f1, 20000), got); err != nil {
					t.Fatalf("reply %s: %v", show(got), err)
				}
				if sub == nil {
					return
				}
				// PUBLISH on a cluster reaches subscribers through the
				// cluster bus, so it is not ordered with a sentinel.
				tok, ttl := grantOf(lua.Release, got)
				notice := w1 + " " + tok + " " + ttl
				if msgs := sub.waitFor(t, notice); len(msgs) != 1 {
					t.Errorf("announcements %q, want just %q", msgs, notice)
				}
			})
		}
	})
}

// TestAnnounceClusterChannels finds out which channels SPUBLISH accepts
// inside a script on Redis Cluster: the channel is not among the script's
// KEYS. The lock's own channel shares the keys' hash tag and must work; a
// channel whose slot another node serves is refused by the server, after
// the hand-off was written, and the refusal must not fail the script.
func TestAnnounceClusterChannels(t *testing.T) {
	s := redistest.NewCluster(t)
	c := s.NewClient(t)
	slotOf := func(key string) int64 {
		m := s.Do(t, "CLUSTER", "KEYSLOT", key)
		n, err := m.AsInt64()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
		}
		return n
	}
	nodeOf := clusterNodes(t, s)
	probe := newEnv(t, s, c)
	lockSlot := slotOf(probe.k.Lock)

	// One channel of each kind.
	chans := map[string]string{
		"lock's channel":        probe.k.Wake,
		"same slot, other name": "other:{l}:chan",
	}
	for i := 0; len(chans) < 4 && i < 1000; i++ {
		ch := fmt.Sprintf("chan:{c%d}", i)
		kind := "other node"
		switch sl := slotOf(ch); {
		case sl == lockSlot:
			continue
		case nodeOf(sl) == nodeOf(lockSlot):
			kind = "same node, other slot"
		}
		if _, ok := chans[kind]; !ok {
			chans[kind] = ch
		}
	}
	for _, kind := range []string{"lock's channel", "same slot, other name", "same node, other slot", "other node"} {
		t.Run(kind, func(t *testing.T) {
			ch, ok := chans[kind]
			if !ok {
				t.Skip("no such channel found")
			}
			e := newEnv(t, s, c)
			if ch == probe.k.Wake {
				ch = e.k.Wake
			}
			e.setup(cat(setLock(f0, me, 20000), setFence(f0), queued(w1, "100", live+"|20000")))
			before := e.snapshot()
			got, isErr := e.call(lua.Release, rel(4, ch, 5, "S"))
			t.Logf("SPUBLISH to %q (slot %d; lock slot %d): %s", ch, slotOf(ch), slotOf(e.k.Lock), show(got))
			switch {
			case kind == "other node":
				// Redis refuses the SPUBLISH ("non local key"), after
				// the hand-off was written: the notice is dropped and
				// the script succeeds.
				if err := match(e, arr(1, w1, f1, 20000), got); err != nil {
					t.Fatalf("reply %s: %v", show(got), err)
				}
			case isErr && kind == "same node, other slot":
				// Accepted by Redis 7.0; later versions may refuse it,
				// which is fine as long as nothing was written.
				e.checkUnchanged(before)
			case isErr:
				t.Fatalf("got %s, want a hand-off", show(got))
			default:
				if err := match(e, arr(1, w1, f1, 20000), got); err != nil {
					t.Fatalf("reply %s: %v", show(got), err)
				}
			}
		})
	}
}

// clusterNodes returns a function mapping a slot to the address of the
// master serving it.
func clusterNodes(t *testing.T, s *redistest.Server) func(slot int64) string {
	m := s.Do(t, "CLUSTER", "SLOTS")
	ranges, err := m.ToArray()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	type span struct {
		from, to int64
		addr     string
	}
	var spans []span
	for _, r := range ranges {
		parts, _ := r.ToArray()
		if len(parts) < 3 {
			continue
		}
		from, _ := parts[0].AsInt64()
		to, _ := parts[1].AsInt64()
		node, _ := parts[2].ToArray()
		if len(node) < 2 {
			continue
		}
		host, _ := node[0].ToString()
		port, _ := node[1].AsInt64()
		spans = append(spans, span{from, to, fmt.Sprintf("%s:%d", host, port)})
	}
	return func(slot int64) string {
		for _, sp := range spans {
			if slot >= sp.from && slot <= sp.to {
				return sp.addr
			}
		}
		t.Fatalf("slot %d is not served", slot)
		return ""
	}
}

// --- miniredis time ---

// TestMiniredisClock pins down how miniredis time works for these scripts:
// TIME (and so tokens, acquired-at and waiter liveness) follows SetTime, or
// the wall clock when none is set, while FastForward only counts key TTLs
// down and never moves TIME. A waiter's entry therefore does not go stale by
// FastForward; tests that need that must SetTime (or write an old
// alive-until, as the tables do).
func TestMiniredisClock(t *testing.T) {
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	e := newEnv(t, s, c)
	at := time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC)
	s.Mini.SetTime(at)
	us := fmt.Sprint(at.UnixMicro())

	// With a fixed clock the time-derived token is exact.
	got, _ := e.call(lua.Acquire, acqA)
	if err := match(e, arr(1, us, 30000, int(at.UnixMilli())), got); err != nil {
		t.Fatalf("acquire: %s: %v", show(got), err)
	}

	// FastForward expires the lease but leaves TIME alone.
	s.FastForward(time.Hour)
	tm := s.Do(t, "TIME")
	parts, _ := tm.AsStrSlice()
	if len(parts) != 2 || parts[0] != fmt.Sprint(at.Unix()) {
		t.Fatalf("TIME after FastForward = %q, want seconds %d", parts, at.Unix())
	}
	if got, _ := e.call(lua.Inspect, nil); match(e, arr("", -2, us, 0), got) != nil {
		t.Fatalf("inspect after FastForward: %s, want the lease gone", show(got))
	}

	// A waiter alive until at+5s stays alive however far FastForward goes
	// (the queue keys here have no TTL), and goes stale with SetTime.
	e.setup([]string{"ZADD $q 1 " + w1, fmt.Sprintf("HSET $qi %s %d|20000", w1, at.UnixMilli()+5000)})
	s.FastForward(time.Hour)
	got, _ = e.call(lua.Acquire, acqA)
	if err := match(e, arr(0, fmt.Sprint(at.UnixMicro()+1), 20000, int(at.UnixMilli()), w1), got); err != nil {
		t.Fatalf("acquire with a waiter after FastForward: %s: %v", show(got), err)
	}
	s.FastForward(time.Minute) // the hand-off's lease of 20 s ends
	e.setup([]string{"ZADD $q 2 " + w2, fmt.Sprintf("HSET $qi %s %d|20000", w2, at.UnixMilli()+5000)})
	s.Mini.SetTime(at.Add(10 * time.Second))
	got, _ = e.call(lua.Acquire, acqA)
	if err := match(e, arr(1, fmt.Sprint(at.Add(10*time.Second).UnixMicro()), 30000, int(at.Add(10*time.Second).UnixMilli())), got); err != nil {
		t.Fatalf("acquire with a stale waiter after SetTime: %s: %v", show(got), err)
	}
}

// --- the script registry and the header parser ---

func TestAll(t *testing.T) {
	files, err := lua.EmbeddedFiles()
	if err != nil {
		t.Fatal(err)
	}
	all := lua.All()
	want := make([]*lua.Script, 0, len(expectedScripts))
	for sc := range expectedScripts {
		want = append(want, sc)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Name() < want[j].Name() })
	if len(all) != len(want) {
		t.Fatalf("All() has %d scripts, want %d", len(all), len(want))
	}
	for i := range want {
		if all[i] != want[i] {
			t.Errorf("All()[%d] = %s, want %s (sorted by name, same values as the variables)", i, all[i].Name(), want[i].Name())
		}
	}
	// Every embedded file is a script in All, or a library that a script
	// includes.
	names := map[string]bool{}
	included := map[string]bool{}
	for _, s := range all {
		names[s.Name()] = true
		fields, include, err := lua.ParseHeader(s.Name(), files[s.Name()])
		if err != nil {
			t.Errorf("%s: %v", s.Name(), err)
		}
		for _, f := range lua.RequiredFields {
			if fields[f] == "" {
				t.Errorf("%s: header line %q is empty", s.Name(), f)
			}
		}
		for _, inc := range include {
			included[inc] = true
		}
	}
	for name := range files {
		if !names[name] && !included[name] {
			t.Errorf("%s is embedded but neither a script in All() nor included by one", name)
		}
	}

	for _, s := range all {
		body := files[s.Name()]
		fields, include, _ := lua.ParseHeader(s.Name(), body)
		if f, ok := expectedScripts[s]; !ok || s.Retryable() != f[0] || s.ReadOnly() != f[1] {
			t.Errorf("%s: retryable %v, read-only %v; want %v", s.Name(), s.Retryable(), s.ReadOnly(), f)
		}
		if got := strings.HasPrefix(fields["Retryable"], "yes"); got != s.Retryable() {
			t.Errorf("%s: header Retryable %q but Retryable() = %v", s.Name(), fields["Retryable"], s.Retryable())
		}
		// The libraries go before the body, or at its "-- @libraries" line
		// (below a fast path).
		before, after, split := strings.Cut(body, "\n-- @libraries\n")
		var src strings.Builder
		if split {
			src.WriteString(before + "\n")
		} else {
			after = body
		}
		for _, inc := range include {
			src.WriteString(files[inc] + "\n")
		}
		src.WriteString(after)
		if s.Source() != src.String() {
			t.Errorf("%s: Source() is not the included libraries (at -- @libraries, or first) and the file", s.Name())
		}
		if split {
			for _, line := range strings.Split(before, "\n") {
				if code, _, _ := strings.Cut(line, "--"); strings.Contains(code, "fk_") {
					t.Errorf("%s: the code above -- @libraries calls fk_ helpers, which are not defined there: %q", s.Name(), line)
				}
			}
		}
		if sum := sha1.Sum([]byte(s.Source())); s.SHA1() != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: SHA1() = %s, not the SHA-1 of Source()", s.Name(), s.SHA1())
		}
		if strings.Contains(body, "fk_") && (len(include) == 0 || include[0] != "lib_base.lua") {
			t.Errorf("%s calls fk_ helpers but does not include lib_base.lua first", s.Name())
		}
		// Every KEYS[n] and ARGV[n] the code uses is documented.
		header, code := splitHeader(body)
		for _, ref := range regexp.MustCompile(`(KEYS|ARGV)\[\d+\]`).FindAllString(code, -1) {
			if !strings.Contains(header, ref) {
				t.Errorf("%s uses %s, which its header does not document", s.Name(), ref)
			}
		}
	}

	// The servers agree with SHA1(): EVALSHA finds what EVAL loaded.
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		for _, sc := range all {
			m := s.Do(t, "SCRIPT", "LOAD", sc.Source())
			if got, err := m.ToString(); err != nil || got != sc.SHA1() {
				t.Errorf("SCRIPT LOAD %s = %q, %v; want %s", sc.Name(), got, err, sc.SHA1())
			}
		}
	})
}

// splitHeader splits a script into its leading comment block and the rest.
func splitHeader(src string) (header, code string) {
	lines := strings.Split(src, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "--") {
		i++
	}
	return strings.Join(lines[:i], "\n"), strings.Join(lines[i:], "\n")
}

func TestParseHeader(t *testing.T) {
	full := "-- x.lua: a script\n--\n-- KEYS[1] lock\n-- ARGV: none\n-- Reply: ok\n-- Errors: none\n-- Retryable: yes\n"
	cases := []struct {
		name, src string
		wantErr   string // part of the error; "" for success
		fields    map[string]string
		include   []string
	}{
		{name: "complete", src: full + "return 1\n",
			fields: map[string]string{"KEYS": "[1] lock", "ARGV": "none", "Reply": "ok", "Errors": "none", "Retryable": "yes"}},
		{name: "KEYS: form", src: strings.Replace(full, "KEYS[1] lock", "KEYS: none", 1),
			fields: map[string]string{"KEYS": "none"}},
		{name: "read-only and includes in order",
			src:     full + "-- ReadOnly: yes\n-- Include: a.lua\n-- Include: b.lua\n\nreturn 1\n",
			fields:  map[string]string{"ReadOnly": "yes", "Include": "a.lua"},
			include: []string{"a.lua", "b.lua"}},
		{name: "first occurrence wins", src: full + "-- Retryable: no\n", fields: map[string]string{"Retryable": "yes"}},
		{name: "a word starting like a field is not one", src: strings.Replace(full, "KEYS[1] lock", "KEYSPACE: x", 1), wantErr: `no "KEYS" line`},
		{name: "header ends at the first line that is not a comment",
			src: "-- x.lua\n-- KEYS[1] k\n\n-- Reply: r\n-- Errors: e\n-- Retryable: no\n", wantErr: `no "Reply" line`},
		{name: "empty file", src: "", wantErr: `no "KEYS" line`},
	}
	for _, f := range lua.RequiredFields {
		var kept []string
		for _, line := range strings.Split(full, "\n") {
			if !strings.HasPrefix(line, "-- "+f) {
				kept = append(kept, line)
			}
		}
		cases = append(cases, tcaseHeader(f, strings.Join(kept, "\n")))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fields, include, err := lua.ParseHeader("x.lua", tc.src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "x.lua") {
					t.Fatalf("err = %v, want one naming x.lua and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.fields {
				if fields[k] != v {
					t.Errorf("field %s = %q, want %q", k, fields[k], v)
				}
			}
			if strings.Join(include, ",") != strings.Join(tc.include, ",") {
				t.Errorf("include = %q, want %q", include, tc.include)
			}
		})
	}

	// The embedded library is no script: it has no KEYS line.
	files, err := lua.EmbeddedFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range []string{"lib_base.lua", "lib_lock.lua", "lib_fence.lua"} {
		if _, _, err := lua.ParseHeader(lib, files[lib]); err == nil {
			t.Errorf("%s parses as a script header", lib)
		}
	}
}

func tcaseHeader(field, src string) struct {
	name, src string
	wantErr   string
	fields    map[string]string
	include   []string
} {
	return struct {
		name, src string
		wantErr   string
		fields    map[string]string
		include   []string
	}{name: "missing " + field, src: src, wantErr: fmt.Sprintf("no %q line", field)}
}
