package sqltest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/child"
)

// requireEnv turns an unavailable server into a failure (as in
// internal/redistest).
const requireEnv = "FENCEKIT_REQUIRE_REDIS"

// unavailable skips the test, or fails it when requireEnv is "1".
func unavailable(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("sqltest: %s: %v (%s=1, so this is a failure)", what, err, requireEnv)
	}
	t.Skipf("sqltest: %s: %v; set %s=1 to make this a failure", what, err, requireEnv)
}

// findBin returns the path of the first of names found in PATH or dirs.
func findBin(dirs []string, names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			if p := filepath.Join(d, n); isExec(p) {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("none of %v found in PATH or %v", names, dirs)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// server is a database server process the test started.
type server struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

// start starts cmd (killed with this process, see package child) with its
// output kept for error messages.
func start(cmd *exec.Cmd) (*server, error) {
	s := &server{cmd: cmd, log: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := child.Start(cmd); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	return s, nil
}

// stop ends the server by its PID: SIGTERM, then SIGKILL after 10 s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// waitDB opens dsn with driver and pings until the server answers, the
// process exits or 30 s pass.
func waitDB(s *server, driver, dsn string) (*sql.DB, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return db, nil
		}
		select {
		case <-s.done:
			db.Close()
			return nil, fmt.Errorf("server exited: %v\n%s", err, s.log)
		default:
		}
		if time.Now().After(deadline) {
			db.Close()
			return nil, fmt.Errorf("no answer after 30s: %v\n%s", err, s.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runAs runs cmd as the postgres user when we are root (postgres refuses
// to run as root).
func runAs(cmd *exec.Cmd, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root and no postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return nil
}

// tempDir is a directory the postgres user can reach: t.TempDir's parents
// are private to root.
func tempDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

var pgDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// startPostgres initialises a cluster in a temporary directory and starts
// postgres on a free loopback port; it returns a lib/pq DSN.
func startPostgres(t *testing.T) string {
	t.Helper()
	initdb, err := findBin(pgDirs, "initdb")
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	postgres, err := findBin(pgDirs, "postgres")
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	dir := tempDir(t, "fencekit-pg-")
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "fencekit", "-A", "trust", "--no-sync", "-E", "UTF8")
	if err := runAs(cmd, dir); err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable(t, "PostgreSQL initdb", fmt.Errorf("%v\n%s", err, out))
	}
	port, err := child.FreePort(false)
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off")
	if err := runAs(cmd, dir); err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	s, err := start(cmd)
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	t.Cleanup(s.stop)
	dsn := fmt.Sprintf("postgres://fencekit@127.0.0.1:%d/postgres?sslmode=disable", port)
	db, err := waitDB(s, "postgres", dsn)
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	db.Close()
	return dsn
}

var mariaDirs = []string{"/usr/sbin", "/usr/bin"}

// startMariaDB initialises a data directory and starts mariadbd on a free
// loopback port with the grant tables skipped; it returns the address.
func startMariaDB(t *testing.T) string {
	t.Helper()
	install, err := findBin(mariaDirs, "mariadb-install-db", "mysql_install_db")
	if err != nil {
		unavailable(t, "MariaDB", err)
	}
	mariadbd, err := findBin(mariaDirs, "mariadbd", "mysqld")
	if err != nil {
		unavailable(t, "MariaDB", err)
	}
	dir := tempDir(t, "fencekit-maria-")
	data := filepath.Join(dir, "data")
	usr := []string{}
	if os.Geteuid() == 0 {
		usr = []string{"--user=root"}
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, usr...)
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		unavailable(t, "MariaDB install-db", fmt.Errorf("%v\n%s", err, out))
	}
	port, err := child.FreePort(false)
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--no-defaults", "--datadir=" + data, "--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port), "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--skip-grant-tables", "--skip-log-bin",
		"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M", "--log-error=" + filepath.Join(dir, "error.log")}, usr...)
	s, err := start(exec.Command(mariadbd, args...))
	if err != nil {
		unavailable(t, "MariaDB", err)
	}
	t.Cleanup(s.stop)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	db, err := waitDB(s, "mysql", "root@tcp("+addr+")/")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		unavailable(t, "MariaDB", fmt.Errorf("%w\n%s", err, log))
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE fencekit"); err != nil {
		t.Fatal(err)
	}
	return addr
}
