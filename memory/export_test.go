package memory

// SetParallelScoreMin lets tests run the parallel scoring path on small
// data; it returns a function that restores the previous value.
func SetParallelScoreMin(n int) (restore func()) {
	old := parallelScoreMin
	parallelScoreMin = n
	return func() { parallelScoreMin = old }
}
