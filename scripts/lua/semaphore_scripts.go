package lua

// The scripts of package semaphore. Each variable's documentation is the
// header of its file.
var (
	// SemAcquire takes permits or queues for them; see sem_acquire.lua.
	SemAcquire = mustLoad("sem_acquire.lua")
	// SemRelease gives permits back and hands them on; see sem_release.lua.
	SemRelease = mustLoad("sem_release.lua")
	// SemRefresh extends a permit lease; see sem_refresh.lua.
	SemRefresh = mustLoad("sem_refresh.lua")
	// SemLimit sets a semaphore's number of permits; see sem_limit.lua.
	SemLimit = mustLoad("sem_limit.lua")
	// SemInspect reads a semaphore's state; see sem_inspect.lua.
	SemInspect = mustLoad("sem_inspect.lua")
)
