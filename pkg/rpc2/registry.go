package rpc2

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// Method identifies a handler on the wire. It travels as a uvarint, so
// codes below 128 take one byte. Method 0 is invalid.
type Method uint16

// HandlerOption modifies how a handler is dispatched.
type HandlerOption struct {
	apply func(*handler)
}

// Ordered makes requests and notifications of the method, from one
// connection, run one at a time in arrival order, on a per-connection ordered
// worker shared by all Ordered methods. The worker is not the read loop, so an
// ordered handler may call the peer over the same connection.
func Ordered() HandlerOption {
	return HandlerOption{func(h *handler) { h.ordered = true }}
}

// Inline makes notifications of the method run on the connection's read
// loop itself, in arrival order, before the next frame is read. It is for
// cheap handlers that must see messages in exactly wire order relative to
// everything else the peer sends, e.g. applying ordered updates: a reply (or
// any frame) that the peer wrote after notification N is processed only after
// N's inline handler has returned, so a caller that receives that reply knows
// N has been applied.
//
// An inline handler must not block and must not wait for the peer (no Call,
// no Notify that may wait for credit): while it runs, the connection reads
// nothing, not even replies. Queue is fine (it waits only when the peer's
// window or the write buffer is full; use a context that can end). On a
// Server connection, an inline notification that arrives while the
// OnConnect hook runs waits for the hook to return. A request (not a
// notification) for an Inline method is answered with a CodeBadRequest error
// and not run. Inline takes precedence over Ordered.
func Inline() HandlerOption {
	return HandlerOption{func(h *handler) { h.inline = true }}
}

// Detached makes the context of a request of the method end only when the
// peer cancels the call or the handler returns, not when the connection
// ends: for work that must run to its end even if its caller's connection
// drops, so that the caller can come back (on a new connection) and learn
// the outcome. Close and Shutdown still wait for the handler. It has no
// effect on notifications, whose context is the connection's.
func Detached() HandlerOption {
	return HandlerOption{func(h *handler) { h.detached = true }}
}

// handler is one registered method.
type handler struct {
	method   Method
	name     string
	ordered  bool
	inline   bool
	detached bool
	// newCall allocates, for one request, the handler's context and new
	// argument and reply values (for HandleFunc in one allocation).
	newCall func() (*handlerCtx, any, any)
	call    func(ctx context.Context, c *Conn, args, reply any) error
}

// callBox holds everything one request of a HandleFunc handler allocates.
type callBox[A, R any] struct {
	ctx   handlerCtx
	args  A
	reply R
}

// Registry maps methods to handlers. It is safe for concurrent use and may be
// shared by a Server and any number of Conns; handlers registered later are
// seen by connections that are already running.
type Registry struct {
	mu sync.Mutex // serializes writers
	// m is an immutable snapshot, replaced on every registration, so lookups
	// on the read path take no lock.
	m atomic.Pointer[map[Method]*handler]
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{}
}

func (r *Registry) lookup(m uint64) *handler {
	if r == nil || m > 0xffff {
		return nil
	}
	p := r.m.Load()
	if p == nil {
		return nil
	}
	return (*p)[Method(m)]
}

func (r *Registry) add(h *handler, opts []HandlerOption) error {
	if r == nil {
		return fmt.Errorf("%w: nil Registry", ErrInvalid)
	}
	if h.method == 0 {
		return fmt.Errorf("%w: method 0 (%q) is reserved", ErrInvalid, h.name)
	}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(h)
		}
	}
	if h.name == "" {
		h.name = fmt.Sprintf("method %d", h.method)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.m.Load()
	next := make(map[Method]*handler, 1)
	if old != nil {
		if prev := (*old)[h.method]; prev != nil {
			return fmt.Errorf("%w: method %d (%q) is already registered as %q", ErrInvalid, h.method, h.name, prev.name)
		}
		for k, v := range *old {
			next[k] = v
		}
	}
	next[h.method] = h
	r.m.Store(&next)
	return nil
}

// HandleFunc registers fn for method m on r without reflection; it is what
// performance-sensitive callers use. fn receives the connection's context
// and the Conn, on which it may call the peer back. For a request, ctx is
// canceled when the caller gives up (its context ends: the peer sends a
// cancel frame), when the connection ends, or when fn returns; for a
// notification it is canceled when the connection ends (a notification read
// before the peer ended its stream is still handled after the end, with ctx
// already canceled). For each request the connection allocates a new A,
// decodes the arguments into it, allocates a new R and, if fn returns nil,
// sends *R back. A and R must be types the codec can
// handle (or implement encoding.BinaryMarshaler/BinaryUnmarshaler on their
// pointers). It returns an error wrapping ErrInvalid for method 0, a nil fn
// or a method already registered. Safe for concurrent use.
func HandleFunc[A, R any](r *Registry, m Method, name string,
	fn func(ctx context.Context, c *Conn, args *A, reply *R) error, opts ...HandlerOption,
) error {
	if fn == nil {
		return fmt.Errorf("%w: nil handler for method %d (%q)", ErrInvalid, m, name)
	}
	return r.add(&handler{
		method: m,
		name:   name,
		newCall: func() (*handlerCtx, any, any) {
			b := new(callBox[A, R])
			return &b.ctx, &b.args, &b.reply
		},
		call: func(ctx context.Context, c *Conn, args, reply any) error {
			return fn(ctx, c, args.(*A), reply.(*R))
		},
	}, opts)
}

var (
	typeContext = reflect.TypeFor[context.Context]()
	typeConn    = reflect.TypeFor[*Conn]()
	typeError   = reflect.TypeFor[error]()
)

// Handle registers fn for method m by reflection. fn must have the shape
//
//	func(ctx context.Context, c *Conn, args *A, reply *R) error
//
// for some types A and R; ctx is as described for HandleFunc. A wrong shape, method 0, a nil fn or a method
// already registered gives an error wrapping ErrInvalid (Handle never
// panics). HandleFunc does the same without reflection on each call. Safe for
// concurrent use.
func (r *Registry) Handle(m Method, name string, fn any, opts ...HandlerOption) error {
	v := reflect.ValueOf(fn)
	if !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return fmt.Errorf("%w: handler for method %d (%q) is %T, not a func", ErrInvalid, m, name, fn)
	}
	t := v.Type()
	if t.IsVariadic() || t.NumIn() != 4 || t.NumOut() != 1 ||
		t.In(0) != typeContext || t.In(1) != typeConn ||
		t.In(2).Kind() != reflect.Pointer || t.In(3).Kind() != reflect.Pointer ||
		t.Out(0) != typeError {
		return fmt.Errorf("%w: handler for method %d (%q) has type %v, want func(context.Context, *rpc2.Conn, *A, *R) error",
			ErrInvalid, m, name, t)
	}
	at, rt := t.In(2).Elem(), t.In(3).Elem()
	return r.add(&handler{
		method: m,
		name:   name,
		newCall: func() (*handlerCtx, any, any) {
			return new(handlerCtx), reflect.New(at).Interface(), reflect.New(rt).Interface()
		},
		call: func(ctx context.Context, c *Conn, args, reply any) error {
			out := v.Call([]reflect.Value{reflect.ValueOf(&ctx).Elem(), reflect.ValueOf(c),
				reflect.ValueOf(args), reflect.ValueOf(reply)})
			err, _ := out[0].Interface().(error)
			return err
		},
	}, opts)
}
