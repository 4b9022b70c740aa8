package rpc_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// The fan-out benchmark's machine: Left and Right are toggled by the
// measured Add1 calls, Mark by the source itself when push latency is
// measured. Every mirror mirrors all of them, so every change is pushed to
// every mirror.
var fanoutStates = am.Struct{
	"Left":  {Remove: am.S{"Right"}},
	"Right": {Remove: am.S{"Left"}},
	"Mark":  {},
}

var fanoutNames = am.S{"Left", "Right", "Mark", am.Exception}

// fanoutEnv carries "addr n" to the child process; its presence is what
// makes TestFanoutChild run.
const fanoutEnv = "ARPC_FANOUT_CHILD"

// fanoutPrefix marks the child's protocol lines on its stdout, which also
// carries what the testing package prints.
const fanoutPrefix = "fanout: "

// Bounds of the child's life: the time it may take to start and dial every
// mirror, to answer a command, and to stop.
const (
	fanoutReadyTimeout = 3 * time.Minute
	fanoutReplyTimeout = time.Minute
	fanoutStopTimeout  = 2 * time.Minute
	// fanoutChildTimeout is the child's -test.timeout: if everything else
	// fails, the testing package ends it.
	fanoutChildTimeout = 10 * time.Minute
)

// fanoutMsg is one message between BenchmarkFanout and its child, one JSON
// object a line: "arm" (parent: wait for Mark to reach Tick), "ready" (child:
// N mirrors are connected), "armed" (child: every mirror waits), "seen"
// (child: when each mirror saw it, in Unix ns, 0 if it did not within its
// deadline) and "error" (child: what failed).
type fanoutMsg struct {
	Op   string  `json:"op"`
	ID   int     `json:"id,omitempty"`
	Tick uint64  `json:"tick,omitempty"`
	N    int     `json:"n,omitempty"`
	Seen []int64 `json:"seen,omitempty"`
	Err  string  `json:"err,omitempty"`
}

// parseFanoutEnv reads the child's configuration.
func parseFanoutEnv(v string) (addr string, n int, err error) {
	addr, ns, ok := strings.Cut(v, " ")
	if !ok {
		return "", 0, fmt.Errorf("%s=%q: want \"addr n\"", fanoutEnv, v)
	}
	if n, err = strconv.Atoi(ns); err != nil || n <= 0 {
		return "", 0, fmt.Errorf("%s=%q: bad client count", fanoutEnv, v)
	}
	return addr, n, nil
}

// fanoutChild is the parent's handle on the child process holding the
// mirrors. Its reader goroutine, which owns the child's stdout, is gone
// once stop has returned.
type fanoutChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	enc   *json.Encoder
	msgs  chan fanoutMsg
	quit  chan struct{}
	done  chan struct{}
	diag  *tailBuffer
	once  sync.Once
}

// startFanoutChild runs this test binary again as TestFanoutChild, which
// dials n mirrors of the server at addr.
func startFanoutChild(addr string, n int) (*fanoutChild, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutChild$", "-test.count=1",
		"-test.timeout="+fanoutChildTimeout.String())
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", fanoutEnv, addr, n))
	p := &fanoutChild{
		cmd:  cmd,
		msgs: make(chan fanoutMsg),
		quit: make(chan struct{}),
		done: make(chan struct{}),
		diag: &tailBuffer{max: 32 << 10},
	}
	cmd.Stderr = p.diag
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.stdin = stdin
	p.enc = json.NewEncoder(stdin)
	go p.read(stdout)
	return p, nil
}

// read passes the protocol lines of the child's stdout to msgs and keeps the
// rest for diagnostics, until the child closes stdout or stop is called.
func (p *fanoutChild) read(stdout io.Reader) {
	defer close(p.done)
	defer close(p.msgs)
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadBytes('\n')
		if rest, ok := bytes.CutPrefix(line, []byte(fanoutPrefix)); ok {
			var m fanoutMsg
			if jerr := json.Unmarshal(rest, &m); jerr != nil {
				m = fanoutMsg{Op: "error", Err: "bad line from the child: " + jerr.Error()}
			}
			select {
			case p.msgs <- m:
			case <-p.quit:
				// keep draining stdout so that the child never blocks on it
			}
		} else {
			_, _ = p.diag.Write(line)
		}
		if err != nil {
			return
		}
	}
}

// send writes one command to the child.
func (p *fanoutChild) send(m fanoutMsg) error {
	if err := p.enc.Encode(m); err != nil {
		return fmt.Errorf("fanout child: send %s: %w\n%s", m.Op, err, p.diag)
	}
	return nil
}

// recv waits up to timeout for the child's next message, which must be op.
func (p *fanoutChild) recv(op string, timeout time.Duration) (fanoutMsg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m, ok := <-p.msgs:
		switch {
		case !ok:
			return m, fmt.Errorf("fanout child: exited while waiting for %q\n%s", op, p.diag)
		case m.Op == "error":
			return m, fmt.Errorf("fanout child: %s\n%s", m.Err, p.diag)
		case m.Op != op:
			return m, fmt.Errorf("fanout child: got %q, want %q", m.Op, op)
		}
		return m, nil
	case <-t.C:
		return fanoutMsg{}, fmt.Errorf("fanout child: no %q within %s\n%s", op, timeout, p.diag)
	}
}

// stop closes the child's stdin, which makes it close its mirrors and exit,
// kills it if it has not exited within fanoutStopTimeout, and returns the
// child's failure, if any (a leak found by its goleak counts). Safe to call
// more than once.
func (p *fanoutChild) stop() error {
	var err error
	p.once.Do(func() {
		_ = p.stdin.Close()
		close(p.quit)
		t := time.NewTimer(fanoutStopTimeout)
		defer t.Stop()
		killed := false
		select {
		case <-p.done:
		case <-t.C:
			killed = true
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		werr := p.cmd.Wait()
		switch {
		case killed:
			err = fmt.Errorf("fanout child: killed after not exiting within %s\n%s", fanoutStopTimeout, p.diag)
		case werr != nil:
			err = fmt.Errorf("fanout child: %w\n%s", werr, p.diag)
		}
	})
	return err
}

// tailBuffer keeps the last max bytes written to it, for diagnostics.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// errFanoutMissed is returned when a mirror did not see a transition in time.
var errFanoutMissed = errors.New("a mirror did not see the transition in time")
