package readme_test

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// free are the variables README snippets use without declaring them,
// declared at package level so that a snippet may also redeclare them.
const free = `
var (
	ctx     context.Context
	client  rueidis.Client
	locker  *lock.Locker
	store   *statestore.Store
	msg     json.RawMessage
	patch   json.RawMessage
	data    json.RawMessage
	step    int64
	n       int64
)
`

var imports = []string{
	"context", "encoding/json", "errors", "fmt", "time",
	"github.com/redis/rueidis",
	"github.com/fencekit/fencekit/checkpoint",
	"github.com/fencekit/fencekit/election",
	"github.com/fencekit/fencekit/fencing",
	"github.com/fencekit/fencekit/lock",
	"github.com/fencekit/fencekit/memory",
	"github.com/fencekit/fencekit/semaphore",
	"github.com/fencekit/fencekit/staging",
	"github.com/fencekit/fencekit/statestore",
	"github.com/fencekit/fencekit/stream",
	"github.com/fencekit/fencekit/usage",
}

// snippets returns the ```go blocks of the README with their first line.
func snippets(t *testing.T) (blocks []string, lines []int) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	in, start := false, 0
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```go":
			in, start, cur = true, i+2, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks, lines = append(blocks, strings.Join(cur, "\n")), append(lines, start)
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, lines
}

// exportData maps import paths to compiled export data (go list -export),
// so that the gc importer finds the module's packages.
func exportData(t *testing.T) func(path string) (io.ReadCloser, error) {
	args := append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}"}, imports...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if p, f, ok := strings.Cut(line, "="); ok && f != "" {
			files[p] = f
		}
	}
	return func(path string) (io.ReadCloser, error) {
		f, ok := files[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(f)
	}
}

// TestSnippetsTypeCheck type-checks every Go snippet of the README as the
// body of a function returning err error. Unused variables and imports are allowed (snippets
// are fragments); anything else - a method that does not exist, a wrong
// argument - fails.
func TestSnippetsTypeCheck(t *testing.T) {
	blocks, lines := snippets(t)
	if len(blocks) == 0 {
		t.Fatal("no ```go blocks in README.md")
	}
	lookup := exportData(t)
	for i, block := range blocks {
		var src bytes.Buffer
		src.WriteString("package snippet\n\nimport (\n")
		for _, imp := range imports {
			fmt.Fprintf(&src, "\t%q\n", imp)
		}
		src.WriteString(")\n" + free + "\nfunc _() (err error) {\n" + block + "\nreturn\n}\n")
		fset := token.NewFileSet()
		name := fmt.Sprintf("README.md:%d", lines[i])
		f, err := parser.ParseFile(fset, name, src.Bytes(), 0)
		if err != nil {
			t.Errorf("snippet at %s does not parse: %v", name, err)
			continue
		}
		conf := types.Config{
			Importer: importer.ForCompiler(fset, "gc", lookup),
			Error: func(err error) {
				if te, ok := err.(types.Error); ok && te.Soft && strings.Contains(te.Msg, "not used") {
					return
				}
				t.Errorf("snippet at %s: %v", name, err)
			},
		}
		_, _ = conf.Check("snippet", fset, []*ast.File{f}, nil)
	}
}
