//go:build linux

package redistest

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// The kernel sends Pdeathsig when the *thread* that started the child exits,
// not the process (https://go.dev/issue/27505), and the Go runtime ends a
// thread when a goroutine locked to it exits. So all servers are started
// from one goroutine that locks its thread and never returns: the signal
// then fires only when the test binary itself dies.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// startCmd starts cmd so that it is killed with SIGKILL when the test binary
// dies.
func startCmd(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
