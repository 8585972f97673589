package lua_test

import "github.com/fencekit/fencekit/scripts/lua"

func init() {
	for sc, f := range map[*lua.Script][2]bool{ // retryable, read-only
		lua.UsageRecord:   {true, false},
		lua.UsageDelete:   {true, false},
		lua.UsageEntries:  {true, true},
		lua.UsageIndex:    {true, false},
		lua.BudgetSet:     {true, false},
		lua.BudgetReserve: {true, false},
		lua.BudgetSettle:  {true, false},
		lua.BudgetGet:     {true, false},
	} {
		expectedScripts[sc] = f
	}
}
