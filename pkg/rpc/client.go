package rpc

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ss "github.com/arpc-go/arpc/states/client"
)

// Client connects to a Server and holds a Worker, the local mirror of the
// server's machine. It reconnects by itself when the connection drops
// (WithReconnect), resuming its session on the same server process, or
// resynchronising fully after a server restart. Methods are safe for
// concurrent use.
type Client struct {
	// Mach is the client's control machine, with the states of states/client:
	// Ready while connected and in sync, Disconnected while away.
	Mach *am.Machine
	// Worker is the mirror of the remote machine. It exists from NewClient on
	// and answers reads once Mach reaches Ready.
	Worker *Worker

	id          string
	addr        string
	opts        clientOpts
	schema      am.Struct
	names       am.S
	hash        uint64
	stateHashes []uint64
	// follow lists the indexes of the states the mirror follows (nil: all)
	follow []int
	reg    *rpc2.Registry

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	calls  atomic.Uint64
	pend   pendingIDs
	hk     housekeeping

	mu       sync.Mutex
	link     *link         // the live connection, nil while away
	changed  chan struct{} // closed (and replaced) whenever link changes
	session  string
	epoch    uint64
	payloads payloadStore
	running  bool
	runStop  context.CancelFunc
	closed   bool
}

// link is one connection of the client and the session it carries.
type link struct {
	conn    *rpc2.Conn
	session string
}

// Dial connects to the aRPC server at addr, for a machine with the schema
// and ordered state names of the server's machine (the handshake checks
// both), and returns a client whose mirror is ready. As with
// net.Dialer.DialContext, ctx bounds connecting and the handshake only:
// once Dial has returned, ending ctx does not affect the client, which lives
// (and reconnects) until Close. The error wraps ErrNetwork (the address
// can't be reached), ErrSchemaMismatch (naming the states that differ) or
// ErrInvalidParams.
func Dial(ctx context.Context, addr string, schema am.Struct, names am.S, opts ...ClientOption) (*Client, error) {
	var idb [8]byte
	_, _ = crand.Read(idb[:])
	c, err := NewClient(context.Background(), addr, "c"+hex.EncodeToString(idb[:]), schema, names, opts...)
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Start the control machine without its connection loop (this call
	// connects first, on the caller's goroutine, bounded by ctx).
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	c.Mach.Add1(ss.Start, nil)
	link, err := c.connect(ctx)
	if err != nil {
		c.reportErr(err)
		_ = c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	c.launch(link)
	// Ready once the loop publishes the link: wait for it, so that a
	// returned client is ready
	<-c.Mach.When1(ss.Ready, ctx)
	if ctx.Err() != nil && !c.Mach.Is1(ss.Ready) {
		_ = c.Close()
		return nil, fmt.Errorf("%w: %s connected but did not get ready: %w", ErrNetwork, addr, context.Cause(ctx))
	}
	return c, nil
}

// NewClient creates a client of the server at addr, for a machine with the
// schema stateStruct and the ordered state names stateNames, which must be the
// server machine's (the handshake checks both). The control machine gets the
// ID "c-"+id, and the server knows the client by id. Start connects; Dial
// does both in one call and returns connection errors.
func NewClient(
	ctx context.Context, addr string, id string, stateStruct am.Struct,
	stateNames am.S, opts ...ClientOption,
) (*Client, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	o := defaultClientOpts()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
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

	follow, err := o.follow.indexes(stateNames)
	if err != nil {
		return nil, err
	}

	mach, err := am.NewCommon(ctx, "c-"+id, ss.States, ss.Names, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	c := &Client{
		follow:      follow,
		Mach:        mach,
		id:          id,
		addr:        addr,
		opts:        o,
		schema:      schema,
		names:       append(am.S(nil), stateNames...),
		hash:        SchemaHash(schema, stateNames),
		stateHashes: stateHashes(schema, stateNames),
		payloads:    newPayloadStore(),
		changed:     make(chan struct{}),
		hk:          newHousekeeping(),
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	if c.Worker, err = newWorker(c); err != nil {
		c.cancel()
		mach.Dispose()
		return nil, err
	}
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
// client reaches Ready, or gets Exception with ErrNetwork (and keeps trying,
// unless reconnecting is disabled) or ErrRpc (a refused handshake: it
// stops).
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
		c.dispose()
	}
	return am.Executed
}

// Close says goodbye to the server, ends the connection and the reconnect
// loop, disposes the Worker (its waits are released) and Mach, and returns
// once every goroutine of the client is gone. Safe to call more than once.
func (c *Client) Close() error {
	c.Mach.Remove1(ss.Start, nil)
	c.stopRun()
	c.wg.Wait()
	c.dispose()
	return nil
}

func (c *Client) dispose() {
	c.mu.Lock()
	done := c.closed
	c.closed = true
	c.mu.Unlock()
	if done {
		return
	}
	c.cancel()
	c.wg.Wait()
	c.Worker.Dispose()
	<-c.Worker.WhenDisposed()
	c.Mach.Dispose()
	<-c.Mach.WhenDisposed()
}

// CallCount returns how many calls and notifications the client has sent.
func (c *Client) CallCount() uint64 { return c.calls.Load() }

// Payloads returns a copy of the payloads received so far, the last one of
// each name, at most WithMaxPayloads of them (see DeletePayload).
func (c *Client) Payloads() map[string]*ArgsPayload {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.payloads.byName)
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
	h.c.launch(nil)
}

// StartEnd ends the connection loop.
func (h *clientHandlers) StartEnd(e *am.Event) {
	h.c.stopRun()
}

// launch starts the connection loop once, with an established link or
// none (the loop connects).
func (c *Client) launch(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || c.ctx.Err() != nil {
		if l != nil {
			_ = l.conn.Close()
		}
		return
	}
	c.running = true
	ctx, stop := context.WithCancel(c.ctx)
	c.runStop = stop
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.run(ctx, l)
	}()
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

// run keeps the client connected until ctx ends: it serves a link until it
// drops, then reconnects with jittered exponential backoff.
func (c *Client) run(ctx context.Context, l *link) {
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.housekeep(ctx)
	}()
	backoff := c.opts.minBackoff
	for {
		if l == nil {
			var err error
			l, err = c.connect(ctx)
			if err != nil {
				if ctx.Err() != nil {
					c.Mach.Add1(ss.Disconnected, nil)
					return
				}
				c.reportErr(err)
				c.Mach.Add1(ss.Disconnected, nil)
				if refusedForGood(err) || !c.opts.reconnect {
					return
				}
				// equal jitter (half fixed, half random): spread the
				// reconnections of many clients
				d := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
				backoff = min(backoff*2, c.opts.maxBackoff)
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					c.Mach.Add1(ss.Disconnected, nil)
					return
				case <-t.C:
				}
				continue
			}
		}
		backoff = c.opts.minBackoff
		c.setLink(l)
		// connected: a past network failure is over
		c.Mach.Remove(am.S{ss.ErrNetwork, am.Exception}, nil)
		c.Mach.Add1(ss.HandshakeDone, nil)

		select {
		case <-l.conn.Done():
		case <-ctx.Done():
			byeCtx, cancel := context.WithTimeout(context.Background(), c.opts.callTimeout)
			c.calls.Add(1)
			_ = l.conn.Notify(byeCtx, mBye, &Empty{})
			cancel()
		}
		c.Mach.Add1(ss.Disconnecting, nil)
		_ = l.conn.Close()
		c.setLink(nil)
		c.Worker.connLost()
		if ctx.Err() == nil && !saidBye(l.conn) {
			c.Mach.AddErrState(ss.ErrNetwork,
				fmt.Errorf("%w: connection lost: %w", ErrNetwork, l.conn.Err()), nil)
		}
		c.Mach.Add1(ss.Disconnected, nil)
		if ctx.Err() != nil || !c.opts.reconnect {
			return
		}
		l = nil
	}
}

// reportErr puts a connection failure into the control machine.
func (c *Client) reportErr(err error) {
	if errors.Is(err, ErrSchemaMismatch) || errors.Is(err, ErrRpc) {
		c.Mach.AddErrState(ss.ErrRpc, err, nil)
	} else {
		c.Mach.AddErrState(ss.ErrNetwork, err, nil)
	}
}

// setLink publishes the live link (nil: away) and wakes those waiting for a
// change.
func (c *Client) setLink(l *link) {
	c.mu.Lock()
	c.link = l
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// liveLink returns the live connection, or ErrNotReady at once while away.
func (c *Client) liveLink() (*rpc2.Conn, *link, error) {
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l == nil || c.ctx.Err() != nil {
		return nil, nil, fmt.Errorf("%w: not connected to %s", ErrNotReady, c.addr)
	}
	return l.conn, l, nil
}

// liveConn is liveLink for callers that don't need the link.
func (c *Client) liveConn() (*rpc2.Conn, error) {
	conn, _, err := c.liveLink()
	return conn, err
}

// awaitLink waits, bounded by ctx and the call timeout, until a call that
// failed on link old may be sent again, and returns the link to send it on:
// old itself if the call only timed out (sameOK) and old is still live, or
// the link of a new connection that resumed the same session. A connection
// that failed counts as gone even before the client loop notices (a failed
// write ends the connection only once its read side ends). A new session
// means the server lost the old one's state (it restarted).
func (c *Client) awaitLink(ctx context.Context, old *link, sameOK bool) (*link, error) {
	t := time.NewTimer(c.opts.callTimeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		l, changed := c.link, c.changed
		c.mu.Unlock()
		switch {
		case l == nil || l.conn.Err() != nil:
			// away, or this link failed and a new one is coming
		case l == old:
			if sameOK {
				return l, nil
			}
		case l.session == old.session:
			return l, nil
		default:
			return nil, fmt.Errorf("%w: the connection dropped and the server no longer had the session", ErrNetwork)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrStopped
		case <-t.C:
			return nil, fmt.Errorf("%w: not reconnected within %s", ErrNetwork, c.opts.callTimeout)
		}
	}
}

// connect dials and handshakes, bounded by ctx and the dial timeout. The
// updates that precede the handshake's reply bring the mirror up to date.
func (c *Client) connect(ctx context.Context) (*link, error) {
	c.Mach.Add1(ss.Connecting, nil)
	dctx, cancel := context.WithTimeout(ctx, c.opts.dialTimeout)
	defer cancel()
	nc, err := c.opts.dialer(dctx, c.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %w", ErrNetwork, c.addr, err)
	}
	return c.handshake(dctx, nc)
}

func (c *Client) handshake(ctx context.Context, nc net.Conn) (*link, error) {
	conn := rpc2.NewConn(nc, c.reg,
		rpc2.WithCallTimeout(c.opts.callTimeout),
		rpc2.WithMaxMessageSize(c.opts.maxMessageSize),
		rpc2.WithLogger(c.opts.logger),
		rpc2.WithKeepalive(c.opts.keepalive),
	)
	c.Mach.Add1(ss.Connected, nil)
	c.mu.Lock()
	session, epoch := c.session, c.epoch
	c.mu.Unlock()
	var resp respHandshake
	token, err := c.credentials(ctx)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	c.calls.Add(1)
	err = conn.Call(ctx, mHandshake, &msgHandshake{
		ProtoVersion: protoVersion,
		ClientID:     c.id,
		SchemaHash:   c.hash,
		Names:        c.names,
		Token:        token,
		Session:      session,
		Epoch:        epoch,
		Version:      c.Worker.appliedVersion(),
		StateHashes:  c.stateHashes,
		Sync:         c.follow,
	}, &resp)
	if err == nil && resp.Session != session && session != "" {
		// a new session (the server lost the old one): register the
		// remote watches again. A kept session still has them, even when
		// its stream could not resume and the clock came in full.
		err = c.Worker.rewatch(ctx, conn)
	}
	if err == nil {
		c.Worker.waitVersion(ctx, resp.Version, conn.Done())
		if c.Worker.appliedVersion() < resp.Version {
			err = fmt.Errorf("%w: handshake updates did not arrive", ErrNetwork)
		}
	}
	if err != nil {
		_ = conn.Close()
		if ctx.Err() != nil {
			// the deadline of connecting, not of a call
			return nil, fmt.Errorf("%w: handshake with %s: %w", ErrNetwork, c.addr, err)
		}
		return nil, c.wrapErr(nil, err)
	}
	c.mu.Lock()
	c.session, c.epoch = resp.Session, resp.Epoch
	c.mu.Unlock()
	c.Worker.connected(&resp)
	return &link{conn: conn, session: resp.Session}, nil
}

// call makes one remote call on the live connection.
func (c *Client) call(ctx context.Context, m rpc2.Method, args, reply any) error {
	conn, l, err := c.liveLink()
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c.calls.Add(1)
	return c.wrapErr(l, conn.Call(ctx, m, args, reply))
}

// callOn makes one call on conn. The connection bounds every call by the
// call timeout (rpc2.WithCallTimeout), so ctx may be one that never ends:
// that is the fast path, with no timer and no hand-off to a writer
// goroutine. A ctx that ends cancels the call on the server too.
func (c *Client) callOn(ctx context.Context, conn *rpc2.Conn, m rpc2.Method, args, reply any) error {
	c.calls.Add(1)
	err := conn.Call(ctx, m, args, reply)
	if err == nil {
		return nil
	}
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l != nil && l.conn != conn {
		l = nil
	}
	return c.wrapErr(l, err)
}

// callOnLink is callOn for a caller that holds the link: its error is read
// against that link (a goodbye on it means the call did not run), whatever
// the client's live link is by then.
func (c *Client) callOnLink(ctx context.Context, l *link, m rpc2.Method, args, reply any) error {
	c.calls.Add(1)
	return c.wrapErr(l, l.conn.Call(ctx, m, args, reply))
}

// notify sends one notification bounded by the call timeout.
func (c *Client) notify(m rpc2.Method, args any) error {
	conn, l, err := c.liveLink()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.callTimeout)
	defer cancel()
	c.calls.Add(1)
	return c.wrapErr(l, conn.Notify(ctx, m, args))
}

// wrapErr maps transport errors to this package's sentinels. l is the link
// the call went out on, if known.
func (c *Client) wrapErr(l *link, err error) error {
	if err == nil {
		return nil
	}
	var re *rpc2.Error
	if errors.As(err, &re) {
		if e := securityErr(re); e != nil {
			return e
		}
		switch re.Code {
		case CodeSchemaMismatch, CodeProtoVersion:
			return fmt.Errorf("%w: %s", ErrSchemaMismatch, re.Message)
		case CodeInvalidParams:
			return fmt.Errorf("%w: %s", ErrInvalidParams, re.Message)
		case CodeNoGetter:
			return fmt.Errorf("%w: %s", ErrNoGetter, re.Message)
		case CodeStopped, rpc2.CodeUnavailable:
			return fmt.Errorf("%w: %s", ErrStopped, re.Message)
		case CodeTooManyPending:
			return fmt.Errorf("%w: %s", ErrTooManyPending, re.Message)
		case CodeTooManyRequests:
			return fmt.Errorf("%w: %s", ErrTooManyRequests, re.Message)
		case rpc2.CodeCanceled:
			return fmt.Errorf("%w: %s", ErrNotRun, re.Message)
		default:
			return fmt.Errorf("%w: %w", ErrRpc, err)
		}
	}
	switch {
	case errors.Is(err, rpc2.ErrEncode), errors.Is(err, rpc2.ErrTooLarge):
		// a local failure: nothing was sent
		return fmt.Errorf("%w: %w", ErrInvalidParams, err)
	case errors.Is(err, rpc2.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrNetworkTimeout, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// the caller's own deadline or cancellation
		return err
	}
	if l != nil && saidBye(l.conn) {
		return fmt.Errorf("%w: the server shut down before this call ran", ErrStopped)
	}
	return fmt.Errorf("%w: %w", ErrNetwork, err)
}

// registry builds the client's handler table: what the server may call.
func (c *Client) registry() (*rpc2.Registry, error) {
	r := rpc2.NewRegistry()
	return r, errors.Join(
		rpc2.HandleFunc(r, mUpdate, "Update", c.handleUpdate, rpc2.Inline()),
		rpc2.HandleFunc(r, mPayload, "Payload", c.handlePayload),
		rpc2.HandleFunc(r, mBye, "Bye", c.handleBye, rpc2.Inline()),
	)
}

// handleUpdate applies the session's updates in stream order, on the read
// loop. A broken stream drops the connection: the session then resumes or
// resyncs.
func (c *Client) handleUpdate(_ context.Context, conn *rpc2.Conn, u *msgUpdate, _ *Empty) error {
	if err := c.Worker.applyUpdate(u); err != nil {
		c.opts.logger.Warn("arpc: update stream broken, reconnecting", "err", err)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			_ = conn.Close()
		}()
		return err
	}
	return nil
}

func (c *Client) handlePayload(_ context.Context, _ *rpc2.Conn, p *ArgsPayload, _ *Empty) error {
	c.mu.Lock()
	c.payloads.put(p, c.opts.sec.maxPayloads)
	c.mu.Unlock()
	c.Mach.Add1(ss.Payload, am.A{"name": p.Name})
	return nil
}

// byeKey marks, among a connection's values, that the server said goodbye
// on it: it had run and answered everything it accepted, so calls still
// pending when the connection closes did not run. Kept on the connection
// (not the link) so that a goodbye right after the handshake, before the
// link is published, counts too.
var byeKey = new(byte)

func saidBye(conn *rpc2.Conn) bool { return conn.Value(byeKey) != nil }

// handleBye: the server is going away cleanly. Every reply and update it
// had for this client came before the Bye (one ordered stream), so the calls
// still waiting did not run: they fail with ErrStopped once the connection
// ends, and the client ends it now rather than write more to a server that
// is closing (the loop then reconnects, as after any drop).
func (c *Client) handleBye(_ context.Context, conn *rpc2.Conn, _ *Empty, _ *Empty) error {
	conn.SetValue(byeKey, true)
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()
	if l != nil && l.conn == conn {
		// not ready from now on, before the server's Shutdown can return:
		// new calls fail fast with ErrNotReady instead of being written to
		// a connection that is closing
		c.setLink(nil)
		c.Mach.Add1(ss.Disconnecting, nil)
	}
	// Close waits for the read loop, which runs this handler
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_ = conn.Close()
	}()
	return nil
}
