// Package leakcheck finds goroutines that are still running code from the
// github.com/fencekit/fencekit module after the tests of a package finished.
//
// It is deliberately tiny: it parses the output of runtime.Stack for all
// goroutines and reports every goroutine that has a frame (or a "created by"
// line) in the module, except
//
//   - the goroutine calling Find,
//   - the main goroutine and the goroutines of the testing framework (those
//     created by package testing, which run test, benchmark and fuzz
//     functions),
//   - goroutines whose module frames all belong to the packages leakcheck,
//     redistest and child themselves (their helper goroutines are expected
//     to live as long as the test binary).
//
// Exclusion is by exact package: a frame of leakcheck_test or redistest_test
// (external test packages) still counts as module code.
//
// Goroutines started by third-party libraries, for example the background
// goroutines of a rueidis client that a test forgot to close, are not
// reported.
//
// Most tests get this check for free through redistest.Main, which calls
// Check after m.Run.
package leakcheck
