package main

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/arpc-go/arpc/pkg/exchange"
)

// The behaviours a request can ask of one backend.
const (
	modeOK     = ""       // answer after the backend's delay
	modeFail   = "fail"   // answer with a failure
	modeSilent = "silent" // never answer
	modeSlow   = "slow"   // answer, but only after slowDelay
)

// slowDelay is how late a slow backend answers: past any deadline the
// gateway accepts.
const slowDelay = 400 * time.Millisecond

// message is what travels on a backend's queue.
type message struct {
	id   string // correlation id
	undo bool   // compensate the work done for id
	item string
	mode string
}

// reply is what travels back on the reply queue.
type reply struct {
	id      string
	backend string
	result  string
	err     error
}

// order is the request registered in the exchange, so that a late reply
// knows what to compensate.
type order struct {
	backend string
	item    string
}

// backend is one simulated asynchronous service: a goroutine consuming its
// queue, answering after a delay on the shared reply queue.
type backend struct {
	name  string
	verb  string
	delay time.Duration
	inbox chan message
}

// event is something that happened in the background, for the demo's
// script and its test to wait on.
type event struct {
	kind    string // "late" or "compensated"
	backend string
	id      string
}

// system owns the backends, the reply consumer and every goroutine they
// start; Close stops them all and returns when they have exited.
type system struct {
	ctrl     *exchange.Controller
	backends []*backend
	replies  chan reply
	// events tells the demo and its test what happened in the background:
	// best effort, dropped when nobody reads them.
	events chan event

	mu  sync.Mutex // serialises out
	out io.Writer

	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newSystem(out io.Writer) (*system, error) {
	ctrl, err := exchange.NewController(exchange.Options{TagLifespan: time.Hour})
	if err != nil {
		return nil, err
	}
	s := &system{
		ctrl:    ctrl,
		replies: make(chan reply, 64),
		events:  make(chan event, 64),
		out:     out,
		quit:    make(chan struct{}),
		backends: []*backend{
			{name: "stock", verb: "reserved", delay: 10 * time.Millisecond},
			{name: "payment", verb: "charged for", delay: 20 * time.Millisecond},
			{name: "shipping", verb: "booked a courier for", delay: 30 * time.Millisecond},
		},
	}
	for _, b := range s.backends {
		b.inbox = make(chan message, 64)
		s.wg.Go(func() { s.serve(b) })
	}
	s.wg.Go(s.consume)
	return s, nil
}

// Close stops the backends and the consumer, dropping what is still queued,
// and returns once every goroutine of the system has exited.
func (s *system) Close() {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
}

func (s *system) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format+"\n", args...)
}

func (s *system) backend(name string) *backend {
	for _, b := range s.backends {
		if b.name == name {
			return b
		}
	}
	return nil
}

// emit reports e if there is room, and drops it otherwise.
func (s *system) emit(e event) {
	select {
	case s.events <- e:
	default:
	}
}

// send queues m for b, unless the system stops first.
func (s *system) send(b *backend, m message) bool {
	select {
	case b.inbox <- m:
		return true
	case <-s.quit:
		return false
	}
}

// serve is b's consumer loop.
func (s *system) serve(b *backend) {
	for {
		var m message
		select {
		case <-s.quit:
			return
		case m = <-b.inbox:
		}
		if m.undo {
			s.logf("%s: compensated %s (%s)", b.name, m.item, m.id)
			s.emit(event{"compensated", b.name, m.id})
			continue
		}
		r := reply{id: m.id, backend: b.name, result: b.verb + " " + m.item}
		delay := b.delay
		switch m.mode {
		case modeSilent:
			s.logf("%s: got %s, staying silent", b.name, m.id)
			continue
		case modeFail:
			r.result, r.err = "", errors.New(b.name+" refused "+m.item)
		case modeSlow:
			delay = slowDelay
		}
		// The reply goes out later; the goroutine is the system's, so
		// Close waits for it.
		s.wg.Go(func() {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.quit:
				return
			}
			select {
			case s.replies <- r:
			case <-s.quit:
			}
		})
	}
}

// consume reads the reply queue and hands each reply to the controller,
// which finds its exchange by correlation id.
func (s *system) consume() {
	for {
		var r reply
		select {
		case <-s.quit:
			return
		case r = <-s.replies:
		}
		var err error
		if r.err != nil {
			err = s.ctrl.Fail(r.id, r.err)
		} else {
			err = s.ctrl.Respond(r.id, r.result)
		}
		switch {
		case err == nil:
			// delivered to its exchange; the message is acknowledged
		case errors.Is(err, exchange.ErrDuplicateResponse):
			s.logf("consumer: duplicate reply from %s for %s, acknowledged", r.backend, r.id)
		case errors.Is(err, exchange.ErrRolledBack):
			tag, ok := s.ctrl.Tag(r.id)
			s.logf("consumer: late reply from %s for %s: its exchange was rolled back; acknowledged, compensating", r.backend, r.id)
			s.emit(event{"late", r.backend, r.id})
			if ok {
				o := tag.Request.(order)
				s.send(s.backend(o.backend), message{id: r.id, undo: true, item: o.item})
			}
		default:
			s.logf("consumer: dropped reply from %s: %v", r.backend, err)
		}
	}
}
