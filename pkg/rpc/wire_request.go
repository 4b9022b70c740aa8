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
// Args, and the state whose activation with the correlation ID answers it.
// ReqID and Ack are those of a mutation (exactly-once). The ID travels once:
// the receiver adds it to Args under CorrelationKey.
type msgRequest struct {
	ReqID uint64
	Ack   uint64
	// Applied is the last version of the update stream the client had
	// applied: the server forgets the answers it carried.
	Applied uint64
	ID      string
	State   int
	Until   int
	Args    am.A
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
	b = binary.AppendUvarint(b, m.Applied)
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
	m.Applied = r.uvarint()
	m.ID = string(r.bytes())
	m.State = int(min(r.uvarint(), 1<<31))
	m.Until = int(min(r.uvarint(), 1<<31))
	m.Args = readArgsAny(&r)
	if m.Args == nil {
		m.Args = am.A{}
	}
	m.Args[CorrelationKey] = m.ID
	return r.done()
}

// wireAnswer is the answer to a request, carried by the session's update
// stream: its correlation ID and its arguments (without the ID), encoded on
// the server when the answer arrived, so an argument that can't be encoded
// fails that one request, not the stream. The receiver decodes it at once
// into args (with the ID added back) or err, for that request alone.
type wireAnswer struct {
	id   string
	kind byte // argsBinary, argsGob or argsError
	body []byte
	// args or err is the decoded answer (receiver)
	args am.A
	err  error
	// e is the request answered, version the update that carried it
	// (server)
	e       *reqEntry
	version uint64
}

// newAnswer encodes an answer's arguments.
func newAnswer(id string, args am.A) wireAnswer {
	if binaryArgs(args) {
		return wireAnswer{id: id, kind: argsBinary, body: appendArgsWithout(nil, args, CorrelationKey)}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(args); err != nil {
		return errAnswer(id, fmt.Errorf("the answer's arguments can't be sent: %w", err))
	}
	return wireAnswer{id: id, kind: argsGob, body: buf.Bytes()}
}

// errAnswer is a failed answer.
func errAnswer(id string, err error) wireAnswer {
	return wireAnswer{id: id, kind: argsError, body: []byte(err.Error())}
}

// decode fills args or err from body.
func (a *wireAnswer) decode() {
	switch a.kind {
	case argsBinary:
		r := reader{b: a.body}
		a.args = readArgs(&r)
		if err := r.done(); err != nil {
			a.args, a.err = nil, fmt.Errorf("%w: answer: %w", ErrInvalidResp, err)
			return
		}
	case argsGob:
		args, err := decodeGobArgs(a.body)
		if err != nil {
			a.err = fmt.Errorf("%w: answer: %w", ErrInvalidResp, err)
			return
		}
		a.args = args
	case argsError:
		a.err = &RemoteError{Msg: string(a.body)}
		return
	default:
		a.err = fmt.Errorf("%w: answer of unknown kind %d", ErrInvalidResp, a.kind)
		return
	}
	if a.args == nil {
		a.args = am.A{}
	}
	a.args[CorrelationKey] = a.id
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

// readAnswers reads and decodes answers; the bodies are not kept.
func readAnswers(r *reader) []wireAnswer {
	n := r.count(3)
	if n == 0 {
		return nil
	}
	answers := make([]wireAnswer, n)
	for i := range answers {
		a := &answers[i]
		a.id = string(r.bytes())
		a.kind = r.byte1()
		a.body = r.bytes()
		if a.kind > argsError && r.err == nil {
			r.err = errAnswerKind
		}
		if r.err != nil {
			return nil
		}
		a.decode()
		a.body = nil
	}
	return answers
}

// reencode restores a decoded answer's body, to send it back.
func (a *wireAnswer) reencode() {
	if a.err != nil {
		*a = errAnswer(a.id, a.err)
		return
	}
	*a = newAnswer(a.id, a.args)
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
