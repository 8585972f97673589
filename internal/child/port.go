package child

import (
	"errors"
	"net"
	"strconv"
	"sync"
)

// maxBusPort keeps a Redis Cluster node's bus port (port+10000) valid.
const maxBusPort = 55535

// ports handed out by this process (cluster bus ports included), so that
// concurrently started servers never get the same port.
var ports struct {
	mu   sync.Mutex
	used map[int]bool
}

// FreePort returns a loopback port chosen by the kernel, free a moment ago
// and not handed out before by this process. With bus set, the port is
// below 55536 and port+10000 (the Redis Cluster bus port) is free and
// reserved as well.
func FreePort(bus bool) (int, error) {
	for range 500 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if bus && port > maxBusPort {
			continue
		}
		if reserve(port, bus) {
			return port, nil
		}
	}
	return 0, errors.New("child: no free loopback port found")
}

// reserve marks port (and port+10000 with bus) as used if they are free:
// not handed out before and bindable on loopback.
func reserve(port int, bus bool) bool {
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
	}
	want := []int{port}
	if bus {
		want = append(want, port+10000)
	}
	for _, p := range want {
		if ports.used[p] || !bindable(p) {
			return false
		}
	}
	for _, p := range want {
		ports.used[p] = true
	}
	return true
}

func bindable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
