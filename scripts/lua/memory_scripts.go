package lua

// The scripts of package memory. Each variable's documentation is the
// header of its file.
var (
	// MemPut stores a batch of memory records; see mem_put.lua.
	MemPut = mustLoad("mem_put.lua")
	// MemDelete deletes memory records; see mem_delete.lua.
	MemDelete = mustLoad("mem_delete.lua")
	// MemReset deletes a memory scope and its descendants; see mem_reset.lua.
	MemReset = mustLoad("mem_reset.lua")
	// MemList reads a page of a scope's records; see mem_list.lua.
	MemList = mustLoad("mem_list.lua")
	// MemStats sweeps expired entries and counts records per scope; see mem_stats.lua.
	MemStats = mustLoad("mem_stats.lua")
)
