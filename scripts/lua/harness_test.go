package lua_test

// The table-test harness used by scripts_test.go: a case sets keys up with
// raw commands, runs one or more script calls and compares each reply and
// the resulting state of every key of the lock with a shared expectation,
// on miniredis, a real redis-server and a real Redis Cluster.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/redis/rueidis"
)

// clockSlack is how far a time-derived value may lie outside the local clock
// readings taken around the script call (the servers run on this host).
const clockSlack = 20 * time.Millisecond

// keyNames are the keys of one lock, by the names the tables use.
// "ev" and "grant" are the event log and open grant of lock events: every
// case checks them, so a script called without them must leave them alone.
var keyNames = []string{"lock", "fence", "q", "qi", "ev", "grant"}

// tcase is one table case: raw setup commands, then script calls.
type tcase struct {
	name  string
	setup []string // raw commands, split at spaces, placeholders expanded
	steps []step
	// events passes the lock scripts the event log and open grant as
	// KEYS[5] and KEYS[6] (lock.Options.EventLog).
	events bool
}

// step is one script call and what must follow from it.
type step struct {
	script  *lua.Script // default: the table's script
	argv    []string    // placeholders expanded; see env.expand
	advance time.Duration
	// reply is the expected reply: a matcher, an int, a string (expanded),
	// nil, or a []any of those for an array.
	reply any
	// state holds expectations for keys by name ("lock", "fence", "q",
	// "qi"); every key not listed must be unchanged by the call. An error
	// reply must leave every key unchanged, so it lists none.
	state map[string]kw
	// pub lists the messages the call must publish on the lock's wake
	// channel, in order (checked for acquire.lua and release.lua).
	pub []string
}

// env is the context of one case on one server.
type env struct {
	t      *testing.T
	s      *redistest.Server
	c      rueidis.Client
	k      keys.Lock
	mode   string // "S" on the cluster, "P" elsewhere
	events bool   // see tcase.events
	vars   map[string]string
	t0, t1 time.Time // local clock around the current script call
	before map[string]snap
}

var placeholder = regexp.MustCompile(`\$(lock|fence|qi|q|wake|mode|now|ev|grant)([+-]\d+)?|\$\{(\w+)\}`)

// expand replaces $lock, $fence, $q, $qi, $wake (the lock's keys and
// channel), $mode ("S" on the cluster, else "P"), $now[+-N] (local time in
// ms, plus or minus N) and ${var} (a value captured by an earlier step).
func (e *env) expand(s string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		if sub[3] != "" {
			v, ok := e.vars[sub[3]]
			if !ok {
				e.t.Fatalf("no captured value %q", sub[3])
			}
			return v
		}
		switch sub[1] {
		case "wake":
			return e.k.Wake
		case "mode":
			return e.mode
		case "now":
		default:
			return e.key(sub[1])
		}
		n := time.Now().UnixMilli()
		if sub[2] != "" {
			d, _ := strconv.ParseInt(sub[2], 10, 64)
			n += d
		}
		return strconv.FormatInt(n, 10)
	})
}

func (e *env) key(name string) string {
	switch name {
	case "lock":
		return e.k.Lock
	case "fence":
		return e.k.Fence
	case "q":
		return e.k.Queue
	case "qi":
		return e.k.QueueInfo
	case "ev":
		return e.k.Events
	case "grant":
		return e.k.Grant
	}
	e.t.Fatalf("unknown key name %q", name)
	return ""
}

// keysFor returns the KEYS of script s for the lock.
func (e *env) keysFor(s *lua.Script) []string {
	switch s {
	case lua.Refresh:
		return []string{e.k.Lock}
	case lua.Inspect:
		return []string{e.k.Lock, e.k.Fence, e.k.Queue}
	}
	if e.events {
		return []string{e.k.Lock, e.k.Fence, e.k.Queue, e.k.QueueInfo, e.k.Events, e.k.Grant}
	}
	return []string{e.k.Lock, e.k.Fence, e.k.Queue, e.k.QueueInfo}
}

func modeFor(s *redistest.Server) string {
	if s.Kind == redistest.Cluster {
		return "S"
	}
	return "P"
}

// runTable runs every case on every server; script is the default script of
// the steps.
func runTable(t *testing.T, script *lua.Script, cases []tcase) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
	}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := s.NewClient(t)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { runCase(t, s, c, script, tc) })
		}
	})
}

// newEnv returns the context of a case on server s, with keys of a fresh
// prefix.
func newEnv(t *testing.T, s *redistest.Server, c rueidis.Client) *env {
	return &env{t: t, s: s, c: c, k: keys.ForLock(s.Prefix(t), "l"), mode: modeFor(s), vars: map[string]string{}}
}

// setup runs raw commands, split at spaces (two single quotes make an empty argument),
// with placeholders expanded.
func (e *env) setup(cmds []string) {
	e.t.Helper()
	for _, cmd := range cmds {
		args := strings.Fields(e.expand(cmd))
		for i, a := range args {
			if a == "''" {
				args[i] = "" // an empty argument
			}
		}
		if msg := e.s.Do(e.t, args...); msg.Error() != nil && !rueidis.IsRedisNil(msg.Error()) {
			e.t.Fatalf("setup %q: %v", args, msg.Error())
		}
	}
}

// call runs script sc with argv (expanded) on the lock's keys and returns
// the reply as fromResult does.
func (e *env) call(sc *lua.Script, argv []string) (got any, isErr bool) {
	e.t.Helper()
	args := make([]string, len(argv))
	for j, a := range argv {
		args[j] = e.expand(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.t0 = time.Now()
	res := sc.Exec(ctx, e.c, e.keysFor(sc), args)
	e.t1 = time.Now()
	return fromResult(e.t, res)
}

// checkUnchanged reports every key that changed since before.
func (e *env) checkUnchanged(before map[string]snap) {
	e.t.Helper()
	after := e.snapshot()
	for _, name := range keyNames {
		if err := unchanged(before[name], after[name]); err != nil {
			e.t.Errorf("key %s (%s): %v\n\tbefore: %s\n\tafter:  %s", name, e.key(name), err, before[name], after[name])
		}
	}
}

func runCase(t *testing.T, s *redistest.Server, c rueidis.Client, def *lua.Script, tc tcase) {
	e := newEnv(t, s, c)
	e.events = tc.events
	e.setup(tc.setup)
	var sub *subscriber
	for _, st := range tc.steps {
		if sc := orScript(st.script, def); sc == lua.Acquire || sc == lua.Release || sc == lua.ForceRelease {
			sub = subscribe(t, e)
			break
		}
	}
	for i, st := range tc.steps {
		sc := orScript(st.script, def)
		where := fmt.Sprintf("step %d (%s)", i+1, sc.Name())
		if st.advance > 0 {
			if s.Mini != nil {
				s.FastForward(st.advance)
			} else {
				time.Sleep(st.advance)
			}
		}
		e.before = e.snapshot()
		argv := make([]string, len(st.argv))
		for j, a := range st.argv {
			argv[j] = e.expand(a)
		}
		got, isErr := e.call(sc, st.argv)
		if err := match(e, st.reply, got); err != nil {
			t.Errorf("%s: ARGV %q:\n\treply: %v\n\tgot:   %s", where, argv, err, show(got))
		}
		if isErr && len(st.state) > 0 {
			t.Fatalf("%s: bad table: an error reply must leave every key unchanged, so it lists no state", where)
		}
		after := e.snapshot()
		for _, name := range keyNames {
			var err error
			if w, ok := st.state[name]; ok {
				err = w.check(e, after[name])
			} else {
				err = unchanged(e.before[name], after[name])
			}
			if err != nil {
				t.Errorf("%s: ARGV %q: key %s (%s):\n\t%v\n\tbefore: %s\n\tafter:  %s", where, argv, name, e.key(name), err, e.before[name], after[name])
			}
		}
		for name := range st.state {
			if !contains(keyNames, name) {
				t.Fatalf("%s: bad table: unknown key name %q", where, name)
			}
		}
		if sub != nil {
			msgs := sub.flush(t, e, i)
			// A notice is "<holder> <token> <ttl_ms>", the token and ttl
			// being those of the grant the reply reports.
			tok, ttl := grantOf(sc, got)
			want := make([]string, len(st.pub))
			for j, p := range st.pub {
				want[j] = e.expand(p) + " " + tok + " " + ttl
			}
			if strings.Join(msgs, "\n") != strings.Join(want, "\n") || len(msgs) != len(want) {
				t.Errorf("%s: announcements on %s: got %q, want %q", where, e.k.Wake, msgs, want)
			}
		}
	}
}

// grantOf returns the token and ttl of the hand-off a reply of acquire.lua
// ({0, token, ttl, at, holder}), release.lua ({status, holder, token, ttl})
// or force_release.lua ({status, holder, token, fence, next, next_ttl}) reports.
func grantOf(sc *lua.Script, got any) (tok, ttl string) {
	arr, ok := got.([]any)
	if !ok {
		return "?", "?"
	}
	if sc == lua.Acquire && len(arr) == 5 {
		return fmt.Sprint(arr[1]), fmt.Sprint(arr[2])
	}
	if sc == lua.Release && len(arr) == 4 {
		return fmt.Sprint(arr[2]), fmt.Sprint(arr[3])
	}
	if sc == lua.ForceRelease && len(arr) == 6 {
		return fmt.Sprint(arr[3]), fmt.Sprint(arr[5])
	}
	return "?", "?"
}

func orScript(s, def *lua.Script) *lua.Script {
	if s != nil {
		return s
	}
	return def
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fromResult converts a script reply to nil, int64, string, []any or error
// (an error reply; reported with isErr).
func fromResult(t *testing.T, res rueidis.RedisResult) (v any, isErr bool) {
	t.Helper()
	if err := res.NonRedisError(); err != nil {
		t.Fatalf("script call failed: %v", err)
	}
	if err := res.Error(); err != nil && !rueidis.IsRedisNil(err) {
		return err, true
	}
	msg, _ := res.ToMessage()
	return fromMsg(msg), false
}

func fromMsg(m rueidis.RedisMessage) any {
	switch {
	case m.IsNil():
		return nil
	case m.IsInt64():
		v, _ := m.AsInt64()
		return v
	case m.IsString():
		v, _ := m.ToString()
		return v
	case m.IsArray():
		arr, _ := m.ToArray()
		out := make([]any, len(arr))
		for i, x := range arr {
			out[i] = fromMsg(x)
		}
		return out
	}
	return fmt.Sprintf("<unexpected reply %s>", m.String())
}

func show(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = show(x)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case error:
		return "error " + strconv.Quote(v.Error())
	}
	return fmt.Sprint(v)
}

// --- matchers ---

// matcher checks one value of a reply or of a key.
type matcher func(e *env, got any) error

// match compares got with want (see step.reply).
func match(e *env, want, got any) error {
	switch w := want.(type) {
	case matcher:
		return w(e, got)
	case nil:
		if got != nil {
			return fmt.Errorf("want nil")
		}
		return nil
	case int:
		if g, ok := got.(int64); !ok || g != int64(w) {
			return fmt.Errorf("want integer %d", w)
		}
		return nil
	case string:
		if g, ok := got.(string); !ok || g != e.expand(w) {
			return fmt.Errorf("want string %q", e.expand(w))
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("want an array of %d", len(w))
		}
		if len(g) != len(w) {
			return fmt.Errorf("want an array of %d, got %d elements", len(w), len(g))
		}
		for i := range w {
			if err := match(e, w[i], g[i]); err != nil {
				return fmt.Errorf("element %d: %v", i+1, err)
			}
		}
		return nil
	}
	return fmt.Errorf("bad table: expectation of type %T", want)
}

// arr is a shorthand for an expected array reply.
func arr(elems ...any) []any { return elems }

// num reads an integer reply or a decimal string.
func num(got any) (int64, error) {
	switch g := got.(type) {
	case int64:
		return g, nil
	case string:
		if !regexp.MustCompile(`^-?\d+$`).MatchString(g) {
			return 0, fmt.Errorf("%q is not a decimal integer", g)
		}
		return strconv.ParseInt(g, 10, 64)
	}
	return 0, fmt.Errorf("%s is not a number", show(got))
}

// between matches a number (integer or decimal string) in [lo, hi].
func between(lo, hi int64) matcher {
	return func(_ *env, got any) error {
		n, err := num(got)
		if err != nil {
			return err
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d not in [%d, %d]", n, lo, hi)
		}
		return nil
	}
}

// nowMs matches the server time in ms (plus d) at the script call.
func nowMs(d int64) matcher {
	return func(e *env, got any) error {
		lo := e.t0.Add(-clockSlack).UnixMilli() + d
		hi := e.t1.Add(clockSlack).UnixMilli() + d
		return between(lo, hi)(e, got)
	}
}

// nowToken matches a token minted from the server time: a decimal string
// of the time in µs at the script call.
func nowToken() matcher {
	return func(e *env, got any) error {
		s, ok := got.(string)
		if !ok {
			return fmt.Errorf("token %s is not a string", show(got))
		}
		if !regexp.MustCompile(`^[1-9]\d*$`).MatchString(s) {
			return fmt.Errorf("token %q is not canonical decimal", s)
		}
		lo := e.t0.Add(-clockSlack).UnixMicro()
		hi := e.t1.Add(clockSlack).UnixMicro()
		return between(lo, hi)(e, got)
	}
}

// anyVal matches every value.
func anyVal() matcher { return func(*env, any) error { return nil } }

// recent matches a time in ms within the 10 s before the script call.
func recent() matcher {
	return func(e *env, got any) error {
		return between(e.t0.Add(-10*time.Second).UnixMilli(), e.t1.Add(clockSlack).UnixMilli())(e, got)
	}
}

// capture stores got (as text) under name after inner matched.
func capture(name string, inner any) matcher {
	return func(e *env, got any) error {
		if err := match(e, inner, got); err != nil {
			return err
		}
		e.vars[name] = fmt.Sprint(got)
		return nil
	}
}

// same matches the value captured under name (compared as text).
func same(name string) matcher {
	return func(e *env, got any) error {
		v, ok := e.vars[name]
		if !ok {
			return fmt.Errorf("bad table: nothing captured as %q", name)
		}
		if fmt.Sprint(got) != v {
			return fmt.Errorf("want %s = %q", name, v)
		}
		return nil
	}
}

// rec matches a lock record "token|acquired_at_ms|holder".
func rec(tok, at any, holder string) matcher {
	return func(e *env, got any) error {
		s, ok := got.(string)
		if !ok {
			return fmt.Errorf("record %s is not a string", show(got))
		}
		parts := strings.SplitN(s, "|", 3)
		if len(parts) != 3 {
			return fmt.Errorf("record %q has not 3 fields", s)
		}
		if err := match(e, tok, parts[0]); err != nil {
			return fmt.Errorf("record %q: token: %v", s, err)
		}
		if err := match(e, at, parts[1]); err != nil {
			return fmt.Errorf("record %q: acquired at: %v", s, err)
		}
		if parts[2] != holder {
			return fmt.Errorf("record %q: holder is not %q", s, holder)
		}
		return nil
	}
}

// info matches a queue info value "alive_until_ms|ttl_ms".
func info(alive any, ttl string) matcher {
	return func(e *env, got any) error {
		s, ok := got.(string)
		if !ok {
			return fmt.Errorf("queue info %s is not a string", show(got))
		}
		a, b, ok := strings.Cut(s, "|")
		if !ok {
			return fmt.Errorf("queue info %q has no '|'", s)
		}
		if err := match(e, alive, a); err != nil {
			return fmt.Errorf("queue info %q: alive until: %v", s, err)
		}
		if b != ttl {
			return fmt.Errorf("queue info %q: ttl is not %s", s, ttl)
		}
		return nil
	}
}

// fkErr matches a fencekit error reply "FENCEKIT_<code> <detail>" (detail
// expanded).
func fkErr(code, detail string) matcher {
	return func(e *env, got any) error {
		err, ok := got.(error)
		if !ok {
			return fmt.Errorf("want error FENCEKIT_%s %s", code, e.expand(detail))
		}
		c, d, ok := scripterr.Parse(err)
		if !ok || c != code || d != e.expand(detail) {
			return fmt.Errorf("want error FENCEKIT_%s %s", code, e.expand(detail))
		}
		return nil
	}
}

// wrongType matches the WRONGTYPE error of a command run by the script.
// Real servers reply "WRONGTYPE ... script: ..."; miniredis wraps every
// error raised by redis.call in "ERR Error compiling script (new
// function): <string>:N: WRONGTYPE ..." (a miniredis deviation), so there
// the code is only required somewhere in the message.
func wrongType() matcher {
	return func(e *env, got any) error {
		err, ok := got.(error)
		if !ok {
			return errors.New("want a WRONGTYPE error")
		}
		msg := err.Error()
		if e.s.Kind == redistest.Mini {
			if !strings.Contains(msg, "WRONGTYPE Operation against a key holding the wrong kind of value") {
				return errors.New("want a WRONGTYPE error")
			}
			return nil
		}
		if !strings.HasPrefix(msg, "WRONGTYPE ") {
			return errors.New("want an error starting with WRONGTYPE")
		}
		if _, _, ok := scripterr.Parse(err); ok {
			return errors.New("a WRONGTYPE error parsed as a fencekit error")
		}
		return nil
	}
}

// --- key state ---

// snap is the state of one key.
type snap struct {
	typ  string // "none", "string", "hash", "zset", "list", "set"
	str  string
	hash map[string]string
	zset []zentry
	list []string            // list or sorted set members
	xs   []map[string]string // stream entries' fields, in order
	pttl int64
}

type zentry struct {
	member string
	score  float64
}

func (s snap) String() string {
	var b strings.Builder
	b.WriteString(s.typ)
	switch s.typ {
	case "none":
		return b.String()
	case "string":
		fmt.Fprintf(&b, " %q", s.str)
	case "hash":
		fields := make([]string, 0, len(s.hash))
		for f := range s.hash {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		for _, f := range fields {
			fmt.Fprintf(&b, " %q=%q", f, s.hash[f])
		}
	case "zset":
		for _, z := range s.zset {
			fmt.Fprintf(&b, " %q:%.0f", z.member, z.score)
		}
	case "stream":
		for _, x := range s.xs {
			fields := make([]string, 0, len(x))
			for f, v := range x {
				fields = append(fields, fmt.Sprintf("%s=%q", f, v))
			}
			sort.Strings(fields)
			fmt.Fprintf(&b, " {%s}", strings.Join(fields, " "))
		}
	default:
		fmt.Fprintf(&b, " %q", s.list)
	}
	fmt.Fprintf(&b, " pttl=%d", s.pttl)
	return b.String()
}

func (e *env) snapshot() map[string]snap {
	out := make(map[string]snap, len(keyNames))
	for _, name := range keyNames {
		out[name] = e.snapKey(e.key(name))
	}
	return out
}

func (e *env) snapKey(key string) snap {
	t := e.t
	do := func(args ...string) *rueidis.RedisMessage {
		m := e.s.Do(t, args...)
		if err := m.Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.Fatalf("%q: %v", args, err)
		}
		return &m
	}
	typ, _ := do("TYPE", key).ToString()
	s := snap{typ: typ}
	switch typ {
	case "none":
		return s
	case "string":
		s.str, _ = do("GET", key).ToString()
	case "hash":
		s.hash, _ = do("HGETALL", key).AsStrMap()
	case "zset":
		zs, err := do("ZRANGE", key, "0", "-1", "WITHSCORES").AsZScores()
		if err != nil {
			t.Fatalf("ZRANGE %s: %v", key, err)
		}
		for _, z := range zs {
			s.zset = append(s.zset, zentry{z.Member, z.Score})
		}
	case "list":
		s.list, _ = do("LRANGE", key, "0", "-1").AsStrSlice()
	case "set":
		s.list, _ = do("SMEMBERS", key).AsStrSlice()
		sort.Strings(s.list)
	case "stream":
		xs, err := do("XRANGE", key, "-", "+").AsXRange()
		if err != nil {
			t.Fatalf("XRANGE %s: %v", key, err)
		}
		for _, x := range xs {
			s.xs = append(s.xs, x.FieldValues)
		}
	default:
		t.Fatalf("key %s has type %s", key, typ)
	}
	s.pttl, _ = do("PTTL", key).AsInt64()
	return s
}

// unchanged compares two snapshots of a key. A TTL may only have run down a
// little (real servers count it down while the test runs).
func unchanged(before, after snap) error {
	b, a := before, after
	b.pttl, a.pttl = 0, 0
	if b.String() != a.String() {
		return errors.New("changed")
	}
	switch {
	case before.pttl < 0 && after.pttl != before.pttl,
		before.pttl >= 0 && (after.pttl > before.pttl || after.pttl < before.pttl-2000):
		return fmt.Errorf("PTTL changed from %d to %d", before.pttl, after.pttl)
	}
	return nil
}

// kw is the expected state of one key after a script call.
type kw struct {
	typ    string           // "none", "string", "hash" or "zset"
	val    any              // string: matcher of the value
	fields map[string]any   // hash: exact set of fields, value matchers
	zset   []any            // zset: member, score matcher (nil: any), ... in order
	xs     []map[string]any // stream: each entry's exact fields, value matchers
	ttl    any              // PTTL matcher
}

func gone() kw { return kw{typ: "none"} }

// streamKey expects a stream of exactly the entries xs (see lockEv).
func streamKey(ttl any, xs ...map[string]any) kw { return kw{typ: "stream", xs: xs, ttl: ttl} }

// lockEv is the expected entry of a lock event (lib_lock.lua): type typ,
// "v" "0", token tok and holder holder (expanded), plus the pairs in kv.
func lockEv(typ string, tok any, holder string, kv ...any) map[string]any {
	x := map[string]any{"type": typ, "v": "0", "tok": tok, "holder": holder}
	for i := 0; i+1 < len(kv); i += 2 {
		x[kv[i].(string)] = kv[i+1]
	}
	return x
}
func strKey(val, ttl any) kw        { return kw{typ: "string", val: val, ttl: ttl} }
func zsetKey(ttl any, ms ...any) kw { return kw{typ: "zset", zset: ms, ttl: ttl} }

func hashKey(ttl any, kv ...any) kw {
	w := kw{typ: "hash", fields: map[string]any{}, ttl: ttl}
	for i := 0; i+1 < len(kv); i += 2 {
		w.fields[kv[i].(string)] = kv[i+1]
	}
	return w
}

// noTTL is the PTTL of a key without expiry.
const noTTL = -1

// ttlIn matches a PTTL of at most ms that ran down by at most 2 s.
func ttlIn(ms int64) matcher { return between(ms-2000, ms) }

func (w kw) check(e *env, got snap) error {
	if got.typ != w.typ && w.typ != "*" {
		return fmt.Errorf("type %s, want %s", got.typ, w.typ)
	}
	switch w.typ {
	case "*":
		return nil
	case "none":
		return nil
	case "string":
		if err := match(e, w.val, got.str); err != nil {
			return err
		}
	case "hash":
		if len(got.hash) != len(w.fields) {
			return fmt.Errorf("%d fields, want %d", len(got.hash), len(w.fields))
		}
		for f, m := range w.fields {
			v, ok := got.hash[e.expand(f)]
			if !ok {
				return fmt.Errorf("no field %q", e.expand(f))
			}
			if err := match(e, m, v); err != nil {
				return fmt.Errorf("field %q: %v", f, err)
			}
		}
	case "zset":
		if len(got.zset)*2 != len(w.zset) {
			return fmt.Errorf("%d members, want %d", len(got.zset), len(w.zset)/2)
		}
		for i, z := range got.zset {
			if m := e.expand(w.zset[2*i].(string)); z.member != m {
				return fmt.Errorf("member %d is %q, want %q", i+1, z.member, m)
			}
			if sm := w.zset[2*i+1]; sm != nil {
				if z.score != math.Trunc(z.score) {
					return fmt.Errorf("score of %q is %v, not an integer", z.member, z.score)
				}
				if err := match(e, sm, int64(z.score)); err != nil {
					return fmt.Errorf("score of %q: %v", z.member, err)
				}
			}
		}
	case "stream":
		if len(got.xs) != len(w.xs) {
			return fmt.Errorf("%d entries, want %d", len(got.xs), len(w.xs))
		}
		for i, x := range w.xs {
			if len(got.xs[i]) != len(x) {
				return fmt.Errorf("entry %d has %d fields, want %d", i+1, len(got.xs[i]), len(x))
			}
			for f, m := range x {
				v, ok := got.xs[i][f]
				if !ok {
					return fmt.Errorf("entry %d: no field %q", i+1, f)
				}
				if err := match(e, m, v); err != nil {
					return fmt.Errorf("entry %d: field %q: %v", i+1, f, err)
				}
			}
		}
	default:
		return fmt.Errorf("bad table: type %s", w.typ)
	}
	if err := match(e, w.ttl, got.pttl); err != nil {
		return fmt.Errorf("PTTL: %v", err)
	}
	return nil
}

// --- announcements ---

// subscriber collects the messages of the lock's wake channel, subscribed
// with SSUBSCRIBE on the cluster and SUBSCRIBE elsewhere.
type subscriber struct {
	mu     sync.Mutex
	msgs   []string
	notify chan struct{}
}

func subscribe(t *testing.T, e *env) *subscriber {
	t.Helper()
	c := e.s.NewClient(t)
	cmd := c.B().Subscribe().Channel(e.k.Wake).Build()
	if e.mode == "S" {
		cmd = c.B().Ssubscribe().Channel(e.k.Wake).Build()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(ps rueidis.PubSubSubscription) {
		if ps.Kind == "subscribe" || ps.Kind == "ssubscribe" {
			once.Do(func() { close(ready) })
		}
	})
	sub := &subscriber{notify: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- c.Receive(hooked, cmd, func(m rueidis.PubSubMessage) {
			sub.mu.Lock()
			sub.msgs = append(sub.msgs, m.Message)
			sub.mu.Unlock()
			select {
			case sub.notify <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("subscribe to %s: %v", e.k.Wake, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("subscribe to %s: no confirmation", e.k.Wake)
	}
	return sub
}

// waitFor waits until msg has arrived and returns every message so far.
func (sub *subscriber) waitFor(t *testing.T, msg string) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		sub.mu.Lock()
		msgs := append([]string(nil), sub.msgs...)
		sub.mu.Unlock()
		if contains(msgs, msg) {
			return msgs
		}
		select {
		case <-sub.notify:
		case <-deadline:
			t.Fatalf("message %q not received (got %q)", msg, msgs)
		}
	}
}

// flush publishes a sentinel behind the messages of step i and returns the
// messages that came before it. A channel's messages arrive in order (on
// the cluster, SPUBLISH goes to the one shard owning the channel's slot).
func (sub *subscriber) flush(t *testing.T, e *env, i int) []string {
	t.Helper()
	sentinel := fmt.Sprintf("~sentinel %d~", i)
	cmd := "PUBLISH"
	if e.mode == "S" {
		cmd = "SPUBLISH"
	}
	if m := e.s.Do(t, cmd, e.k.Wake, sentinel); m.Error() != nil {
		err := m.Error()
		t.Fatalf("%s: %v", cmd, err)
	}
	deadline := time.After(10 * time.Second)
	for {
		sub.mu.Lock()
		for j, m := range sub.msgs {
			if m == sentinel {
				out := append([]string(nil), sub.msgs[:j]...)
				sub.msgs = sub.msgs[j+1:]
				sub.mu.Unlock()
				return out
			}
		}
		sub.mu.Unlock()
		select {
		case <-sub.notify:
		case <-deadline:
			t.Fatalf("sentinel %q not received on %s", sentinel, e.k.Wake)
		}
	}
}
