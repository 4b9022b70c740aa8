package rpc2

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// Conn is one end of an rpc2 connection. Both ends are equal: each can Call,
// Go and Notify the other and serve the other's requests with the handlers of
// its Registry. Handlers receive the Conn, so they can call back.
//
// All methods are safe for concurrent use. A Conn serves from NewConn (or
// Server.ServeConn) until Close, a transport failure, or a protocol violation
// by the peer; then Done is closed and Err tells why.
type Conn struct {
	nc     net.Conn
	reg    *Registry
	cfg    *config
	codec  Codec
	sdec   streamDecoder // codec, if it can decode from the stream
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	vctx   context.Context // context.WithoutCancel(ctx): values for handler contexts

	fr *frameReader // owned by the read loop

	// Write side, see send.go.
	wmu      sync.Mutex
	wbuf     []byte // frames waiting to be written
	wspare   []byte // the other half of the double buffer
	flushing bool   // a goroutine is writing; it writes wbuf before it stops
	werr     error  // sticky: the write side has failed or the conn has ended
	wwait    chan struct{}
	writerOn atomic.Bool // a writer goroutine runs (started on demand, see wake)
	appended uint64      // bytes ever appended to wbuf
	written  uint64      // bytes handed to nc.Write
	queued   atomic.Bool // wbuf holds frames of Queue that nobody is writing yet

	// Pending outgoing calls, see call.go.
	pmu     sync.Mutex
	seq     uint64
	pending map[uint64]*Call
	pclosed bool

	// Sending side of flow control, see credit.go: requests and
	// notifications we may send before the peer returns credit.
	cmu     sync.Mutex
	credits int64
	cwait   chan struct{}
	starved atomic.Int64 // monoNow when a sender began to wait for credit; 0: none

	// Dispatch of incoming requests, see dispatch.go.
	sem          chan struct{} // one token per non-ordered worker
	handoff      chan *request // unbuffered: to a parked worker
	npending     atomic.Int32  // len(pending), read without pmu
	queue        chan *request // requests waiting for a worker (room for the window)
	orderedQ     chan *request // created by the read loop on first use
	orderedOn    atomic.Bool   // an ordered worker runs
	ready        chan struct{} // closed when handlers may run (after OnConnect)
	inflight     atomic.Int64  // requests read and not yet finished (<= window)
	busy         atomic.Int64  // requests read and not yet answered (reply queued), notifications not yet handled
	freed        atomic.Int64  // finished notifications not yet credited
	settingsSeen bool          // read loop only
	draining     atomic.Bool   // server shutdown: refuse new requests
	drainErr     error         // written once, before draining is set
	drainOnce    sync.Once
	drainedOnce  sync.Once      // the OnDrained hook
	closing      atomic.Bool    // drained: the writer ends the write side once all is written
	wshut        atomic.Bool    // the write side was ended by a drain
	endMode      atomic.Uint32  // how the handlers left at the end are treated, see drain.go
	wg           sync.WaitGroup // workers, ordered worker, writer, context watcher, timers
	// gmu guards ended: once the read loop waits for wg, no goroutine
	// is added to it (see spawn)
	gmu   sync.Mutex
	ended bool
	// retire asks parked workers to exit (an idle connection keeps none)
	retire chan struct{}
	// stopWatch and stopTimers release the parent-context watch and the
	// timers, which run as callbacks rather than goroutines of their own
	stopWatch  func()
	stopTimers func()
	// afterEnd is the server's end-of-connection work (OnDisconnect), run
	// by the read loop after done is closed
	afterEnd func(*Conn)

	// Contexts of the requests read and not finished, by seq, so that a
	// cancel frame finds them; see active.go.
	active activeTable

	// Keepalive and limits, see keepalive.go and timeout.go.
	reads  atomic.Uint64 // transport reads that returned bytes
	frames atomic.Uint64 // whole frames read (idle timeout)
	wstart atomic.Int64  // monoNow when the current transport write began; 0: none

	// Gate, see gate.go.
	gated        atomic.Bool
	codecSkipped bool // read loop only: a codec body was skipped unread

	endOnce sync.Once
	emu     sync.Mutex
	err     error
	done    chan struct{}

	vmu    sync.Mutex
	values map[any]any
}

// NewConn starts serving nc at once and returns the Conn; it owns nc from now
// on and closes it when the Conn ends. r holds the handlers for the peer's
// requests; it may be nil (every request then gets a CodeUnknownMethod
// error). Server-only options (WithOnConnect, WithOnDisconnect) are ignored.
// If an option is invalid (or nc is nil) the returned Conn has already ended
// with an error wrapping ErrInvalid.
func NewConn(nc net.Conn, r *Registry, opts ...Option) *Conn {
	cfg, err := newConfig(opts)
	return newConn(context.Background(), nc, r, cfg, err, false, nil)
}

// Dial connects to address on the named network (as net.Dialer.DialContext
// does, with ctx bounding only the dial) and returns a Conn serving it with
// the handlers of r.
func Dial(ctx context.Context, network, address string, r *Registry, opts ...Option) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c := NewConn(nc, r, opts...)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// newConn makes a Conn and starts its read loop; afterEnd, if not nil, runs
// on the read loop once the connection has ended and done is closed.
func newConn(base context.Context, nc net.Conn, r *Registry, cfg *config, cfgErr error, gated bool, afterEnd func(*Conn)) *Conn {
	c := &Conn{
		nc:       nc,
		reg:      r,
		cfg:      cfg,
		log:      cfg.log,
		pending:  make(map[uint64]*Call),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		afterEnd: afterEnd,
	}
	c.ctx, c.cancel = context.WithCancel(base)
	c.vctx = context.WithoutCancel(c.ctx)
	if cfgErr == nil && nc == nil {
		cfgErr = fmt.Errorf("%w: nil net.Conn", ErrInvalid)
	}
	if cfgErr != nil {
		c.fail(cfgErr)
		close(c.ready)
		close(c.done)
		if afterEnd != nil {
			afterEnd(c)
		}
		return c
	}
	c.codec = cfg.newCodec()
	c.sdec, _ = c.codec.(streamDecoder)
	c.fr = newFrameReader(countReader{nc, &c.reads}, cfg.maxMessage)
	c.active.init(cfg.window)
	c.sem = make(chan struct{}, cfg.maxConcurrency)
	c.queue = make(chan *request, cfg.window)
	c.handoff = make(chan *request)
	if !gated {
		close(c.ready)
	}
	c.retire = make(chan struct{})
	c.gated.Store(cfg.limits.gate != nil)
	// The settings frame is the first frame on the wire: queued before any
	// other sender can run, written by the writer goroutine (NewConn must
	// not block on a write).
	c.sendControl(kindSettings, uint64(cfg.window), false)
	if cfg.callTimeout > 0 || cfg.keepalive > 0 || cfg.limits.timed() {
		c.startTimers()
	}
	if base.Done() != nil {
		c.watch(base)
	}
	go c.readLoop()
	return c
}

// watch ends the connection when its parent context ends. It is a callback
// of the context, not a goroutine: an idle connection costs no stack for it.
func (c *Conn) watch(base context.Context) {
	stop := context.AfterFunc(base, func() {
		if !c.enter() {
			return // the connection has ended
		}
		defer c.wg.Done()
		c.fail(fmt.Errorf("%w: %w", ErrClosed, context.Cause(base)))
	})
	c.stopWatch = func() { stop() }
}

// spawn runs fn on a new goroutine that the connection's end waits for,
// unless the connection has ended (then it reports false).
func (c *Conn) spawn(fn func()) bool {
	if !c.enter() {
		return false
	}
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// enter counts the caller (a new goroutine, or a timer callback) in wg,
// unless the connection has ended; whoever entered calls c.wg.Done.
func (c *Conn) enter() bool {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.ended {
		return false
	}
	c.wg.Add(1)
	return true
}

// waitGoroutines waits, at the end of the read loop, for every goroutine and
// callback of the connection, and makes sure no new one starts.
func (c *Conn) waitGoroutines() {
	c.gmu.Lock()
	c.ended = true
	c.gmu.Unlock()
	if c.stopWatch != nil {
		c.stopWatch()
	}
	if c.stopTimers != nil {
		c.stopTimers()
	}
	c.wg.Wait()
}

// open lets handlers run (used by the Server after OnConnect).
func (c *Conn) open() {
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
}

// readLoop reads and routes frames until the connection ends, then waits for
// the connection's other goroutines, closes done and runs afterEnd.
func (c *Conn) readLoop() {
	err := c.readFrames()
	c.fr.br.release()
	end := lostError(err)
	if err == io.EOF {
		// The peer ended its stream between frames: what it sent is whole,
		// so the notifications already read are still handled.
		c.endMode.CompareAndSwap(endRunning, endDeliver)
		if c.wshut.Load() {
			end = c.drainErr // the last step of a drain: the peer closed in turn
		}
	}
	c.fail(end)
	c.waitGoroutines()
	close(c.done)
	if c.afterEnd != nil {
		c.afterEnd(c)
	}
}

func (c *Conn) readFrames() error {
	for {
		size, err := c.fr.nextSize()
		if err != nil {
			return err
		}
		var f frame
		streamed := false
		if c.sdec != nil {
			f, streamed = c.fr.streamFrame(size)
		}
		if !streamed {
			p, err := c.fr.payload(size)
			if err != nil {
				return err
			}
			if f, err = parseFrame(p); err != nil {
				return err
			}
		}
		switch f.kind {
		case kindRequest, kindNotify:
			err = c.handleRequest(f)
		case kindReply:
			err = c.handleReply(f)
		case kindError:
			c.handleError(f)
		case kindReset:
			c.codec.ResetDecoder()
		case kindSettings:
			if c.settingsSeen {
				return fmt.Errorf("%w: second settings frame", ErrProtocol)
			}
			c.settingsSeen = true
			c.addCredit(int64(f.seq))
		case kindCredit:
			c.addCredit(int64(f.seq))
		case kindCancel:
			c.handleCancel(f.seq)
		case kindPing:
			c.sendControl(kindPong, f.seq, true)
		case kindPong:
			// Only proof of life, which every read is.
		}
		if err != nil {
			return err
		}
		if streamed && c.fr.stream.left != 0 {
			return fmt.Errorf("%w: %w: %d bytes of a body not read", ErrDecode, ErrDesync, c.fr.stream.left)
		}
		c.frames.Add(1)
	}
}

func (c *Conn) handleRequest(f frame) error {
	c.busy.Add(1)
	if c.inflight.Add(1) > int64(c.cfg.window) {
		return fmt.Errorf("%w: peer exceeded the request window of %d", ErrProtocol, c.cfg.window)
	}
	h := c.reg.lookup(f.method)
	var (
		hc          *handlerCtx
		args, reply any
		code        Code
		msg         string
		refused     bool
	)
	if c.gated.Load() {
		code, msg = c.admit(f)
		refused = code != 0
	}
	switch {
	case refused:
	case h == nil:
		code, msg = CodeUnknownMethod, fmt.Sprintf("method %d", f.method)
	case c.draining.Load():
		code, msg = CodeUnavailable, "shutting down"
	default:
		hc, args, reply = h.newCall()
		hc.c, hc.inline, hc.detached = c, h.inline, h.detached
	}
	if refused {
		if err := c.skipBody(f); err != nil {
			return err
		}
	} else if err, fatal := c.decodeBody(f, args); err != nil {
		if fatal {
			return err
		}
		if code == 0 {
			code, msg = CodeBadRequest, fmt.Sprintf("%s: %v", h.name, err)
		}
	}
	if code == 0 && h.inline && f.kind == kindRequest {
		code, msg = CodeBadRequest, fmt.Sprintf("%s: an inline method takes notifications only", h.name)
	}
	if f.kind == kindNotify && code != 0 {
		c.log.Debug("rpc2: notification dropped", "method", f.method, "code", code, "reason", msg)
	}
	if code == 0 && h.inline {
		c.serveInline(h, hc, args, reply)
		return nil
	}
	r := requestPool.Get().(*request)
	r.seq = f.seq
	if code != 0 {
		r.code, r.msg = code, msg
	} else {
		r.h, r.ctx, r.args, r.reply = h, hc, args, reply
		if f.seq != 0 {
			if err := c.trackRequest(f.seq, hc); err != nil {
				*r = request{}
				requestPool.Put(r)
				return err
			}
		}
	}
	c.dispatch(r)
	return nil
}

func (c *Conn) handleReply(f frame) error {
	c.addCredit(1) // the peer finished one of our requests
	call := c.takePending(f.seq)
	var target any
	if call != nil {
		target = call.Reply
	}
	if c.gated.Load() && codecBody(f) {
		err := c.skipBody(f)
		if call != nil {
			call.Error = fmt.Errorf("%w: codec reply on a gated connection", ErrDecode)
			call.complete()
		}
		return err
	}
	err, fatal := c.decodeBody(f, target)
	if call != nil {
		call.Error = err
		call.complete()
	}
	if fatal {
		return err
	}
	return nil
}

func (c *Conn) handleError(f frame) {
	c.addCredit(1)
	if call := c.takePending(f.seq); call != nil {
		call.Error = &Error{Code: Code(f.code), Message: string(f.body)}
		call.complete()
	}
}

// decodeBody decodes f's body into v (nil: discard). fatal reports that the
// codec's stream state is lost. Errors wrap ErrDecode.
func (c *Conn) decodeBody(f frame, v any) (err error, fatal bool) {
	defer func() {
		if p := recover(); p != nil {
			err, fatal = fmt.Errorf("%w: %w: panic: %v", ErrDecode, ErrDesync, p), !f.raw
		}
	}()
	if f.raw {
		if v == nil {
			return nil, false
		}
		u, ok := v.(encoding.BinaryUnmarshaler)
		if !ok {
			return fmt.Errorf("%w: raw body for %T, which is not an encoding.BinaryUnmarshaler", ErrDecode, v), false
		}
		if err := u.UnmarshalBinary(f.body); err != nil {
			return fmt.Errorf("%w: %w", ErrDecode, err), false
		}
		return nil, false
	}
	if c.codecSkipped && codecBody(f) {
		return fmt.Errorf("%w: %w: a codec body was refused unread before", ErrDecode, ErrDesync), true
	}
	if f.stream != nil {
		err = c.sdec.decodeStream(f.stream, v)
	} else if len(f.body) == 0 {
		return nil, false
	} else {
		err = c.codec.Decode(f.body, v)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecode, err), errors.Is(err, ErrDesync)
	}
	return nil, false
}

// fail ends the connection with err (the first call wins): it records err,
// cancels the context, closes the transport and fails every pending call.
// It does not wait for goroutines.
func (c *Conn) fail(err error) {
	c.endOnce.Do(func() {
		c.emu.Lock()
		c.err = err
		c.emu.Unlock()
		c.wmu.Lock()
		if c.werr == nil {
			c.werr = err
		}
		if c.wwait != nil {
			close(c.wwait)
			c.wwait = nil
		}
		c.wmu.Unlock()
		c.cancel()
		c.cancelActive()
		if c.nc != nil {
			_ = c.nc.Close()
		}
		c.failPending(err)
		if !errors.Is(err, ErrInvalid) {
			c.log.Debug("rpc2: connection ended", "remote", c.RemoteAddr(), "err", err)
		}
	})
}

// Close ends the connection at once: pending calls fail with ErrClosed,
// handlers' contexts are canceled, requests and notifications not yet handled
// are dropped, frames not yet written are discarded and the transport is
// closed. It returns once all the connection's goroutines have exited, so it
// must not be called from one of this connection's handlers (that would wait
// for itself); a handler that wants to end its connection can return and let
// the caller close it, or call Close from a new goroutine. Close is
// idempotent and always returns nil.
func (c *Conn) Close() error {
	c.abort(ErrClosed)
	<-c.done
	return nil
}

// endErr returns the end error of a connection whose context is done (its
// parent context may have ended before fail recorded the error).
func (c *Conn) endErr() error {
	if err := c.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrClosed, context.Cause(c.ctx))
}

// Done returns a channel that is closed when the connection has ended and all
// its goroutines have exited.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is running: ErrClosed
// after a local Close; an error wrapping ErrConnLost and the cause (io.EOF,
// ErrTooLarge, ErrDecode, ErrProtocol, a transport error) otherwise.
func (c *Conn) Err() error {
	c.emu.Lock()
	defer c.emu.Unlock()
	return c.err
}

// Context returns a context that is canceled when the connection ends.
// Handlers receive a context derived from it (see HandleFunc).
func (c *Conn) Context() context.Context { return c.ctx }

// SetValue stores val under key in the connection's value map (for example a
// session). Safe for concurrent use.
func (c *Conn) SetValue(key, val any) {
	c.vmu.Lock()
	if c.values == nil {
		c.values = make(map[any]any)
	}
	c.values[key] = val
	c.vmu.Unlock()
}

// Value returns the value stored under key by SetValue, or nil.
func (c *Conn) Value(key any) any {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	return c.values[key]
}

// NetConn returns the transport the connection runs on, for example to read
// a *tls.Conn's ConnectionState. Reading from or writing to it would corrupt
// the connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// RemoteAddr returns the transport's remote address (nil if there is none).
func (c *Conn) RemoteAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.RemoteAddr()
}

// LocalAddr returns the transport's local address (nil if there is none).
func (c *Conn) LocalAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.LocalAddr()
}
