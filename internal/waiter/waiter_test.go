package waiter

import (
	"testing"
	"time"

	"github.com/fencekit/fencekit/fencing"
)

func TestTake(t *testing.T) {
	now := time.Now()
	look := now.Add(-10 * time.Millisecond)
	for name, c := range map[string]struct {
		g        Grant
		lastLook time.Time
		lastSeen fencing.Token
		ok       bool
		base     time.Time
	}{
		"in memory":             {Grant{Token: 5, Base: now, TTL: time.Minute, Replicated: true}, time.Time{}, 0, true, now},
		"unreplicated":          {Grant{Token: 5, Base: now, TTL: time.Minute}, look, 0, false, now},
		"announced":             {Grant{Token: 5, TTL: time.Minute, Replicated: true}, look, 4, true, look},
		"announced, no look":    {Grant{Token: 5, TTL: time.Minute, Replicated: true}, time.Time{}, 0, false, time.Time{}},
		"announced, late":       {Grant{Token: 4, TTL: time.Minute, Replicated: true}, look, 4, false, time.Time{}},
		"ran out":               {Grant{Token: 5, Base: now.Add(-time.Minute), TTL: time.Second, Replicated: true}, look, 0, false, now.Add(-time.Minute)},
		"announced and ran out": {Grant{Token: 5, TTL: 5 * time.Millisecond, Replicated: true}, look, 4, false, look},
	} {
		g, ok := c.g.Take(c.lastLook, c.lastSeen)
		if ok != c.ok || (ok && !g.Base.Equal(c.base)) {
			t.Errorf("%s: Take = %+v, %v; want ok %v base %v", name, g, ok, c.ok, c.base)
		}
	}
}

func TestSleepFor(t *testing.T) {
	for range 100 {
		if d := SleepFor(100*time.Millisecond, 0); d < 50*time.Millisecond || d > 100*time.Millisecond {
			t.Fatalf("SleepFor(100ms, 0) = %v", d)
		}
	}
	if d := SleepFor(100*time.Millisecond, 10*time.Millisecond); d != 11*time.Millisecond {
		t.Errorf("SleepFor(100ms, 10ms) = %v, want 11ms", d)
	}
}

func TestSetDeliverPokeAnnounce(t *testing.T) {
	for _, replicated := range []bool{true, false} {
		s := New(Config{AnnouncedReplicated: replicated})
		w := s.Add("h1")
		s.Deliver("other", Grant{Token: 1}) // not ours: dropped
		s.announced("h1 7 250")
		select {
		case g := <-w.Grant:
			if g.Token != 7 || g.TTL != 250*time.Millisecond || !g.Base.IsZero() || g.Replicated != replicated {
				t.Errorf("announced grant %+v", g)
			}
		default:
			t.Fatal("no grant delivered")
		}
		for _, bad := range []string{"h1", "h1 x 250", "h1 7 0", "h1 7"} {
			s.announced(bad)
			select {
			case <-w.Poke:
			default:
				t.Errorf("notice %q did not poke the waiter", bad)
			}
			select {
			case g := <-w.Grant:
				t.Errorf("notice %q delivered %+v", bad, g)
			default:
			}
		}
		s.Remove("h1", "ch", false)
		s.Deliver("h1", Grant{Token: 9})
		select {
		case <-w.Grant:
			t.Error("delivered to a removed waiter")
		default:
		}
		if !s.Begin() {
			t.Fatal("Begin before Close")
		}
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		<-s.Done()
		select {
		case <-closed:
			t.Fatal("Close returned before End")
		case <-time.After(10 * time.Millisecond):
		}
		s.End()
		<-closed
		if s.Begin() {
			t.Error("Begin after Close")
		}
		s.Subscribe("ch", "h2") // after Close: nothing
		s.Close()
	}
}
