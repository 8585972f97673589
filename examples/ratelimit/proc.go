//go:build unix

package main

// This file is the parent's handle on the executor subprocesses.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
)

// event is one line an executor prints on stdout.
type event struct {
	Exec     string `json:"x"`
	Ev       string `json:"ev"` // acquired, hold, releasing, done, error
	Token    uint64 `json:"tok,omitempty"`
	At       int64  `json:"at"`                 // by the executor's clock, Unix ns
	Deadline int64  `json:"deadline,omitempty"` // the lease's end by the executor's clock, Unix ns
	Err      string `json:"err,omitempty"`
}

type executor struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when its stdout ends
}

// startExecutor starts this program again as executor name; its events go
// to out.
func startExecutor(exe, name string, env []string, out chan<- event) (*executor, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append(env, envExec+"="+name)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = deathSig()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start executor %s: %w", name, err)
	}
	x := &executor{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(x.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				out <- e
			}
		}
	}()
	return x, nil
}

func (x *executor) kill() {
	_ = x.cmd.Process.Kill()
	_ = x.cmd.Wait()
}
