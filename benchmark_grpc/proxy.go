package benchgrpc

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxyDialTimeout bounds the proxy's dial of its target for each accepted connection.
const proxyDialTimeout = time.Second

// Proxy is a metering TCP relay on loopback: it accepts connections on an ephemeral 127.0.0.1 port,
// dials its target for each one and copies bytes both ways, counting every byte it forwards. The
// counters are what the benchmarks report as wire bytes: everything a transport puts on the socket
// (framing, headers, handshakes, pings, window updates) and nothing else.
//
// All methods are safe for concurrent use. Close stops the listener, closes every relayed connection
// and returns once all of the proxy's goroutines have exited.
type Proxy struct {
	ln     net.Listener
	target string
	up     atomic.Uint64 // client -> server
	down   atomic.Uint64 // server -> client

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewProxy listens on 127.0.0.1:0 and relays every accepted connection to target ("host:port").
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's listening address, "127.0.0.1:port": clients dial this instead of the
// target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// BytesUp returns the bytes forwarded from clients to the target so far.
func (p *Proxy) BytesUp() uint64 { return p.up.Load() }

// BytesDown returns the bytes forwarded from the target to clients so far.
func (p *Proxy) BytesDown() uint64 { return p.down.Load() }

// Bytes returns the bytes forwarded in both directions so far.
func (p *Proxy) Bytes() uint64 { return p.up.Load() + p.down.Load() }

// Close stops accepting, closes all relayed connections and waits for the proxy's goroutines. It is
// idempotent and always returns nil.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		_ = p.ln.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
	return nil
}

// track registers c for Close; it reports false (and closes c) once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed
		}
		if !p.track(client) {
			return
		}
		p.wg.Add(1)
		go p.relay(client)
	}
}

// relay dials the target for client and pumps both directions until both have ended.
func (p *Proxy) relay(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, proxyDialTimeout)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)

	done := make(chan struct{})
	go func() {
		pump(server, client, &p.up)
		close(done)
	}()
	pump(client, server, &p.down)
	<-done
}

// pump copies src to dst, adding each forwarded chunk to n, until either side fails; it then
// half-closes dst so the peer sees EOF, or closes it outright if that is not possible.
func pump(dst, src net.Conn, n *atomic.Uint64) {
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(uint64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		if tc.CloseWrite() == nil {
			return
		}
	}
	_ = dst.Close()
}
