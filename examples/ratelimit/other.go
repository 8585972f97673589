//go:build !unix

// Command ratelimit needs a Unix system; see main.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ratelimit: needs Unix (SIGKILL of a subprocess)")
	os.Exit(2)
}
