package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Method codes of Layer 2. The numbering is the wire contract: never reuse or
// renumber a code (see PROTOCOL.md).
const (
	// client → server
	mHandshake   rpc2.Method = 1  // call: msgHandshake → respHandshake
	mMutate      rpc2.Method = 2  // call: msgMutate (binary) → respResult
	mMutateGob   rpc2.Method = 3  // call: MsgMutateGob (gob) → respResult
	mMutateNS    rpc2.Method = 4  // notify: msgMutate (binary)
	mMutateNSGob rpc2.Method = 5  // notify: MsgMutateGob (gob)
	mSync        rpc2.Method = 6  // call: empty → wireUint (the version reached)
	mGet         rpc2.Method = 7  // call: string → RespGet (gob)
	mLog         rpc2.Method = 8  // notify: string
	mBye         rpc2.Method = 9  // notify: empty, both directions
	mWatchArgs   rpc2.Method = 10 // call: MsgWatchArgs (gob) → empty
	mUnwatchArgs rpc2.Method = 11 // notify: uint64 watch id
	mRequest     rpc2.Method = 12 // call: msgRequest → respResult
	mUnrequest   rpc2.Method = 13 // notify: msgUnrequest, requests given up
	mDescribe    rpc2.Method = 14 // call, no session needed: msgDescribe → respDescribe
	mStats       rpc2.Method = 15 // call: empty → respStats
	mActiveArgs  rpc2.Method = 16 // call: empty → respActiveArgs

	// server → client
	mUpdate  rpc2.Method = 32 // notify (inline, in order): msgUpdate
	mPayload rpc2.Method = 33 // call: ArgsPayload (gob) → empty
)

// protoVersion is the Layer 2 protocol version carried by the handshake.
const protoVersion = 3

// Empty is the argument and reply of messages that carry nothing.
type Empty struct{}

// msgHandshake opens a session, or resumes one.
type msgHandshake struct {
	ProtoVersion uint64
	ClientID     string
	SchemaHash   uint64
	Names        am.S
	// Token is reserved for authentication; the server ignores it for now.
	Token []byte
	// Session, Epoch and Version ask to resume a session: its ID, the
	// epoch of the server process that made it, and the last version the
	// client applied. Empty Session opens a new one.
	Session string
	Epoch   uint64
	Version uint64
	// StateHashes hash each state's definition, so that a refusal can
	// name the states that differ.
	StateHashes []uint64
	// Sync lists the indexes of the states the mirror follows (selective
	// sync); nil follows every state.
	Sync []int
}

// respHandshake accepts a session. Before it, on the same stream, the server
// sends the updates that bring the client to Version: a full one for a new
// session, the missed ones for a resumed session.
type respHandshake struct {
	MachineID string
	Session   string
	Epoch     uint64
	Version   uint64
	Resumed   bool
}

// wireErr is an error as it crosses the wire: only its message travels.
type wireErr struct{ Msg string }

// mutation types on the wire
const (
	mutAdd    = byte(am.MutationAdd)
	mutRemove = byte(am.MutationRemove)
	mutSet    = byte(am.MutationSet)
	mutAddErr = 3 // Add of {state, Exception} with an error
)

// msgMutate is a mutation with arguments the binary codec can carry.
type msgMutate struct {
	Type  byte
	ReqID uint64
	// Ack tells the server that every request ID below it is settled: it
	// may forget their results.
	Ack    uint64
	States []int
	Args   am.A
	// Err is the error of an AddErr/AddErrState, or nil.
	Err error
	// Cond is the precondition of a MutateIf, nil for none.
	Cond []wireCond
}

// MsgMutateGob is the gob form of a mutation, used when an argument value is not
// one of the types of the binary codec. Exported only because gob requires it.
type MsgMutateGob struct {
	Type   byte
	ReqID  uint64
	Ack    uint64
	States []int
	Args   am.A
	ErrMsg string
	HasErr bool
	// Cond is the precondition of a MutateIf as (index, tick, offset)
	// triples; Type then has condFlag set.
	Cond []uint64
}

// MsgWatchArgs registers a remote WhenArgs. Exported only because gob requires it.
type MsgWatchArgs struct {
	ID    uint64
	State int
	Args  am.A
}

// ArgsPayload is a named payload the server sends to clients with SendPayload.
type ArgsPayload struct {
	// Name identifies the payload; a client keeps the last payload per name.
	Name string
	// Destination is a client ID, or "" for every connected client.
	Destination string
	// Data is the payload itself.
	Data []byte
}

// RespGet is the reply of Client.Get: whatever the server's getter returned.
// Its concrete type must be registered with gob on both ends.
type RespGet struct {
	Value any
}

// tickEntry is one changed state of a clock update.
type tickEntry struct {
	idx   int
	delta uint64
	// exited tells, for a Multi state active before and after the window,
	// that it was deactivated in between (a tick delta can't tell).
	exited bool
}

// msgUpdate is one versioned step of a session's update stream: a clock diff,
// or (full) the whole clock, plus the source's new error and the remote
// WhenArgs watches it resolves.
type msgUpdate struct {
	version uint64
	full    bool
	// entries is the diff; for a full update, time is the whole clock.
	entries []tickEntry
	time    am.Time
	// err is the source machine's new last error, if it changed.
	err     *wireErr
	matched []uint64
	// answers are the answers to this session's requests.
	answers []wireAnswer
	// raw, when set, is the update's encoding (made once, when the server
	// keeps it for resuming), sent as it is
	raw []byte
}

// Outcome codes of a mutation reply: why a mutation that ran did not
// execute. Refusals (the mutation did not run at all) are rpc2 errors.
const (
	outOK byte = iota
	outCanceled
	outHandlerTimeout
	outQueueFull
	outDisposed
	outInvalid
	outOther
	outPrecondition
)

// respResult is the reply of a mutation: its result, why it failed, and the
// version of the update stream that carries its effect.
type respResult struct {
	result  am.Result
	code    byte
	errMsg  string
	version uint64
}

var errShort = errors.New("short message")

// reader decodes the binary Layer 2 messages.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) fixed64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// count reads a length and checks that at least min bytes per element remain,
// so a hostile length can't make the decoder allocate.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b)/min) {
		r.err = errShort
		return 0
	}
	return int(n)
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMsg, r.err)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBinary implements encoding.BinaryAppender.
func (m *msgMutate) AppendBinary(b []byte) ([]byte, error) {
	if m.Cond != nil {
		b = append(b, m.Type|condFlag)
	} else {
		b = append(b, m.Type)
	}
	b = binary.AppendUvarint(b, m.ReqID)
	b = binary.AppendUvarint(b, m.Ack)
	b = binary.AppendUvarint(b, uint64(len(m.States)))
	for _, i := range m.States {
		b = binary.AppendUvarint(b, uint64(i))
	}
	if m.Type == mutAddErr {
		msg := ""
		if m.Err != nil {
			msg = m.Err.Error()
		}
		b = appendString(b, msg)
	}
	if m.Cond != nil {
		b = appendCond(b, m.Cond)
	}
	return appendArgs(b, m.Args), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *msgMutate) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.Type = r.byte1()
	hasCond := m.Type&condFlag != 0
	m.Type &^= condFlag
	m.ReqID = r.uvarint()
	m.Ack = r.uvarint()
	n := r.count(1)
	m.States = make([]int, 0, n)
	for i := 0; i < n; i++ {
		m.States = append(m.States, int(r.uvarint()))
	}
	if m.Type == mutAddErr {
		m.Err = &RemoteError{Msg: string(r.bytes())}
	}
	if hasCond {
		m.Cond = readCond(&r)
	}
	m.Args = readArgs(&r)
	return r.done()
}

// AppendBinary implements encoding.BinaryAppender.
func (u *msgUpdate) AppendBinary(b []byte) ([]byte, error) {
	if u.raw != nil {
		return append(b, u.raw...), nil
	}
	b = binary.AppendUvarint(b, u.version)
	if u.full {
		b = append(b, 1)
		b = appendTime(b, u.time)
	} else {
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(u.entries)))
		for _, e := range u.entries {
			b = binary.AppendUvarint(b, uint64(e.idx))
			d := e.delta << 1
			if e.exited {
				d |= 1
			}
			b = binary.AppendUvarint(b, d)
		}
	}
	b = appendErr(b, u.err)
	b = binary.AppendUvarint(b, uint64(len(u.matched)))
	for _, id := range u.matched {
		b = binary.AppendUvarint(b, id)
	}
	return appendAnswers(b, u.answers), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (u *msgUpdate) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	u.version = r.uvarint()
	switch r.byte1() {
	case 0:
		n := r.count(2)
		u.entries = make([]tickEntry, n)
		for i := range u.entries {
			u.entries[i].idx = int(r.uvarint())
			d := r.uvarint()
			u.entries[i].delta = d >> 1
			u.entries[i].exited = d&1 == 1
		}
	case 1:
		u.full = true
		u.time = readTime(&r)
	default:
		if r.err == nil {
			r.err = errors.New("bad update kind")
		}
	}
	u.err = readErr(&r)
	n := r.count(1)
	u.matched = make([]uint64, n)
	for i := range u.matched {
		u.matched[i] = r.uvarint()
	}
	u.answers = readAnswers(&r)
	return r.done()
}

// AppendBinary implements encoding.BinaryAppender.
func (m *respResult) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(m.result), m.code)
	b = appendString(b, m.errMsg)
	return binary.AppendUvarint(b, m.version), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *respResult) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.result = am.Result(r.byte1())
	m.code = r.byte1()
	m.errMsg = string(r.bytes())
	m.version = r.uvarint()
	return r.done()
}

func appendTime(b []byte, t am.Time) []byte {
	b = binary.AppendUvarint(b, uint64(len(t)))
	for _, v := range t {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func readTime(r *reader) am.Time {
	n := r.count(1)
	t := make(am.Time, n)
	for i := range t {
		t[i] = r.uvarint()
	}
	return t
}

func appendErr(b []byte, e *wireErr) []byte {
	if e == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	return appendString(b, e.Msg)
}

func readErr(r *reader) *wireErr {
	if r.byte1() != 1 {
		return nil
	}
	return &wireErr{Msg: string(r.bytes())}
}

// AppendBinary implements encoding.BinaryAppender.
func (m *msgHandshake) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, m.ProtoVersion)
	b = appendString(b, m.ClientID)
	b = binary.LittleEndian.AppendUint64(b, m.SchemaHash)
	b = binary.AppendUvarint(b, uint64(len(m.Names)))
	for _, n := range m.Names {
		b = appendString(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Token)))
	b = append(b, m.Token...)
	b = appendString(b, m.Session)
	b = binary.LittleEndian.AppendUint64(b, m.Epoch)
	b = binary.AppendUvarint(b, m.Version)
	b = binary.AppendUvarint(b, uint64(len(m.StateHashes)))
	for _, h := range m.StateHashes {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	if m.Sync != nil {
		// optional trailing section: its absence means every state
		b = binary.AppendUvarint(b, uint64(len(m.Sync)))
		for _, i := range m.Sync {
			b = binary.AppendUvarint(b, uint64(i))
		}
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *msgHandshake) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.ProtoVersion = r.uvarint()
	m.ClientID = string(r.bytes())
	m.SchemaHash = r.fixed64()
	n := r.count(1)
	m.Names = make(am.S, n)
	for i := range m.Names {
		m.Names[i] = string(r.bytes())
	}
	m.Token = append([]byte(nil), r.bytes()...)
	m.Session = string(r.bytes())
	m.Epoch = r.fixed64()
	m.Version = r.uvarint()
	n = r.count(8)
	m.StateHashes = make([]uint64, n)
	for i := range m.StateHashes {
		m.StateHashes[i] = r.fixed64()
	}
	if r.err == nil && len(r.b) > 0 {
		n = r.count(1)
		m.Sync = make([]int, n)
		for i := range m.Sync {
			// the server checks the range; this keeps the int positive
			m.Sync[i] = int(min(r.uvarint(), 1<<31))
		}
	}
	return r.done()
}

// AppendBinary implements encoding.BinaryAppender.
func (m *respHandshake) AppendBinary(b []byte) ([]byte, error) {
	b = appendString(b, m.MachineID)
	b = appendString(b, m.Session)
	b = binary.LittleEndian.AppendUint64(b, m.Epoch)
	b = binary.AppendUvarint(b, m.Version)
	if m.Resumed {
		return append(b, 1), nil
	}
	return append(b, 0), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *respHandshake) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.MachineID = string(r.bytes())
	m.Session = string(r.bytes())
	m.Epoch = r.fixed64()
	m.Version = r.uvarint()
	m.Resumed = r.byte1() == 1
	return r.done()
}

// AppendBinary implements encoding.BinaryAppender.
func (e *Empty) AppendBinary(b []byte) ([]byte, error) { return b, nil }

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (e *Empty) UnmarshalBinary(data []byte) error {
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes in an empty message", ErrInvalidMsg, len(data))
	}
	return nil
}

// wireString is a string message in binary form.
type wireString struct{ s string }

// AppendBinary implements encoding.BinaryAppender.
func (m *wireString) AppendBinary(b []byte) ([]byte, error) { return append(b, m.s...), nil }

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *wireString) UnmarshalBinary(data []byte) error {
	m.s = string(data)
	return nil
}

// wireUint is a uint64 message in binary form.
type wireUint struct{ v uint64 }

// AppendBinary implements encoding.BinaryAppender.
func (m *wireUint) AppendBinary(b []byte) ([]byte, error) {
	return binary.AppendUvarint(b, m.v), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *wireUint) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.v = r.uvarint()
	return r.done()
}
