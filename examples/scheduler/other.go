//go:build !unix

// Command scheduler needs a Unix system (SIGSTOP); see main.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "scheduler: needs Unix (SIGSTOP)")
	os.Exit(2)
}
