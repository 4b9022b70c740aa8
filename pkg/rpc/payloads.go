package rpc

import "slices"

// payloadStore keeps a client's last payload per name, at most max of them:
// a new name at the cap drops the name that was received longest ago. It is
// guarded by the client's mu.
type payloadStore struct {
	byName  map[string]*ArgsPayload
	order   []string // names, least recently received first
	dropped uint64
}

func newPayloadStore() payloadStore {
	return payloadStore{byName: map[string]*ArgsPayload{}}
}

// put keeps p as the last payload of its name.
func (ps *payloadStore) put(p *ArgsPayload, max int) {
	if _, ok := ps.byName[p.Name]; ok {
		ps.order = slices.DeleteFunc(ps.order, func(n string) bool { return n == p.Name })
	} else if len(ps.order) >= max {
		oldest := ps.order[0]
		ps.order = slices.Delete(ps.order, 0, 1)
		delete(ps.byName, oldest)
		ps.dropped++
	}
	ps.byName[p.Name] = p
	ps.order = append(ps.order, p.Name)
}

func (ps *payloadStore) delete(name string) bool {
	if _, ok := ps.byName[name]; !ok {
		return false
	}
	delete(ps.byName, name)
	ps.order = slices.DeleteFunc(ps.order, func(n string) bool { return n == name })
	return true
}

// DeletePayload forgets the payload called name and reports whether there
// was one. Safe for concurrent use.
func (c *Client) DeletePayload(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.payloads.delete(name)
}

// DroppedPayloads returns how many payloads the client dropped to stay
// within WithMaxPayloads. Safe for concurrent use.
func (c *Client) DroppedPayloads() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.payloads.dropped
}
