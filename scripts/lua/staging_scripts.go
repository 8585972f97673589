package lua

// The scripts of package staging. Each variable's documentation is the
// header of its file.
var (
	// StagePut stages one tool call's change under a step; see stage_put.lua.
	StagePut = mustLoad("stage_put.lua")
	// StageRead reads the state and the staged changes a promote needs; see
	// stage_read.lua.
	StageRead = mustLoad("stage_read.lua")
	// StageCommit writes a promoted state document and removes the stage
	// fields it came from; see stage_commit.lua.
	StageCommit = mustLoad("stage_commit.lua")
	// StageDiscard drops the changes staged under a step; see
	// stage_discard.lua.
	StageDiscard = mustLoad("stage_discard.lua")
)
