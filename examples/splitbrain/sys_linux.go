//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startProcess starts cmd so that the kernel kills it (SIGKILL) if this
// process dies, however it dies: Pdeathsig. The kernel sends the signal when
// the *thread* that started the child exits (https://go.dev/issue/27505),
// so the start runs on a locked OS thread that is kept until reaped is
// closed, after the child was waited for.
func startProcess(cmd *exec.Cmd, reaped <-chan struct{}) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		errc <- err
		if err == nil {
			<-reaped
		}
	}()
	return <-errc
}

// waitStopped waits until the kernel shows process pid as stopped (state
// "T" in /proc/<pid>/stat): kill(2) only queues SIGSTOP.
func waitStopped(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("process %d: %w", pid, err)
		}
		// "pid (comm) state ...": comm may hold spaces and parentheses.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d not stopped: %w", pid, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}
