package redistest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// ACLLines returns the "ACL SETUSER <user> ..." lines of the Markdown file
// at path (docs/ACL.md), in file order, each split into words. It calls
// t.Fatal if the file cannot be read or has no such line: documentation
// and tests must not drift apart silently.
func ACLLines(t testing.TB, path, user string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) >= 3 && strings.EqualFold(w[0], "ACL") && strings.EqualFold(w[1], "SETUSER") && w[2] == user {
			out = append(out, w)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("redistest: %s: %v", path, err)
	}
	if len(out) == 0 {
		t.Fatalf("redistest: %s has no ACL SETUSER %s line", path, user)
	}
	return out
}

// SetUser runs one ACL SETUSER command (as returned by ACLLines) on s as
// the default user, with the password placeholder ">CHANGE-ME" replaced by
// password. It returns the server's error, if any.
func (s *Server) SetUser(t testing.TB, line []string, password string) error {
	t.Helper()
	args := make([]string, 0, len(line))
	for _, w := range line {
		if w == ">CHANGE-ME" {
			w = ">" + password
		}
		args = append(args, w)
	}
	c, err := s.adminClient()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, c.B().Arbitrary(args[0], args[1]).Args(args[2:]...).Build()).Error()
}

// ClientOptionAs returns ClientOption for connecting as user with password.
func (s *Server) ClientOptionAs(user, password string) rueidis.ClientOption {
	opt := s.ClientOption()
	opt.Username, opt.Password = user, password
	return opt
}

// ACLLogEntry is one entry of ACL LOG.
type ACLLogEntry struct {
	Reason, Context, Object, Username string
}

func (e ACLLogEntry) String() string {
	return fmt.Sprintf("%s denied %s (%s, user %s)", e.Reason, e.Object, e.Context, e.Username)
}

// ACLLog returns the entries of ACL LOG on s (newest first), read as the
// default user.
func (s *Server) ACLLog(t testing.TB) []ACLLogEntry {
	t.Helper()
	m := s.Do(t, "ACL", "LOG")
	arr, err := m.ToArray()
	if err != nil {
		t.Fatalf("redistest: ACL LOG: %v", err)
	}
	out := make([]ACLLogEntry, 0, len(arr))
	for _, m := range arr {
		kv, err := m.AsMap()
		if err != nil {
			t.Fatalf("redistest: ACL LOG entry: %v", err)
		}
		str := func(k string) string {
			v, ok := kv[k]
			if !ok {
				return ""
			}
			s, _ := v.ToString()
			return s
		}
		out = append(out, ACLLogEntry{Reason: str("reason"), Context: str("context"), Object: str("object"), Username: str("username")})
	}
	return out
}

// ResetACLLog clears ACL LOG on s.
func (s *Server) ResetACLLog(t testing.TB) {
	t.Helper()
	if m := s.Do(t, "ACL", "LOG", "RESET"); m.Error() != nil {
		t.Fatalf("redistest: ACL LOG RESET: %v", m.Error())
	}
}

// ApplyACL creates user on s from the "ACL SETUSER <user>" lines of the
// Markdown file at path (docs/ACL.md), password placeholder replaced: the
// first line must apply; each further line (a version-specific addition)
// is applied when the server knows every command it grants (HasCommand)
// and must then apply, and is skipped otherwise. It returns the lines
// applied and those skipped. Which lines apply is decided by what the
// server has, never by the wording of its refusal.
func (s *Server) ApplyACL(t testing.TB, path, user, password string) (applied, skipped [][]string) {
	t.Helper()
	lines := ACLLines(t, path, user)
	for i, l := range lines {
		if i > 0 {
			if missing := s.missingCommands(t, l); len(missing) > 0 {
				t.Logf("docs ACL line not for this server (no %s): %s", strings.Join(missing, ", "), strings.Join(l, " "))
				skipped = append(skipped, l)
				continue
			}
		}
		if err := s.SetUser(t, l, password); err != nil {
			t.Fatalf("redistest: %s: ACL line does not apply: %v\n%s", path, err, strings.Join(l, " "))
		}
		applied = append(applied, l)
	}
	return applied, skipped
}

// missingCommands returns the commands granted by an ACL SETUSER line
// ("+name" or "+name|sub", not "+@category") that the server lacks.
func (s *Server) missingCommands(t testing.TB, line []string) []string {
	t.Helper()
	var out []string
	for _, w := range line[3:] {
		if name, ok := strings.CutPrefix(w, "+"); ok && !strings.HasPrefix(name, "@") {
			if !s.HasCommand(t, name) {
				out = append(out, name)
			}
		}
	}
	return out
}
