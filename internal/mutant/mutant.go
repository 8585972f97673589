// Package mutant makes deliberately broken copies of fencekit's Lua
// scripts for the negative controls of the fault suite (chaos/run), which
// must show that its checkers catch them. It is internal so that the
// public scripts/lua package exports no such hook; no library code uses
// it.
package mutant

import "fmt"

// Make is set by package scripts/lua in its init (scripts/lua imports this
// package, so this one cannot name its types): it returns a copy of
// s, a *lua.Script, whose source has every occurrence of old replaced by
// repl and that is marked retryable or not, or an error when old does not
// occur in the source. The copy is not registered in lua.All.
var Make func(s any, old, repl string, retryable bool) (any, error)

// Of is Make for a script of type S (*lua.Script).
func Of[S any](s S, old, repl string, retryable bool) (S, error) {
	var zero S
	if Make == nil {
		return zero, fmt.Errorf("mutant: package scripts/lua is not linked in")
	}
	m, err := Make(s, old, repl, retryable)
	if err != nil {
		return zero, err
	}
	return m.(S), nil
}
