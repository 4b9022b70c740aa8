package rpc

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// msgRequest is a correlated request (Worker.Request): an Add of State with
// Args, which carry the correlation ID, and the state whose activation with
// that ID answers it. ReqID and Ack are those of a mutation (exactly-once).
type msgRequest struct {
	ReqID uint64
	Ack   uint64
	ID    string
	State int
	Until int
	Args  am.A
}

// Kinds of an encoded argument map (argsAny) and of an answer.
const (
	argsBinary byte = iota // the binary codec of Args
	argsGob                // a gob stream of its own holding one am.A
	argsError              // no args: the answer failed, the body is why
)

// appendArgsAny encodes args in the binary codec when every value has a
// binary form, otherwise as a gob stream of its own (the values' concrete
// types must be registered with gob on both ends).
func appendArgsAny(b []byte, args am.A) ([]byte, error) {
	if binaryArgs(args) {
		return appendArgs(append(b, argsBinary), args), nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(args); err != nil {
		return b, fmt.Errorf("%w: arguments: %w", ErrInvalidParams, err)
	}
	b = binary.AppendUvarint(append(b, argsGob), uint64(buf.Len()))
	return append(b, buf.Bytes()...), nil
}

// readArgsAny decodes what appendArgsAny wrote.
func readArgsAny(r *reader) am.A {
	switch kind := r.byte1(); kind {
	case argsBinary:
		return readArgs(r)
	case argsGob:
		data := r.bytes()
		if r.err != nil {
			return nil
		}
		args, err := decodeGobArgs(data)
		if err != nil {
			r.err = err
		}
		return args
	default:
		if r.err == nil {
			r.err = fmt.Errorf("unknown arguments kind %d", kind)
		}
		return nil
	}
}

func decodeGobArgs(data []byte) (am.A, error) {
	var args am.A
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&args); err != nil {
		return nil, fmt.Errorf("gob arguments: %w", err)
	}
	return args, nil
}

// AppendBinary implements encoding.BinaryAppender.
func (m *msgRequest) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, m.ReqID)
	b = binary.AppendUvarint(b, m.Ack)
	b = appendString(b, m.ID)
	b = binary.AppendUvarint(b, uint64(m.State))
	b = binary.AppendUvarint(b, uint64(m.Until))
	return appendArgsAny(b, m.Args)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *msgRequest) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.ReqID = r.uvarint()
	m.Ack = r.uvarint()
	m.ID = string(r.bytes())
	m.State = int(min(r.uvarint(), 1<<31))
	m.Until = int(min(r.uvarint(), 1<<31))
	m.Args = readArgsAny(&r)
	return r.done()
}

// wireAnswer is the answer to a request, carried by the session's update
// stream: its correlation ID and its arguments, encoded on the server when
// the answer arrived (so an argument that can't be encoded fails that one
// request, not the stream), decoded by the client for the request alone.
type wireAnswer struct {
	id   string
	kind byte // argsBinary, argsGob or argsError
	body []byte
}

// newAnswer encodes an answer's arguments.
func newAnswer(id string, args am.A) wireAnswer {
	if binaryArgs(args) {
		return wireAnswer{id: id, kind: argsBinary, body: appendArgs(nil, args)}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(args); err != nil {
		return wireAnswer{id: id, kind: argsError,
			body: fmt.Appendf(nil, "the answer's arguments can't be sent: %v", err)}
	}
	return wireAnswer{id: id, kind: argsGob, body: buf.Bytes()}
}

// decode returns the answer's arguments, or why there are none.
func (a *wireAnswer) decode() (am.A, error) {
	switch a.kind {
	case argsBinary:
		r := reader{b: a.body}
		args := readArgs(&r)
		if err := r.done(); err != nil {
			return nil, fmt.Errorf("%w: answer: %w", ErrInvalidResp, err)
		}
		if args == nil {
			args = am.A{}
		}
		return args, nil
	case argsGob:
		args, err := decodeGobArgs(a.body)
		if err != nil {
			return nil, fmt.Errorf("%w: answer: %w", ErrInvalidResp, err)
		}
		return args, nil
	case argsError:
		return nil, &RemoteError{Msg: string(a.body)}
	}
	return nil, fmt.Errorf("%w: answer of unknown kind %d", ErrInvalidResp, a.kind)
}

func appendAnswers(b []byte, answers []wireAnswer) []byte {
	b = binary.AppendUvarint(b, uint64(len(answers)))
	for _, a := range answers {
		b = appendString(b, a.id)
		b = append(b, a.kind)
		b = binary.AppendUvarint(b, uint64(len(a.body)))
		b = append(b, a.body...)
	}
	return b
}

var errAnswerKind = errors.New("bad answer kind")

func readAnswers(r *reader) []wireAnswer {
	n := r.count(3)
	if n == 0 {
		return nil
	}
	answers := make([]wireAnswer, n)
	for i := range answers {
		answers[i].id = string(r.bytes())
		answers[i].kind = r.byte1()
		answers[i].body = append([]byte(nil), r.bytes()...)
		if answers[i].kind > argsError && r.err == nil {
			r.err = errAnswerKind
		}
	}
	return answers
}

// msgUnrequest tells the server about requests whose callers gave up: their
// IDs, and the answers the client received for them anyway (it dropped
// them), so that the server reports those as answers that reached no one.
type msgUnrequest struct {
	ids     []string
	dropped []wireAnswer
}

// AppendBinary implements encoding.BinaryAppender.
func (m *msgUnrequest) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(m.ids)))
	for _, id := range m.ids {
		b = appendString(b, id)
	}
	return appendAnswers(b, m.dropped), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *msgUnrequest) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	n := r.count(1)
	m.ids = make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		m.ids = append(m.ids, string(r.bytes()))
	}
	m.dropped = readAnswers(&r)
	return r.done()
}
