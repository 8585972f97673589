package redistest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Snapshot returns the type and content of each key (missing keys are
// left out), so a test can compare the state before and after a call that
// must not write: hashes sorted by field, lists and streams in order, sets
// sorted, sorted sets with scores. TTLs are not part of it.
func (s *Server) Snapshot(t testing.TB, keys ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, key := range keys {
		m := s.Do(t, "TYPE", key)
		typ, err := m.ToString()
		if err != nil {
			t.Fatalf("redistest: TYPE %s: %v", key, err)
		}
		var val string
		switch typ {
		case "none":
			continue
		case "string":
			m := s.Do(t, "GET", key)
			val, _ = m.ToString()
		case "hash":
			m := s.Do(t, "HGETALL", key)
			kv, _ := m.AsStrMap()
			fields := make([]string, 0, len(kv))
			for f, v := range kv {
				fields = append(fields, fmt.Sprintf("%q=%q", f, v))
			}
			sort.Strings(fields)
			val = strings.Join(fields, " ")
		case "list":
			m := s.Do(t, "LRANGE", key, "0", "-1")
			items, _ := m.AsStrSlice()
			val = fmt.Sprintf("%q", items)
		case "set":
			m := s.Do(t, "SMEMBERS", key)
			items, _ := m.AsStrSlice()
			sort.Strings(items)
			val = fmt.Sprintf("%q", items)
		case "zset":
			// AsZScores reads both the flat RESP2 reply and RESP3's
			// [member, score] pairs (AsStrSlice fails on the latter).
			m := s.Do(t, "ZRANGE", key, "0", "-1", "WITHSCORES")
			zs, err := m.AsZScores()
			if err != nil {
				t.Fatalf("redistest: ZRANGE %s: %v", key, err)
			}
			items := make([]string, 0, 2*len(zs))
			for _, z := range zs {
				items = append(items, z.Member, strconv.FormatFloat(z.Score, 'f', -1, 64))
			}
			val = fmt.Sprintf("%q", items)
		case "stream":
			m := s.Do(t, "XRANGE", key, "-", "+")
			entries, _ := m.ToArray()
			parts := make([]string, 0, len(entries))
			for _, e := range entries {
				parts = append(parts, fmt.Sprint(e.ToAny()))
			}
			val = strings.Join(parts, "\n")
		default:
			t.Fatalf("redistest: snapshot of %s: type %s", key, typ)
		}
		out[key] = typ + ":" + val
	}
	return out
}
