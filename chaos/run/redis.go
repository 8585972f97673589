package run

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fencekit/fencekit/internal/child"
	"github.com/fencekit/fencekit/internal/skew"
)

// node is one redis-server or redis-sentinel process with its own port,
// directory and config; restart starts it again on the same port.
type node struct {
	port     int
	dir      string
	bin      string
	conf     string // config file
	p        *proc
	sentinel bool
	skewLib  string // the clock shim the server runs under ("": none), see skew.go
}

func (n *node) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// newNode writes a config with lines and starts the server. A port is free
// when FreePort picks it, but another process (or an outgoing connection's
// source port) can take it before the server binds it; then the node is
// set up again on another port, up to three times (as redistest does).
func newNode(parent string, sentinel, bus bool, lines func(port int, dir string) []string, opts ...func(*node)) (*node, error) {
	for attempt := 1; ; attempt++ {
		n, err := configNode(parent, sentinel, bus, lines, opts...)
		if err != nil {
			return nil, err
		}
		err = n.start()
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "in use") {
			return n, err
		}
	}
}

// freePort picks a node's port; a variable so that a test can hand out a
// taken one.
var freePort = child.FreePort

// configNode picks a port and writes the node's directory and config.
func configNode(parent string, sentinel, bus bool, lines func(port int, dir string) []string, opts ...func(*node)) (*node, error) {
	port, err := freePort(bus)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, strconv.Itoa(port))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := &node{port: port, dir: dir, bin: "redis-server", sentinel: sentinel}
	if sentinel {
		n.bin = "redis-sentinel"
	}
	for _, o := range opts {
		o(n)
	}
	if n.skewLib != "" {
		if err := os.WriteFile(n.skewFile(), []byte("0"), 0o644); err != nil {
			return nil, err
		}
	}
	base := []string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"daemonize no",
		"protected-mode no",
		"dir " + dir,
		"logfile " + filepath.Join(dir, "log"),
	}
	n.conf = filepath.Join(dir, "redis.conf")
	body := strings.Join(append(base, lines(port, dir)...), "\n") + "\n"
	if err := os.WriteFile(n.conf, []byte(body), 0o644); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *node) start() error {
	bin, err := exec.LookPath(n.bin)
	if err != nil {
		return fmt.Errorf("run: %s not found (Debian: apt-get install -y redis-server redis-sentinel redis-tools): %w", n.bin, err)
	}
	cmd := exec.Command(bin, n.conf)
	cmd.Dir = n.dir
	if n.skewLib != "" {
		cmd.Env = append(os.Environ(), skew.Env(n.skewLib, n.skewFile())...)
	}
	p, err := spawn(cmd)
	if err != nil {
		return err
	}
	n.p = p
	err = waitFor(10*time.Second, n.addr()+" PING", func() error {
		if p.exited() {
			return giveUp{errors.New("exited: " + fileTail(filepath.Join(n.dir, "log"), 600))}
		}
		_, err := rawString(n.addr(), 500*time.Millisecond, "PING")
		return err
	})
	if err != nil {
		p.kill()
	}
	return err
}

// kill9 kills the server with SIGKILL.
func (n *node) kill9() { n.p.kill() }

// stop stops the server (SIGCONT, SIGTERM, then SIGKILL).
func (n *node) stop() {
	if n != nil && n.p != nil {
		n.p.stop(3 * time.Second)
	}
}

func (n *node) signal(sig syscall.Signal) error { return n.p.signal(sig) }

// pause freezes the server with SIGSTOP for d, then resumes it (also when
// stopping failed half-way, so no server is left frozen).
func (n *node) pause(d time.Duration) error {
	if err := n.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d)
	return n.signal(syscall.SIGCONT)
}

// do runs an admin command on the node.
func (n *node) do(args ...string) (string, error) {
	return rawString(n.addr(), 2*time.Second, args...)
}

// restartAsReplica rewrites the config to replicate primary and starts the
// server again.
func (n *node) restartAsReplica(primary string) error {
	b, err := os.ReadFile(n.conf)
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(l, "replicaof ") {
			lines = append(lines, l)
		}
	}
	host, port, _ := strings.Cut(primary, ":")
	lines = append(lines, "replicaof "+host+" "+port)
	if err := os.WriteFile(n.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return n.start()
}
