package jsonv

import (
	"encoding/json"
	"strings"
	"testing"
)

var cases = []string{
	``, ` `, `{}`, `[]`, ` { } `, `[ ]`, `null`, `true`, `false`, `nul`, `truex`, `0`, `-0`, `01`, `-`, `1.`, `1.5`,
	`1e5`, `1E+5`, `1e-`, `1e`, `.5`, `-.5`, `123456789012345678901234567890`, `"a"`, `"\u00e9"`, `"\u00g9"`,
	`"\x"`, `"\/"`, "\"\x01\"", "\"\x7f\xff\"", `"unterminated`, `{"a":1}`, `{"a" : [1, 2, {"b": null}] }`,
	`{"a":1,}`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `[1 2]`, `[1][2]`, `{} {}`,
	`[`, `]`, `{`, `}`, `[[[]]]`, `[[[]]`, `"\ud800"`, "{\"a\":\t1\n}\r\n", `{"a":"b\"c"}`, `"\\"`, `"\"`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.40q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := Valid(data), json.Valid(data); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", data, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	doc := []byte(`{"agent":"bench","items":[` + strings.Repeat(`{"id":1,"name":"item-1","done":false},`, 100) + `{"id":2}],"pad":"` + strings.Repeat("x", 200) + `"}`)
	b.Run("jsonv", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			Valid(doc)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			json.Valid(doc)
		}
	})
}
