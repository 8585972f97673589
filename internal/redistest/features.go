package redistest

import (
	"strconv"
	"strings"
	"testing"
)

// ServerInfo says which server a Server runs: tests that depend on a
// server feature detect it with ServerInfo or HasCommand instead of
// assuming one server version.
type ServerInfo struct {
	// Name is "redis", "valkey" or "miniredis".
	Name string
	// Version is the server's version ("8.0.6"; valkey_version on Valkey,
	// whose redis_version stays "7.2.4" for compatibility). Empty on
	// miniredis.
	Version string
	// Major and Minor are the first two numbers of Version.
	Major, Minor int
}

// AtLeast reports whether the server's version is major.minor or later.
// miniredis is never at least anything.
func (i ServerInfo) AtLeast(major, minor int) bool {
	return i.Major > major || i.Major == major && i.Minor >= minor
}

// Info returns the server's name and version, read from INFO server (one
// node of a cluster; all nodes run the same binary).
func (s *Server) Info(t testing.TB) ServerInfo {
	t.Helper()
	if s.Mini != nil {
		return ServerInfo{Name: "miniredis"}
	}
	m := s.Do(t, "INFO", "server")
	txt, err := m.ToString()
	if err != nil {
		t.Fatalf("redistest: INFO server: %v", err)
	}
	f := map[string]string{}
	for _, line := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	i := ServerInfo{Name: "redis", Version: f["redis_version"]}
	if v, ok := f["valkey_version"]; ok {
		i.Name, i.Version = "valkey", v
	} else if f["server_name"] == "valkey" {
		i.Name = "valkey"
	}
	parts := strings.SplitN(i.Version, ".", 3)
	if len(parts) >= 2 {
		i.Major, _ = strconv.Atoi(parts[0])
		i.Minor, _ = strconv.Atoi(parts[1])
	}
	return i
}

// HasCommand reports whether a real server knows the optional command
// name (COMMAND INFO; e.g. "VCARD" on Redis 8, "DELIFEQ" on Valkey 9). It
// is false on miniredis, which has no COMMAND INFO and emulates none of the
// optional commands fencekit probes (a test that registers fakes knows
// what it registered).
func (s *Server) HasCommand(t testing.TB, name string) bool {
	t.Helper()
	if s.Mini != nil {
		return false
	}
	m := s.Do(t, "COMMAND", "INFO", name)
	arr, err := m.ToArray()
	if err != nil {
		t.Fatalf("redistest: COMMAND INFO %s: %v", name, err)
	}
	return len(arr) == 1 && !arr[0].IsNil()
}

// CommandCalls returns how many times the server has run the command cmd
// (lower case, as INFO commandstats names it: "pexpire", "evalsha"),
// counting the calls scripts make. ok is false on miniredis, which keeps
// no command statistics, and on a Cluster, whose counts are per node. A
// test that compares counts needs a server of its own (NewPrivateRedis) or
// no other writer.
func (s *Server) CommandCalls(t testing.TB, cmd string) (n int64, ok bool) {
	t.Helper()
	if s.Kind != Redis {
		return 0, false
	}
	m := s.Do(t, "INFO", "commandstats")
	txt, err := m.ToString()
	if err != nil {
		t.Fatalf("redistest: INFO commandstats: %v", err)
	}
	for _, line := range strings.Split(txt, "\n") {
		if rest, found := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); found {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			n, err := strconv.ParseInt(rest[:end], 10, 64)
			if err != nil {
				t.Fatalf("redistest: INFO commandstats: %q: %v", line, err)
			}
			return n, true
		}
	}
	return 0, true
}
