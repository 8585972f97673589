// Package lua holds every Lua script fencekit runs, embedded from the .lua
// files of this directory, and exports each as a ready [*Script].
//
// Each file starts with a header comment that documents KEYS, ARGV, the
// replies, the error codes and whether the script may be retried. The
// header is also read by this package: "Retryable: yes" makes rueidis retry
// the script after a connection error (only idempotent scripts say so),
// "ReadOnly: yes" sends it with EVALSHA_RO, and "Include: lib.lua" prepends a
// library file of helpers (or inserts it at a line "-- @libraries", below a
// fast path that needs none of them). Scripts run with EVALSHA and fall back to EVAL
// when the server does not know them yet (rueidis does this). Whatever the
// header says, [Script.Exec] sends a script again when the server refused
// it without running it (TRYAGAIN, CLUSTERDOWN, LOADING), for at most
// [RefusalBudget].
//
// Error replies of fencekit's own scripts start with a code:
//
//	FENCEKIT_BADARG <arg>       an argument is malformed (a bug in the caller)
//	FENCEKIT_CORRUPT <key>      a key holds data fencekit did not write
//	FENCEKIT_STALE <p> <h>      presented token p is older than the highest h
//	FENCEKIT_NOT_HOLDER <p> <t> the lock no longer names the writer (t: holder's token or "")
//	FENCEKIT_CONFLICT <v>       an expected version does not match (v: the current one)
//	FENCEKIT_EXISTS <v>         the session exists already
//	FENCEKIT_NOT_FOUND <what>   the session (or checkpoint, stage...) does not exist
//	FENCEKIT_CURSOR <detail>    a cursor no longer fits the data
//	FENCEKIT_REPLACED <inc>     a position or expectation of a deleted incarnation of the session
//	                            (inc: the current one; "stream <origin>" for stream positions)
//
// Every script validates all its preconditions before its first write, and
// every key a script touches shares one hash tag, so scripts run unchanged on
// Redis Cluster. The memory scripts (mem_*.lua) also write keys they build
// from the tag instead of declaring them (the index of a scope a record
// leaves, the records of a Reset, swept entries): they read every such key
// before their first write and never write a key they emptied in the same
// call, so that during a Cluster slot migration a key already moved stops
// the script before it has changed anything (see mem_lib.lua).
package lua

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

//go:embed *.lua
var files embed.FS

// Script is one embedded Lua script, ready to run.
type Script struct {
	*rueidis.Lua

	name      string
	source    string
	sha1      string
	retryable bool
	readOnly  bool
}

// Name returns the file name of the script, e.g. "acquire.lua".
func (s *Script) Name() string { return s.name }

// Source returns the exact text sent to Redis (included libraries first).
func (s *Script) Source() string { return s.source }

// SHA1 returns the hex SHA-1 digest of Source, as EVALSHA expects it.
func (s *Script) SHA1() string { return s.sha1 }

// Retryable reports whether the header marks the script safe to retry.
func (s *Script) Retryable() bool { return s.retryable }

// ReadOnly reports whether the header marks the script read-only.
func (s *Script) ReadOnly() bool { return s.readOnly }

// Exec runs the script: EVALSHA, then EVAL after NOSCRIPT (EVALSHA_RO for
// read-only scripts), through rueidis, which retries it on a broken
// connection only when Retryable. Exec adds one retry rule of its own,
// for every script: a reply saying the server refused the script before
// running it - TRYAGAIN (a Cluster slot being migrated, with the script's
// keys split between two nodes), CLUSTERDOWN or LOADING - is retried
// with backoff (1 ms doubling to 50 ms) for at most RefusalBudget, or
// until ctx ends; then the refusal is returned. The script did not run, so
// running it again cannot apply it twice.
func (s *Script) Exec(ctx context.Context, c rueidis.Client, keys, args []string) rueidis.RedisResult {
	res := s.Lua.Exec(ctx, c, keys, args)
	if refused(res.Error()) {
		retryRefused(ctx, func() bool {
			res = s.Lua.Exec(ctx, c, keys, args)
			return refused(res.Error())
		})
	}
	return res
}

// retryRefused calls try, which reports whether the server refused again,
// with backoff until it did not, RefusalBudget passed or ctx ended.
func retryRefused(ctx context.Context, try func() (refused bool)) {
	deadline := time.Now().Add(RefusalBudget)
	for delay := time.Millisecond; time.Now().Add(delay).Before(deadline); delay = min(2*delay, 50*time.Millisecond) {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !try() {
			return
		}
	}
}

// RefusalBudget bounds how long Exec and ExecWait retry a script the
// server refused without running it (TRYAGAIN, CLUSTERDOWN, LOADING).
var RefusalBudget = 2 * time.Second

// refused reports whether err is a reply by which the server refused a
// command before running it, one that may pass soon.
func refused(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && (re.IsTryAgain() || re.IsClusterDown() || re.IsLoading())
}

// ExecWait runs the script and then WAIT replicas timeout on the same
// connection, so WAIT covers exactly the script's writes. It returns the
// script's result and the number of replicas that acknowledged. On a cluster
// client the dedicated connection is bound to the node owning keys[0].
// Refusals are retried as by Exec.
func (s *Script) ExecWait(ctx context.Context, c rueidis.Client, keys, args []string, replicas int, timeout time.Duration) (rueidis.RedisResult, int64, error) {
	res, acked, err := s.execWait(ctx, c, keys, args, replicas, timeout)
	if err == nil && refused(res.Error()) {
		retryRefused(ctx, func() bool {
			res, acked, err = s.execWait(ctx, c, keys, args, replicas, timeout)
			return err == nil && refused(res.Error())
		})
	}
	return res, acked, err
}

func (s *Script) execWait(ctx context.Context, c rueidis.Client, keys, args []string, replicas int, timeout time.Duration) (rueidis.RedisResult, int64, error) {
	var res rueidis.RedisResult
	var acked int64
	err := c.Dedicated(func(dc rueidis.DedicatedClient) error {
		wait := dc.B().Wait().Numreplicas(int64(replicas)).Timeout(timeout.Milliseconds()).Build()
		out := dc.DoMulti(ctx, dc.B().Evalsha().Sha1(s.sha1).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build(), wait)
		if rerr, ok := rueidis.IsRedisErr(out[0].Error()); ok && rerr.IsNoScript() {
			wait = dc.B().Wait().Numreplicas(int64(replicas)).Timeout(timeout.Milliseconds()).Build()
			out = dc.DoMulti(ctx, dc.B().Eval().Script(s.source).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build(), wait)
		}
		res = out[0]
		n, err := out[1].AsInt64()
		if err != nil {
			return err
		}
		acked = n
		return nil
	})
	return res, acked, err
}

// The scripts. Each variable's documentation is the header of its file.
var (
	// Acquire takes a lock or reports its holder; see acquire.lua.
	Acquire = mustLoad("acquire.lua")
	// Release gives up a lock or a place in its wait queue; see release.lua.
	Release = mustLoad("release.lua")
	// Refresh extends a held lease; see refresh.lua.
	Refresh = mustLoad("refresh.lua")
	// Inspect reads a lock's state; see inspect.lua.
	Inspect = mustLoad("inspect.lua")
	// ForceRelease takes a lock from its holder for an operator and fences
	// the holder out; see force_release.lua.
	ForceRelease = mustLoad("force_release.lua")

	// StateSave creates or replaces a session's state; see state_save.lua.
	StateSave = mustLoad("state_save.lua")
	// StateLoad reads a session's state; see state_load.lua.
	StateLoad = mustLoad("state_load.lua")
	// StateDelete deletes a session's data; see state_delete.lua.
	StateDelete = mustLoad("state_delete.lua")
	// StateStatus sets or compares-and-sets a status; see state_status.lua.
	StateStatus = mustLoad("state_status.lua")
	// StateIncr adds to a counter of the state; see state_incr.lua.
	StateIncr = mustLoad("state_incr.lua")
	// MsgsAppend appends messages; see msgs_append.lua.
	MsgsAppend = mustLoad("msgs_append.lua")
	// MsgsPage reads a page of messages; see msgs_page.lua.
	MsgsPage = mustLoad("msgs_page.lua")
)

// All returns every script, sorted by name.
func All() []*Script {
	out := make([]*Script, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

var registry = map[string]*Script{}

// header holds the fields parsed from a script's leading comment block.
type header struct {
	fields  map[string]string
	include []string
}

// librariesMarker is the line of a script body where included libraries
// are inserted (default: before the body).
const librariesMarker = "-- @libraries"

// requiredFields are the header lines every script must have.
var requiredFields = []string{"KEYS", "Reply", "Errors", "Retryable"}

func parseHeader(name, src string) (header, error) {
	h := header{fields: map[string]string{}}
	for _, line := range strings.Split(src, "\n") {
		if !strings.HasPrefix(line, "--") {
			break
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "--"))
		for _, f := range []string{"KEYS", "ARGV", "Reply", "Errors", "Retryable", "ReadOnly", "Include"} {
			if rest, ok := strings.CutPrefix(line, f); ok && (strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, "[")) {
				if f == "Include" {
					h.include = append(h.include, strings.TrimSpace(strings.TrimPrefix(rest, ":")))
				}
				if _, seen := h.fields[f]; !seen {
					h.fields[f] = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
				}
			}
		}
	}
	for _, f := range requiredFields {
		if _, ok := h.fields[f]; !ok {
			return h, fmt.Errorf("scripts/lua: %s: header has no %q line", name, f)
		}
	}
	return h, nil
}

func load(name string) (*Script, error) {
	body, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(name, string(body))
	if err != nil {
		return nil, err
	}
	// The libraries go first, or where the body has a line "-- @libraries":
	// a fast path above that line returns before Lua builds the libraries'
	// closures, which costs every call about 0.9 µs of Redis CPU.
	before, after, split := strings.Cut(string(body), "\n"+librariesMarker+"\n")
	if !split {
		before, after = "", string(body)
	}
	var src strings.Builder
	if split {
		src.WriteString(before)
		src.WriteByte('\n')
	}
	for _, inc := range h.include {
		lib, err := files.ReadFile(inc)
		if err != nil {
			return nil, fmt.Errorf("scripts/lua: %s: include %s: %w", name, inc, err)
		}
		src.Write(lib)
		src.WriteByte('\n')
	}
	src.WriteString(after)
	s := &Script{
		name:      name,
		source:    src.String(),
		retryable: strings.HasPrefix(h.fields["Retryable"], "yes"),
		readOnly:  strings.HasPrefix(h.fields["ReadOnly"], "yes"),
	}
	sum := sha1.Sum([]byte(s.source))
	s.sha1 = hex.EncodeToString(sum[:])
	switch {
	case s.readOnly:
		s.Lua = rueidis.NewLuaScriptReadOnly(s.source)
	case s.retryable:
		s.Lua = rueidis.NewLuaScriptRetryable(s.source)
	default:
		s.Lua = rueidis.NewLuaScript(s.source)
	}
	return s, nil
}

func mustLoad(name string) *Script {
	s, err := load(name)
	if err != nil {
		panic(err) // a broken embedded file is a build defect
	}
	registry[name] = s
	return s
}
