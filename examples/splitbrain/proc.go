package main

// This file is the parent's handle on an executor subprocess.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// proc is a running executor subprocess.
type proc struct {
	name     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	events   chan report   // its reports; closed when its stdout ends
	readDone chan struct{} // closed when its stdout ends
	stderr   *tailBuffer   // the end of its stderr, for error messages
	reaped   chan struct{} // closed once it has been waited for

	stopOnce sync.Once
	stopErr  error
}

// startProc starts exe as executor role with env added to this process's
// environment. The subprocess is killed with this process (see
// startProcess), and stop must be called on every path.
func startProc(exe, role string, env []string) (*proc, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(cmdEnv(), append(env, envRole+"="+role)...)
	p := &proc{name: role, cmd: cmd, events: make(chan report, 64), readDone: make(chan struct{}), stderr: &tailBuffer{}, reaped: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 2 * time.Second // Wait never hangs on pipes
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startProcess(cmd, p.reaped); err != nil {
		return nil, fmt.Errorf("start executor %s: %w", role, err)
	}
	go p.read(stdout)
	return p, nil
}

// cmdEnv is the environment the executors inherit: this process's, minus
// the variables the parent sets itself.
func cmdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case envRole, envMode, envSession, envTTL, envMini, envURL:
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *proc) read(stdout io.Reader) {
	defer close(p.readDone)
	defer close(p.events)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Event == "" {
			r = report{Event: "error", Err: fmt.Sprintf("unexpected output %q", sc.Text())}
		}
		p.events <- r
	}
}

// expect waits, at most timeout, for the executor's report of event.
func (p *proc) expect(ctx context.Context, event string, timeout time.Duration) (report, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case r, ok := <-p.events:
			switch {
			case !ok:
				return report{}, fmt.Errorf("executor %s exited before %q%s", p.name, event, p.stderr.tail())
			case r.Event == "error":
				return report{}, fmt.Errorf("executor %s: %s%s", p.name, r.Err, p.stderr.tail())
			case r.Event == event:
				return r, nil
			}
			return report{}, fmt.Errorf("executor %s reported %q, expected %q", p.name, r.Event, event)
		case <-ctx.Done():
			return report{}, fmt.Errorf("executor %s: no %q within %v: %w", p.name, event, timeout, context.Cause(ctx))
		}
	}
}

// send writes one command line to the executor.
func (p *proc) send(cmd string) error {
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		return fmt.Errorf("executor %s: send %q: %w", p.name, cmd, err)
	}
	return nil
}

// stop tells the executor to finish (closes its stdin) and gives it grace
// to exit on its own; then it is thawed (it may be frozen) and killed. The
// executor is always waited for, so it leaves no zombie, and its remaining
// reports stay readable with rest. stop returns an error when the executor
// did not exit cleanly within grace; calls after the first return the same.
func (p *proc) stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		_ = p.stdin.Close()
		timer := time.NewTimer(grace)
		defer timer.Stop()
		killed := false
		select {
		case <-p.readDone: // its stdout ended: it exited
		case <-timer.C:
			_ = thaw(p.cmd.Process) // in case it is frozen
			_ = p.cmd.Process.Kill()
			killed = true
			select {
			case <-p.readDone:
			case <-time.After(2 * time.Second):
			}
		}
		err := p.cmd.Wait() // bounded by WaitDelay
		close(p.reaped)
		switch {
		case killed:
			p.stopErr = fmt.Errorf("executor %s did not exit within %v; killed%s", p.name, grace, p.stderr.tail())
		case err != nil:
			p.stopErr = fmt.Errorf("executor %s: %w%s", p.name, err, p.stderr.tail())
		}
	})
	return p.stopErr
}

// rest returns the reports not read yet; call it after stop.
func (p *proc) rest() []report {
	var rs []report
	for {
		select {
		case r, ok := <-p.events:
			if !ok {
				return rs
			}
			rs = append(rs, r)
		default:
			return rs
		}
	}
}

// kill ends the executor now, on error paths; it is a no-op after stop.
func (p *proc) kill() { _ = p.stop(0) }

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - 4096; over > 0 {
		t.buf.Next(over)
	}
	return len(b), nil
}

// tail returns the buffer as a suffix for an error message, or "".
func (t *tailBuffer) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(t.buf.String())
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}

var errUnsupported = errors.New("splitbrain: freezing a process (SIGSTOP) needs Linux or another Unix")
