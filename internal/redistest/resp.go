package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// respError is a Redis error reply ("-ERR ...").
type respError string

func (e respError) Error() string { return string(e) }

// rawDo sends one command over a new RESP2 connection and returns the reply:
// string (simple and bulk strings), int64, []any, or nil. A top-level error
// reply is returned as a respError error; nested error replies (inside
// arrays) are respError values. It needs no client library, so it works for
// readiness probes and for talking to single cluster nodes.
func rawDo(addr string, timeout time.Duration, args ...string) (any, error) {
	out, err := rawPipeline(addr, timeout, args)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// rawPipeline sends commands over one new RESP2 connection (so that, for
// example, WAIT sees the connection's own writes) and returns their replies
// as rawDo does; the first error reply ends it.
func rawPipeline(addr string, timeout time.Duration, cmds ...[]string) ([]any, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
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
		v, err := readReply(r)
		if err != nil {
			return nil, err
		}
		if e, ok := v.(respError); ok {
			return nil, e
		}
		out = append(out, v)
	}
	return out, nil
}

// rawString is rawDo for commands that answer with a (simple or bulk) string.
func rawString(addr string, timeout time.Duration, args ...string) (string, error) {
	v, err := rawDo(addr, timeout, args...)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: unexpected reply %#v", strings.Join(args, " "), v)
	}
	return s, nil
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (any, error) {
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
		return respError(body), nil
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
			if arr[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unexpected RESP line %q", line)
}
