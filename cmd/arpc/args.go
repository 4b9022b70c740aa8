package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

const argsHelp = `mutation arguments (--arg key=value, repeatable):
  The value's type is guessed the way you would read it:
    n=42            int                 ratio=0.5, big=1e9   float64
    ok=true         bool (true, false)  wait=1.5s, d=250ms   time.Duration
    name="Ann Lee"  string; double quotes take Go escapes (\n, \", \u00e9),
                    single quotes take the text as it is ('a\b')
    note=hello      anything else is a string, as written
    x=null          nil
  Force a type with key:TYPE=value, TYPE one of string, int, float, bool,
  duration, time (RFC 3339), e.g. id:string=42 or at:time=2025-01-02T15:04:05Z.
  A key may appear once.

`

// argList collects --arg flags into typed mutation arguments.
type argList struct {
	a am.A
}

// String implements flag.Value.
func (l *argList) String() string {
	if l == nil || len(l.a) == 0 {
		return ""
	}
	return fmt.Sprint(l.a)
}

// Set implements flag.Value: one key=value.
func (l *argList) Set(s string) error {
	k, v, err := parseArg(s)
	if err != nil {
		return err
	}
	if l.a == nil {
		l.a = am.A{}
	}
	if _, dup := l.a[k]; dup {
		return fmt.Errorf("argument %q given twice", k)
	}
	l.a[k] = v
	return nil
}

var (
	intRe      = regexp.MustCompile(`^[+-]?[0-9]+$`)
	floatRe    = regexp.MustCompile(`^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+)$`)
	durationRe = regexp.MustCompile(`^[+-]?([0-9]*\.?[0-9]+(ns|us|µs|ms|s|m|h))+$`)
)

// parseArg parses one key=value or key:TYPE=value into a typed value (see
// argsHelp).
func parseArg(s string) (string, any, error) {
	key, raw, ok := strings.Cut(s, "=")
	if !ok {
		return "", nil, fmt.Errorf("argument %q: want key=value", s)
	}
	key, typ, typed := strings.Cut(key, ":")
	if key == "" {
		return "", nil, fmt.Errorf("argument %q: empty key", s)
	}
	var (
		v   any
		err error
	)
	if typed {
		v, err = typedValue(typ, raw)
	} else {
		v, err = guessValue(raw)
	}
	if err != nil {
		return "", nil, fmt.Errorf("argument %s: %w", key, err)
	}
	return key, v, nil
}

// guessValue types a value from how it looks.
func guessValue(raw string) (any, error) {
	switch {
	case raw == "true":
		return true, nil
	case raw == "false":
		return false, nil
	case raw == "null":
		return nil, nil
	case strings.HasPrefix(raw, `"`):
		s, err := strconv.Unquote(raw)
		if err != nil {
			return nil, fmt.Errorf("bad double-quoted string %s: %w", raw, err)
		}
		return s, nil
	case strings.HasPrefix(raw, `'`):
		if len(raw) < 2 || !strings.HasSuffix(raw, `'`) {
			return nil, fmt.Errorf("unterminated single-quoted string %s", raw)
		}
		return raw[1 : len(raw)-1], nil
	case intRe.MatchString(raw):
		n, err := strconv.Atoi(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: out of range for an int", raw)
		}
		return n, nil
	case floatRe.MatchString(raw):
		return strconv.ParseFloat(raw, 64)
	case durationRe.MatchString(raw):
		return time.ParseDuration(raw)
	}
	return raw, nil
}

// typedValue converts raw to the type named typ.
func typedValue(typ, raw string) (any, error) {
	switch typ {
	case "string":
		return raw, nil
	case "int":
		n, err := strconv.Atoi(raw)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int", raw)
		}
		return n, nil
	case "float":
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a float", raw)
		}
		return f, nil
	case "bool":
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("%q is not a bool", raw)
		}
		return b, nil
	case "duration":
		d, err := time.ParseDuration(raw)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration", raw)
		}
		return d, nil
	case "time":
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return nil, fmt.Errorf("%q is not an RFC 3339 time", raw)
		}
		return t, nil
	}
	return nil, fmt.Errorf("unknown type %q (string, int, float, bool, duration, time)", typ)
}
