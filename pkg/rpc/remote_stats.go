package rpc

import (
	"context"

	"github.com/arpc-go/arpc/pkg/rpc2"
)

// handleStats answers a session's Stats call with the server's counters.
func (s *Server) handleStats(_ context.Context, c *rpc2.Conn, _ *Empty, resp *respStats) error {
	if _, err := sessionOf(c); err != nil {
		return err
	}
	if s.opts.introspectionOff {
		return codeErr(CodeIntrospectionOff, "server %s does not share its counters", s.id)
	}
	resp.st = s.Stats()
	return nil
}

// Stats asks the server for its counters (Server.Stats), as they are when
// the call arrives; this client's own connection and session are among them.
// It fails with ErrIntrospectionOff on a server started with
// WithIntrospection(false) or older than this call.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var resp respStats
	err := c.call(ctx, mStats, &Empty{}, &resp)
	if err != nil {
		return Stats{}, introspectionErr(err)
	}
	return resp.st, nil
}
