package redistest

import (
	"strings"
	"syscall"
	"testing"
)

// Pause stops every process of a private server with SIGSTOP: connections
// stay open and nothing answers, as with a frozen VM or a partition that
// drops packets. The returned function resumes them (SIGCONT); it is also
// called at t.Cleanup and may be called more than once.
func (s *Server) Pause(t testing.TB) (resume func()) {
	t.Helper()
	if !s.private {
		t.Fatalf("redistest: Pause needs a server from NewPrivateRedis, not a shared %s server", s.Name())
	}
	signal := func(sig syscall.Signal) {
		for _, p := range s.procs {
			if cmd, done := p.current(); cmd != nil && !exited(done) {
				_ = cmd.Process.Signal(sig)
			}
		}
	}
	signal(syscall.SIGSTOP)
	resume = func() { signal(syscall.SIGCONT) }
	t.Cleanup(resume)
	return resume
}

// Kill ends every process of a private server with SIGKILL: connections
// break and new ones are refused. The server is not started again.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if !s.private {
		t.Fatalf("redistest: Kill needs a server from NewPrivateRedis, not a shared %s server", s.Name())
	}
	s.closeAdmin()
	for _, p := range s.procs {
		p.kill()
	}
}

// LogTail returns the last lines of the log of every process of a real
// server, each under a heading, for a failing test to print; "" for
// miniredis.
func (s *Server) LogTail() string {
	var b strings.Builder
	for _, p := range s.procs {
		b.WriteString(p.logSection())
		b.WriteString("\n")
	}
	return b.String()
}
