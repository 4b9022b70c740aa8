package arpcnats

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// hub is the one subscription to a machine's update subject on one
// connection, shared by every Mirror of that machine on it: NATS delivers
// each update once per connection, and the hub decodes it once and applies
// it to each mirror in turn. So a process with many mirrors costs NATS one
// delivery per update, like a process with one.
type hub struct {
	key hubKey
	n   int // states per update
	sub *nats.Subscription
	// mu guards mirrors; the delivery holds it (read) while applying, so
	// a mirror removed under the write lock gets no more updates
	mu      sync.RWMutex
	mirrors map[*Mirror]struct{}
}

type hubKey struct {
	nc *nats.Conn
	id string
}

var (
	hubsMu sync.Mutex
	hubs   = map[hubKey]*hub{}
)

// joinHub adds m to the hub of its connection and machine, subscribing on
// first use.
func joinHub(m *Mirror) (*hub, error) {
	k := hubKey{m.nc, m.id}
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h := hubs[k]
	if h == nil {
		h = &hub{key: k, n: m.n, mirrors: map[*Mirror]struct{}{}}
		sub, err := m.nc.Subscribe(subjUpd(m.id), h.deliver)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrTransport, err)
		}
		h.sub = sub
		hubs[k] = h
	}
	if h.n != m.n {
		return nil, ErrSchemaMismatch
	}
	h.mu.Lock()
	h.mirrors[m] = struct{}{}
	h.mu.Unlock()
	return h, nil
}

// leave removes m; the last mirror out unsubscribes.
func (h *hub) leave(m *Mirror) {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h.mu.Lock()
	delete(h.mirrors, m)
	empty := len(h.mirrors) == 0
	h.mu.Unlock()
	if empty {
		_ = h.sub.Unsubscribe()
		delete(hubs, h.key)
	}
}

// deliver decodes an update once and applies it to every mirror. Bytes
// that don't decode are counted and dropped.
func (h *hub) deliver(msg *nats.Msg) {
	u, err := decodeUpdate(msg.Data, h.n)
	h.mu.RLock()
	defer h.mu.RUnlock()
	if err != nil {
		for m := range h.mirrors {
			m.dropped()
		}
		return
	}
	for m := range h.mirrors {
		m.apply(u)
	}
}
