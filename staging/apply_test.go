package staging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/statestore"
)

func change(call, patches, merge string) Staged {
	c := Staged{Step: 1, Token: 7, Change: Change{ToolCallID: call}}
	if patches != "" {
		c.Patches = json.RawMessage(patches)
	}
	if merge != "" {
		c.Merge = json.RawMessage(merge)
	}
	return c
}

func TestApplyAll(t *testing.T) {
	cases := []struct {
		name    string
		doc     string
		changes []Staged
		want    string // "" with wantErr
		wantErr error
	}{
		{name: "nothing: unchanged bytes", doc: ` {"a" : 1} `, want: ` {"a" : 1} `},
		{name: "patches then merge", doc: `{"a":1}`, changes: []Staged{change("c", `[{"op":"replace","path":"/a","value":2}]`, `{"a":3,"b":null}`)}, want: `{"a":3}`},
		{name: "empty doc is {}", doc: ``, changes: []Staged{change("c", `[{"op":"add","path":"/a","value":1}]`, "")}, want: `{"a":1}`},
		{name: "null doc is {}", doc: ` null `, changes: []Staged{change("c", "", `{"a":1}`)}, want: `{"a":1}`},
		{name: "in order", doc: `{"l":[]}`, changes: []Staged{
			change("1", `[{"op":"add","path":"/l/-","value":1}]`, ""),
			change("2", `[{"op":"add","path":"/l/0","value":0}]`, ""),
		}, want: `{"l":[0,1]}`},
		{name: "array document", doc: `[1]`, changes: []Staged{change("c", `[{"op":"add","path":"/-","value":2}]`, "")}, want: `[1,2]`},
		{name: "merge on an array replaces it", doc: `[1]`, changes: []Staged{change("c", "", `{"a":1,"b":null}`)}, want: `{"a":1}`},
		{name: "html characters kept", doc: `{}`, changes: []Staged{change("c", `[{"op":"add","path":"/h","value":"<a&b>"}]`, "")}, want: `{"h":"<a&b>"}`},
		{name: "large integers kept", doc: `{"n":9007199254740993}`, changes: []Staged{change("c", `[{"op":"add","path":"/m","value":12345678901234567890}]`, "")}, want: `{"n":9007199254740993,"m":12345678901234567890}`},
		{name: "test fails", doc: `{"a":1}`, changes: []Staged{change("c", `[{"op":"test","path":"/a","value":2}]`, "")}, wantErr: ErrInvalidPatch},
		{name: "missing path", doc: `{}`, changes: []Staged{change("c", `[{"op":"remove","path":"/a"}]`, "")}, wantErr: ErrInvalidPatch},
		{name: "scalar document", doc: `5`, changes: []Staged{change("c", `[{"op":"add","path":"/a","value":1}]`, "")}, wantErr: ErrInvalidPatch},
		{name: "library panic is an error", doc: `{}`, changes: []Staged{change("c", `[{"op":"test","path":""}]`, "")}, wantErr: errPanic},
		{name: "too large", doc: `{}`, changes: []Staged{change("c", "", `{"a":"`+strings.Repeat("x", 100)+`"}`)}, wantErr: statestore.ErrTooLarge},
		{name: "copy bomb", doc: `{"s":"` + strings.Repeat("x", 60) + `"}`, changes: []Staged{change("c",
			`[{"op":"copy","from":"/s","path":"/a"},{"op":"copy","from":"/s","path":"/b"}]`, "")}, wantErr: ErrInvalidPatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyAll("s", []byte(tc.doc), tc.changes, 100)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				var pe *PatchError
				if errors.As(err, &pe) && (pe.ID != "s" || pe.ToolCallID != "c" || pe.Step != 1) {
					t.Errorf("PatchError = %+v", pe)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	c := Change{
		ToolCallID: "call-1",
		Patches:    json.RawMessage(" [ {\"op\":\"add\", \"path\":\"/a\", \"value\":\"<>\"} ] "),
		Merge:      json.RawMessage(`{ "b" : 1 }`),
		Timestamp:  time.UnixMilli(1234),
	}
	body, ts, err := encodeChange("s", 3, &c, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"patches":[{"op":"add","path":"/a","value":"<>"}],"merge":{"b":1}}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	if ts != "1234" {
		t.Errorf("ts = %q", ts)
	}
	// What stage_put.lua stores.
	value := `{"token":42,"ts":1234,` + body[1:]
	st, err := decodeStaged("3|call-1", value)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 3 || st.Token != fencing.Token(42) || st.ToolCallID != "call-1" || !st.Timestamp.Equal(c.Timestamp) ||
		string(st.Merge) != `{"b":1}` || !bytes.Contains(st.Patches, []byte(`"<>"`)) {
		t.Errorf("decoded %+v", st)
	}

	// No patches, no merge: an empty change, stored with [] patches.
	body, ts, err = encodeChange("s", 3, &Change{ToolCallID: "x"}, 1000)
	if err != nil || body != `{"patches":[]}` || ts != "" {
		t.Errorf("empty change: %q %q %v", body, ts, err)
	}
	st, err = decodeStaged("3|x", `{"token":1,"ts":0,"patches":[]}`)
	if err != nil || st.Patches != nil || st.Merge != nil {
		t.Errorf("empty change decoded as %+v, %v", st, err)
	}

	for _, bad := range [][2]string{
		{"x|a", `{"token":1,"ts":0}`},
		{"-1|a", `{"token":1,"ts":0}`},
		{"1|", `{"token":1,"ts":0}`},
		{"1a", `{"token":1,"ts":0}`},
		{"1|a", `{"ts":0}`},
		{"1|a", `{"token":1}`},
		{"1|a", `{"token":-1,"ts":0}`},
		{"1|a", `not json`},
	} {
		if _, err := decodeStaged(bad[0], bad[1]); err == nil {
			t.Errorf("decodeStaged(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// FuzzApply: arbitrary documents and changes never panic; an accepted
// change either fails to apply with an error of the package (and no
// result), or gives valid JSON within the size limit.
func FuzzApply(f *testing.F) {
	seeds := [][3]string{
		{`{"a":1}`, `[{"op":"replace","path":"/a","value":2}]`, `{"b":null}`},
		{`{"l":[1,2,3]}`, `[{"op":"move","from":"/l/0","path":"/l/-"},{"op":"copy","from":"/l","path":"/m"}]`, ``},
		{`[1,2]`, `[{"op":"remove","path":"/-1"}]`, `{"x":[]}`},
		{``, `[{"op":"test","path":"","value":{}}]`, ``},
		{`null`, `[{"op":"add","path":"","value":[]}]`, `{}`},
		{`{"a":{"b":{"c":1}}}`, `[{"op":"replace","path":"/a/b/c","value":{"d":[1,{"e":2}]}}]`, `{"a":{"b":null}}`},
		{`"str"`, `[]`, `{"a":1}`},
		{`{"~1":{"~0":1}}`, `[{"op":"remove","path":"/~01/~00"},{"op":"add","path":"/a~1b","value":1}]`, ``},
		{`{"a":[1]}`, `[{"op":"add","path":"/a/01","value":1},{"op":"add","path":"/a/-2","value":1}]`, ``},
		{`{"a":1}`, `[{"op":"copy","from":"","path":"/b"},{"op":"move","from":"","path":"/c"}]`, ``},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]), []byte(s[2]))
	}
	const maxBytes = 4096
	f.Fuzz(func(t *testing.T, doc, patches, merge []byte) {
		if len(doc) > 0 && !json.Valid(doc) {
			return // stored documents are valid JSON (statestore checks them)
		}
		c := Change{ToolCallID: "c", Patches: patches, Merge: merge}
		if _, _, err := encodeChange("s", 1, &c, maxBytes); err != nil {
			var pe *PatchError
			if !errors.As(err, &pe) && !errors.Is(err, statestore.ErrTooLarge) {
				t.Fatalf("encodeChange: unexpected error %v", err)
			}
			return // Stage refuses it; it is never applied
		}
		orig := append([]byte(nil), doc...)
		got, err := applyAll("s", doc, []Staged{{Step: 1, Change: c}}, maxBytes)
		if !bytes.Equal(doc, orig) {
			t.Fatalf("applyAll modified its input document")
		}
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with a result", err)
			}
			if !errors.Is(err, ErrInvalidPatch) && !errors.Is(err, statestore.ErrTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, errPanic) {
				t.Fatalf("the patch library panicked: %v", err)
			}
			return
		}
		if len(got) > maxBytes {
			t.Fatalf("result of %d bytes", len(got))
		}
		if len(bytes.TrimSpace(patches)) == 0 && len(bytes.TrimSpace(merge)) == 0 {
			return // nothing to apply (the document may be empty)
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON result %q from doc %q patches %q merge %q", got, doc, patches, merge)
		}
	})
}
