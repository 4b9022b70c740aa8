package rpc

import (
	"encoding/binary"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Flags of a state in a Describe reply.
const (
	describeAuto  byte = 1 << 0
	describeMulti byte = 1 << 1
)

// msgDescribe asks a server for its machine's schema, before any session.
// It carries the same credentials as a handshake, so that a server which
// authenticates its clients answers only those it would admit.
type msgDescribe struct {
	ProtoVersion uint64
	ClientID     string
	Token        []byte
}

// AppendBinary implements encoding.BinaryAppender.
func (m *msgDescribe) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, m.ProtoVersion)
	b = appendString(b, m.ClientID)
	b = binary.AppendUvarint(b, uint64(len(m.Token)))
	return append(b, m.Token...), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *msgDescribe) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.ProtoVersion = r.uvarint()
	m.ClientID = string(r.bytes())
	m.Token = append([]byte(nil), r.bytes()...)
	return r.done()
}

// respDescribe is a machine's identity and schema: everything a client needs
// to call Dial. Relations are indexes into the state names followed by the
// extra names, the names that relations mention but the schema does not
// define (the engine ignores them, yet they are part of the schema's hash).
type respDescribe struct {
	MachineID  string
	SchemaHash uint64
	Names      am.S
	Schema     am.Struct
}

// AppendBinary implements encoding.BinaryAppender.
func (m *respDescribe) AppendBinary(b []byte) ([]byte, error) {
	index := make(map[string]int, len(m.Names))
	for i, n := range m.Names {
		index[n] = i
	}
	var extra am.S
	ref := func(n string) int {
		if i, ok := index[n]; ok {
			return i
		}
		index[n] = len(m.Names) + len(extra)
		extra = append(extra, n)
		return index[n]
	}
	// number the extra names first: they are written before the states
	for _, n := range m.Names {
		st := m.Schema[n]
		for _, l := range [...]am.S{st.Add, st.Require, st.Remove, st.After} {
			for _, r := range l {
				ref(r)
			}
		}
	}
	b = appendString(b, m.MachineID)
	b = binary.LittleEndian.AppendUint64(b, m.SchemaHash)
	b = binary.AppendUvarint(b, uint64(len(m.Names)))
	for _, n := range m.Names {
		b = appendString(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(extra)))
	for _, n := range extra {
		b = appendString(b, n)
	}
	for _, n := range m.Names {
		st := m.Schema[n]
		var flags byte
		if st.Auto {
			flags |= describeAuto
		}
		if st.Multi {
			flags |= describeMulti
		}
		b = append(b, flags)
		for _, l := range [...]am.S{st.Add, st.Require, st.Remove, st.After} {
			b = binary.AppendUvarint(b, uint64(len(l)))
			for _, r := range l {
				b = binary.AppendUvarint(b, uint64(index[r]))
			}
		}
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It checks every
// count against the bytes left before allocating, and rejects empty or
// repeated names, unknown flags and references out of range, so what it
// returns is a schema Dial accepts.
func (m *respDescribe) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	m.MachineID = string(r.bytes())
	m.SchemaHash = r.fixed64()
	n := r.count(1)
	all := make(am.S, 0, n)
	seen := make(map[string]bool, n)
	readNames := func(count int) error {
		for range count {
			name := string(r.bytes())
			if r.err != nil {
				return nil
			}
			if name == "" || seen[name] {
				return fmt.Errorf("%w: state name %q empty or repeated", ErrInvalidMsg, name)
			}
			seen[name] = true
			all = append(all, name)
		}
		return nil
	}
	if err := readNames(n); err != nil {
		return err
	}
	if err := readNames(r.count(1)); err != nil {
		return err
	}
	if r.err != nil {
		return r.done()
	}
	m.Names = all[:n:n]
	m.Schema = make(am.Struct, n)
	refs := func() (am.S, error) {
		c := r.count(1)
		if c == 0 {
			return nil, nil
		}
		l := make(am.S, c)
		for i := range l {
			x := r.uvarint()
			if x >= uint64(len(all)) {
				if r.err != nil {
					return nil, nil
				}
				return nil, fmt.Errorf("%w: relation to state %d of %d", ErrInvalidMsg, x, len(all))
			}
			l[i] = all[x]
		}
		return l, nil
	}
	for _, name := range m.Names {
		flags := r.byte1()
		if flags&^(describeAuto|describeMulti) != 0 {
			return fmt.Errorf("%w: state %s: unknown flags %#x", ErrInvalidMsg, name, flags)
		}
		st := am.State{Auto: flags&describeAuto != 0, Multi: flags&describeMulti != 0}
		for _, dst := range [...]*am.S{&st.Add, &st.Require, &st.Remove, &st.After} {
			l, err := refs()
			if err != nil {
				return err
			}
			*dst = l
		}
		m.Schema[name] = st
	}
	return r.done()
}
