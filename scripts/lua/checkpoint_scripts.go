package lua

// The scripts of package checkpoint. Each variable's documentation is the
// header of its file.
var (
	// CpSave saves a checkpoint of a session; see cp_save.lua.
	CpSave = mustLoad("cp_save.lua")
	// CpGet reads one checkpoint or the latest; see cp_get.lua.
	CpGet = mustLoad("cp_get.lua")
	// CpList reads a page of checkpoints, newest first; see cp_list.lua.
	CpList = mustLoad("cp_list.lua")
	// CpRestore resets a session to a checkpoint; see cp_restore.lua.
	CpRestore = mustLoad("cp_restore.lua")
	// CpPrune deletes all but the newest checkpoints; see cp_prune.lua.
	CpPrune = mustLoad("cp_prune.lua")
)
