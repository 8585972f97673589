//go:build linux

package child

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// The kernel sends Pdeathsig when the *thread* that started the child exits,
// not the process (https://go.dev/issue/27505), and the Go runtime ends a
// thread when a goroutine locked to it exits. So every child is started
// from one goroutine that locks its thread and never returns: the signal
// then fires only when this process itself dies.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// Start starts cmd so that it is killed with SIGKILL when this process
// dies. Other SysProcAttr fields of cmd are kept.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go spawnLoop(spawner.reqs)
	})
	req := spawnReq{cmd: cmd, errc: make(chan error, 1)}
	spawner.reqs <- req
	return <-req.errc
}

func spawnLoop(reqs <-chan spawnReq) {
	runtime.LockOSThread() // never unlocked, see spawner
	for req := range reqs {
		req.errc <- req.cmd.Start()
	}
}
