package lua_test

import "github.com/fencekit/fencekit/scripts/lua"

// expectedScripts lists every script lua.All must return, with whether it
// is retryable and read-only. A package adding scripts adds its entries in
// its own file of this directory (see init functions there), so the flags
// are a deliberate choice, checked against the headers by TestAll.
var expectedScripts = map[*lua.Script][2]bool{ // retryable, read-only
	lua.Acquire:      {true, false},
	lua.Inspect:      {true, true},
	lua.ForceRelease: {false, false},
	lua.Refresh:      {true, false},
	lua.Release:      {false, false},

	lua.MsgsAppend:  {false, false},
	lua.MsgsPage:    {true, true},
	lua.StateDelete: {false, false},
	lua.StateIncr:   {false, false},
	lua.StateLoad:   {true, true},
	lua.StateSave:   {false, false},
	lua.StateStatus: {false, false},
}
