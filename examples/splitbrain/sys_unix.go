//go:build unix

package main

import (
	"os"
	"syscall"
)

// freeze stops p the way a debugger or a long stall would: SIGSTOP cannot
// be caught or ignored, and nothing in p runs until thaw.
func freeze(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }

// thaw resumes a process stopped by freeze.
func thaw(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
