//go:build unix && !linux

package main

import (
	"context"
	"os/exec"
	"time"
)

// startProcess starts cmd. Outside Linux there is no parent-death signal:
// the executors notice a dead parent when their stdin closes, unless they
// are frozen then.
func startProcess(cmd *exec.Cmd, _ <-chan struct{}) error { return cmd.Start() }

// waitStopped gives SIGSTOP a moment to land; only Linux is checked
// precisely (through /proc).
func waitStopped(ctx context.Context, _ int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}
