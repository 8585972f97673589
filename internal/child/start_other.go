//go:build !linux

package child

import "os/exec"

// Start starts cmd. Outside Linux there is no parent-death signal, so a
// process that crashes may leave its children behind.
func Start(cmd *exec.Cmd) error {
	return cmd.Start()
}
