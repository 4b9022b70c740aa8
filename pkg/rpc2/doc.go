// Package rpc2 is a bidirectional RPC layer: over one connection both ends
// call and serve each other. It is the transport under aRPC, where the client
// sends mutations and the server pushes clock updates back on the same
// connection.
//
// A [Conn] wraps a net.Conn (from either side: dialled or accepted). Handlers
// live in a [Registry], identified by a small [Method] number, and receive the
// Conn, so a handler may call the peer back, also synchronously, without
// deadlock: replies are read by the connection's read loop, which never runs
// handlers itself. Outgoing traffic is [Conn.Call] (wait for the reply),
// [Conn.Go] (asynchronous), [Conn.Notify] (one way) and [Conn.Queue] (one
// way, sent with the next write). Every blocking call takes a
// context.Context first; a canceled call is forgotten at once and the peer is
// told (a cancel frame): it drops the request if its handler has not started,
// or cancels the handler's context.
//
// # Liveness
//
// Each end pings a peer it has heard nothing from for the keepalive interval
// ([WithKeepalive], 10 s by default) and ends the connection with
// [ErrKeepalive] after twice that, so a peer that vanished without closing
// the transport is noticed.
//
// A [Server] serves one Registry on many connections, with connect and
// disconnect hooks and a graceful [Server.Shutdown], after which each peer
// has read every frame the server sent, then end of stream (no reset).
//
// # Wire format
//
// Each message is one length-prefixed frame whose length is checked against a
// limit ([WithMaxMessageSize], 4 MiB by default) before anything is allocated
// or decoded. Bodies are encoded by a [Codec] (gob by default, one stream per
// direction so types are described once per connection); values that
// implement encoding.BinaryAppender or encoding.BinaryMarshaler skip the
// codec and travel as raw bytes. PROTOCOL.md in the repository root
// ("Layer 1") specifies frames, fields, errors, ordering and shutdown.
//
// # Errors
//
// What a remote handler returns arrives as an [*Error] with a [Code] and a
// message (use errors.As). Local conditions are sentinels: [ErrClosed],
// [ErrConnLost] (wrapping the cause), [ErrKeepalive], [ErrTooLarge],
// [ErrEncode], [ErrDecode], [ErrProtocol], [ErrServerClosed], [ErrInvalid],
// [ErrWouldBlock].
//
// # Concurrency and bounds
//
// Non-ordered handlers run on up to [WithMaxConcurrency] goroutines per
// connection; further requests wait for a slot. Handlers registered with
// [Ordered] run one at a time, in arrival order, on a per-connection worker.
// Notification handlers registered with [Inline] run on the read loop, in
// exact wire order with everything else the peer sends (cheap, non-blocking
// handlers only). A connection costs one goroutine, its read loop, while it
// is idle: workers and the writer start on demand, workers left parked are
// retired after a keepalive-derived period without traffic, the timers and
// the parent-context watch are callbacks, and the read buffer is borrowed
// from a pool only while bytes wait in it.
// Flow control is by credit: each end announces a request window
// ([WithRequestWindow]) and the other end's Call, Go and Notify wait while it
// is used up, so the read loop never blocks on handlers and always reads
// replies (a handler calling back cannot deadlock it).
// Writes are coalesced: frames of concurrent senders queue in one buffer and
// go out in one write, made by the sender that found the connection idle (or,
// for senders whose context can end, by the connection's writer goroutine,
// so that a stalled peer cannot hold them past their deadline). The write
// buffer is bounded; senders wait for room. [Conn.TryNotify] never waits: it
// sends only when the peer's window and the buffer have room, so one
// goroutine can feed many connections without a slow peer holding it up. Read buffers grow with the bytes
// that arrive, never with a size the peer declares, and a gob body is
// checked before gob sees it, so that no count it declares allocates more
// than the body can back. A handler panic becomes a [CodeInternal] error
// reply; a hostile peer can make its connection end with an error, never the
// process panic.
//
// # Untrusted peers
//
// [WithGate] admits requests by method before their bodies are read and
// decodes no codec body until [Conn.Ungate] (for example, until a peer has
// authenticated); [WithGateTimeout] bounds how long a peer may take to be let
// in, [WithIdleTimeout] closes a peer that trickles bytes without finishing
// frames, and [WithWriteTimeout] disconnects one that stops reading
// ([ErrSlowPeer]), so that it costs its own connection at most a bounded
// backlog.
package rpc2
