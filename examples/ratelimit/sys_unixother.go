//go:build unix && !linux

package main

import "syscall"

// deathSig: only Linux has Pdeathsig; the parent kills executors itself.
func deathSig() *syscall.SysProcAttr { return nil }
