package lua_test

import "github.com/fencekit/fencekit/scripts/lua"

func init() {
	for sc, f := range map[*lua.Script][2]bool{ // retryable, read-only
		lua.CpGet:     {true, true},
		lua.CpList:    {true, true},
		lua.CpPrune:   {false, false},
		lua.CpRestore: {false, false},
		lua.CpSave:    {false, false},
	} {
		expectedScripts[sc] = f
	}
}
