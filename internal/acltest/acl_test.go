package acltest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/memory"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
	"github.com/fencekit/fencekit/telemetry"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const (
	aclDoc   = "../../docs/ACL.md"
	user     = "fencekit-executor"
	password = "acl-test-password"
)

// newRestricted starts a private redis-server, creates the executor user
// from docs/ACL.md (the first line verbatim but for the password, then the
// version-specific lines whose commands the server has: see
// redistest.ApplyACL) and returns the server and a client connected as
// that user. rueidis keeps its defaults (client-side caching on, CLIENT
// SETINFO on connect), as an executor's client would.
func newRestricted(t *testing.T) (*redistest.Server, rueidis.Client) {
	t.Helper()
	s := redistest.NewPrivateRedis(t)
	return s, restrictedClient(t, s, s.ClientOptionAs(user, password))
}

// restrictedClient creates the executor user from docs/ACL.md on s (the
// lines that apply to the server, see redistest.ApplyACL) and returns a
// client with opt, which should name that user.
func restrictedClient(t *testing.T, s *redistest.Server, opt rueidis.ClientOption) rueidis.Client {
	t.Helper()
	s.ApplyACL(t, aclDoc, user, password)
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(c.Close)
	s.ResetACLLog(t)
	return c
}

// TestExecutorACL runs every package's representative operations as the
// restricted user: all succeed, and ACL LOG stays empty (no command was
// refused, including ones fencekit tolerates losing, such as a hand-off
// notice or a probe).
func TestExecutorACL(t *testing.T) {
	s, c := newRestricted(t)
	runSuite(t, c, func() []redistest.ACLLogEntry { return s.ACLLog(t) }, telemetry.Options{})
}

// runSuite runs every package's representative operations through c, with
// tel for every store and locker, and fails the test when one fails or
// aclLog (nil: not checked) returns entries afterwards.
func runSuite(t *testing.T, c rueidis.Client, aclLog func() []redistest.ACLLogEntry, tel telemetry.Options) {
	t.Helper()
	if aclLog == nil {
		aclLog = func() []redistest.ACLLogEntry { return nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v (ACL LOG: %v)", what, err, aclLog())
		}
	}

	// lock: try, refresh, a waiter in another Locker handed the lock on
	// release (pub/sub notice), release.
	a, err := lock.New(c, lock.Options{Owner: "executor-a", TTL: 5 * time.Second, Telemetry: tel})
	must("lock.New", err)
	defer a.Close()
	b, err := lock.New(c, lock.Options{Owner: "executor-b", TTL: 5 * time.Second, RetryInterval: 2 * time.Second, Telemetry: tel})
	must("lock.New", err)
	defer b.Close()
	la, err := a.TryAcquire(ctx, "session-1")
	must("TryAcquire", err)
	must("Refresh", la.Refresh(ctx))
	got := make(chan *lock.Lock, 1)
	errc := make(chan error, 1)
	go func() {
		lk, err := b.Acquire(ctx, "session-1")
		if err != nil {
			errc <- err
			return
		}
		got <- lk
	}()
	// Wait until b is queued, then hand the lock over.
	for {
		in, err := a.Inspect(ctx, "session-1")
		must("Inspect", err)
		if in.Waiters > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	must("Release", la.Release(ctx))
	var lb *lock.Lock
	select {
	case lb = <-got:
	case err := <-errc:
		must("Acquire (hand-off)", err)
	}
	if !lb.Token().Newer(la.Token()) {
		t.Fatalf("hand-off token %s not newer than %s", lb.Token(), la.Token())
	}
	tok := lb.Token()

	// MinReplicas issues WAIT; with no replica it reports ErrNotReplicated,
	// not a permission error.
	durable, err := lock.New(c, lock.Options{Owner: "executor-w", MinReplicas: 1, ReplicaTimeout: 10 * time.Millisecond, Telemetry: tel})
	must("lock.New", err)
	defer durable.Close()
	if _, err := durable.TryAcquire(ctx, "replicated"); !errors.Is(err, lock.ErrNotReplicated) {
		t.Fatalf("MinReplicas TryAcquire: %v, want ErrNotReplicated", err)
	}

	// statestore.
	store, err := statestore.New(c, statestore.Options{Telemetry: tel, EventLog: true})
	must("statestore.New", err)
	_, err = store.Create(ctx, "session-1", tok, statestore.State{AgentType: "coder", Status: statestore.StatusPending, Data: json.RawMessage(`{"items":[]}`)})
	must("Create", err)
	_, err = store.Save(ctx, "session-1", tok, statestore.State{AgentType: "coder", Status: statestore.StatusPending, Step: 1, Data: json.RawMessage(`{"items":[0]}`)})
	must("Save", err)
	cas, err := store.CompareAndSetStatus(ctx, "session-1", tok, []statestore.Status{statestore.StatusPending}, statestore.StatusRunning)
	must("CompareAndSetStatus", err)
	if !cas.OK {
		t.Fatalf("CompareAndSetStatus: %+v", cas)
	}
	_, err = store.AppendMessages(ctx, "session-1", tok, json.RawMessage(`{"m":1}`), json.RawMessage(`{"m":2}`))
	must("AppendMessages", err)
	page, err := store.Messages(ctx, "session-1", "", 10)
	must("Messages", err)
	if len(page.Messages) != 2 {
		t.Fatalf("Messages: %d", len(page.Messages))
	}
	st, err := store.Load(ctx, "session-1")
	must("Load", err)
	if st.Status != statestore.StatusRunning || st.Fence != tok {
		t.Fatalf("Load: %+v", st)
	}
	evs, _, err := store.Events(ctx, "session-1", "", 100)
	must("Events", err)
	if len(evs) == 0 {
		t.Fatal("Events: none")
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	for ev, err := range store.Watch(wctx, "session-1", "") {
		must("Watch", err)
		if ev.Seq != "" {
			break
		}
	}
	wcancel()
	_, err = store.IncrementResumeCount(ctx, "session-1", tok)
	must("IncrementResumeCount", err)

	// staging.
	stager := staging.New(store)
	_, err = stager.Stage(ctx, "session-1", 1, tok, staging.Change{ToolCallID: "call-1", Patches: json.RawMessage(`[{"op":"add","path":"/items/-","value":1}]`)})
	must("Stage", err)
	_, err = stager.List(ctx, "session-1")
	must("List", err)
	_, err = stager.Promote(ctx, "session-1", 1, tok)
	must("Promote", err)
	_, err = stager.Stage(ctx, "session-1", 2, tok, staging.Change{ToolCallID: "call-2", Merge: json.RawMessage(`{"x":1}`)})
	must("Stage", err)
	_, err = stager.Discard(ctx, "session-1", 2, tok)
	must("Discard", err)

	// checkpoint.
	cps := checkpoint.New(store)
	cpid, err := cps.Save(ctx, "session-1", tok, checkpoint.Checkpoint{Step: 1, State: json.RawMessage(`{"items":[0,1]}`), MessageCount: 2})
	must("checkpoint Save", err)
	latest, err := cps.Latest(ctx, "session-1")
	must("Latest", err)
	if latest.ID != cpid {
		t.Fatalf("Latest %s, want %s", latest.ID, cpid)
	}
	_, err = cps.List(ctx, "session-1", "", 10)
	must("checkpoint List", err)
	_, err = cps.Restore(ctx, "session-1", tok, cpid)
	must("Restore", err)
	_, err = cps.Prune(ctx, "session-1", tok, 1)
	must("Prune", err)

	// stream: append, read, consumer group, end, blocking follow.
	streams := stream.New(store)
	_, err = streams.Append(ctx, "session-1", tok, []byte("hello"))
	must("Append", err)
	_, err = streams.Group(ctx, "session-1", "ui")
	must("Group", err)
	chunks, err := streams.ReadGroup(ctx, "session-1", "ui", "c1", 10, 0)
	must("ReadGroup", err)
	if len(chunks) != 1 {
		t.Fatalf("ReadGroup: %d chunks", len(chunks))
	}
	_, err = streams.Pending(ctx, "session-1", "ui")
	must("Pending", err)
	_, err = streams.Claim(ctx, "session-1", "ui", "c2", 0, stream.Seq{}, 10)
	must("Claim", err)
	_, err = streams.Ack(ctx, "session-1", "ui", chunks[0].Seq)
	must("Ack", err)
	_, err = streams.End(ctx, "session-1", tok)
	must("End", err)
	p, err := streams.Read(ctx, "session-1", stream.Seq{}, 10)
	must("Read", err)
	if len(p.Chunks) != 1 || p.Status != stream.StatusEnded {
		t.Fatalf("Read: %+v", p)
	}
	f := streams.Follow("session-1", stream.Seq{})
	n := 0
	for f.Next(ctx) {
		n++
	}
	must("Follow", f.Err())
	if n != 1 {
		t.Fatalf("Follow: %d chunks", n)
	}

	// memory, fenced by the lock of its scope root.
	mem, err := memory.New(c, memory.Options{Dim: 3, Telemetry: tel})
	must("memory.New", err)
	lockName, err := mem.LockName("user/42")
	must("LockName", err)
	ml, err := a.TryAcquire(ctx, lockName)
	must("TryAcquire (memory)", err)
	must("Put", mem.Put(ctx, []memory.Record{
		{ID: "tea", Scope: "user/42", Text: "prefers green tea", Embedding: []float32{1, 0.1, 0}},
		{ID: "go", Scope: "user/42/p", Text: "writes Go", Embedding: []float32{0, 1, 0}},
	}, memory.WithToken(ml.Token())))
	res, err := mem.Search(ctx, []float32{1, 0, 0}, memory.SearchOptions{K: 1, Scope: "user/42", IncludeDescendants: true})
	must("Search", err)
	if len(res) != 1 || res[0].ID != "tea" {
		t.Fatalf("Search: %+v", res)
	}
	_, err = mem.Delete(ctx, "user/42", []string{"go"}, memory.WithToken(ml.Token()))
	must("memory Delete", err)
	must("Release (memory)", ml.Release(ctx))

	_, err = store.Delete(ctx, "session-1", tok)
	must("Delete", err)
	must("Release", lb.Release(ctx))

	if log := aclLog(); len(log) > 0 {
		t.Errorf("the ACL refused %d command(s) during the suite; add them to docs/ACL.md:\n%v", len(log), log)
	}
}

// TestOutsideTheACL checks that the restricted user cannot do what the ACL
// leaves out: dangerous commands, keys and channels outside the prefix.
// Each refusal is checked by the ACL LOG entry it leaves (the object
// refused and the context) and by its error code, never by the server's
// wording: a command sent directly is refused with NOPERM on every server;
// one called by a script fails the script with an ERR reply (Redis 7.0
// says "The user executing the script can't run this command", Redis >=
// 7.2 and Valkey "ACL failure in script"), and rueidis drops the "ERR "
// code from the text, so only the ACL LOG tells that refusal apart.
func TestOutsideTheACL(t *testing.T) {
	s, c := newRestricted(t)
	ctx := context.Background()
	for _, tc := range []struct {
		cmd     rueidis.Completed
		context string // of the ACL LOG entry: "toplevel" or "lua"
		object  string // of the ACL LOG entry: the command, key or channel
	}{
		{c.B().Flushall().Build(), "toplevel", "flushall"},
		{c.B().ConfigSet().ParameterValue().ParameterValue("maxmemory-policy", "allkeys-lru").Build(), "toplevel", "config|set"},
		{c.B().Keys().Pattern("*").Build(), "toplevel", "keys"},
		{c.B().Get().Key("other:{x}:lock").Build(), "toplevel", "other:{x}:lock"},
		{c.B().Set().Key("other:{x}:lock").Value("1").Build(), "toplevel", "other:{x}:lock"},
		{c.B().Publish().Channel("other:{x}:wake").Message("m").Build(), "toplevel", "other:{x}:wake"},
		{c.B().Eval().Script("return redis.call('SET', KEYS[1], '1')").Numkeys(1).Key("other:{x}:k").Build(), "toplevel", "other:{x}:k"},
		{c.B().Eval().Script("return redis.call('SET', 'other:{x}:k', '1')").Numkeys(0).Build(), "lua", "other:{x}:k"},
		{c.B().Eval().Script("return redis.call('FLUSHALL')").Numkeys(0).Build(), "lua", "flushall"},
	} {
		name := strings.Join(tc.cmd.Commands(), " ")
		s.ResetACLLog(t)
		err := c.Do(ctx, tc.cmd).Error()
		if !scripterr.IsRedis(err) {
			t.Errorf("%s: %v, want an error reply", name, err)
		} else if code := errCode(err); tc.context == "toplevel" && code != "NOPERM" {
			t.Errorf("%s: %v (code %q), want NOPERM", name, err, code)
		}
		log := s.ACLLog(t)
		if len(log) != 1 || log[0].Context != tc.context || log[0].Object != tc.object || log[0].Username != user {
			t.Errorf("%s: ACL LOG %v, want one entry for %s (%s, user %s)", name, log, tc.object, tc.context, user)
		}
	}
	// SET on a prefixed key is allowed (the scripts need it): the ACL
	// protects other applications' keys, fencing protects fencekit's own.
	set := c.B().Eval().Script("return redis.call('SET', KEYS[1], ARGV[1])").Numkeys(1).Key("fencekit:{x}:lock").Arg("forged").Build()
	if err := c.Do(ctx, set).Error(); err != nil {
		t.Errorf("SET inside the prefix: %v", err)
	}
}

// errCode is the error code of a Redis error reply (its first word), ""
// for nil and for errors that are not replies.
func errCode(err error) string {
	rerr, ok := rueidis.IsRedisErr(err)
	if !ok || rueidis.IsRedisNil(err) {
		return ""
	}
	code, _, _ := strings.Cut(rerr.Error(), " ")
	return code
}
