// Package redact hides the credentials of a Redis URL in what fencekit
// prints: the URL itself, and any text (an error, a log line) that may
// quote it or a piece of it.
//
// A URL that parses cleanly (a scheme, an authority, at most one '@', which
// ends the userinfo) is shown as url.URL.Redacted shows it: the user name,
// and the password replaced by Mask. Any other string that contains an '@'
// is treated as carrying credentials nobody managed to locate: everything
// between the first "//" before its last '@' (or the start of the string
// when there is none, as in a scheme typo) and that last '@' is replaced by
// Mask. Parsers quote the characters they reject ("invalid URL escape
// \"%wo\""), so ParseError withholds a parser's message that still holds a
// piece of the credentials.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Mask is what replaces credentials in output.
const Mask = "xxxxx"

// window is the length of the pieces of a secret that Leaks looks for:
// parsers quote as little as one escape ("%wo").
const window = 3

// creds is what one raw URL may betray.
type creds struct {
	raw   string
	clean *url.URL // the URL, when it parses cleanly
	// secrets are the strings that must never appear: the password (as
	// typed and decoded) of a clean URL, the whole credentials region and
	// its part after the first ':' of any other.
	secrets []string
	start   int // raw[start:end] is the credentials region of an unclean URL
	end     int // -1: none
}

func analyse(raw string) creds {
	c := creds{raw: raw, end: -1}
	at := strings.LastIndex(raw, "@")
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Opaque == "" && u.Host != "" &&
		strings.Count(raw, "@") <= 1 && (at < 0) == (u.User == nil) {
		c.clean = u
		if pw, ok := u.User.Password(); ok && pw != "" {
			c.add(pw)
			info := raw[strings.Index(raw, "//")+2 : at]
			c.add(info[strings.IndexByte(info, ':')+1:])
		}
		return c
	}
	if at < 0 {
		return c
	}
	if i := strings.Index(raw[:at], "//"); i >= 0 {
		c.start = i + 2
	}
	c.end = at
	region := raw[c.start:at]
	c.add(region)
	if i := strings.IndexByte(region, ':'); i >= 0 {
		c.add(region[i+1:])
	}
	for _, s := range slices.Clone(c.secrets) {
		if d, err := url.PathUnescape(s); err == nil {
			c.add(d)
		}
	}
	return c
}

func (c *creds) add(s string) {
	if s != "" && !slices.Contains(c.secrets, s) {
		c.secrets = append(c.secrets, s)
	}
	// Longest first, so that a secret containing another is replaced whole.
	slices.SortStableFunc(c.secrets, func(a, b string) int { return len(b) - len(a) })
}

// shown is the URL as it may be printed.
func (c *creds) shown() string {
	switch {
	case c.clean != nil:
		return c.clean.Redacted()
	case c.end >= 0:
		return c.raw[:c.start] + Mask + c.raw[c.end:]
	}
	return c.raw
}

// betrays reports whether s holds a secret, a piece of one at least window
// bytes long, or is itself a piece of one.
func (c *creds) betrays(s string) bool {
	if s == "" {
		return false
	}
	for _, sec := range c.secrets {
		if strings.Contains(sec, s) || strings.Contains(s, sec) {
			return true
		}
		n := min(window, len(sec))
		for i := 0; i+n <= len(sec); i++ {
			if strings.Contains(s, sec[i:i+n]) {
				return true
			}
		}
	}
	return false
}

// URL returns raw as it may be printed: with the password replaced by Mask
// when raw parses cleanly, else with everything that may be credentials
// replaced by Mask (see the package documentation). A string without '@'
// is returned unchanged.
func URL(raw string) string {
	c := analyse(raw)
	return c.shown()
}

// quoted matches a double-quoted Go string, as %q prints one.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// Text returns s with raw's credentials hidden: raw itself (also as %q
// quotes it) is replaced by URL(raw), every secret of raw by Mask, and a
// double-quoted fragment that holds a piece of a secret, or is one, by
// "xxxxx" in quotes.
func Text(s, raw string) string {
	if s == "" || raw == "" {
		return s
	}
	c := analyse(raw)
	shown := c.shown()
	s = strings.ReplaceAll(s, strconv.Quote(raw), strconv.Quote(shown))
	s = strings.ReplaceAll(s, raw, shown)
	for _, sec := range c.secrets {
		s = strings.ReplaceAll(s, sec, Mask)
	}
	return quoted.ReplaceAllStringFunc(s, func(q string) string {
		body, err := strconv.Unquote(q)
		if err != nil {
			body = q[1 : len(q)-1]
		}
		if c.betrays(body) {
			return `"` + Mask + `"`
		}
		return q
	})
}

// Leaks reports whether s, apart from the places where it shows URL(raw),
// holds a secret of raw or a piece of one (window bytes, or the whole
// secret when it is shorter).
func Leaks(s, raw string) bool {
	c := analyse(raw)
	return c.betrays(strings.ReplaceAll(s, c.shown(), ""))
}

// Withheld is ParseError's text when the parser's message cannot be shown.
const Withheld = "the URL does not parse (the parser's message is withheld: it quotes part of the credentials)"

// ParseError returns the text of err, the error of parsing raw as a URL,
// with raw's credentials hidden. A *url.Error contributes only its reason
// (it repeats the URL). When the reason still holds a piece of the
// credentials it returns Withheld instead.
func ParseError(raw string, err error) string {
	if err == nil {
		return ""
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	msg := Text(err.Error(), raw)
	if Leaks(msg, raw) {
		return Withheld
	}
	return msg
}
