//go:build linux

package main

import "syscall"

// deathSig makes the kernel kill a replica when the parent dies.
func deathSig() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
