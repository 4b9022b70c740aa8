package machine

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"
)

// Event is passed to every handler. Handlers may keep it; Args is shared by
// all the handlers of a transition.
type Event struct {
	// Name is the handler's name, e.g. "AEnter".
	Name string
	// Machine is the machine emitting the event.
	Machine *Machine
	// Args are the mutation's arguments (never nil inside handlers).
	Args A
}

// Mutation returns the mutation of the machine's current transition, which
// may differ from this event's own (as in asyncmachine-go, kept for
// compatibility). Nil when idle.
func (e *Event) Mutation() *Mutation {
	t := e.Transition()
	if t == nil {
		return nil
	}
	return t.Mutation
}

// Transition returns the machine's current transition, which may differ from
// this event's own (as in asyncmachine-go, kept for compatibility). Nil when
// idle.
func (e *Event) Transition() *Transition {
	if e == nil || e.Machine == nil {
		return nil
	}
	return e.Machine.Transition()
}

// emitter is one bound handler struct.
type emitter struct {
	name string
	val  reflect.Value
	typ  reflect.Type
}

// hRef is one handler method of one emitter. The direct forms (dB, dV)
// take the receiver pointer and skip reflection; fnB/fnV are the fallback.
type hRef struct {
	em      *emitter
	name    string
	nameAny any
	recv    unsafe.Pointer
	dB      func(unsafe.Pointer, *Event) bool
	dV      func(unsafe.Pointer, *Event)
	fnB     func(*Event) bool
	fnV     func(*Event)
}

// eface is the layout of an interface value.
type eface struct {
	typ, data unsafe.Pointer
}

// directMethod returns the method expression of meth as a func taking the
// receiver as an unsafe.Pointer. A method expression of a pointer receiver
// type is a plain func whose first argument is that pointer, so the
// reinterpretation keeps the calling convention; the signature is checked
// first. ok is false when the fast path doesn't apply.
func directMethod(recv reflect.Value, meth reflect.Method) (
	dB func(unsafe.Pointer, *Event) bool, dV func(unsafe.Pointer, *Event), ok bool,
) {
	ft := meth.Type
	if recv.Kind() != reflect.Pointer || !meth.Func.IsValid() || ft.NumIn() != 2 ||
		ft.In(0) != recv.Type() || ft.In(1) != eventPtrType || ft.IsVariadic() {
		return nil, nil, false
	}
	f := meth.Func.Interface()
	data := (*eface)(unsafe.Pointer(&f)).data
	switch {
	case ft.NumOut() == 1 && ft.Out(0) == boolType:
		return *(*func(unsafe.Pointer, *Event) bool)(unsafe.Pointer(&data)), nil, true
	case ft.NumOut() == 0:
		return nil, *(*func(unsafe.Pointer, *Event))(unsafe.Pointer(&data)), true
	}
	return nil, nil, false
}

// hList is the list of handlers of one event, in binding order.
type hList []hRef

// handlerTable indexes all handlers of all emitters by state index. Rebuilt
// on bind and schema changes; immutable once published.
type handlerTable struct {
	sch                                 *schema
	enter, exit, state, end, anyX, xAny []hList
	pair                                map[uint64]hList
	anyAny                              hList
	none                                bool
}

func pairKey(x, y int) uint64 { return uint64(uint32(x))<<32 | uint64(uint32(y)) }

// handlerKind is the suffix-defined kind of a handler name.
type handlerKind int

const (
	hkEnter handlerKind = iota
	hkExit
	hkState
	hkEnd
	hkPair // XY, XX, AnyX, XAny, AnyAny
)

var eventPtrType = reflect.TypeOf((*Event)(nil))
var boolType = reflect.TypeOf(true)

// BindHandlers binds the methods of h, a pointer to a struct, as handlers.
// Emitters are consulted in binding order and cannot be unbound. Every method
// whose name looks like a handler of the schema's states must take one
// *Event and return nothing or a bool; otherwise an error is returned and
// nothing is bound. Safe to call concurrently.
func (m *Machine) BindHandlers(h any) error {
	if m.Disposed.Load() {
		return errors.New("BindHandlers: machine disposed")
	}
	v := reflect.ValueOf(h)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct || v.IsNil() {
		return errors.New("BindHandlers expects a pointer to a struct")
	}
	em := &emitter{name: v.Elem().Type().Name(), val: v, typ: v.Type()}
	sch := m.sch.Load()
	var errs []error
	for i := 0; i < em.typ.NumMethod(); i++ {
		meth := em.typ.Method(i)
		if len(parseHandlerName(sch, meth.Name)) == 0 {
			continue
		}
		if _, _, err := handlerFunc(v.Method(i), meth.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	m.hmu.Lock()
	m.emitters = append(m.emitters, em)
	m.hmu.Unlock()
	m.rebindHandlers()
	return nil
}

// handlerFunc converts a method value to a direct func, or reports a bad
// signature.
func handlerFunc(mv reflect.Value, name string) (func(*Event) bool, func(*Event), error) {
	ft := mv.Type()
	if ft.NumIn() != 1 || ft.In(0) != eventPtrType || ft.IsVariadic() {
		return nil, nil, fmt.Errorf("handler %s: must take exactly one *Event", name)
	}
	switch {
	case ft.NumOut() == 0:
		if fn, ok := mv.Interface().(func(*Event)); ok {
			return nil, fn, nil
		}
	case ft.NumOut() == 1 && ft.Out(0) == boolType:
		if fn, ok := mv.Interface().(func(*Event) bool); ok {
			return fn, nil, nil
		}
	}
	return nil, nil, fmt.Errorf("handler %s: must return nothing or a bool", name)
}

// handlerMatch is one interpretation of a handler name.
type handlerMatch struct {
	kind handlerKind
	x, y int // state indexes, -1 for Any
}

// parseHandlerName returns every interpretation of name against the states
// of sch: XEnter, XExit, XState, XEnd and X+Y pairs (X, Y states or Any).
func parseHandlerName(sch *schema, name string) []handlerMatch {
	var out []handlerMatch
	for _, sfx := range [...]struct {
		s string
		k handlerKind
	}{{"Enter", hkEnter}, {"Exit", hkExit}, {"State", hkState}, {"End", hkEnd}} {
		if p, ok := strings.CutSuffix(name, sfx.s); ok {
			if i := sch.idx(p); i >= 0 {
				out = append(out, handlerMatch{sfx.k, i, -1})
			}
		}
	}
	stateOrAny := func(s string) (int, bool) {
		if s == Any {
			return -1, true
		}
		i := sch.idx(s)
		return i, i >= 0
	}
	for cut := 1; cut < len(name); cut++ {
		x, okX := stateOrAny(name[:cut])
		if !okX {
			continue
		}
		if y, okY := stateOrAny(name[cut:]); okY {
			out = append(out, handlerMatch{hkPair, x, y})
		}
	}
	return out
}

// rebindHandlers rebuilds and publishes the handler table for the current
// schema and emitters.
func (m *Machine) rebindHandlers() {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	sch := m.sch.Load()
	n := len(sch.names)
	tab := &handlerTable{
		sch:   sch,
		enter: make([]hList, n), exit: make([]hList, n), state: make([]hList, n),
		end: make([]hList, n), anyX: make([]hList, n), xAny: make([]hList, n),
		none: true,
	}
	if m.unbound {
		m.htab.Store(tab)
		return
	}
	for _, em := range m.emitters {
		for i := 0; i < em.typ.NumMethod(); i++ {
			meth := em.typ.Method(i)
			matches := parseHandlerName(sch, meth.Name)
			if len(matches) == 0 {
				continue
			}
			fb, fv, err := handlerFunc(em.val.Method(i), meth.Name)
			if err != nil {
				continue
			}
			ref := hRef{em: em, name: meth.Name, nameAny: meth.Name, fnB: fb, fnV: fv}
			if dB, dV, ok := directMethod(em.val, meth); ok {
				ref.recv, ref.dB, ref.dV = em.val.UnsafePointer(), dB, dV
			}
			tab.none = false
			for _, hm := range matches {
				switch hm.kind {
				case hkEnter:
					tab.enter[hm.x] = append(tab.enter[hm.x], ref)
				case hkExit:
					tab.exit[hm.x] = append(tab.exit[hm.x], ref)
				case hkState:
					tab.state[hm.x] = append(tab.state[hm.x], ref)
				case hkEnd:
					tab.end[hm.x] = append(tab.end[hm.x], ref)
				case hkPair:
					switch {
					case hm.x < 0 && hm.y < 0:
						tab.anyAny = append(tab.anyAny, ref)
					case hm.x < 0:
						tab.anyX[hm.y] = append(tab.anyX[hm.y], ref)
					case hm.y < 0:
						tab.xAny[hm.x] = append(tab.xAny[hm.x], ref)
					default:
						if tab.pair == nil {
							tab.pair = map[uint64]hList{}
						}
						k := pairKey(hm.x, hm.y)
						tab.pair[k] = append(tab.pair[k], ref)
					}
				}
			}
		}
	}
	m.htab.Store(tab)
}

// handlerNames returns the names of the bound emitters, for tests and logs.
func (m *Machine) emitterCount() int {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	return len(m.emitters)
}
