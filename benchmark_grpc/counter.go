package benchgrpc

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc"
)

// CallCounter counts the gRPC messages one end originates, the same rule aRPC's CallCount follows
// (calls and notifications a side sent, not replies): on a client, every unary call and every message
// it sends on a stream; on a server, every message it sends on a stream. Unary replies are not
// counted, as aRPC's replies are not. Install its interceptors on one end; the zero value is ready to
// use and all methods are safe for concurrent use.
type CallCounter struct {
	n atomic.Uint64
}

// Load returns the number of messages counted so far.
func (c *CallCounter) Load() uint64 { return c.n.Load() }

// UnaryClientInterceptor counts each unary call.
func (c *CallCounter) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		c.n.Add(1)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor counts each message a client sends on a stream (for a server-streaming
// call, its single request).
func (c *CallCounter) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &countingClientStream{ClientStream: s, n: &c.n}, nil
	}
}

// StreamServerInterceptor counts each message a server sends on a stream.
func (c *CallCounter) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &countingServerStream{ServerStream: ss, n: &c.n})
	}
}

type countingClientStream struct {
	grpc.ClientStream
	n *atomic.Uint64
}

func (s *countingClientStream) SendMsg(m any) error {
	s.n.Add(1)
	return s.ClientStream.SendMsg(m)
}

type countingServerStream struct {
	grpc.ServerStream
	n *atomic.Uint64
}

func (s *countingServerStream) SendMsg(m any) error {
	s.n.Add(1)
	return s.ServerStream.SendMsg(m)
}
