package run

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/fencekit/fencekit/internal/child"
)

// proc is one child process, stopped by its PID.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid after done
}

func spawn(cmd *exec.Cmd) (*proc, error) {
	if err := child.Start(cmd); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return errors.New("process exited")
	}
	return syscall.Kill(p.pid(), sig)
}

// stop sends SIGCONT (a paused process cannot act on SIGTERM) and SIGTERM,
// then SIGKILL after grace, and waits for the exit.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(p.pid(), syscall.SIGCONT)
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	<-p.done
}

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
