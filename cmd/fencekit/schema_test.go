package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// This file validates --json output against the schemas in schema/. It
// implements the subset of JSON Schema 2020-12 those files use (type,
// properties, required, additionalProperties, items, enum, const, pattern,
// minimum, minLength, minItems, oneOf, format date-time, $ref to "#/$defs/…"
// and to sibling files) so the module needs no schema library; a keyword
// outside the subset fails the test rather than being ignored.

var annotations = map[string]bool{"$schema": true, "$id": true, "title": true, "description": true, "$defs": true}

type schemaSet struct {
	docs map[string]map[string]any // file name -> schema
}

func loadSchemas(t testing.TB) *schemaSet {
	t.Helper()
	files, err := filepath.Glob("schema/*.schema.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema files: %v", err)
	}
	s := &schemaSet{docs: map[string]map[string]any{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s.docs[filepath.Base(f)] = doc
	}
	return s
}

// validate checks the JSON document data against schema file name.
func (s *schemaSet) validate(name string, data []byte) error {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	root, ok := s.docs[name]
	if !ok {
		return fmt.Errorf("no schema %s", name)
	}
	return s.check(name, root, v, "$")
}

func (s *schemaSet) resolve(file, ref string) (string, map[string]any, error) {
	target, frag, _ := strings.Cut(ref, "#")
	if target == "" {
		target = file
	}
	doc, ok := s.docs[target]
	if !ok {
		return "", nil, fmt.Errorf("$ref %q: no schema file %s", ref, target)
	}
	node := doc
	if frag != "" {
		for _, part := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			next, ok := node[part].(map[string]any)
			if !ok {
				return "", nil, fmt.Errorf("$ref %q: no %s", ref, part)
			}
			node = next
		}
	}
	return target, node, nil
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case json.Number:
		if f, err := x.Float64(); err == nil && f == math.Trunc(f) && !strings.ContainsAny(x.String(), ".eE") {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

func (s *schemaSet) check(file string, sch map[string]any, v any, path string) error {
	for kw, arg := range sch {
		if annotations[kw] {
			continue
		}
		var err error
		switch kw {
		case "$ref":
			f, sub, rerr := s.resolve(file, arg.(string))
			if rerr != nil {
				return rerr
			}
			err = s.check(f, sub, v, path)
		case "type":
			want := []string{}
			switch a := arg.(type) {
			case string:
				want = append(want, a)
			case []any:
				for _, x := range a {
					want = append(want, x.(string))
				}
			}
			got := typeOf(v)
			if !slices.Contains(want, got) && !(got == "integer" && slices.Contains(want, "number")) {
				err = fmt.Errorf("%s: type %s, want %v", path, got, want)
			}
		case "required":
			if m, ok := v.(map[string]any); ok {
				for _, r := range arg.([]any) {
					if _, ok := m[r.(string)]; !ok {
						err = fmt.Errorf("%s: missing required %q", path, r)
						break
					}
				}
			}
		case "properties":
			if m, ok := v.(map[string]any); ok {
				for name, sub := range arg.(map[string]any) {
					if x, ok := m[name]; ok {
						if err = s.check(file, sub.(map[string]any), x, path+"."+name); err != nil {
							break
						}
					}
				}
			}
		case "additionalProperties":
			m, ok := v.(map[string]any)
			if !ok {
				break
			}
			props, _ := sch["properties"].(map[string]any)
			for name, x := range m {
				if _, declared := props[name]; declared {
					continue
				}
				switch a := arg.(type) {
				case bool:
					if !a {
						err = fmt.Errorf("%s: property %q not allowed", path, name)
					}
				case map[string]any:
					err = s.check(file, a, x, path+"."+name)
				}
				if err != nil {
					break
				}
			}
		case "items":
			if arr, ok := v.([]any); ok {
				for i, x := range arr {
					if err = s.check(file, arg.(map[string]any), x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
						break
					}
				}
			}
		case "minItems":
			if arr, ok := v.([]any); ok && float64(len(arr)) < arg.(float64) {
				err = fmt.Errorf("%s: %d items, want at least %v", path, len(arr), arg)
			}
		case "enum":
			if !slices.ContainsFunc(arg.([]any), func(e any) bool { return jsonEqual(e, v) }) {
				err = fmt.Errorf("%s: %v not in %v", path, v, arg)
			}
		case "const":
			if !jsonEqual(arg, v) {
				err = fmt.Errorf("%s: %v, want %v", path, v, arg)
			}
		case "pattern":
			if str, ok := v.(string); ok && !regexp.MustCompile(arg.(string)).MatchString(str) {
				err = fmt.Errorf("%s: %q does not match %s", path, str, arg)
			}
		case "minLength":
			if str, ok := v.(string); ok && float64(len([]rune(str))) < arg.(float64) {
				err = fmt.Errorf("%s: %q shorter than %v", path, str, arg)
			}
		case "minimum":
			if n, ok := v.(json.Number); ok {
				if f, _ := n.Float64(); f < arg.(float64) {
					err = fmt.Errorf("%s: %v below %v", path, n, arg)
				}
			}
		case "format":
			if str, ok := v.(string); ok && arg == "date-time" {
				if _, perr := time.Parse(time.RFC3339Nano, str); perr != nil {
					err = fmt.Errorf("%s: %q is not a date-time", path, str)
				}
			}
		case "oneOf":
			n := 0
			var errs []string
			for _, sub := range arg.([]any) {
				if e := s.check(file, sub.(map[string]any), v, path); e == nil {
					n++
				} else {
					errs = append(errs, e.Error())
				}
			}
			if n != 1 {
				err = fmt.Errorf("%s: matches %d of oneOf (%s)", path, n, strings.Join(errs, "; "))
			}
		default:
			return fmt.Errorf("schema keyword %q is not supported by this validator", kw)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func jsonEqual(a, b any) bool {
	if n, ok := b.(json.Number); ok {
		f, _ := n.Float64()
		b = f
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// TestSchemaValidatorRejects makes sure the validator can fail: documents
// that break each kind of rule the schemas rely on are refused.
func TestSchemaValidatorRejects(t *testing.T) {
	s := loadSchemas(t)
	good := `{"name":"a","held":true,"owner":"o","token":"1763900000000000","acquired_at":"2026-11-23T12:00:00.123Z","ttl_ms":5,"fence":"1763900000000000","waiters":0}`
	if err := s.validate("lock.schema.json", []byte(good)); err != nil {
		t.Fatalf("good document refused: %v", err)
	}
	bad := map[string]string{
		"missing required": `{"name":"a","held":true,"waiters":0}`,
		"extra property":   `{"name":"a","held":false,"fence":"0","waiters":0,"password":"x"}`,
		"wrong type":       `{"name":"a","held":"yes","fence":"0","waiters":0}`,
		"token as number":  `{"name":"a","held":false,"fence":1763900000000000,"waiters":0}`,
		"bad pattern":      `{"name":"a","held":false,"fence":"01","waiters":0}`,
		"negative":         `{"name":"a","held":false,"fence":"0","waiters":-1}`,
		"not integer":      `{"name":"a","held":false,"fence":"0","waiters":1.5}`,
		"bad date":         `{"name":"a","held":true,"owner":"o","token":"1","acquired_at":"yesterday","ttl_ms":5,"fence":"1","waiters":0}`,
		"empty name":       `{"name":"","held":false,"fence":"0","waiters":0}`,
	}
	for name, doc := range bad {
		if err := s.validate("lock.schema.json", []byte(doc)); err == nil {
			t.Errorf("%s: %s accepted", name, doc)
		}
	}
	if err := s.validate("lock-event.schema.json", []byte(`{"time":"2026-11-23T12:00:00Z","event":"stolen","lock":`+good+`}`)); err == nil {
		t.Error("enum: unknown event accepted")
	}
	if err := s.validate("lock-event.schema.json", []byte(`{"time":"2026-11-23T12:00:00Z","event":"changed","lock":{"name":"a"}}`)); err == nil {
		t.Error("cross-file $ref: invalid lock accepted")
	}
	if err := s.validate("doctor.schema.json", []byte(`{"url":"u","prefix":"p","result":"ok","summary":{"ok":0,"warn":0,"fail":0,"unknown":0},"checks":[]}`)); err == nil {
		t.Error("minItems: empty checks accepted")
	}
	if err := s.validate("session.schema.json", []byte(`{"latest_checkpoint":{"id":"x"}}`)); err == nil {
		t.Error("oneOf/required: accepted")
	}
}
