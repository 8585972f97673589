//go:build unix && !linux

package main

import "syscall"

// deathSig: only Linux has Pdeathsig; the parent kills replicas itself.
func deathSig() *syscall.SysProcAttr { return nil }
