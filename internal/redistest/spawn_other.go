//go:build !linux

package redistest

import "os/exec"

// startCmd starts cmd. Outside Linux there is no parent-death signal, so a
// test binary that crashes may leave servers behind.
func startCmd(cmd *exec.Cmd) error {
	return cmd.Start()
}
