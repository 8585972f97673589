package lua_test

import "github.com/fencekit/fencekit/scripts/lua"

func init() {
	for sc, f := range map[*lua.Script][2]bool{ // retryable, read-only
		lua.SemAcquire:    {true, false},
		lua.SemRelease:    {false, false},
		lua.SemRefresh:    {true, false},
		lua.SemLimit:      {true, false},
		lua.SemInspect:    {true, false},
		lua.ElectProclaim: {true, false},
		lua.ElectLeader:   {true, true},
	} {
		expectedScripts[sc] = f
	}
}
