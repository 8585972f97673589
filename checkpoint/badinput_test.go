package checkpoint_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

// TestBadInput: every bad argument gets a typed error and writes nothing;
// those that can be seen without the data are refused before anything is
// sent.
func TestBadInput(t *testing.T) {
	const maxDoc = 1024
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{MaxDocumentBytes: maxDoc})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{"a":1}`, 3)
		cp, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 1, MessageCount: 3})
		require.NoError(t, err)
		ghost := acquire(t, e.locker, "ghost") // a lock, but no session
		tok := lk.Token()

		type call func(context.Context) error
		save := func(id string, token fencing.Token, c checkpoint.Checkpoint) call {
			return func(ctx context.Context) error { _, err := e.cps.Save(ctx, id, token, c); return err }
		}
		restore := func(id string, token fencing.Token, cpid string) call {
			return func(ctx context.Context) error { _, err := e.cps.Restore(ctx, id, token, cpid); return err }
		}
		prune := func(id string, token fencing.Token, keep int) call {
			return func(ctx context.Context) error { _, err := e.cps.Prune(ctx, id, token, keep); return err }
		}
		get := func(id, cpid string) call {
			return func(ctx context.Context) error { _, err := e.cps.Get(ctx, id, cpid); return err }
		}
		list := func(id, cursor string, limit int) call {
			return func(ctx context.Context) error { _, err := e.cps.List(ctx, id, cursor, limit); return err }
		}
		latest := func(id string) call {
			return func(ctx context.Context) error { _, err := e.cps.Latest(ctx, id); return err }
		}
		raw := func(s string) json.RawMessage { return json.RawMessage(s) }
		big := `"` + strings.Repeat("x", maxDoc-1) + `"` // maxDoc+1 bytes
		otherCP := strings.Replace(cp, "cpv1-s1-", "cpv1-s2-", 1)

		cases := []struct {
			name  string
			call  call
			want  error
			trips int64 // round trips: 0 when refused before sending
		}{
			{"save: empty id", save("", tok, checkpoint.Checkpoint{}), statestore.ErrInvalidID, 0},
			{"save: id with braces", save("a{b}", tok, checkpoint.Checkpoint{}), statestore.ErrInvalidID, 0},
			{"save: id with a bar", save("a|b", tok, checkpoint.Checkpoint{}), statestore.ErrInvalidID, 0},
			{"save: id with a control character", save("a\nb", tok, checkpoint.Checkpoint{}), statestore.ErrInvalidID, 0},
			{"save: id too long", save(strings.Repeat("x", 257), tok, checkpoint.Checkpoint{}), statestore.ErrInvalidID, 0},
			{"save: id not UTF-8", save("a\xffb", tok, checkpoint.Checkpoint{}), statestore.ErrInvalidID, 0},
			{"save: zero token", save("s1", 0, checkpoint.Checkpoint{}), fencing.ErrInvalidToken, 0},
			{"save: token above MaxToken", save("s1", fencing.MaxToken+1, checkpoint.Checkpoint{}), fencing.ErrInvalidToken, 0},
			{"save: negative step", save("s1", tok, checkpoint.Checkpoint{Step: -1}), statestore.ErrInvalidArgument, 0},
			{"save: step beyond 2^53-1", save("s1", tok, checkpoint.Checkpoint{Step: 1 << 53}), statestore.ErrInvalidArgument, 0},
			{"save: negative message count", save("s1", tok, checkpoint.Checkpoint{MessageCount: -1}), statestore.ErrInvalidArgument, 0},
			{"save: more messages than the session has", save("s1", tok, checkpoint.Checkpoint{MessageCount: 4}), statestore.ErrInvalidArgument, 1},
			{"save: state not JSON", save("s1", tok, checkpoint.Checkpoint{State: raw(`{"a":`)}), statestore.ErrInvalidDocument, 0},
			{"save: state of two documents", save("s1", tok, checkpoint.Checkpoint{State: raw(`{} {}`)}), statestore.ErrInvalidDocument, 0},
			{"save: metadata not JSON", save("s1", tok, checkpoint.Checkpoint{Metadata: raw(`{`)}), statestore.ErrInvalidDocument, 0},
			{"save: metadata an array", save("s1", tok, checkpoint.Checkpoint{Metadata: raw(`[1]`)}), statestore.ErrInvalidDocument, 0},
			{"save: metadata a string", save("s1", tok, checkpoint.Checkpoint{Metadata: raw(` "x"`)}), statestore.ErrInvalidDocument, 0},
			{"save: metadata null", save("s1", tok, checkpoint.Checkpoint{Metadata: raw(`null`)}), statestore.ErrInvalidDocument, 0},
			{"save: metadata only whitespace", save("s1", tok, checkpoint.Checkpoint{Metadata: raw(`  `)}), statestore.ErrInvalidDocument, 0},
			{"save: state too large", save("s1", tok, checkpoint.Checkpoint{State: raw(big)}), statestore.ErrTooLarge, 0},
			{"save: state and metadata too large", save("s1", tok, checkpoint.Checkpoint{
				State: raw(big[:600] + `"`), Metadata: raw(`{"m":` + big[:500] + `"}`)}), statestore.ErrTooLarge, 0},
			{"save: unknown session", save("ghost", ghost.Token(), checkpoint.Checkpoint{}), statestore.ErrNotFound, 1},

			{"restore: invalid session id", restore("a{b}", tok, cp), statestore.ErrInvalidID, 0},
			{"restore: zero token", restore("s1", 0, cp), fencing.ErrInvalidToken, 0},
			{"restore: empty checkpoint id", restore("s1", tok, ""), statestore.ErrInvalidID, 0},
			{"restore: another session's checkpoint id", restore("s1", tok, otherCP), statestore.ErrInvalidID, 0},
			{"restore: checkpoint id with upper-case hex", restore("s1", tok, "cpv1-s1-s1-t1700000000000-ABCDEF"), statestore.ErrInvalidID, 0},
			{"restore: checkpoint id with a leading zero", restore("s1", tok, "cpv1-s1-s01-t1700000000000-abcdef"), statestore.ErrInvalidID, 0},
			{"restore: checkpoint id with 5 hex digits", restore("s1", tok, "cpv1-s1-s1-t1700000000000-abcde"), statestore.ErrInvalidID, 0},
			{"restore: checkpoint id v2", restore("s1", tok, "cpv2-s1-s1-t1700000000000-abcdef"), statestore.ErrInvalidID, 0},
			{"restore: unknown checkpoint", restore("s1", tok, "cpv1-s1-s1-t1700000000000-abcdef"), statestore.ErrNotFound, 1},
			{"restore: unknown session", restore("ghost", ghost.Token(), "cpv1-ghost-s1-t1700000000000-abcdef"), statestore.ErrNotFound, 1},

			{"prune: negative keepLast", prune("s1", tok, -1), statestore.ErrInvalidArgument, 0},
			{"prune: zero token", prune("s1", 0, 1), fencing.ErrInvalidToken, 0},
			{"prune: invalid session id", prune("", tok, 1), statestore.ErrInvalidID, 0},
			{"prune: unknown session", prune("ghost", ghost.Token(), 0), statestore.ErrNotFound, 1},

			{"get: invalid session id", get("a}", cp), statestore.ErrInvalidID, 0},
			{"get: another session's checkpoint id", get("s1", otherCP), statestore.ErrInvalidID, 0},
			{"get: garbage checkpoint id", get("s1", "../etc"), statestore.ErrInvalidID, 0},
			{"get: unknown checkpoint", get("s1", "cpv1-s1-s1-t1700000000000-abcdef"), statestore.ErrNotFound, 1},
			{"latest: invalid session id", latest("a\x00"), statestore.ErrInvalidID, 0},
			{"latest: unknown session", latest("ghost"), statestore.ErrNotFound, 1},
			{"list: invalid session id", list("", "", 1), statestore.ErrInvalidID, 0},
			{"list: limit 0", list("s1", "", 0), statestore.ErrInvalidArgument, 0},
			{"list: negative limit", list("s1", "", -1), statestore.ErrInvalidArgument, 0},
			{"list: limit above MaxPageSize", list("s1", "", checkpoint.MaxPageSize+1), statestore.ErrInvalidArgument, 0},
			{"list: invalid cursor", list("s1", "x", 1), statestore.ErrInvalidCursor, 0},
			{"list: unknown session", list("ghost", "", 1), statestore.ErrNotFound, 1},
		}
		before := map[string]map[string]string{"s1": e.snapshot(t, "s1"), "ghost": e.snapshot(t, "ghost")}
		for _, tc := range cases {
			_ = tc.call(ctx) // warm the script caches (each cluster node has its own)
		}
		for _, tc := range cases {
			var err error
			trips := e.client.Count(func() { err = tc.call(ctx) })
			assert.ErrorIs(t, err, tc.want, tc.name)
			if err != nil {
				assert.True(t, strings.HasPrefix(err.Error(), "checkpoint: "), "%s: %q", tc.name, err)
			}
			assert.Equal(t, tc.trips, trips, "%s: round trips", tc.name)
		}
		for id, snap := range before {
			assert.Equal(t, snap, e.snapshot(t, id), "session %s changed", id)
		}

		// The limits themselves are accepted.
		_, err = e.cps.Save(ctx, "s1", tok, checkpoint.Checkpoint{Step: 1<<53 - 1, MessageCount: 3,
			State: raw(big[:maxDoc-40] + `"`), Metadata: raw(`{"k":` + big[:30] + `"}`)})
		require.NoError(t, err)
		_, err = e.cps.List(ctx, "s1", "", checkpoint.MaxPageSize)
		require.NoError(t, err)
	})
}

// TestCorruptData: keys holding data the scripts did not write get
// ErrCorrupt (or a WRONGTYPE error), and a write refused for it changes
// nothing.
func TestCorruptData(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 2)
		k := e.keys("s1")
		tok := lk.Token()
		unchanged := func(name string, fn func() error, want error) {
			t.Helper()
			before := e.snapshot(t, "s1")
			err := fn()
			if want != nil {
				assert.ErrorIs(t, err, want, name)
			} else {
				assert.Error(t, err, name)
			}
			assert.Equal(t, before, e.snapshot(t, "s1"), name)
		}

		for name, p := range map[string]string{
			"no header":       "garbage",
			"unknown version": "cp2 1 1700000000000 1 0 0 0 0\n",
			"short header":    "cp1 1 1700000000000 1 0 0 0\n",
			"bad number":      "cp1 1 1700000000000 1 x 0 0 0\n",
			"leading zero":    "cp1 01 1700000000000 1 0 0 0 0\n",
			"zero token":      "cp1 1 1700000000000 0 0 0 0 0\n",
			"truncated state": "cp1 1 1700000000000 1 0 0 0 50\n{}",
		} {
			cpid := cpidOf("s1", 1)
			s.Do(t, "DEL", k.Cps, k.Cpd)
			s.Do(t, "ZADD", k.Cps, "1", cpid)
			s.Do(t, "HSET", k.Cpd, cpid, p)
			_, err := e.cps.Get(ctx, "s1", cpid)
			assert.ErrorIs(t, err, statestore.ErrCorrupt, "get: %s", name)
			_, err = e.cps.Latest(ctx, "s1")
			assert.ErrorIs(t, err, statestore.ErrCorrupt, "latest: %s", name)
			_, err = e.cps.List(ctx, "s1", "", 5)
			assert.ErrorIs(t, err, statestore.ErrCorrupt, "list: %s", name)
			if name != "zero token" && name != "leading zero" { // the script only needs the step, counts and length
				unchanged("restore: "+name, func() error { _, err := e.cps.Restore(ctx, "s1", tok, cpid); return err }, statestore.ErrCorrupt)
			}
		}

		// An index entry without a payload.
		s.Do(t, "DEL", k.Cps, k.Cpd)
		s.Do(t, "ZADD", k.Cps, "1", cpidOf("s1", 1))
		_, err := e.cps.Latest(ctx, "s1")
		assert.ErrorIs(t, err, statestore.ErrCorrupt)
		_, err = e.cps.List(ctx, "s1", "", 5)
		assert.ErrorIs(t, err, statestore.ErrCorrupt)
		s.Do(t, "DEL", k.Cps)

		// State fields the checkpoint scripts read.
		cp, err := e.cps.Save(ctx, "s1", tok, checkpoint.Checkpoint{Step: 1, MessageCount: 1})
		require.NoError(t, err)
		for _, f := range [][2]string{{"cp_seq", "x"}, {"msg_epoch", "-1"}, {"msg_trims", "1:a"}} {
			old := s.Do(t, "HGET", k.State, f[0])
			s.Do(t, "HSET", k.State, f[0], f[1])
			if f[0] != "msg_trims" {
				unchanged("save with "+f[0], func() error {
					_, err := e.cps.Save(ctx, "s1", tok, checkpoint.Checkpoint{})
					return err
				}, statestore.ErrCorrupt)
			}
			if f[0] != "cp_seq" {
				unchanged("restore with "+f[0], func() error { _, err := e.cps.Restore(ctx, "s1", tok, cp); return err }, statestore.ErrCorrupt)
			}
			if v, err := old.ToString(); err == nil {
				s.Do(t, "HSET", k.State, f[0], v)
			} else {
				s.Do(t, "HDEL", k.State, f[0])
			}
		}

		// Keys of the wrong type.
		for _, key := range []string{k.Cps, k.Cpd, k.Msgs} {
			s.Do(t, "DEL", key)
			s.Do(t, "SET", key, "not a "+key)
			unchanged("save with a string at "+key, func() error {
				_, err := e.cps.Save(ctx, "s1", tok, checkpoint.Checkpoint{})
				return err
			}, nil)
			if key != k.Msgs {
				unchanged("prune with a string at "+key, func() error { _, err := e.cps.Prune(ctx, "s1", tok, 0); return err }, nil)
			}
			s.Do(t, "DEL", key)
		}
	})
}
