package fencing_test

import (
	"errors"
	"fmt"

	"github.com/fencekit/fencekit/fencing"
)

// A resource outside Redis keeps the highest token it has accepted and
// rejects writes from older lock holders.
func ExampleGuard() {
	var g fencing.Guard
	doc := "empty"

	// Executor A held the lock with token 100, paused, and lost it;
	// executor B acquired it with token 101 and wrote.
	_ = g.Apply("report.md", 101, func() error { doc = "written by B"; return nil })

	// A wakes up and tries to write with its old token.
	err := g.Apply("report.md", 100, func() error { doc = "written by A"; return nil })
	fmt.Println(errors.Is(err, fencing.ErrStaleToken))
	fmt.Println(err)
	fmt.Println(doc)
	// Output:
	// true
	// fencing: stale token 100 for "report.md" (highest 101)
	// written by B
}

func ExampleParseToken() {
	tok, err := fencing.ParseToken("1795354942212600")
	fmt.Println(tok, err)
	_, err = fencing.ParseToken("1.7953549422126e+15") // Lua's tostring form
	fmt.Println(errors.Is(err, fencing.ErrInvalidToken))
	// Output:
	// 1795354942212600 <nil>
	// true
}
