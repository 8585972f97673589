package lua_test

import "github.com/fencekit/fencekit/scripts/lua"

func init() {
	for sc, flags := range map[*lua.Script][2]bool{ // retryable, read-only
		lua.StageCommit:  {false, false},
		lua.StageDiscard: {false, false},
		lua.StagePut:     {false, false},
		lua.StageRead:    {true, true},
	} {
		expectedScripts[sc] = flags
	}
}
