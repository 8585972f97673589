package lua

// The scripts of package election (whose leader holds the lock of the
// election name, taken with Acquire). Each variable's documentation is the
// header of its file.
var (
	// ElectProclaim sets the leader's value, fenced by its term; see
	// elect_proclaim.lua.
	ElectProclaim = mustLoad("elect_proclaim.lua")
	// ElectLeader reads the leader; see elect_leader.lua.
	ElectLeader = mustLoad("elect_leader.lua")
)
