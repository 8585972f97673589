package lua_test

import "github.com/fencekit/fencekit/scripts/lua"

func init() {
	for sc, f := range map[*lua.Script][2]bool{ // retryable, read-only
		lua.MemDelete: {false, false},
		lua.MemList:   {true, true},
		lua.MemPut:    {false, false},
		lua.MemReset:  {false, false},
		lua.MemStats:  {true, false},
	} {
		expectedScripts[sc] = f
	}
}
