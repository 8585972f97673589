package redact_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redact"
)

// pieces returns every window-long piece of secret (the whole secret when
// it is shorter): none of them may be printed.
func pieces(secret string) []string {
	n := min(3, len(secret))
	var out []string
	for i := 0; i+n <= len(secret); i++ {
		out = append(out, secret[i:i+n])
	}
	return out
}

func TestURL(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://ops:Qz7-Jk9@127.0.0.1:6379", "redis://ops:xxxxx@127.0.0.1:6379"},
		{"redis://:Qz7%25Jk9@h:1?addr=h:2", "redis://:xxxxx@h:1?addr=h:2"},
		// Unparsable: the whole userinfo goes.
		{"redis://:Qz7%Jk9@127.0.0.1:1", "redis://xxxxx@127.0.0.1:1"},
		{"redis://admin:Qz7-Jk9@127.0.0.1:badport", "redis://xxxxx@127.0.0.1:badport"},
		{"redis://ops:Qz7/Jk9@h:1", "redis://xxxxx@h:1"},
		{"redis://ops:Qz7#Jk9@h:1", "redis://xxxxx@h:1"},
		{"redis://ops:Qz7@Jk9@h:1", "redis://xxxxx@h:1"},
		{"redis://ops:123?Jk9@h", "redis://xxxxx@h"}, // parses, but the "password" went into the port and query
		// Scheme typos.
		{"redis//:Qz7-Jk9@127.0.0.1:1", "redis//xxxxx@127.0.0.1:1"},
		{"redis:/ops:Qz7-Jk9@h:1", "xxxxx@h:1"},
		{"ops:Qz7-Jk9@h:1", "xxxxx@h:1"},
		{"redis:ops:Qz7-Jk9@h:1", "xxxxx@h:1"},
	} {
		if got := redact.URL(tc.raw); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// TestParseError parses URLs whose passwords the parsers trip over and
// checks that no piece of the password survives in the error text.
func TestParseError(t *testing.T) {
	for _, tc := range []struct{ raw, pw string }{
		{"redis://:Qz7%Jk9@127.0.0.1:1", "Qz7%Jk9"},
		{"redis://admin:Qz7%Jk9@127.0.0.1:badport", "Qz7%Jk9"},
		{"redis://u:Qz7/Jk9@h:1", "Qz7/Jk9"},
		{"redis://u:987/Jk9x@h:1", "987/Jk9x"},
		{"redis://u:Qz7#Jk9@h:1", "Qz7#Jk9"},
		{"redis://u:98/Jk9x/y@h", "98/Jk9x/y"}, // rueidis: invalid URL path: /Jk9x/y@h (unquoted)
		{"redis://u:Qz7@Jk9@h/a/b", "Qz7@Jk9"},
		{"redis//:Qz7%Jk9@h:1", "Qz7%Jk9"},
		{"redis://u:Qz7 Jk9@h:1", "Qz7 Jk9"},
		{"redis://u:Qz7\x7fJk9@h:1", "Qz7\x7fJk9"},
		{"http://u:Qz7-Jk9@h:1", "Qz7-Jk9"},
		{"Qz7-Jk9@h:1", "Qz7-Jk9"},
	} {
		_, err := rueidis.ParseURL(tc.raw)
		if err == nil {
			t.Errorf("ParseURL(%q) did not fail; pick another case", tc.raw)
			continue
		}
		msg := redact.ParseError(tc.raw, err)
		for _, p := range pieces(tc.pw) {
			if strings.Contains(msg, p) {
				t.Errorf("ParseError(%q) = %q: shows %q (parser said %q)", tc.raw, msg, p, err)
			}
		}
		if msg == "" {
			t.Errorf("ParseError(%q) is empty", tc.raw)
		}
	}
	// A reason without credentials is kept.
	raw := "redis://admin:Qz7-Jk9@127.0.0.1:badport"
	_, err := rueidis.ParseURL(raw)
	if msg := redact.ParseError(raw, err); !strings.Contains(msg, `invalid port ":badport"`) {
		t.Errorf("ParseError(%q) = %q, want the parser's reason", raw, msg)
	}
	raw = "redis://:Qz7%Jk9@127.0.0.1:1"
	_, err = url.Parse(raw)
	if msg := redact.ParseError(raw, err); msg != redact.Withheld && strings.Contains(msg, "%J") {
		t.Errorf("ParseError(%q) = %q", raw, msg)
	}
	if redact.ParseError(raw, nil) != "" {
		t.Error("ParseError(nil) is not empty")
	}
}

func TestText(t *testing.T) {
	raw := "redis://ops:Qz7-Jk9@127.0.0.1:1"
	for _, tc := range []struct{ in, want string }{
		{"dial " + raw + ": refused", "dial redis://ops:xxxxx@127.0.0.1:1: refused"},
		{`parse "` + raw + `": bad`, `parse "redis://ops:xxxxx@127.0.0.1:1": bad`},
		{"AUTH Qz7-Jk9 failed", "AUTH xxxxx failed"},
		{`lock "session-1" not found`, `lock "session-1" not found`},
		{`escape "-Jk"`, `escape "xxxxx"`},
	} {
		if got := redact.Text(tc.in, raw); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := redact.Text("x", ""); got != "x" {
		t.Errorf("Text without URL = %q", got)
	}
	if !redact.Leaks("it was Jk9", raw) || redact.Leaks(redact.URL(raw)+" refused", raw) {
		t.Error("Leaks")
	}
}
