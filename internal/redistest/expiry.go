package redistest

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/rueidis"
)

// PersistentKeys returns the keys whose names start with prefix and that
// have no TTL, on every node of the server; keys matching one of allow
// (substrings of the key name) are left out. On miniredis, whose TTLs do
// not pass by themselves, a TTL still counts as one.
func (s *Server) PersistentKeys(t testing.TB, prefix string, allow ...string) []string {
	t.Helper()
	var out []string
	for _, addr := range s.Addrs {
		o := s.ClientOption()
		o.InitAddress, o.ForceSingleClient, o.DisableCache = []string{addr}, true, true
		c, err := rueidis.NewClient(o)
		if err != nil {
			t.Fatalf("redistest: client for %s: %v", addr, err)
		}
		out = append(out, persistentOn(t, c, prefix, allow)...)
		c.Close()
	}
	return out
}

func persistentOn(t testing.TB, c rueidis.Client, prefix string, allow []string) []string {
	ctx := context.Background()
	var out []string
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("redistest: SCAN: %v", err)
		}
	next:
		for _, k := range e.Elements {
			for _, a := range allow {
				if strings.Contains(k, a) {
					continue next
				}
			}
			ttl, err := c.Do(ctx, c.B().Pttl().Key(k).Build()).AsInt64()
			if err != nil {
				t.Fatalf("redistest: PTTL %s: %v", k, err)
			}
			if ttl == -1 {
				out = append(out, k)
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return out
		}
	}
}

// RequireExpiring fails the test when a key whose name starts with prefix
// has no TTL (see PersistentKeys): no key fencekit writes may live forever
// unless the caller asked for it.
func (s *Server) RequireExpiring(t testing.TB, prefix string, allow ...string) {
	t.Helper()
	if keys := s.PersistentKeys(t, prefix, allow...); len(keys) > 0 {
		t.Errorf("redistest: %d keys without a TTL under %q: %v", len(keys), prefix, keys)
	}
}
