package arpcnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RegisterWait registers a durable wait on the machine's leader, which
// stores it in JetStream before answering: from then on it survives
// restarts of this process and of the servers (a new leader resumes it).
// Registering an ID again is a no-op; if that wait has resolved, its
// result is returned. Otherwise it returns (nil, nil), and the result will
// be published to w.Reply (if set) and kept for PollWait. Waits are
// level-triggered: a case is ready while its condition holds (a condition
// that held only while no server led is not seen).
//
// Errors wrap ErrInvalidID (w.ID or w.Reply), ErrInvalidRequest (cases
// that don't fit the schema), am.ErrQueueFull (the leader resolves as
// many waits as it can: nothing was stored), ErrNoServer, ErrTransport,
// or are a RemoteError (the leader could not store the wait).
func (m *Mirror) RegisterWait(ctx context.Context, w DurableWait) (*WaitResult, error) {
	if !validID(w.ID) {
		return nil, fmt.Errorf("%w: wait id %q", ErrInvalidID, w.ID)
	}
	if w.Reply != "" && !validSubject(w.Reply) {
		return nil, fmt.Errorf("%w: reply subject %q", ErrInvalidID, w.Reply)
	}
	w.Result = nil
	body, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrArgs, err)
	}
	msg, err := m.nc.RequestWithContext(ctx, subjWaitReg(m.id), body)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w: %s", ErrNoServer, m.id)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTransport, err)
	}
	var r waitRegResp
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return nil, fmt.Errorf("%w: malformed reply: %v", ErrTransport, err)
	}
	if r.Code != codeOK {
		return nil, errOf(r.Code, r.Error)
	}
	return r.Result, nil
}

// PollWait reads a durable wait from JetStream: its result once resolved,
// nil while pending, ErrWaitUnknown if there's no such wait. It needs no
// leader.
func (m *Mirror) PollWait(ctx context.Context, waitID string) (*WaitResult, error) {
	if !validID(waitID) {
		return nil, fmt.Errorf("%w: wait id %q", ErrInvalidID, waitID)
	}
	kv, err := m.bucket(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTransport, err)
	}
	e, err := kv.Get(ctx, keyWait(m.id, waitID))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, fmt.Errorf("%w: %s", ErrWaitUnknown, waitID)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTransport, err)
	}
	var w DurableWait
	if err := json.Unmarshal(e.Value(), &w); err != nil {
		return nil, fmt.Errorf("%w: stored wait: %v", ErrInvalidRequest, err)
	}
	return w.Result, nil
}

// DeleteWait deletes a durable wait, resolved or not: a leader resolving
// it meanwhile doesn't store or publish its result.
func (m *Mirror) DeleteWait(ctx context.Context, waitID string) error {
	if !validID(waitID) {
		return fmt.Errorf("%w: wait id %q", ErrInvalidID, waitID)
	}
	kv, err := m.bucket(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTransport, err)
	}
	if err := kv.Delete(ctx, keyWait(m.id, waitID)); err != nil {
		return fmt.Errorf("%w: %v", ErrTransport, err)
	}
	return nil
}
