package staging

import (
	"bytes"
	"errors"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/fencekit/fencekit/statestore"
)

// emptyDoc stands in for a state document that is empty or null.
var emptyDoc = []byte("{}")

// applyAll applies changes in order to doc, each one's patches and then
// its merge, and returns the result. Nothing applied: doc unchanged. An
// empty or null document is taken as {}. A change that cannot be applied
// gives a *PatchError naming it; a document that grows beyond maxBytes
// gives ErrTooLarge (checked after each change, so a pathological change
// cannot make the next one work on a huge document).
func applyAll(id string, doc []byte, changes []Staged, maxBytes int) ([]byte, error) {
	if len(changes) == 0 {
		return doc, nil
	}
	if t := bytes.TrimSpace(doc); len(t) == 0 || string(t) == "null" {
		doc = emptyDoc
	}
	opts := jsonpatch.NewApplyOptions()
	opts.EscapeHTML = false
	// Bound what "copy" operations may add; the library has no limit by
	// default.
	opts.AccumulatedCopySizeLimit = int64(maxBytes)
	for i := 0; i < len(changes); {
		// Changes without a merge part are applied together: one parse and
		// one serialisation of the document instead of one per change.
		j := i
		for j < len(changes) && len(changes[j].Merge) == 0 {
			j++
		}
		if j-i > 1 {
			if out, err := applyBatch(doc, changes[i:j], opts); err == nil && len(out) <= maxBytes {
				doc, i = out, j
				continue
			}
			// A change of the batch fails (or the document grows too
			// large): apply them one by one to find which.
		}
		if j == i {
			j = i + 1
		}
		for ; i < j; i++ {
			c := &changes[i]
			var err error
			doc, err = applyOne(doc, &c.Change, opts)
			if err != nil {
				return nil, &PatchError{ID: id, Step: c.Step, ToolCallID: c.ToolCallID, Err: err}
			}
			if len(doc) > maxBytes {
				return nil, fmt.Errorf("%w: state document of %d bytes after tool call %q (max %d)",
					statestore.ErrTooLarge, len(doc), c.ToolCallID, maxBytes)
			}
		}
	}
	return doc, nil
}

// applyBatch applies the patches of changes (none with a merge part) as one
// patch.
func applyBatch(doc []byte, changes []Staged, opts *jsonpatch.ApplyOptions) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	var all jsonpatch.Patch
	for i := range changes {
		if len(changes[i].Patches) == 0 {
			continue
		}
		p, err := jsonpatch.DecodePatch(changes[i].Patches)
		if err != nil {
			return nil, err
		}
		all = append(all, p...)
	}
	if len(all) == 0 {
		return doc, nil
	}
	return all.ApplyWithOptions(doc, opts)
}

// errPanic reports a patch that made the JSON patch library panic: the
// input is untrusted, so a library defect must not take the process down.
var errPanic = errors.New("the patch library failed on this input")

func applyOne(doc []byte, c *Change, opts *jsonpatch.ApplyOptions) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	if len(c.Patches) > 0 {
		p, err := jsonpatch.DecodePatch(c.Patches)
		if err != nil {
			return nil, err
		}
		if doc, err = p.ApplyWithOptions(doc, opts); err != nil {
			return nil, err
		}
	}
	if len(c.Merge) > 0 {
		if t := bytes.TrimSpace(c.Merge); len(t) == 0 || t[0] != '{' {
			return nil, errors.New("merge is not a JSON object")
		}
		if doc, err = jsonpatch.MergePatch(doc, c.Merge); err != nil {
			return nil, err
		}
	}
	return doc, nil
}
