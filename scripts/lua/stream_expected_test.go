package lua_test

import "github.com/fencekit/fencekit/scripts/lua"

func init() {
	for sc, f := range map[*lua.Script][2]bool{ // retryable, read-only
		lua.StreamAppend: {false, false},
		lua.StreamGroup:  {true, false},
		lua.StreamRead:   {true, true},
	} {
		expectedScripts[sc] = f
	}
}
