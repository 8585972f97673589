package redistest

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fencekit/fencekit/internal/resp"
)

// respError is the raw RESP2 client's error reply (package resp).
type respError = resp.Error

// tlsAddrs maps the address of every TLS server this binary started to
// the client configuration for it, so that the raw probes below (PING
// while starting, CLUSTER INFO, FLUSHALL) speak TLS to it. Ports are never
// handed out twice in one binary (child.FreePort), so entries need no
// removal.
var tlsAddrs sync.Map // string -> *tls.Config

func tlsFor(addr string) *tls.Config {
	if v, ok := tlsAddrs.Load(addr); ok {
		return v.(*tls.Config)
	}
	return nil
}

// rawPipeline is resp.Pipeline, over TLS for the servers in tlsAddrs.
func rawPipeline(addr string, timeout time.Duration, cmds ...[]string) ([]any, error) {
	return resp.PipelineTLS(addr, tlsFor(addr), timeout, cmds...)
}

// rawDo is resp.Do, over TLS for the servers in tlsAddrs.
func rawDo(addr string, timeout time.Duration, args ...string) (any, error) {
	out, err := rawPipeline(addr, timeout, args)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// rawString is resp.String, over TLS for the servers in tlsAddrs.
func rawString(addr string, timeout time.Duration, args ...string) (string, error) {
	v, err := rawDo(addr, timeout, args...)
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
