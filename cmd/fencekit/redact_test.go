package main

import (
	"net"
	"strings"
	"testing"

	"github.com/fencekit/fencekit/internal/redistest"
)

// TestNoCredentialsInAnyOutput runs every command with URLs whose
// credentials are recognizable — URLs that do not parse, mistyped URLs,
// valid URLs with right and wrong passwords, through --url and $REDIS_URL —
// and greps stdout and stderr for every 3-byte piece of the password, and,
// for a URL that does not parse cleanly, of the user name too.
func TestNoCredentialsInAnyOutput(t *testing.T) {
	s := redistest.NewMini(t)
	// Percent-encoded in the valid URLs below.
	s.Mini.RequireUserAuth("ops", "Qz7%Jk9")
	s.Mini.RequireUserAuth("Uv5Wy", "Qz7@Jk9")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	live := s.Addrs[0]

	type row struct {
		name    string
		url     string
		secrets []string // nothing of these may be printed
		user    bool     // the URL parses cleanly: its user name may be shown
		code    int      // expected exit code of "locks"; -1: any
	}
	rows := []row{
		// Unparsable: the parser quotes the URL and the bad escape.
		{"bad escape", "redis://:Qz7%Jk9@" + live, []string{"Qz7%Jk9"}, false, exitUsage},
		{"bad port", "redis://Uv5Wy:Qz7-Jk9@127.0.0.1:badport", []string{"Uv5Wy", "Qz7-Jk9"}, false, exitUsage},
		{"slash in password", "redis://Uv5Wy:Qz7/Jk9@" + live, []string{"Uv5Wy", "Qz7/Jk9"}, false, exitUsage},
		{"hash in password", "redis://Uv5Wy:Qz7#Jk9@" + live, []string{"Uv5Wy", "Qz7#Jk9"}, false, exitUsage},
		{"digits then slash", "redis://Uv5Wy:98/Jk9x/y@" + live, []string{"Uv5Wy", "98/Jk9x/y"}, false, exitUsage},
		{"space in password", "redis://Uv5Wy:Qz7 Jk9@" + live, []string{"Uv5Wy", "Qz7 Jk9"}, false, exitUsage},
		// Mistyped schemes.
		{"scheme without colon", "redis//:Qz7-Jk9@" + live, []string{"Qz7-Jk9"}, false, exitUsage},
		{"one slash", "redis:/Uv5Wy:Qz7-Jk9@" + live, []string{"Uv5Wy", "Qz7-Jk9"}, false, exitUsage},
		{"http", "http://Uv5Wy:Qz7-Jk9@" + live, []string{"Qz7-Jk9"}, true, exitUsage}, // parses: the user is shown
		{"no scheme", "Uv5Wy:Qz7-Jk9@" + live, []string{"Uv5Wy", "Qz7-Jk9"}, false, exitUsage},
		// Parses, with an unescaped '@' in the password: it connects.
		{"at in password", "redis://Uv5Wy:Qz7@Jk9@" + live, []string{"Uv5Wy", "Qz7@Jk9"}, false, exitOK},
		// Valid URLs.
		{"valid", "redis://ops:Qz7%25Jk9@" + live, []string{"Qz7%Jk9", "Qz7%25Jk9"}, true, exitOK},
		{"valid, wrong password", "redis://ops:Qz7%25Jk9-wrong@" + live, []string{"Qz7%Jk9-wrong", "Qz7%25Jk9"}, true, exitConnect},
		{"valid, dead port", "redis://ops:Qz7%25Jk9@" + dead, []string{"Qz7%Jk9", "Qz7%25Jk9"}, true, exitConnect},
	}
	commands := [][]string{
		{"locks"},
		{"locks", "--json"},
		{"doctor"},
		{"doctor", "--json"},
		{"doctor", "--strict"},
		{"lock", "job-1"},
		{"lock", "job-1", "--json"},
		{"session", "s-1"},
		{"checkpoints", "s-1"},
		{"force-release", "job-1", "--reason", "test"},
		{"force-release", "job-1", "--reason", "test", "--json"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var pieces []string
			for _, sec := range r.secrets {
				for i := 0; i+3 <= len(sec); i++ {
					pieces = append(pieces, sec[i:i+3])
				}
			}
			check := func(how string, args []string, res result) {
				t.Helper()
				out := res.stdout + res.stderr
				for _, p := range pieces {
					if strings.Contains(out, p) {
						t.Errorf("%s %q: output shows %q:\nstdout: %s\nstderr: %s", how, args, p, res.stdout, res.stderr)
						return
					}
				}
				if !r.user && strings.Contains(out, "Uv5") {
					t.Errorf("%s %q: output shows the user name:\n%s", how, args, out)
				}
			}
			for _, c := range commands {
				args := append(append([]string{}, c...), "--timeout", "2s")
				res := cli(t, append(args, "--url", r.url)...)
				check("--url", args, res)
				if c[0] == "locks" && len(c) == 1 && r.code >= 0 && res.code != r.code {
					t.Errorf("locks --url %s: exit %d, want %d\n%s", r.url, res.code, r.code, res.stderr)
				}
				check("REDIS_URL", args, cliEnv(t, map[string]string{"USER": "tester", "REDIS_URL": r.url}, args...))
			}
		})
	}
}
