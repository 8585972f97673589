package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fencekit/fencekit/internal/child"
)

const (
	startTimeout = 10 * time.Second // until a new server answers PING
	stopTimeout  = 2 * time.Second  // from SIGTERM to SIGKILL
	probeTimeout = 250 * time.Millisecond
	logTailLines = 20
)

// errNotFound marks a missing executable.
var errNotFound = errors.New("not found in PATH")

// lookPath finds an executable in PATH.
func lookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s %w", name, errNotFound)
	}
	return path, nil
}

// proc is one redis-server child process. Its directory holds the log file
// and whatever redis-server writes to --dir.
type proc struct {
	bin     string
	port    int
	dir     string
	logPath string
	args    []string
	env     []string // added to the environment (e.g. an LD_PRELOAD)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// baseArgs are the command-line arguments of every server.
func baseArgs(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--protected-mode", "no",
	}
}

// startServer starts redis-server in a new subdirectory of parent and waits
// until it answers PING. extra returns additional arguments for the chosen
// port. When the port turns out to be taken, it retries with another one.
func startServer(bin, parent string, cluster bool, extra func(port int) []string, env ...string) (*proc, error) {
	return launchOnFreePort(cluster, func(port int) (*proc, error) {
		dir := filepath.Join(parent, strconv.Itoa(port))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		p := &proc{bin: bin, port: port, dir: dir, logPath: filepath.Join(dir, "redis.log"), env: env}
		p.args = append(baseArgs(port, dir), extra(port)...)
		return p, nil
	})
}

// launchOnFreePort picks a free port, has setup describe the process for
// it, launches it and waits until it answers PING. A port is free when
// child.FreePort picks it, but another process (or an outgoing
// connection's source port) can take it before the server binds it: then
// it tries again with another port, three times in all.
func launchOnFreePort(cluster bool, setup func(port int) (*proc, error)) (*proc, error) {
	var lastErr error
	for range 3 {
		port, err := child.FreePort(cluster)
		if err != nil {
			return nil, err
		}
		p, err := setup(port)
		if err != nil {
			return nil, err
		}
		if err := p.launch(); err != nil {
			return nil, err
		}
		if lastErr = p.waitReady(); lastErr == nil {
			return p, nil
		}
		p.stop()
		if !strings.Contains(p.logTail(), "in use") {
			break
		}
	}
	return nil, lastErr
}

func (p *proc) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// launch starts the process (without waiting for it to be ready) and a
// goroutine that waits for it to exit.
func (p *proc) launch() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "### redistest: %s %s\n", p.bin, strings.Join(quoteArgs(p.args), " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := child.Start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait() // the exit status is in cmd.ProcessState
		close(done)
	}()
	return nil
}

func quoteArgs(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return q
}

func (p *proc) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// waitReady polls PING until the server answers, the process exits or
// startTimeout passes. Errors include the tail of the log.
func (p *proc) waitReady() error {
	cmd, done := p.current()
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for {
		select {
		case <-done:
			return p.errorf("redis-server on port %d exited during startup (%v)", p.port, cmd.ProcessState)
		default:
		}
		reply, err := rawString(p.addr(), probeTimeout, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return p.errorf("redis-server on port %d did not answer PING within %v (last error: %v)", p.port, startTimeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errorf returns an error with the tail of the log appended.
func (p *proc) errorf(format string, args ...any) error {
	return fmt.Errorf("%s\n%s", fmt.Sprintf(format, args...), p.logSection())
}

// logSection is the tail of the log with a heading, for error messages.
func (p *proc) logSection() string {
	return fmt.Sprintf("--- last lines of the log of redis-server on port %d ---\n%s", p.port, p.logTail())
}

// logTail returns the last lines of the log file.
func (p *proc) logTail() string {
	return fileTail(p.logPath, logTailLines)
}

func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends the process: SIGTERM, then SIGKILL after stopTimeout. It returns
// once the process has been waited for and is safe to call repeatedly.
func (p *proc) stop() {
	cmd, done := p.current()
	if cmd == nil || exited(done) {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		p.kill()
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	cmd, done := p.current()
	if cmd == nil || exited(done) {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// A process that survives SIGKILL this long is stuck in the kernel;
		// Pdeathsig or the OS will reap it, the tests must not hang.
	}
}

func exited(done chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// restart kills the process and starts it again with the same arguments.
func (p *proc) restart() error {
	p.kill()
	if err := p.launch(); err != nil {
		return err
	}
	return p.waitReady()
}
