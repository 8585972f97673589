//go:build unix

package main

// This file is the parent's handle on the replica subprocesses.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// event is one line a replica prints on stdout.
type event struct {
	Replica string `json:"r"`
	Ev      string `json:"ev"` // leader, wrote, refused, error
	Term    uint64 `json:"term,omitempty"`
	Tick    int    `json:"tick,omitempty"`
	Fenced  bool   `json:"fenced,omitempty"`
	Err     string `json:"err,omitempty"`
	At      int64  `json:"at"` // when it happened, by the replica's clock (Unix ns)
}

type replica struct {
	name string
	cmd  *exec.Cmd
}

// startReplica starts this program again as replica name; its events go
// to out. The replica dies with the parent (Pdeathsig on Linux; killed on
// every other path by stopAll).
func startReplica(exe, name string, env []string, out chan<- event) (*replica, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append(env, envReplica+"="+name)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = deathSig()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start replica %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				out <- e
			}
		}
	}()
	return &replica{name: name, cmd: cmd}, nil
}

func (r *replica) signal(s syscall.Signal) error { return r.cmd.Process.Signal(s) }

func (r *replica) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}
