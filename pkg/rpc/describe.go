package rpc

import (
	"context"
	"errors"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// CodeIntrospectionOff is a Describe, Stats or ActiveArgs call to a server
// that answers none of them (WithIntrospection(false)).
const CodeIntrospectionOff rpc2.Code = 109

// ErrIntrospectionOff is a Describe, Stats or ActiveArgs call that the
// server does not answer: it was started with WithIntrospection(false), or it is older than
// these calls.
var ErrIntrospectionOff = errors.New("rpc: introspection off")

// describeClientID is the client ID a Describe call declares.
const describeClientID = "describe"

// WithIntrospection turns the server's answers to Describe, Stats and
// ActiveArgs calls on (the default) or off. Describe tells anyone the server
// would admit to a session the machine's ID, ordered state names and schema
// (relations and flags), which a client needs anyway to connect; Stats the
// server's counters; ActiveArgs the arguments of the active states a
// client may observe. Turn it off when the schema itself is a secret, or to
// keep generic tools (such as cmd/arpc) out. Off, these calls fail with
// ErrIntrospectionOff.
func WithIntrospection(on bool) ServerOption {
	return func(o *serverOpts) { o.introspectionOff = !on }
}

// handleDescribe answers a Describe with the source's schema. It needs no
// session: a client calls it to learn what to send in its handshake.
func (s *Server) handleDescribe(ctx context.Context, c *rpc2.Conn, m *msgDescribe, resp *respDescribe) error {
	if c.Value(sessionKey) == nil {
		// who the peer is, before anything about the machine is told: the
		// same authentication and policy as a handshake (a refused peer's
		// connection is closed)
		if _, _, err := s.admit(ctx, c, &msgHandshake{ClientID: m.ClientID, Token: m.Token}); err != nil {
			return err
		}
	}
	if s.opts.introspectionOff {
		return codeErr(CodeIntrospectionOff, "server %s does not describe its machine", s.id)
	}
	if m.ProtoVersion != protoVersion {
		return codeErr(CodeProtoVersion, "protocol version %d not supported (want %d)",
			m.ProtoVersion, protoVersion)
	}
	resp.MachineID = s.source.ID
	resp.SchemaHash = s.hash
	resp.Names = s.names
	resp.Schema = s.source.GetStruct()
	return nil
}

// Describe asks the aRPC server at addr for its machine's schema and ordered
// state names, the two arguments Dial needs, on a connection of its own
// that it closes before returning; no session is opened. ctx and the dial
// timeout (WithDialTimeout) bound the whole call; the other options (a
// dialer, the message size limit) are those of Dial, and a reply larger than
// the client's maximum message size (WithClientMaxMessageSize) fails the
// call. The reply is checked before it is returned: names unique and
// non-empty, relations in range, and the whole equal to the server's schema
// hash, so the result can be passed to Dial as it is. The error wraps
// ErrNetwork (unreachable), ErrIntrospectionOff (the server does not
// describe itself), ErrSchemaMismatch (another protocol version) or
// ErrInvalidResp (a reply that makes no sense).
func Describe(ctx context.Context, addr string, opts ...ClientOption) (am.Struct, am.S, error) {
	d, err := describe(ctx, addr, opts)
	if err != nil {
		return nil, nil, err
	}
	return d.Schema, d.Names, nil
}

// DialAny connects to the aRPC server at addr whatever its machine: it asks
// the server for the schema (Describe), then dials with it. ctx bounds both
// steps, as it bounds Dial. The client's Worker then has the server's schema
// (Worker.GetStruct, Worker.StateNames).
func DialAny(ctx context.Context, addr string, opts ...ClientOption) (*Client, error) {
	d, err := describe(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return Dial(ctx, addr, d.Schema, d.Names, opts...)
}

func describe(ctx context.Context, addr string, opts []ClientOption) (*respDescribe, error) {
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
	ctx, cancel := context.WithTimeout(ctx, o.dialTimeout)
	defer cancel()
	nc, err := o.dialer(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %w", ErrNetwork, addr, err)
	}
	conn := rpc2.NewConn(nc, rpc2.NewRegistry(),
		rpc2.WithMaxMessageSize(o.maxMessageSize),
		rpc2.WithLogger(o.logger),
		rpc2.WithKeepalive(0),
	)
	defer conn.Close()
	token, err := o.credentials(ctx)
	if err != nil {
		return nil, err
	}
	var resp respDescribe
	err = conn.Call(ctx, mDescribe, &msgDescribe{
		ProtoVersion: protoVersion,
		ClientID:     describeClientID,
		Token:        token,
	}, &resp)
	if err != nil {
		return nil, describeErr(addr, err)
	}
	if h := SchemaHash(resp.Schema, resp.Names); h != resp.SchemaHash {
		return nil, fmt.Errorf("%w: describe %s: the schema does not match its hash (%x, sent %x)",
			ErrInvalidResp, addr, h, resp.SchemaHash)
	}
	return &resp, nil
}

// introspectionErr maps the refusals of a Stats call that the client's
// error mapping leaves to ErrRpc.
func introspectionErr(err error) error {
	var re *rpc2.Error
	if errors.As(err, &re) {
		switch re.Code {
		case CodeIntrospectionOff:
			return fmt.Errorf("%w: %s", ErrIntrospectionOff, re.Message)
		case rpc2.CodeUnknownMethod:
			return fmt.Errorf("%w: the server does not answer Stats (an older server)", ErrIntrospectionOff)
		}
	}
	return err
}

// describeErr maps the errors of a Describe call.
func describeErr(addr string, err error) error {
	var re *rpc2.Error
	if errors.As(err, &re) {
		if e := securityErr(re); e != nil {
			return e
		}
		switch re.Code {
		case CodeIntrospectionOff:
			return fmt.Errorf("%w: %s", ErrIntrospectionOff, re.Message)
		case rpc2.CodeUnknownMethod:
			return fmt.Errorf("%w: %s does not answer Describe (an older server)", ErrIntrospectionOff, addr)
		case CodeProtoVersion:
			return fmt.Errorf("%w: %s", ErrSchemaMismatch, re.Message)
		case CodeStopped, rpc2.CodeUnavailable:
			return fmt.Errorf("%w: %s", ErrStopped, re.Message)
		}
		return fmt.Errorf("%w: describe %s: %w", ErrRpc, addr, err)
	}
	switch {
	case errors.Is(err, rpc2.ErrDecode), errors.Is(err, rpc2.ErrTooLarge), errors.Is(err, rpc2.ErrProtocol):
		return fmt.Errorf("%w: describe %s: %w", ErrInvalidResp, addr, err)
	}
	// the transport, or ctx ended (the error wraps ctx's too)
	return fmt.Errorf("%w: describe %s: %w", ErrNetwork, addr, err)
}
