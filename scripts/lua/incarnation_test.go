package lua_test

// The outcomes the session incarnation added to the session scripts (see
// lib_fence.lua), one row each, on miniredis, redis-server and the
// cluster: refusals leave every key of the session unchanged.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
)

func TestIncarnationOutcomes(t *testing.T) {
	const (
		tok = "5"
		inc = "1700000000000123"
	)
	type row struct {
		name   string
		setup  [][]string // raw commands; "$state" etc. name the session's keys
		script *lua.Script
		short  bool     // KEYS = state hash and the script's own keys (reads)
		keys   []string // for short: key names
		args   []string
		err    string // expected error reply prefix; "" for success
		check  func(t *testing.T, s *redistest.Server, k keys.Session, reply string)
	}
	state := [][]string{
		{"HSET", "$state", "version", "3", "fence", tok, "inc", inc, "msg_epoch", "1", "cp_seq", "1", "created_at", "1700000000000", "data", "{}"},
		{"RPUSH", "$msgs", "a", "b"},
		{"ZADD", "$cps", "1", "cpv1-s-s0-t1-abcdef"},
		{"HSET", "$cpd", "cpv1-s-s0-t1-abcdef", "cp1 1 1 5 0 0 0 0\n"},
		{"HSET", "$stage", "1|t", `{"token":5,"ts":1,"merge":{}}`},
		{"XADD", "$events", "1700000000007-3", "type", "created", "v", "1", "tok", tok},
		{"XADD", "$out", "1700000000009-4", "c", "x"},
		{"HSET", "$outmeta", "origin", "1700000000005-1", "fence", tok, "status", "running"},
	}
	fenced := func(args ...string) []string { return append([]string{tok, "R", "0"}, args...) }
	rows := []row{
		{name: "save: expected version of another incarnation", setup: state, script: lua.StateSave,
			args: fenced("3", "a", "running", "0", "{}", "", "", "1700000000000124"), err: "FENCEKIT_REPLACED " + inc},
		{name: "save: expected version of this incarnation, another version", setup: state, script: lua.StateSave,
			args: fenced("2", "a", "running", "0", "{}", "", "", inc), err: "FENCEKIT_CONFLICT 3"},
		{name: "commit: another incarnation", setup: state, script: lua.StageCommit,
			args: fenced("3", "1700000000000124", "{}", "0", "", "", "", "", "", "1|t"), err: "FENCEKIT_REPLACED " + inc},
		{name: "commit: created_at is no longer the guard", setup: state, script: lua.StageCommit,
			args: fenced("3", "1700000000000", "{}", "0", "", "", "", "", "", "1|t"), err: "FENCEKIT_REPLACED " + inc},
		{name: "commit: corrupt incarnation", setup: append(state, []string{"HSET", "$state", "inc", "x"}), script: lua.StageCommit,
			args: fenced("3", "x", "{}", "0", "", "", "", "", "", "1|t"), err: "FENCEKIT_CORRUPT"},
		{name: "messages: cursor of another incarnation", setup: state, script: lua.MsgsPage, short: true,
			keys: []string{"state", "msgs"}, args: []string{"1700000000000124", "1", "0", "10"}, err: "FENCEKIT_REPLACED " + inc},
		{name: "messages: cursor of this incarnation, another epoch", setup: state, script: lua.MsgsPage, short: true,
			keys: []string{"state", "msgs"}, args: []string{inc, "0", "0", "10"}, err: "FENCEKIT_CURSOR 1"},
		{name: "messages: first page names the incarnation", setup: state, script: lua.MsgsPage, short: true,
			keys: []string{"state", "msgs"}, args: []string{"", "", "0", "10"},
			check: func(t *testing.T, _ *redistest.Server, _ keys.Session, reply string) {
				if !strings.HasPrefix(reply, "["+inc+" 1 2 ") {
					t.Errorf("reply %s", reply)
				}
			}},
		{name: "checkpoints: cursor of another incarnation", setup: state, script: lua.CpList, short: true,
			keys: []string{"state", "cps", "cpd"}, args: []string{"1", "cpv1-s-s0-t1-abcdef", "10", "7"}, err: "FENCEKIT_REPLACED " + inc},
		{name: "stream: position below the origin", setup: state, script: lua.StreamRead, short: true,
			keys: []string{"out", "outmeta"}, args: []string{"(1700000000005-0", "10"}, err: "FENCEKIT_REPLACED stream 1700000000005-1"},
		{name: "stream: position at the origin", setup: state, script: lua.StreamRead, short: true,
			keys: []string{"out", "outmeta"}, args: []string{"(1700000000005-1", "10"}},
		{name: "create: corrupt inc key", setup: [][]string{{"HSET", "$inc", "inc", "-1", "floor", "0"}}, script: lua.StateSave,
			args: fenced("0", "a", "running", "0", "{}", "", "", ""), err: "FENCEKIT_CORRUPT"},
		{name: "delete: records incarnation and floor", setup: state, script: lua.StateDelete,
			args: []string{tok, "R", "60000"},
			check: func(t *testing.T, s *redistest.Server, k keys.Session, _ string) {
				snap := s.Snapshot(t, k.All()...)
				if len(snap) != 1 {
					t.Errorf("after delete: %v", snap)
				}
				m := s.Do(t, "HGET", k.Inc, "inc")
				if got, _ := m.ToString(); got != inc {
					t.Errorf("inc %q", got)
				}
				m = s.Do(t, "HGET", k.Inc, "floor")
				f, _ := m.ToString()
				if n, _ := strconv.ParseInt(f, 10, 64); n < 1700000000009 {
					t.Errorf("floor %q below the newest entry", f)
				}
				m = s.Do(t, "PTTL", k.Inc)
				if n, _ := m.AsInt64(); n <= 0 || n > 60000 {
					t.Errorf("PTTL %d", n)
				}
			}},
		{name: "create: above the inc key's incarnation and floor, consuming it", setup: [][]string{
			{"HSET", "$inc", "inc", "9000000000000000", "floor", "8000000000000"}}, script: lua.StateSave,
			args: fenced("0", "a", "running", "0", "{}", "", "", ""),
			check: func(t *testing.T, s *redistest.Server, k keys.Session, reply string) {
				if !strings.HasSuffix(reply, " 9000000000000001]") {
					t.Errorf("reply %s", reply)
				}
				m := s.Do(t, "EXISTS", k.Inc)
				if n, _ := m.AsInt64(); n != 0 {
					t.Error("the inc key is still there")
				}
				m = s.Do(t, "XRANGE", k.Events, "-", "+")
				es, _ := m.AsXRange()
				if len(es) != 1 || es[0].ID != "9000000000000-1" || es[0].FieldValues["inc"] != "9000000000000001" {
					t.Errorf("events %+v", es)
				}
			}},
	}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := s.NewClient(t)
		prefix := s.Prefix(t)
		for i, r := range rows {
			k := keys.ForSession(prefix, "s"+strconv.Itoa(i))
			named := map[string]string{"state": k.State, "msgs": k.Msgs, "stage": k.Stage, "cps": k.Cps, "cpd": k.Cpd,
				"events": k.Events, "out": k.Out, "outmeta": k.OutMeta, "inc": k.Inc}
			for _, cmd := range r.setup {
				args := make([]string, len(cmd))
				for j, a := range cmd {
					if v, ok := named[strings.TrimPrefix(a, "$")]; ok && strings.HasPrefix(a, "$") {
						a = v
					}
					args[j] = a
				}
				if m := s.Do(t, args...); m.Error() != nil {
					t.Fatalf("%s: setup %v: %v", r.name, args, m.Error())
				}
			}
			ks := []string{k.Lock, k.Fence, k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events, k.Out, k.OutMeta, k.Inc}
			if r.short {
				ks = nil
				for _, n := range r.keys {
					ks = append(ks, named[n])
				}
			}
			before := s.Snapshot(t, k.All()...)
			res := r.script.Exec(t.Context(), c, ks, r.args)
			if r.err != "" {
				if err := res.Error(); err == nil || !strings.HasPrefix(err.Error(), r.err) {
					t.Errorf("%s: got %v, want %s", r.name, err, r.err)
				}
				if after := s.Snapshot(t, k.All()...); !equal(before, after) {
					t.Errorf("%s: a refusal changed keys:\nbefore %v\nafter  %v", r.name, before, after)
				}
				continue
			}
			if err := res.Error(); err != nil {
				t.Errorf("%s: %v", r.name, err)
				continue
			}
			if r.check != nil {
				m, _ := res.ToMessage()
				r.check(t, s, k, fmt.Sprint(fromMsg(m)))
			}
		}
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
