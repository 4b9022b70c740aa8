package benchgrpc

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/arpc-go/arpc/benchmark_grpc/pb"
)

// StaticWindow is the HTTP/2 flow-control window (per stream and per connection) of the tuned gRPC
// options. Setting a window turns off gRPC's bandwidth-delay-product estimation, whose pings, and the
// window updates of the small default window, otherwise add bytes to every few messages.
const StaticWindow = 1 << 20

// TunedDialOptions returns the client options of gRPC at its best: a static StaticWindow window.
func TunedDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(StaticWindow),
		grpc.WithInitialConnWindowSize(StaticWindow),
	}
}

// DialGRPC returns a client connection to addr ("host:port") with no TLS, the passthrough resolver (no
// DNS), calls's interceptors installed (calls may be nil) and then opts. The connection is established
// lazily, by the first call. The caller owns it and must Close it.
func DialGRPC(addr string, calls *CallCounter, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	all := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if calls != nil {
		all = append(all,
			grpc.WithUnaryInterceptor(calls.UnaryClientInterceptor()),
			grpc.WithStreamInterceptor(calls.StreamClientInterceptor()))
	}
	return grpc.NewClient("passthrough:///"+addr, append(all, opts...)...)
}

// UnaryClient runs the cycle the way gRPC users usually write it: it holds a Subscribe stream for
// notifications, and per cycle calls GetValue, then CallOp with the matching op, then receives the
// notification of the new value. Three messages per cycle.
type UnaryClient struct {
	api     pb.WorkerClient
	stream  grpc.ServerStreamingClient[pb.Notification]
	cancel  context.CancelFunc
	session uint64
}

var _ Client = (*UnaryClient)(nil)

// NewUnaryClient subscribes over cc and waits, bounded by ctx, for the first notification, which
// names the session. The stream lives until Close; the caller keeps owning cc.
func NewUnaryClient(ctx context.Context, cc grpc.ClientConnInterface) (*UnaryClient, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel) // ctx bounds the set-up only
	defer stop()
	api := pb.NewWorkerClient(cc)
	stream, err := api.Subscribe(sctx, &pb.SubscribeRequest{})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("benchgrpc: subscribe: %w", err)
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("benchgrpc: first notification: %w", err)
	}
	if err := ctx.Err(); err != nil {
		// ctx ended during set-up: its AfterFunc runs asynchronously, so
		// check here rather than rely on the stream seeing the cancel
		cancel()
		return nil, fmt.Errorf("benchgrpc: set-up: %w", err)
	}
	return &UnaryClient{api: api, stream: stream, cancel: cancel, session: first.GetSession()}, nil
}

// Cycle implements Client. ctx bounds the two unary calls; the wait for the notification is bounded
// by Close (which ends the stream).
func (c *UnaryClient) Cycle(ctx context.Context) error {
	v, err := c.api.GetValue(ctx, &pb.GetValueRequest{Session: c.session})
	if err != nil {
		return fmt.Errorf("benchgrpc: GetValue: %w", err)
	}
	r, err := c.api.CallOp(ctx, &pb.CallOpRequest{Session: c.session, Op: v.GetValue()})
	if err != nil {
		return fmt.Errorf("benchgrpc: CallOp: %w", err)
	}
	if !r.GetOk() {
		return ErrMismatch
	}
	if _, err := c.stream.Recv(); err != nil {
		return fmt.Errorf("%w: %w", ErrNoNotification, err)
	}
	return nil
}

// Close implements Client: it cancels the Subscribe stream.
func (c *UnaryClient) Close() error {
	c.cancel()
	return nil
}

// BidiClient runs the cycle over one bidirectional stream, gRPC at its best: the notification is the
// new value itself, so a cycle is one Op sent and one Value received, with both messages reused.
type BidiClient struct {
	stream grpc.BidiStreamingClient[pb.Op, pb.Value]
	cancel context.CancelFunc
	op     pb.Op
	val    pb.Value
}

var _ Client = (*BidiClient)(nil)

// NewBidiClient opens a Session stream over cc and waits, bounded by ctx, for the first value. The
// stream lives until Close; the caller keeps owning cc.
func NewBidiClient(ctx context.Context, cc grpc.ClientConnInterface) (*BidiClient, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	stream, err := pb.NewWorkerStreamClient(cc).Session(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("benchgrpc: session: %w", err)
	}
	c := &BidiClient{stream: stream, cancel: cancel}
	if err := stream.RecvMsg(&c.val); err != nil {
		cancel()
		return nil, fmt.Errorf("benchgrpc: first value: %w", err)
	}
	if err := ctx.Err(); err != nil {
		cancel() // as in NewUnaryClient
		return nil, fmt.Errorf("benchgrpc: set-up: %w", err)
	}
	return c, nil
}

// Cycle implements Client. The stream, not ctx, bounds the wait; Close ends it.
func (c *BidiClient) Cycle(context.Context) error {
	c.op.Op = c.val.GetValue()
	if err := c.stream.Send(&c.op); err != nil {
		return fmt.Errorf("benchgrpc: send op: %w", err)
	}
	if err := c.stream.RecvMsg(&c.val); err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return fmt.Errorf("%w: %w", ErrMismatch, err)
		}
		return fmt.Errorf("%w: %w", ErrNoNotification, err)
	}
	return nil
}

// Close implements Client: it half-closes and cancels the stream.
func (c *BidiClient) Close() error {
	_ = c.stream.CloseSend()
	c.cancel()
	return nil
}
