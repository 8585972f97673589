package check

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/fencekit/fencekit/chaos/history"
)

// WriteArtifacts writes what a failing or suspicious run needs for a
// post-mortem into dir (created if needed) and returns the paths written.
// It writes nothing when every checker found nothing (no violation, every
// porcupine check Ok, no input error). Otherwise:
//
//   - report.txt: the summary (Report.String);
//   - <checker>-violations.jsonl: for each checker with violations, the
//     offending operations of each described violation, as history JSON
//     lines (one block per violation, in order);
//   - c2-<session>.html / c4-<session>.html: porcupine's visualization of
//     each session whose check was not Ok (partial linearizations and the
//     point where no linearization continues), and
//     c2-<session>.jsonl / c4-<session>.jsonl: the operations that check
//     was given, as history JSON lines.
//
// The visualization re-runs the check with porcupine's verbose mode under
// Config.Timeout. Errors are those of the file system or of porcupine's
// visualizer.
func (r *Report) WriteArtifacts(dir string) ([]string, error) {
	clean := len(r.Errors) == 0 && len(r.artifacts) == 0
	for _, res := range r.Results() {
		clean = clean && res.Violations == 0
	}
	if clean {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("check: artifacts: %w", err)
	}
	var paths []string
	write := func(name string, fn func(f *os.File) error) error {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("check: artifacts: %w", err)
		}
		err = fn(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("check: artifacts: %s: %w", p, err)
		}
		paths = append(paths, p)
		return nil
	}
	if err := write("report.txt", func(f *os.File) error {
		_, err := f.WriteString(r.String())
		return err
	}); err != nil {
		return paths, err
	}
	for _, res := range r.Results() {
		if len(res.Details) == 0 {
			continue
		}
		name := strings.ToLower(strings.Fields(res.Name)[0]) + "-violations.jsonl"
		if err := write(name, func(f *os.File) error {
			w := history.NewWriter(f)
			for _, v := range res.Details {
				for _, op := range v.Ops {
					if err := w.Write(op); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			return paths, err
		}
	}
	arts := append([]artifact(nil), r.artifacts...)
	sort.Slice(arts, func(i, j int) bool {
		if arts[i].checker != arts[j].checker {
			return arts[i].checker < arts[j].checker
		}
		return arts[i].session < arts[j].session
	})
	for _, a := range arts {
		base := a.checker + "-" + safeName(a.session)
		model := newModel(a.proj)
		_, info := porcupine.CheckOperationsVerbose(model, a.ops, r.cfg.Timeout)
		if err := write(base+".html", func(f *os.File) error { return porcupine.Visualize(model, info, f) }); err != nil {
			return paths, err
		}
		if err := write(base+".jsonl", func(f *os.File) error {
			w := history.NewWriter(f)
			for _, op := range a.hist {
				if err := w.Write(op); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// safeName makes a session id usable as a file name.
func safeName(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	out := b.String()
	if len(out) > 100 {
		h := fnv.New64a()
		h.Write([]byte(s))
		out = fmt.Sprintf("%s-%x", out[:80], h.Sum64())
	}
	if out == "" || out == "." || out == ".." {
		out = "session" + out
	}
	return out
}
