package run

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ProxyMode is what a [Proxy] does to the bytes it forwards.
type ProxyMode int32

// The proxy modes.
const (
	// ProxyPass forwards bytes as they come.
	ProxyPass ProxyMode = iota
	// ProxyLatency delays every chunk, both directions, by the latency
	// given to SetMode.
	ProxyLatency
	// ProxyReplyLatency delays only the server-to-client chunks.
	ProxyReplyLatency
	// ProxyBlackhole holds every chunk until the mode changes: requests
	// reach the server late (after the client may have given up) or never.
	ProxyBlackhole
	// ProxyDropReply forwards requests, and when a reply comes back it
	// drops it and resets both connections: the command ran but its
	// caller cannot know.
	ProxyDropReply
)

// Proxy is a TCP proxy from a loopback port to an upstream address that
// injects latency, blackholes, connection resets and dropped replies. The
// zero value is not usable; see [NewProxy].
type Proxy struct {
	ln       net.Listener
	upMu     sync.Mutex
	upstream string
	mode     atomic.Int32
	latency  atomic.Int64
	change   chan struct{} // closed and replaced on every mode change

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards to upstream.
func NewProxy(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}, change: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode switches the mode; latency is used by ProxyLatency.
func (p *Proxy) SetMode(m ProxyMode, latency time.Duration) {
	p.latency.Store(int64(latency))
	p.mode.Store(int32(m))
	p.mu.Lock()
	close(p.change)
	p.change = make(chan struct{})
	p.mu.Unlock()
}

// Reset closes every open connection with a TCP RST.
func (p *Proxy) Reset() {
	p.mu.Lock()
	for c := range p.conns {
		rst(c)
	}
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	close(p.change)
	p.change = make(chan struct{})
	p.mu.Unlock()
	p.wg.Wait()
}

func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		if ProxyMode(p.mode.Load()) == ProxyBlackhole {
			// A blackholed link accepts nothing useful either: hold the
			// connection without an upstream until the mode changes.
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				if !p.track(down) {
					return
				}
				p.waitPass()
				p.untrack(down)
				p.serve(down)
			}()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(down)
		}()
	}
}

func (p *Proxy) waitPass() {
	for ProxyMode(p.mode.Load()) == ProxyBlackhole {
		p.mu.Lock()
		ch, closed := p.change, p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		<-ch
	}
}

// SetUpstream makes new connections go to addr (open ones stay).
func (p *Proxy) SetUpstream(addr string) {
	p.upMu.Lock()
	p.upstream = addr
	p.upMu.Unlock()
}

func (p *Proxy) serve(down net.Conn) {
	p.upMu.Lock()
	addr := p.upstream
	p.upMu.Unlock()
	up, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		rst(down)
		return
	}
	if !p.track(down) || !p.track(up) {
		down.Close()
		up.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(up, down, false) }()
	go func() { defer wg.Done(); p.pipe(down, up, true) }()
	wg.Wait()
	p.untrack(down)
	p.untrack(up)
}

// pipe copies src to dst; reply is true for the server-to-client direction.
func (p *Proxy) pipe(dst, src net.Conn, reply bool) {
	defer func() {
		rst(dst)
		rst(src)
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch ProxyMode(p.mode.Load()) {
			case ProxyLatency:
				time.Sleep(time.Duration(p.latency.Load()))
			case ProxyReplyLatency:
				if reply {
					time.Sleep(time.Duration(p.latency.Load()))
				}
			case ProxyBlackhole:
				p.waitPass()
			case ProxyDropReply:
				if reply {
					return // drop the reply; the deferred resets follow
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}
