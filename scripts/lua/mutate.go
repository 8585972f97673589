package lua

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/mutant"
)

func init() {
	mutant.Make = func(s any, old, repl string, retryable bool) (any, error) {
		return mutantOf(s.(*Script), old, repl, retryable)
	}
}

// mutantOf returns a copy of s whose source has every occurrence of old
// replaced by repl and that is marked retryable or not, for the negative
// controls of fencekit's fault suite (chaos/run, through package
// internal/mutant), which run deliberately broken scripts in an executor
// subprocess to show that the checkers catch them; no library code calls
// it. The copy is not registered in All. It returns an error when old does
// not occur in the source.
func mutantOf(s *Script, old, repl string, retryable bool) (*Script, error) {
	if !strings.Contains(s.source, old) {
		return nil, fmt.Errorf("scripts/lua: %s: mutant: %q not in the source", s.name, old)
	}
	m := &Script{
		name:      s.name + " (mutant)",
		source:    strings.ReplaceAll(s.source, old, repl),
		retryable: retryable,
	}
	sum := sha1.Sum([]byte(m.source))
	m.sha1 = hex.EncodeToString(sum[:])
	if retryable {
		m.Lua = rueidis.NewLuaScriptRetryable(m.source)
	} else {
		m.Lua = rueidis.NewLuaScript(m.source)
	}
	return m, nil
}
