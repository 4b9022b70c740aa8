package rpc

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Type tags of argument values in the binary codec. Values of any other type
// make the whole mutation travel as gob (MsgMutateGob), whose interface values
// must be registered with gob on both ends.
const (
	tagNil byte = iota
	tagFalse
	tagTrue
	tagInt
	tagInt64
	tagUint64
	tagFloat64
	tagString
	tagBytes
	tagError
	tagDuration
	tagTime
	tagInt32
	tagUint32
	tagUint8
)

// binaryArgs tells whether every value of args has a binary encoding.
func binaryArgs(args am.A) bool {
	for _, v := range args {
		switch v.(type) {
		case nil, bool, int, int64, uint64, float64, string, []byte, error,
			time.Duration, time.Time, int32, uint32, uint8:
		default:
			return false
		}
	}
	return true
}

// appendArgs encodes args, keys sorted so the encoding is deterministic. The
// caller has checked binaryArgs.
func appendArgs(b []byte, args am.A) []byte {
	return appendArgsWithout(b, args, "")
}

// appendArgsWithout is appendArgs without the key skip ("" skips nothing),
// for a key the receiver knows already.
func appendArgsWithout(b []byte, args am.A, skip string) []byte {
	n := len(args)
	if _, ok := args[skip]; ok && skip != "" {
		n--
	}
	b = binary.AppendUvarint(b, uint64(n))
	if n == 0 {
		return b
	}
	if n == 1 {
		for k, v := range args {
			if skip == "" || k != skip {
				return appendArg(b, k, v)
			}
		}
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		if skip == "" || k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = appendArg(b, k, args[k])
	}
	return b
}

func appendArg(b []byte, k string, v any) []byte {
	b = appendString(b, k)
	switch v := v.(type) {
	case nil:
		b = append(b, tagNil)
	case bool:
		if v {
			b = append(b, tagTrue)
		} else {
			b = append(b, tagFalse)
		}
	case int:
		b = binary.AppendVarint(append(b, tagInt), int64(v))
	case int64:
		b = binary.AppendVarint(append(b, tagInt64), v)
	case int32:
		b = binary.AppendVarint(append(b, tagInt32), int64(v))
	case uint64:
		b = binary.AppendUvarint(append(b, tagUint64), v)
	case uint32:
		b = binary.AppendUvarint(append(b, tagUint32), uint64(v))
	case uint8:
		b = append(b, tagUint8, v)
	case float64:
		b = binary.LittleEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(v))
	case string:
		b = appendString(append(b, tagString), v)
	case []byte:
		b = binary.AppendUvarint(append(b, tagBytes), uint64(len(v)))
		b = append(b, v...)
	case time.Duration:
		b = binary.AppendVarint(append(b, tagDuration), int64(v))
	case time.Time:
		tb, _ := v.MarshalBinary()
		b = binary.AppendUvarint(append(b, tagTime), uint64(len(tb)))
		b = append(b, tb...)
	case error:
		b = appendString(append(b, tagError), v.Error())
	}
	return b
}

var errBadTag = errors.New("unknown argument type tag")

// readArgs decodes what appendArgs wrote. Errors arrive as *RemoteError.
func readArgs(r *reader) am.A {
	n := r.count(2)
	if n == 0 || r.err != nil {
		return nil
	}
	args := make(am.A, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := string(r.bytes())
		var v any
		switch tag := r.byte1(); tag {
		case tagNil:
		case tagFalse:
			v = false
		case tagTrue:
			v = true
		case tagInt:
			v = int(r.varint())
		case tagInt64:
			v = r.varint()
		case tagInt32:
			v = int32(r.varint())
		case tagUint64:
			v = r.uvarint()
		case tagUint32:
			v = uint32(r.uvarint())
		case tagUint8:
			v = r.byte1()
		case tagFloat64:
			v = math.Float64frombits(r.fixed64())
		case tagString:
			v = string(r.bytes())
		case tagBytes:
			v = append([]byte(nil), r.bytes()...)
		case tagDuration:
			v = time.Duration(r.varint())
		case tagTime:
			var t time.Time
			if err := t.UnmarshalBinary(r.bytes()); err != nil && r.err == nil {
				r.err = err
			}
			v = t
		case tagError:
			v = &RemoteError{Msg: string(r.bytes())}
		default:
			if r.err == nil {
				r.err = errBadTag
			}
		}
		args[k] = v
	}
	return args
}
