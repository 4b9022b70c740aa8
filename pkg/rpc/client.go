package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ss "github.com/arpc-go/arpc/states/client"
)

// Client connects to a Server and holds a Worker, the local mirror of the
// server's machine. Methods are safe for concurrent use.
type Client struct {
	// Mach is the client's control machine, with the states of states/client.
	Mach *am.Machine
	// Worker is the mirror of the remote machine. It exists from NewClient on
	// and answers reads once Mach reaches Ready.
	Worker *Worker

	id     string
	addr   string
	opts   clientOpts
	schema am.Struct
	names  am.S
	hash   uint64
	reg    *rpc2.Registry

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	calls  atomic.Uint64
	conn   atomic.Pointer[rpc2.Conn]
	reqID  atomic.Uint64
	hk     housekeeping

	mu       sync.Mutex
	payloads map[string]*ArgsPayload
	runCtx   context.Context
	runStop  context.CancelFunc
}

// NewClient creates a client of the server at addr, for a machine with the
// schema stateStruct and the ordered state names stateNames, which must be the
// server machine's (the handshake checks both). The control machine gets the
// ID "c-"+id, and the server knows the client by id.
func NewClient(
	ctx context.Context, addr string, id string, stateStruct am.Struct,
	stateNames am.S, opts ...ClientOption,
) (*Client, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	o := clientOpts{
		callTimeout:    DefaultCallTimeout,
		dialTimeout:    DefaultDialTimeout,
		maxMessageSize: DefaultMaxMessageSize,
		resyncAfter:    time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = discardLogger()
	}
	if o.callTimeout <= 0 || o.dialTimeout <= 0 || o.maxMessageSize <= 0 || o.resyncAfter <= 0 {
		return nil, fmt.Errorf("%w: timeouts and limits must be positive", ErrInvalidParams)
	}
	if o.dialer == nil {
		d := &net.Dialer{}
		o.dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	schema := am.CloneStates(stateStruct)
	if _, ok := schema[am.Exception]; !ok {
		schema[am.Exception] = am.State{Multi: true}
	}
	seen := map[string]bool{}
	for _, n := range stateNames {
		if _, ok := schema[n]; !ok {
			return nil, fmt.Errorf("%w: state %q is not in the schema", ErrInvalidParams, n)
		}
		if seen[n] {
			return nil, fmt.Errorf("%w: state %q duplicated", ErrInvalidParams, n)
		}
		seen[n] = true
	}
	for n := range schema {
		if !seen[n] {
			return nil, fmt.Errorf("%w: state %q missing from the names", ErrInvalidParams, n)
		}
	}

	mach, err := am.NewCommon(ctx, "c-"+id, ss.States, ss.Names, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	c := &Client{
		Mach:     mach,
		id:       id,
		addr:     addr,
		opts:     o,
		schema:   schema,
		names:    append(am.S(nil), stateNames...),
		hash:     SchemaHash(schema, stateNames),
		payloads: map[string]*ArgsPayload{},
		hk:       newHousekeeping(),
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.Worker = newWorker(c)
	if c.reg, err = c.registry(); err != nil {
		mach.Dispose()
		return nil, err
	}
	if err := mach.BindHandlers(&clientHandlers{c: c}); err != nil {
		mach.Dispose()
		return nil, err
	}
	return c, nil
}

// Start connects to the server and runs the handshake in the background; the
// client reaches Ready, or gets Exception with ErrNetwork or ErrRpc.
func (c *Client) Start() am.Result {
	return c.Mach.Add1(ss.Start, nil)
}

// Stop says goodbye to the server, disconnects, and returns once every
// goroutine of the client is gone, or Canceled when waitTillExit ends first
// (nil waits without limit). With dispose it also disposes Mach and Worker.
func (c *Client) Stop(waitTillExit context.Context, dispose bool) am.Result {
	c.Mach.Remove1(ss.Start, nil)
	c.stopRun()
	if waitTillExit == nil {
		waitTillExit = context.Background()
	}
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-waitTillExit.Done():
		return am.Canceled
	}
	if dispose {
		c.cancel()
		c.Worker.Dispose()
		<-c.Worker.WhenDisposed()
		c.Mach.Dispose()
		<-c.Mach.WhenDisposed()
	}
	return am.Executed
}

// CallCount returns how many calls and notifications the client has sent.
func (c *Client) CallCount() uint64 { return c.calls.Load() }

// Payloads returns a copy of the payloads received so far, the last one of
// each name.
func (c *Client) Payloads() map[string]*ArgsPayload {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.payloads)
}

// Get asks the server's getter for the value called name.
func (c *Client) Get(ctx context.Context, name string) (*RespGet, error) {
	var resp RespGet
	if err := c.call(ctx, mGet, &wireString{s: name}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// clientHandlers are the control machine's handlers.
type clientHandlers struct {
	c *Client
}

// StartState launches the connection loop.
func (h *clientHandlers) StartState(e *am.Event) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runStop != nil || c.ctx.Err() != nil {
		return
	}
	c.runCtx, c.runStop = context.WithCancel(c.ctx)
	ctx := c.runCtx
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.run(ctx)
	}()
}

// StartEnd ends the connection loop.
func (h *clientHandlers) StartEnd(e *am.Event) {
	h.c.stopRun()
}

func (c *Client) stopRun() {
	c.mu.Lock()
	stop := c.runStop
	c.runStop = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// run connects, handshakes and then waits for the end of the connection or
// of the client.
func (c *Client) run(ctx context.Context) {
	c.Mach.Add1(ss.Connecting, nil)
	conn, err := c.connect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			if errors.Is(err, ErrSchemaMismatch) || errors.Is(err, ErrRpc) {
				c.Mach.AddErrState(ss.ErrRpc, err, nil)
			} else {
				c.Mach.AddErrState(ss.ErrNetwork, err, nil)
			}
		}
		c.Mach.Add1(ss.Disconnected, nil)
		return
	}
	c.Mach.Add1(ss.HandshakeDone, nil)
	hkCtx, hkStop := context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.housekeep(hkCtx)
	}()
	defer hkStop()

	select {
	case <-conn.Done():
		if ctx.Err() == nil {
			c.Mach.AddErrState(ss.ErrNetwork,
				fmt.Errorf("%w: connection lost: %w", ErrNetwork, conn.Err()), nil)
		}
	case <-ctx.Done():
		// an orderly goodbye, bounded by a short deadline
		byeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		c.calls.Add(1)
		_ = conn.Notify(byeCtx, mBye, &Empty{})
		cancel()
	}
	c.Mach.Add1(ss.Disconnecting, nil)
	c.conn.Store(nil)
	_ = conn.Close()
	c.Worker.connLost()
	c.Mach.Add1(ss.Disconnected, nil)
}

// connect dials and handshakes, bounded by the dial timeout.
func (c *Client) connect(ctx context.Context) (*rpc2.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.dialTimeout)
	defer cancel()
	nc, err := c.opts.dialer(dctx, c.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %w", ErrNetwork, c.addr, err)
	}
	conn := rpc2.NewConn(nc, c.reg,
		rpc2.WithCallTimeout(c.opts.callTimeout),
		rpc2.WithMaxMessageSize(c.opts.maxMessageSize),
		rpc2.WithLogger(c.opts.logger),
	)
	c.conn.Store(conn)
	c.Mach.Add1(ss.Connected, nil)

	var resp respHandshake
	c.calls.Add(1)
	err = conn.Call(dctx, mHandshake, &msgHandshake{
		ProtoVersion: protoVersion,
		ClientID:     c.id,
		SchemaHash:   c.hash,
		Names:        c.names,
	}, &resp)
	if err == nil && len(resp.Time) != len(c.names) {
		err = fmt.Errorf("%w: handshake time has %d ticks, want %d", ErrInvalidResp, len(resp.Time), len(c.names))
	}
	if err != nil {
		c.conn.Store(nil)
		_ = conn.Close()
		return nil, c.wrapErr(err)
	}
	c.Worker.init(&resp)
	return conn, nil
}

// call makes one remote call. The connection bounds every call by the call
// timeout (rpc2.WithCallTimeout), so ctx may be one that never ends: that is
// the fast path, with no timer and no hand-off to a writer goroutine.
func (c *Client) call(ctx context.Context, m rpc2.Method, args, reply any) error {
	conn := c.conn.Load()
	if conn == nil || !c.Worker.ready.Load() {
		return ErrNotReady
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c.calls.Add(1)
	return c.wrapErr(conn.Call(ctx, m, args, reply))
}

// notify sends one notification bounded by the call timeout.
func (c *Client) notify(m rpc2.Method, args any) error {
	conn := c.conn.Load()
	if conn == nil || !c.Worker.ready.Load() {
		return ErrNotReady
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.callTimeout)
	defer cancel()
	c.calls.Add(1)
	return c.wrapErr(conn.Notify(ctx, m, args))
}

// wrapErr maps transport errors to this package's sentinels.
func (c *Client) wrapErr(err error) error {
	if err == nil {
		return nil
	}
	var re *rpc2.Error
	if errors.As(err, &re) {
		switch re.Code {
		case CodeSchemaMismatch, CodeProtoVersion:
			return fmt.Errorf("%w: %s", ErrSchemaMismatch, re.Message)
		case CodeInvalidParams:
			return fmt.Errorf("%w: %s", ErrInvalidParams, re.Message)
		case CodeNoGetter:
			return fmt.Errorf("%w: %s", ErrNoGetter, re.Message)
		default:
			return fmt.Errorf("%w: %w", ErrRpc, err)
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrNetworkTimeout, err)
	case errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("%w: %w", ErrNetwork, err)
}

// registry builds the client's handler table: what the server may call.
func (c *Client) registry() (*rpc2.Registry, error) {
	r := rpc2.NewRegistry()
	return r, errors.Join(
		rpc2.HandleFunc(r, mPush, "Push", c.handlePush, rpc2.Ordered()),
		rpc2.HandleFunc(r, mPayload, "Payload", c.handlePayload),
		rpc2.HandleFunc(r, mBye, "Bye", c.handleBye),
	)
}

func (c *Client) handlePush(_ context.Context, _ *rpc2.Conn, m *msgPush, _ *Empty) error {
	c.Worker.applyPush(m)
	return nil
}

func (c *Client) handlePayload(_ context.Context, _ *rpc2.Conn, p *ArgsPayload, _ *Empty) error {
	c.mu.Lock()
	c.payloads[p.Name] = p
	c.mu.Unlock()
	c.Mach.Add1(ss.Payload, am.A{"name": p.Name})
	return nil
}

// handleBye: the server is going away; the connection ends next.
func (c *Client) handleBye(_ context.Context, _ *rpc2.Conn, _ *Empty, _ *Empty) error {
	return nil
}
