package keys

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateID(t *testing.T) {
	for _, id := range []string{"a", "session-42", "user/42/project/7", "日本語", "a:b", strings.Repeat("x", MaxIDLen)} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a{b", "a}b", "{a}", "a|b", "a\nb", "a\x00", "a\x7f", "\xff\xfe", "a\u0085", strings.Repeat("x", MaxIDLen+1)} {
		if err := ValidateID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	if err := ValidatePrefix("fencekit"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "a:b", "a{", strings.Repeat("p", MaxPrefixLen+1)} {
		if err := ValidatePrefix(p); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidatePrefix(%q) = %v", p, err)
		}
	}
}

func TestValidateToken(t *testing.T) {
	if err := ValidateToken("owner", "host-1:1234:ab12"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "a b", "a|b", "é"} {
		if err := ValidateToken("owner", s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateToken(%q) = %v", s, err)
		}
	}
}

func TestForLock(t *testing.T) {
	k := ForLock("fk", "job-1")
	want := Lock{"fk:{job-1}:lock", "fk:{job-1}:fence", "fk:{job-1}:lockq", "fk:{job-1}:lockqi", "fk:{job-1}:wake", "fk:{job-1}:events", "fk:{job-1}:grant", "fk:{job-1}:inc"}
	if k != want {
		t.Fatalf("ForLock = %+v, want %+v", k, want)
	}
	if s := ForSession("fk", "job-1"); k.Inc != s.Inc || k.Events != s.Events {
		t.Fatalf("the lock's Inc and Events %q %q are not the session's %q %q", k.Inc, k.Events, s.Inc, s.Events)
	}
	for _, key := range []string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Wake} {
		if TagOf(key) != "job-1" {
			t.Errorf("TagOf(%q) = %q", key, TagOf(key))
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = ForLock("fk", "job-1") }); allocs != 1 {
		t.Errorf("ForLock allocates %v times, want 1", allocs)
	}
}

func TestTag(t *testing.T) {
	if got := Tag("fk", "s1"); got != "fk:{s1}:" {
		t.Fatal(got)
	}
	if TagOf("nokey") != "" || TagOf("a{}b") != "" || TagOf("a{b") != "" {
		t.Fatal("TagOf accepted a key without a tag")
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"a", "", "{x}", "a|b", "\xff", "user/1", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		if err != nil {
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("error %v does not match ErrInvalidID", err)
			}
			return
		}
		// An accepted id is safe to embed: one hash tag, exactly id.
		if id == "" || len(id) > MaxIDLen || !utf8.ValidString(id) || strings.ContainsAny(id, "{}|") {
			t.Fatalf("accepted %q", id)
		}
		for _, r := range id {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("accepted control character in %q", id)
			}
		}
		k := ForLock("fk", id)
		if TagOf(k.Lock) != id || TagOf(k.Wake) != id {
			t.Fatalf("tag of %q is %q", k.Lock, TagOf(k.Lock))
		}
	})
}

func TestForSession(t *testing.T) {
	k := ForSession("fk", "s-1")
	want := Session{
		Lock: "fk:{s-1}:lock", Fence: "fk:{s-1}:fence", State: "fk:{s-1}:state", Msgs: "fk:{s-1}:msgs",
		Stage: "fk:{s-1}:stage", Cps: "fk:{s-1}:cps", Cpd: "fk:{s-1}:cpd", Events: "fk:{s-1}:events", Out: "fk:{s-1}:out", OutMeta: "fk:{s-1}:outmeta",
		Inc: "fk:{s-1}:inc", Grant: "fk:{s-1}:grant",
	}
	if k != want {
		t.Fatalf("ForSession = %+v, want %+v", k, want)
	}
	l := ForLock("fk", "s-1")
	if l.Lock != k.Lock || l.Fence != k.Fence || l.Events != k.Events || l.Grant != k.Grant {
		t.Errorf("session and lock keys differ: %+v vs %+v", k, l)
	}
	for _, key := range k.Data() {
		if TagOf(key) != "s-1" {
			t.Errorf("%s has tag %q", key, TagOf(key))
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = ForSession("fk", "s-1") }); allocs != 1 {
		t.Errorf("ForSession allocates %v times, want 1", allocs)
	}
}

func TestForMemory(t *testing.T) {
	m := ForMemory("fk", "user/42")
	want := Memory{
		Lock: "fk:{mem:user/42}:lock", Fence: "fk:{mem:user/42}:fence", Meta: "fk:{mem:user/42}:mmeta",
		Exp: "fk:{mem:user/42}:mexp", Scopes: "fk:{mem:user/42}:mscopes", TTLs: "fk:{mem:user/42}:mttl",
		Base: "fk:{mem:user/42}:",
	}
	if m != want {
		t.Fatalf("ForMemory = %+v, want %+v", m, want)
	}
	if l := ForLock("fk", MemoryTag("user/42")); l.Lock != m.Lock || l.Fence != m.Fence {
		t.Errorf("lock keys %q %q differ from the lock named %q", m.Lock, m.Fence, MemoryTag("user/42"))
	}
	if got := m.Record("a"); got != "fk:{mem:user/42}:r:a" {
		t.Errorf("Record = %q", got)
	}
	if got := m.ScopeIndex("user/42/p"); got != "fk:{mem:user/42}:sx:user/42/p" || TagOf(got) != "mem:user/42" {
		t.Errorf("ScopeIndex = %q", got)
	}
}

func TestSessionAll(t *testing.T) {
	k := ForSession("fk", "s")
	all := k.All()
	if len(all) != 12 || all[0] != k.Lock || all[1] != k.Fence || all[2] != k.Grant || all[len(all)-1] != k.Inc {
		t.Errorf("All() = %q", all)
	}
}
