package rpc2

import (
	"context"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"syscall"
)

// writeBufLimit bounds the bytes queued for writing; senders wait for the
// writer below it (backpressure on a peer that does not read).
const writeBufLimit = 1 << 20

// errBody is the body of an error frame.
type errBody struct {
	code Code
	msg  string
}

// send encodes one frame into the write buffer and makes sure it is written:
// if no goroutine is writing, the caller becomes the writer and writes
// everything queued (coalescing the frames of concurrent senders into one
// write); otherwise the current writer will write it. A caller whose ctx can
// end (other than the connection's own, whose end closes the transport) does
// not write itself, since a blocked write cannot be interrupted: it wakes the
// connection's writer goroutine instead, so ctx bounds all its waits. With
// wait, send returns only after the frame has been handed to the transport.
//
// Encoding happens under the write lock, so frames reach the codec in stream
// order. If encoding fails (or the frame is too large) nothing of the frame
// is kept and, if the codec was used, a reset frame tells the peer to start a
// fresh decoder, as the encoder is reset too.
func (c *Conn) send(ctx context.Context, k kind, seq uint64, m Method, body any, wait bool) error {
	mode := sendAsync
	if wait {
		mode = sendWait
	}
	_, err := c.sendFrame(ctx, k, seq, m, body, mode)
	return err
}

// sendMode says how far sendFrame takes a frame.
type sendMode uint8

const (
	sendAsync       sendMode = iota // make sure it is written, do not wait for it
	sendWait                        // return once it is handed to the transport
	sendQueue                       // leave it for the next write; wake the writer (see Queue)
	sendQueueHeld                   // leave it for the next write, due when the running handler returns
	sendQueueInline                 // as sendQueueHeld, from the read loop: never wait
	sendTry                         // as sendAsync, for TryNotify: never wait for room
)

// sendFrame is send that also reports whether the frame was queued (and so
// will reach the peer unless the connection fails).
func (c *Conn) sendFrame(ctx context.Context, k kind, seq uint64, m Method, body any, mode sendMode) (queued bool, _ error) {
	c.wmu.Lock()
	for c.werr == nil && len(c.wbuf) >= writeBufLimit {
		if mode == sendQueueInline {
			c.wmu.Unlock()
			return false, fmt.Errorf("%w: Queue in an inline handler with a full write buffer", ErrWouldBlock)
		}
		if mode == sendTry {
			c.wmu.Unlock()
			return false, fmt.Errorf("%w: the write buffer filled while the notification was made", ErrSlowPeer)
		}
		if err := c.waitWriteLocked(ctx); err != nil {
			return false, err
		}
	}
	if err := c.werr; err != nil {
		c.wmu.Unlock()
		return false, err
	}
	start := len(c.wbuf)
	b := append(c.wbuf, 0, 0, 0, 0, 0) // room for the length, see sealFrame
	hdr := len(b)
	b = appendHeader(b, k, seq, m)
	b, raw, codecUsed, err := c.appendBody(b, body)
	if err == nil {
		if n := len(b) - start - lenReserve; n > c.cfg.maxMessage {
			err = fmt.Errorf("%w: message of %d bytes exceeds the limit of %d bytes", ErrTooLarge, n, c.cfg.maxMessage)
		}
	}
	if err != nil {
		b = b[:start]
		if codecUsed {
			c.codec.ResetEncoder()
			b = append(b, 1, byte(kindReset))
			c.appended += 2
		}
		c.wbuf = b
		c.wmu.Unlock()
		return false, err
	}
	if raw {
		b[hdr] |= flagRaw
	}
	b = sealFrame(b, start)
	if codecUsed && len(b)-start > keepBufLimit {
		// A large body leaves the codec's buffers that large, here and at
		// the peer (gob keeps its encoding buffer and the last message it
		// read): start both codecs afresh, so that neither end keeps them.
		c.codec.ResetEncoder()
		b = append(b, 1, byte(kindReset))
	}
	c.appended += uint64(len(b) - start)
	c.wbuf = b
	end := c.appended
	var werr error
	switch {
	case c.flushing:
	case mode == sendQueueHeld, mode == sendQueueInline:
		c.queued.Store(true)
	case mode == sendQueue:
		c.wake()
	case ctx.Done() == nil || ctx == c.ctx:
		werr = c.flushLocked()
	default:
		c.wake()
	}
	if mode == sendWait {
		for c.written < end && c.werr == nil {
			if err := c.waitWriteLocked(ctx); err != nil {
				return true, err
			}
		}
	}
	if c.written < end && c.werr != nil {
		err = c.werr
	}
	c.wmu.Unlock()
	if werr != nil {
		c.fail(werr)
	}
	return true, err
}

// wake makes sure a writer goroutine will write what is in the buffer: it
// starts one unless one is running. The writer exits once the buffer is
// empty, so an idle connection has none. Whoever appends to the buffer does
// so before calling wake, and the writer clears writerOn under wmu after
// finding the buffer empty, so no frame is left behind.
func (c *Conn) wake() {
	if c.writerOn.Load() || !c.writerOn.CompareAndSwap(false, true) {
		return
	}
	if !c.spawn(c.writer) {
		// the connection has ended: nothing will be written
		return
	}
}

// sendControl queues a small control frame (kind and one uvarint) without
// ever waiting: for frames sent from the read loop or the timers,
// and for cancel frames, which must not block the caller. The writer
// goroutine writes it (or the current writer, along with its buffer). An
// optional frame (a pong, a ping) is dropped when the write buffer is full:
// the peer is not reading then, so it would not see it anyway, and a peer
// that floods pings cannot grow the buffer. Other control frames are bounded
// by the flow-control window.
func (c *Conn) sendControl(k kind, v uint64, optional bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil || (optional && len(c.wbuf) >= writeBufLimit) {
		return
	}
	c.appendControlLocked(k, v)
	if !c.flushing {
		c.wake()
	}
}

// appendControlLocked appends a control frame to the write buffer.
func (c *Conn) appendControlLocked(k kind, v uint64) {
	n := len(c.wbuf)
	c.wbuf = append(c.wbuf, byte(1+uvarintLen(v)), byte(k))
	c.wbuf = binary.AppendUvarint(c.wbuf, v)
	c.appended += uint64(len(c.wbuf) - n)
}

// writer writes on behalf of senders that must not block in a write. It also
// ends the write side of a drained connection (see shutWrite): once the
// buffer is written and nobody else is writing, it makes every later send
// fail with the drain's error and half-closes or closes the transport.
func (c *Conn) writer() {
	c.wmu.Lock()
	for {
		var werr error
		if !c.flushing {
			werr = c.flushLocked()
		}
		shut := c.closing.Load() && c.werr == nil && !c.flushing && len(c.wbuf) == 0
		if shut {
			c.werr = c.drainErr
			if c.wwait != nil {
				close(c.wwait)
				c.wwait = nil
			}
		}
		// Done when nothing is left to write, or another goroutine is
		// writing (it writes what is left, and wakes a writer again if
		// the connection is closing).
		done := shut || werr != nil || c.werr != nil || c.flushing || len(c.wbuf) == 0
		if done {
			c.writerOn.Store(false)
		}
		c.wmu.Unlock()
		if werr != nil {
			c.fail(werr)
		}
		if shut {
			c.closeWriteSide()
		}
		if done {
			return
		}
		c.wmu.Lock()
	}
}

// flushLocked makes the caller the writer: it writes wbuf until it is
// empty, releasing the lock around each write. It is called with wmu held and
// flushing clear. It returns the error the connection must fail with, if a
// write failed.
func (c *Conn) flushLocked() error {
	c.flushing = true
	if c.npending.Load() > 1 || c.inflight.Load() > 1 {
		// Other calls or handlers are under way, so more frames are
		// probably about to be sent: let them join this write.
		c.wmu.Unlock()
		runtime.Gosched()
		c.wmu.Lock()
	}
	if len(c.wbuf) > 0 && c.werr == nil {
		if f := c.freed.Swap(0); f > 0 {
			// credits of handled notifications ride along (finishRequest)
			c.appendControlLocked(kindCredit, uint64(f))
		}
	}
	var failErr error
	for len(c.wbuf) > 0 && c.werr == nil {
		buf := c.wbuf
		c.wbuf, c.wspare = c.wspare[:0], nil
		c.queued.Store(false)
		c.wmu.Unlock()
		var err error
		if c.cfg.limits.writeTimeout > 0 {
			err = c.timedWrite(buf)
		} else {
			_, err = c.nc.Write(buf)
		}
		c.wmu.Lock()
		c.written += uint64(len(buf))
		if cap(buf) <= keepBufLimit {
			c.wspare = buf[:0]
		}
		if err != nil && c.werr == nil {
			if end := c.Err(); end != nil {
				c.werr = end
			} else {
				c.werr = lostError(err)
				if !peerClosed(err) {
					failErr = c.werr
				}
			}
		}
		if c.wwait != nil {
			close(c.wwait)
			c.wwait = nil
		}
	}
	c.flushing = false
	if c.closing.Load() {
		c.wake() // the writer may have found this flush under way: let it look again
	}
	return failErr
}

// timedChunk is the most a timed write hands to the transport at once, so
// that WithWriteTimeout measures a peer's progress in reading, not the time
// a large buffer takes.
const timedChunk = 64 << 10

// timedWrite writes buf in chunks, each watched by the timers
// (see WithWriteTimeout).
func (c *Conn) timedWrite(buf []byte) error {
	defer c.wstart.Store(0)
	for len(buf) > 0 {
		n := min(len(buf), timedChunk)
		c.wstart.Store(monoNow() | 1) // never 0 ("no write")
		if _, err := c.nc.Write(buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// peerClosed reports whether a write failed because the peer closed the
// transport. Then the read side ends by itself (at the end of what the peer
// sent, or at once after a reset), so the read loop ends the connection and
// frames the peer wrote before it closed are still read and handled; only
// sends fail from now on.
func peerClosed(err error) bool {
	return errors.Is(err, io.ErrClosedPipe) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// waitWriteLocked waits (unlocking wmu meanwhile) until the writer has
// finished one write or the connection ends. It returns with wmu held,
// unless it returns ctx's error (then wmu is unlocked).
func (c *Conn) waitWriteLocked(ctx context.Context) error {
	if c.wwait == nil {
		c.wwait = make(chan struct{})
	}
	ch := c.wwait
	c.wmu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.wmu.Lock()
	return nil
}

// appendBody appends the body for v: nothing for nil, raw bytes for binary
// marshalers, else the codec's encoding. codecUsed reports whether the codec
// was involved (and so may need a reset after a failure).
func (c *Conn) appendBody(b []byte, v any) (out []byte, raw, codecUsed bool, err error) {
	if isNil(v) {
		return b, false, false, nil
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = b, fmt.Errorf("%w: %T: panic: %v", ErrEncode, v, p)
		}
	}()
	switch x := v.(type) {
	case errBody:
		out = binary.AppendUvarint(b, uint64(x.code))
		return append(out, x.msg...), false, false, nil
	case encoding.BinaryAppender:
		out, err = x.AppendBinary(b)
		raw = true
	case encoding.BinaryMarshaler:
		var p []byte
		p, err = x.MarshalBinary()
		out, raw = append(b, p...), true
	default:
		codecUsed = true
		out, err = c.codec.Encode(b, v)
	}
	if err != nil {
		return b, false, codecUsed, fmt.Errorf("%w: %T: %w", ErrEncode, v, err)
	}
	return out, raw, codecUsed, nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// sendError sends an error reply for seq. The message is cut to fit the
// frame limit.
func (c *Conn) sendError(seq uint64, code Code, msg string) error {
	if limit := min(c.cfg.maxMessage-32, 64<<10); len(msg) > limit {
		msg = msg[:limit]
	}
	return c.send(c.ctx, kindError, seq, 0, errBody{code, msg}, false)
}
