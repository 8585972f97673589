package run

import (
	"net"
	"time"
)

func netDialer() net.Dialer { return net.Dialer{Timeout: time.Second, KeepAlive: time.Second} }
