package rpc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// The hostile-input catalogue: each case attacks a fresh server while a
// well-behaved client (the bystander) mutates the source in a loop. For each
// case: the attacker is refused or closed with the documented error; the
// bystander's p99 mutation latency stays under 10 ms; goroutines, file
// descriptors and heap return to their level before the attack. Run with -v
// for the table of figures.
//
// The server's timeouts are shortened so that the catalogue runs in seconds
// (the defaults are 10 s, 60 s and 30 s): handshake 250 ms, idle 600 ms,
// write 100 ms, keepalive 200 ms (so a silent peer is dropped after 400 ms,
// after the handshake deadline), session TTL 200 ms.
const (
	catHandshake = 250 * time.Millisecond
	catIdle      = 600 * time.Millisecond
	catWrite     = 100 * time.Millisecond
	catKeepalive = 200 * time.Millisecond
	catTTL       = 200 * time.Millisecond
	catP99       = 10 * time.Millisecond
)

// catAuth accepts the tokens "id:NAME" as identity NAME. The bystander is
// alice.
func catAuth(_ context.Context, p *Peer) (string, error) {
	if id, ok := strings.CutPrefix(string(p.Token), "id:"); ok && id != "" {
		return id, nil
	}
	return "", errors.New("invalid token")
}

type catEnv struct {
	t    *testing.T
	src  *am.Machine
	srv  *Server
	by   *Client // the bystander
	logs *errLog

	mu    sync.Mutex
	peers []*rawPeer // the attackers' connections, closed when they leave
}

func newCatEnv(t *testing.T) *catEnv {
	e := &catEnv{t: t, logs: &errLog{}}
	e.src = itSource(t, nil)
	policy := func(_ context.Context, id string) (Permissions, error) {
		if id == "viewer" {
			return Permissions{Mutate: am.S{"M"}, Observe: am.S{"A", "M"}}, nil
		}
		return Permissions{}, nil
	}
	e.srv = itServer(t, e.src,
		WithAuthenticator(catAuth), WithPolicy(policy),
		WithHandshakeTimeout(catHandshake), WithIdleTimeout(catIdle), WithWriteTimeout(catWrite),
		WithServerKeepalive(catKeepalive), WithSessionTTL(catTTL), WithMaxSessionsPerIdentity(2),
		WithServerLogger(slog.New(e.logs)))
	e.by = itClient(t, e.srv, "bystander", WithToken("id:alice"), WithMaxPayloads(32))
	return e
}

// client starts a well-behaved client of the env's server as identity.
func (e *catEnv) client(id, identity string, opts ...ClientOption) *Client {
	return itClient(e.t, e.srv, id, append(opts, WithToken("id:"+identity))...)
}

// dial connects a raw attacker.
func (e *catEnv) dial() *rawPeer {
	return e.track(dialRawPeer(e.t, e.srv.Addr))
}

func (e *catEnv) track(p *rawPeer) *rawPeer {
	e.mu.Lock()
	e.peers = append(e.peers, p)
	e.mu.Unlock()
	return p
}

// leave closes the attackers' connections.
func (e *catEnv) leave() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.peers {
		_ = p.nc.Close()
	}
}

// authed returns a raw attacker that completed a handshake as identity.
func (e *catEnv) authed(identity string) *rawPeer {
	p := e.dial()
	code, err := p.handshake(identity+"-raw", "id:"+identity)
	require.NoError(e.t, err)
	require.Zero(e.t, code, "handshake refused")
	return p
}

// chatter makes p send a Log notification every 20 ms until it is closed,
// so that it is neither silent (keepalive) nor idle while it reads nothing.
func chatter(p *rawPeer) {
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if p.write(frameOf(2, 0, mLog, true, []byte("hi"))) != nil {
				return
			}
		}
	}()
}

// warmUp exercises the bystander's connection as the cases will (two
// mutations at a time, a payload, a resync), so that the handler workers its
// connections keep parked (reused, at most WithMaxConcurrency) are part of
// the baseline.
func (e *catEnv) warmUp() {
	a, b := startProbe(e.by.Worker), startProbe(e.by.Worker)
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	require.NoError(e.t, e.srv.SendPayload(ctx, &ArgsPayload{Name: "warm", Destination: "alice"}))
	require.NoError(e.t, e.by.Worker.Resync(ctx))
	a.finish()
	b.finish()
	e.by.DeletePayload("warm")
}

// probe measures the bystander's mutation round trips until stopped.
type probe struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	lat  []time.Duration
	errs []error
}

// probeMin is the least number of mutations a case's p99 is taken over.
const probeMin = 1000

func startProbe(w *Worker) *probe {
	p := &probe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			mt := am.MutationAdd
			if i%2 == 1 {
				mt = am.MutationRemove
			}
			ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
			start := time.Now()
			_, err := w.Mutate(ctx, mt, am.S{"A"}, nil)
			d := time.Since(start)
			cancel()
			p.mu.Lock()
			p.lat = append(p.lat, d)
			if err != nil {
				p.errs = append(p.errs, err)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// samples returns how many mutations were measured so far.
func (p *probe) samples() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lat)
}

// end stops the probe (idempotent).
func (p *probe) end() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

// finish waits for probeMin samples, stops the probe and returns the p99.
func (p *probe) finish() (p99 time.Duration, n int) {
	tick := time.NewTicker(time.Millisecond)
	deadline := time.Now().Add(itDeadline)
	for p.samples() < probeMin && time.Now().Before(deadline) {
		<-tick.C
	}
	tick.Stop()
	p.end()
	if len(p.lat) == 0 {
		return 0, 0
	}
	s := slices.Clone(p.lat)
	slices.Sort(s)
	return s[(len(s)*99)/100], len(s)
}

// baseline is the process's level before an attack.
type baseline struct {
	goroutines, fds int
	heap            uint64
}

func measure() baseline {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return baseline{runtime.NumGoroutine(), openFDs(), ms.HeapAlloc}
}

// heapSlack is the heap growth still counted as "back to baseline" (pools,
// a connection's reused buffers, the runtime's own).
const heapSlack = 1 << 20

// settle waits until goroutines, fds and heap are back to base and returns
// the last measure.
func settle(t *testing.T, base baseline) baseline {
	t.Helper()
	deadline := time.Now().Add(itDeadline)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		m := measure()
		if m.goroutines <= base.goroutines && m.fds <= base.fds && m.heap <= base.heap+heapSlack {
			return m
		}
		if time.Now().After(deadline) {
			t.Errorf("not back to baseline: goroutines %d (was %d), fds %d (was %d), heap %d KiB (was %d KiB)",
				m.goroutines, base.goroutines, m.fds, base.fds, m.heap>>10, base.heap>>10)
			return m
		}
		<-tick.C
	}
}

type catCase struct {
	name    string
	outcome string // the documented outcome
	attack  func(t *testing.T, e *catEnv)
}

type catRow struct {
	name, outcome        string
	p99                  time.Duration
	samples              int
	dGor, dFD            int
	dHeap                int64
	allocated            uint64
	took                 time.Duration
	refused, closedCount string
}

// TestHostileCatalogue runs the catalogue (see above).
func TestHostileCatalogue(t *testing.T) {
	var rows []catRow
	for _, c := range catalogue() {
		t.Run(c.name, func(t *testing.T) {
			e := newCatEnv(t)
			e.warmUp()
			base := measure()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			allocBefore := ms.TotalAlloc
			start := time.Now()
			pr := startProbe(e.by.Worker)
			t.Cleanup(pr.end)
			c.attack(t, e)
			p99, n := pr.finish()
			e.leave()
			took := time.Since(start)
			runtime.ReadMemStats(&ms)
			allocated := ms.TotalAlloc - allocBefore
			assert.Empty(t, pr.errs, "the bystander's mutations failed")
			assert.Less(t, p99, catP99, "the bystander's p99 over %d mutations", n)
			after := settle(t, base)
			st := e.srv.Stats()
			rows = append(rows, catRow{
				name: c.name, outcome: c.outcome, p99: p99, samples: n,
				dGor: after.goroutines - base.goroutines, dFD: after.fds - base.fds,
				dHeap: int64(after.heap) - int64(base.heap), allocated: allocated, took: took,
				refused: fmt.Sprintf("auth %d, sess %d, forb %d, conns %d", st.RefusedAuth, st.RefusedSessions,
					st.Forbidden, st.RefusedConns),
				closedCount: fmt.Sprintf("hs %d, idle %d, slow %d", st.HandshakeTimeouts, st.IdleTimeouts, st.SlowPeers),
			})
		})
	}
	var b strings.Builder
	b.WriteString("\n| case | outcome | bystander p99 (n) | allocated | Δgoroutines | Δfds | Δheap | timeouts (Stats) | took |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %.2f ms (%d) | %.1f MiB | %d | %d | %+d KiB | %s | %s |\n",
			r.name, r.outcome, float64(r.p99.Microseconds())/1000, r.samples, float64(r.allocated)/(1<<20),
			r.dGor, r.dFD, r.dHeap>>10, r.closedCount, r.took.Round(time.Millisecond))
	}
	t.Log(b.String())
}

func catalogue() []catCase {
	return []catCase{
		{"gob bomb before handshake", "refused 102 (no session), body unread; closed at the handshake deadline (ErrGateTimeout)",
			func(t *testing.T, e *catEnv) {
				body := gobBomb(t, &MsgWatchArgs{ID: 1, Args: am.A{"a": 1}}, 1<<22)
				t.Logf("bomb: %d bytes on the wire", len(body)+len(settingsFrame)+4)
				p := e.dial()
				require.NoError(t, p.write(settingsFrame))
				f, err := p.call(mWatchArgs, false, body)
				require.NoError(t, err)
				assert.Equal(t, uint64(CodeNoSession), f.code)
				assert.True(t, p.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.srv.Stats().HandshakeTimeouts == 1 }, itDeadline, itPoll)
			}},
		{"gob bomb after handshake (WatchArgs)", "closed at once: ErrDecode/ErrDesync (the checker refuses the declared map)",
			func(t *testing.T, e *catEnv) {
				p := e.authed("mallory")
				_, err := p.request(mWatchArgs, false, gobBomb(t, &MsgWatchArgs{ID: 1, Args: am.A{"a": 1}}, 1<<22))
				require.NoError(t, err)
				assert.True(t, p.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.logs.count(rpc2.ErrDesync) >= 1 }, itDeadline, itPoll)
			}},
		{"gob bomb after handshake (MutateGob)", "closed at once: ErrDecode/ErrDesync",
			func(t *testing.T, e *catEnv) {
				p := e.authed("mallory")
				_, err := p.request(mMutateGob, false, gobBomb(t, &MsgMutateGob{Type: mutAdd, States: []int{1}, Args: am.A{"a": 1}}, 1<<22))
				require.NoError(t, err)
				assert.True(t, p.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.logs.count(rpc2.ErrDesync) >= 1 }, itDeadline, itPoll)
				assert.Zero(t, e.src.Tick("B"), "the bombed mutation ran")
			}},
		{"25 stalled 4 MiB frames", "heap grows by what arrived, not 100 MiB; closed at the handshake deadline",
			func(t *testing.T, e *catEnv) {
				before := measure()
				var peers []*rawPeer
				for range 25 {
					p := e.dial()
					hdr := append([]byte{0x80, 0x80, 0x80, 0x02}, 0x11, 1, byte(mHandshake), 1, 2, 3) // 4 MiB declared
					require.NoError(t, p.write(hdr))
					peers = append(peers, p)
				}
				require.Eventually(t, func() bool { return e.srv.Stats().Conns == 26 }, itDeadline, itPoll)
				grew := int64(measure().heap) - int64(before.heap)
				t.Logf("25 stalled frames declaring 4 MiB each: heap %+d KiB", grew>>10)
				assert.Less(t, grew, int64(2<<20))
				for _, p := range peers {
					assert.True(t, p.closedWithin(itDeadline))
				}
				require.Eventually(t, func() bool { return e.srv.Stats().HandshakeTimeouts == 25 }, itDeadline, itPoll)
			}},
		{"100 slowloris (1 B / 20 ms, no handshake)", "closed at the handshake deadline (ErrGateTimeout, Stats.HandshakeTimeouts)",
			func(t *testing.T, e *catEnv) {
				stream := append(slices.Clone(settingsFrame), frameOf(1, 1, mHandshake, true, handshakeBody("slow", "id:mallory", itNames))...)
				var wg sync.WaitGroup
				for range 100 {
					p := e.dial()
					wg.Add(1)
					go func() {
						defer wg.Done()
						tick := time.NewTicker(20 * time.Millisecond)
						defer tick.Stop()
						for _, b := range stream {
							if p.write([]byte{b}) != nil {
								return
							}
							<-tick.C
						}
					}()
				}
				wg.Wait()
				require.Eventually(t, func() bool { return e.srv.Stats().HandshakeTimeouts == 100 }, itDeadline, itPoll)
			}},
		{"slowloris after handshake", "closed by the idle timeout (ErrIdle, Stats.IdleTimeouts)",
			func(t *testing.T, e *catEnv) {
				p := e.authed("mallory")
				frame := frameOf(2, 0, mLog, true, make([]byte, 200))
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for _, b := range frame {
					if p.write([]byte{b}) != nil {
						break
					}
					<-tick.C
				}
				assert.True(t, p.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.srv.Stats().IdleTimeouts == 1 }, itDeadline, itPoll)
				assert.Positive(t, e.logs.count(rpc2.ErrIdle))
			}},
		{"AddErr with a 3 MiB message", "accepted; the error text is cut to 4 KiB on the wire; new handshakes and Resync work",
			func(t *testing.T, e *catEnv) {
				c := e.client("big-err", "bob")
				msg := strings.Repeat("x", 3<<20)
				assert.Equal(t, am.Executed, c.Worker.AddErr(errors.New(msg), nil))
				c2 := e.client("after", "bob")
				require.Eventually(t, func() bool { return c2.Worker.Err() != nil }, itDeadline, itPoll)
				assert.LessOrEqual(t, len(c2.Worker.Err().Error()), DefaultMaxErrorText+len("…"))
				ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
				defer cancel()
				require.NoError(t, e.by.Worker.Resync(ctx))
				// the source keeps its last error, and each session the last
				// one it sent: replace it, so the heap can return
				e.src.AddErr(errors.New("small"), nil)
				e.src.Remove1(am.Exception, nil)
				require.NoError(t, e.by.Worker.Resync(ctx))
				require.NoError(t, c.Close())
				require.NoError(t, c2.Close())
			}},
		{"wrong token", "refused 120 (ErrUnauthenticated), connection closed, nothing reaches the source",
			func(t *testing.T, e *catEnv) {
				p := e.dial()
				code, err := p.handshake("x", "guess")
				require.NoError(t, err)
				assert.Equal(t, uint64(CodeUnauthenticated), code)
				assert.True(t, p.closedWithin(itDeadline))
				ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
				defer cancel()
				_, err = Dial(ctx, e.srv.Addr, itStruct(), itNames)
				assert.ErrorIs(t, err, ErrUnauthenticated, "no token")
				assert.Equal(t, uint64(2), e.srv.Stats().RefusedAuth)
				assert.Equal(t, 1, e.srv.Stats().Sessions)
			}},
		{"another client's ID", "own session; payloads for alice reach alice only",
			func(t *testing.T, e *catEnv) {
				m := e.client("bystander", "mallory") // alice's client ID
				ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
				defer cancel()
				require.NoError(t, e.srv.SendPayload(ctx, &ArgsPayload{Name: "for-alice", Destination: "alice"}))
				assert.Contains(t, e.by.Payloads(), "for-alice")
				assert.Empty(t, m.Payloads())
				assert.Equal(t, 2, e.srv.Stats().Sessions)
				require.NoError(t, m.Close())
			}},
		{"a third session of one identity", "refused 122 (ErrTooManySessions), connection closed",
			func(t *testing.T, e *catEnv) {
				a2 := e.client("alice-2", "alice")
				p := e.dial()
				code, err := p.handshake("alice-3", "id:alice")
				require.NoError(t, err)
				assert.Equal(t, uint64(CodeTooManySessions), code)
				assert.True(t, p.closedWithin(itDeadline))
				assert.Equal(t, uint64(1), e.srv.Stats().RefusedSessions)
				require.NoError(t, a2.Close())
			}},
		{"forbidden mutation and watch", "refused 121 (ErrForbidden), not run; the hidden state stays 0 in the mirror",
			func(t *testing.T, e *catEnv) {
				v := e.client("viewer", "viewer")
				ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
				defer cancel()
				_, err := v.Worker.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil)
				assert.ErrorIs(t, err, ErrForbidden)
				assert.True(t, e.src.Not1("B"))
				e.src.Add1("B", nil)
				require.NoError(t, v.Worker.Resync(ctx))
				assert.Zero(t, v.Worker.Tick("B"))
				e.src.Remove1("B", nil)
				require.NoError(t, v.Close())
			}},
		{"garbage bytes", "closed at once (ErrProtocol)",
			func(t *testing.T, e *catEnv) {
				p := e.dial()
				junk := make([]byte, 4096)
				_, _ = rand.Read(junk)
				junk[0], junk[1] = 2, 0x0b // a frame of unknown kind first: deterministic
				_ = p.write(junk)
				assert.True(t, p.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.logs.count(rpc2.ErrProtocol) >= 1 }, itDeadline, itPoll)
			}},
		{"oversized frame (5 MiB declared)", "closed at once (ErrTooLarge), nothing allocated for it",
			func(t *testing.T, e *catEnv) {
				p := e.dial()
				require.NoError(t, p.write([]byte{0x80, 0x80, 0xc0, 0x02, 1}))
				assert.True(t, p.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.logs.count(rpc2.ErrTooLarge) >= 1 }, itDeadline, itPoll)
			}},
		{"truncated frame", "closed (io.ErrUnexpectedEOF)",
			func(t *testing.T, e *catEnv) {
				p := e.dial()
				require.NoError(t, p.write(append(slices.Clone(settingsFrame), 100, 0x11, 1, 1, 0, 0)))
				require.NoError(t, p.nc.(*net.TCPConn).CloseWrite())
				assert.True(t, p.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.logs.count(io.ErrUnexpectedEOF) >= 1 }, itDeadline, itPoll)
			}},
		{"unknown kinds and methods", "unknown kind: closed (ErrProtocol); unknown method: 102 before the handshake, 2 after, connection kept",
			func(t *testing.T, e *catEnv) {
				p := e.dial()
				require.NoError(t, p.write(settingsFrame))
				f, err := p.call(999, true, []byte{1})
				require.NoError(t, err)
				assert.Equal(t, uint64(CodeNoSession), f.code)
				q := e.authed("mallory")
				f, err = q.call(999, true, []byte{1})
				require.NoError(t, err)
				assert.Equal(t, uint64(rpc2.CodeUnknownMethod), f.code)
				f, err = q.call(mUpdate, true, nil) // a client method
				require.NoError(t, err)
				assert.Equal(t, uint64(rpc2.CodeUnknownMethod), f.code)
				f, err = q.call(mSync, true, nil)
				require.NoError(t, err)
				assert.Zero(t, f.code, "the connection still works")
				require.NoError(t, q.write([]byte{1, 0x0c}))
				assert.True(t, q.closedWithin(itDeadline))
				require.Eventually(t, func() bool { return e.logs.count(rpc2.ErrProtocol) >= 1 }, itDeadline, itPoll)
				assert.True(t, p.closedWithin(itDeadline), "closed at the handshake deadline")
			}},
		{"wrong schema", "refused 101 (ErrSchemaMismatch), no session",
			func(t *testing.T, e *catEnv) {
				p := e.dial()
				require.NoError(t, p.write(settingsFrame))
				f, err := p.call(mHandshake, true, handshakeBody("x", "id:mallory", am.S{"A", "Z", am.Exception}))
				require.NoError(t, err)
				assert.Equal(t, uint64(CodeSchemaMismatch), f.code)
				assert.Contains(t, string(f.body), "Z")
				assert.Equal(t, 1, e.srv.Stats().Sessions)
				ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
				defer cancel()
				_, err = Dial(ctx, e.srv.Addr, am.Struct{"A": {}}, am.S{"A", am.Exception}, WithToken("id:mallory"))
				assert.ErrorIs(t, err, ErrSchemaMismatch)
			}},
		{"bad indexes and malformed bodies", "mutation Canceled (out of range), watch 100, malformed 3; not run, connection kept",
			func(t *testing.T, e *catEnv) {
				p := e.authed("mallory")
				f, err := p.call(mMutate, true, appendRaw(&msgMutate{Type: mutAdd, ReqID: 1, States: []int{999}}))
				require.NoError(t, err)
				var r respResult
				require.NoError(t, r.UnmarshalBinary(f.body))
				assert.Equal(t, am.Canceled, r.result)
				f, err = p.call(mWatchArgs, false, gobBody(&MsgWatchArgs{ID: 1, State: 999}))
				require.NoError(t, err)
				assert.Equal(t, uint64(CodeInvalidParams), f.code)
				f, err = p.call(mMutate, true, []byte{0, 1, 1, 0xff, 0xff, 0xff, 0x7f})
				require.NoError(t, err)
				assert.Equal(t, uint64(rpc2.CodeBadRequest), f.code)
				f, err = p.call(mSync, true, nil)
				require.NoError(t, err)
				assert.Zero(t, f.code)
			}},
		{"pipelined request before the handshake's reply", "refused 102 (the gate admits only the handshake); the handshake succeeds",
			func(t *testing.T, e *catEnv) {
				p := e.dial()
				b := append(slices.Clone(settingsFrame), frameOf(1, 1, mHandshake, true, handshakeBody("pipe", "id:mallory", itNames))...)
				b = append(b, frameOf(1, 2, mMutate, true, appendRaw(&msgMutate{Type: mutAdd, ReqID: 1, States: []int{2}}))...)
				require.NoError(t, p.write(b))
				got, err := p.answers(1, 2)
				require.NoError(t, err)
				assert.Zero(t, got[1].code)
				assert.Equal(t, uint64(CodeNoSession), got[2].code)
				assert.True(t, e.src.Not1("M"))
			}},
		{"1000 connect/drop", "closed; Stats.Conns back to 1",
			func(t *testing.T, e *catEnv) {
				// paced: the attacker shares this process's two cores
				tick := time.NewTicker(400 * time.Microsecond)
				defer tick.Stop()
				for range 1000 {
					<-tick.C
					nc, err := net.DialTimeout("tcp", e.srv.Addr, itDeadline)
					require.NoError(t, err)
					require.NoError(t, nc.Close())
				}
				require.Eventually(t, func() bool { return e.srv.Stats().Conns == 1 }, itDeadline, itPoll)
			}},
		{"200 handshakes dropped without Bye", "sessions expire after the TTL; Stats.Sessions back to 1",
			func(t *testing.T, e *catEnv) {
				tick := time.NewTicker(2 * time.Millisecond) // paced, as above
				defer tick.Stop()
				for i := range 200 {
					<-tick.C
					p := e.dial()
					code, err := p.handshake(fmt.Sprint("churn", i), fmt.Sprint("id:churn", i))
					require.NoError(t, err)
					require.Zero(t, code)
					require.NoError(t, p.nc.Close())
				}
				require.Eventually(t, func() bool { return e.srv.Stats().Sessions == 1 }, itDeadline, itPoll)
			}},
		{"100 half-open readers while pushing (pipes)", "disconnected when a write blocks for the write timeout (ErrSlowPeer, Stats.SlowPeers)",
			func(t *testing.T, e *catEnv) {
				var served sync.WaitGroup
				pace := time.NewTicker(2 * time.Millisecond) // paced, as above
				defer pace.Stop()
				for i := range 100 {
					<-pace.C
					a, b := net.Pipe()
					served.Add(1)
					go func() {
						defer served.Done()
						_ = e.srv.ServeConn(context.Background(), b)
					}()
					p := e.track(newRawPeer(t, a))
					code, err := p.handshake(fmt.Sprint("halfopen", i), fmt.Sprint("id:halfopen", i))
					require.NoError(t, err)
					require.Zero(t, code)
					chatter(p) // it reads nothing more, but keeps talking
				}
				stop := make(chan struct{})
				pushed := make(chan struct{})
				go func() { // the source keeps changing: every session has pushes
					defer close(pushed)
					tick := time.NewTicker(2 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							e.src.Add1("M", nil)
						}
					}
				}()
				require.Eventually(t, func() bool { return e.srv.Stats().SlowPeers == 100 }, itDeadline, itPoll)
				close(stop)
				<-pushed
				served.Wait()
			}},
		{"3 TCP clients that stopped reading + 8 broadcasts of 1 MiB", "healthy clients get 8/8; stalled ones are disconnected (ErrSlowPeer) once their socket buffers fill or their credit runs out",
			func(t *testing.T, e *catEnv) {
				bob := e.client("bob", "bob", WithMaxPayloads(32))
				for i := range 3 {
					p := e.authed(fmt.Sprint("stalled", i))
					_ = p.nc.(*net.TCPConn).SetReadBuffer(4096)
					chatter(p) // it reads nothing more, but keeps talking
				}
				data := make([]byte, 1<<20)
				var errs int
				for i := range 8 {
					// a broadcast waits for every client's reply: bound it
					ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
					if err := e.srv.SendPayload(ctx, &ArgsPayload{Name: fmt.Sprint("p", i), Data: data}); err != nil {
						errs++
					}
					cancel()
				}
				assert.Len(t, bob.Payloads(), 8)
				assert.Len(t, e.by.Payloads(), 8)
				assert.Positive(t, errs, "the stalled clients' calls failed")
				require.Eventually(t, func() bool { return e.srv.Stats().SlowPeers == 3 }, itDeadline, itPoll)
				require.NoError(t, bob.Close())
				for i := range 8 { // the clients' own data, not the server's
					e.by.DeletePayload(fmt.Sprint("p", i))
					bob.DeletePayload(fmt.Sprint("p", i))
				}
			}},
		{"300 payloads of 64 KiB to one client", "the client keeps 64 (WithMaxPayloads default), drops and counts 236",
			func(t *testing.T, e *catEnv) {
				c := e.client("flooded", "bob", WithMaxPayloads(DefaultMaxPayloads))
				ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
				defer cancel()
				data := make([]byte, 64<<10)
				for i := range 300 {
					require.NoError(t, e.srv.SendPayload(ctx, &ArgsPayload{Name: fmt.Sprint("n", i), Destination: "bob", Data: data}))
				}
				assert.Len(t, c.Payloads(), DefaultMaxPayloads)
				assert.Equal(t, uint64(300-DefaultMaxPayloads), c.DroppedPayloads())
				require.NoError(t, c.Close())
				for name := range c.Payloads() { // the client's own data
					c.DeletePayload(name)
				}
			}},
	}
}

// TestShutdownStalledPeers: goodbyes go to every client in parallel, so
// three clients that stopped reading delay neither a healthy client's Bye
// nor Shutdown beyond its ctx.
func TestShutdownStalledPeers(t *testing.T) {
	e := newCatEnv(t)
	for i := range 3 {
		p := e.authed(fmt.Sprint("stalled", i))
		chatter(p) // reads nothing, keeps talking
	}
	defer e.leave()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()
	require.Eventually(t, func() bool { return e.by.testConn() == nil }, itDeadline, time.Millisecond)
	bye := time.Since(start)
	var err error
	select {
	case err = <-done:
	case <-time.After(itDeadline):
		t.Fatal("Shutdown did not return after its ctx ended")
	}
	took := time.Since(start)
	t.Logf("healthy client's Bye after %s; Shutdown returned after %s (%v)", bye, took, err)
	assert.Less(t, bye, 500*time.Millisecond)
	assert.Less(t, took, time.Second+500*time.Millisecond)
}
