// Package resp is a minimal RESP2 client for admin commands and readiness
// probes: one new connection per call, no client library, so it works on
// single cluster nodes, sentinels and half-started servers. The test
// helpers (internal/redistest) and the fault suite (chaos/run) use it.
package resp

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Error is a Redis error reply ("-ERR ...").
type Error string

func (e Error) Error() string { return string(e) }

// Do sends one command over a new RESP2 connection and returns the reply:
// string (simple and bulk strings), int64, []any, or nil. A top-level error
// reply is returned as an Error; nested error replies (inside
// arrays) are Error values. It needs no client library, so it works for
// readiness probes and for talking to single cluster nodes.
func Do(addr string, timeout time.Duration, args ...string) (any, error) {
	out, err := Pipeline(addr, timeout, args)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Pipeline sends commands over one new RESP2 connection (so that, for
// example, WAIT sees the connection's own writes) and returns their replies
// as Do does; the first error reply ends it.
func Pipeline(addr string, timeout time.Duration, cmds ...[]string) ([]any, error) {
	return PipelineTLS(addr, nil, timeout, cmds...)
}

// PipelineTLS is Pipeline over TLS with cfg (plain TCP when cfg is nil),
// for servers that listen on a tls-port only.
func PipelineTLS(addr string, cfg *tls.Config, timeout time.Duration, cmds ...[]string) ([]any, error) {
	var conn net.Conn
	var err error
	if cfg != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, cfg)
	} else {
		conn, err = net.DialTimeout("tcp", addr, timeout)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	out := make([]any, 0, len(cmds))
	for range cmds {
		v, err := read(r)
		if err != nil {
			return nil, err
		}
		if e, ok := v.(Error); ok {
			return nil, e
		}
		out = append(out, v)
	}
	return out, nil
}

// String is Do for commands that answer with a string (simple or bulk);
// an integer reply is returned in decimal.
func String(addr string, timeout time.Duration, args ...string) (string, error) {
	v, err := Do(addr, timeout, args...)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("%s: unexpected reply %#v", strings.Join(args, " "), v)
}

// read reads one RESP2 reply.
func read(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return Error(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = read(r); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unexpected RESP line %q", line)
}
