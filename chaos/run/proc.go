package run

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// The kernel sends Pdeathsig when the thread that started a child exits
// (https://go.dev/issue/27505), so every child is started from one goroutine
// that locks its thread and never returns: the signal then fires only when
// the orchestrator itself dies.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func startCmd(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked, see spawner
			for req := range spawner.reqs {
				req.errc <- req.cmd.Start()
			}
		}()
	})
	req := spawnReq{cmd: cmd, errc: make(chan error, 1)}
	spawner.reqs <- req
	return <-req.errc
}

// proc is one child process, stopped by its PID.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid after done
}

func spawn(cmd *exec.Cmd) (*proc, error) {
	if err := startCmd(cmd); err != nil {
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

var portMu sync.Mutex
var portsGiven = map[int]bool{}

// freePort returns a loopback port that was free a moment ago and that this
// process has not handed out before. Cluster nodes also need port+10000
// free (the bus port), so bus asks for ports below 55536 with a free twin.
func freePort(bus bool) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 500 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if portsGiven[port] || (bus && port+10000 > 65535) {
			continue
		}
		if bus {
			lb, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
			if err != nil {
				continue
			}
			lb.Close()
			portsGiven[port+10000] = true
		}
		portsGiven[port] = true
		return port, nil
	}
	return 0, errors.New("run: no free loopback port")
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
