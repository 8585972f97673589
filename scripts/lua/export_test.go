package lua

import "io/fs"

// ParseHeader exposes parseHeader to the tests of package lua_test: it
// returns the header fields and the Include lines of src.
func ParseHeader(name, src string) (fields map[string]string, include []string, err error) {
	h, err := parseHeader(name, src)
	return h.fields, h.include, err
}

// RequiredFields exposes the header lines every script must have.
var RequiredFields = requiredFields

// EmbeddedFiles returns the names of the embedded .lua files and their text.
func EmbeddedFiles() (map[string]string, error) {
	names, err := fs.Glob(files, "*.lua")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out[n] = string(b)
	}
	return out, nil
}
