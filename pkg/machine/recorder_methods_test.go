// Handler methods of the recorder for states A B C D: every negotiation and
// final handler name the engine looks up, plus AnyAny.

package machine_test

import am "github.com/arpc-go/arpc/pkg/machine"

// AEnter records itself; see recorder.neg.
func (r *recorder) AEnter(e *am.Event) bool { return r.neg("AEnter", e) }

// AExit records itself; see recorder.neg.
func (r *recorder) AExit(e *am.Event) bool { return r.neg("AExit", e) }

// AAny records itself; see recorder.neg.
func (r *recorder) AAny(e *am.Event) bool { return r.neg("AAny", e) }

// AnyA records itself; see recorder.neg.
func (r *recorder) AnyA(e *am.Event) bool { return r.neg("AnyA", e) }

// AA records itself; see recorder.neg.
func (r *recorder) AA(e *am.Event) bool { return r.neg("AA", e) }

// AB records itself; see recorder.neg.
func (r *recorder) AB(e *am.Event) bool { return r.neg("AB", e) }

// AC records itself; see recorder.neg.
func (r *recorder) AC(e *am.Event) bool { return r.neg("AC", e) }

// AD records itself; see recorder.neg.
func (r *recorder) AD(e *am.Event) bool { return r.neg("AD", e) }

// BEnter records itself; see recorder.neg.
func (r *recorder) BEnter(e *am.Event) bool { return r.neg("BEnter", e) }

// BExit records itself; see recorder.neg.
func (r *recorder) BExit(e *am.Event) bool { return r.neg("BExit", e) }

// BAny records itself; see recorder.neg.
func (r *recorder) BAny(e *am.Event) bool { return r.neg("BAny", e) }

// AnyB records itself; see recorder.neg.
func (r *recorder) AnyB(e *am.Event) bool { return r.neg("AnyB", e) }

// BB records itself; see recorder.neg.
func (r *recorder) BB(e *am.Event) bool { return r.neg("BB", e) }

// BA records itself; see recorder.neg.
func (r *recorder) BA(e *am.Event) bool { return r.neg("BA", e) }

// BC records itself; see recorder.neg.
func (r *recorder) BC(e *am.Event) bool { return r.neg("BC", e) }

// BD records itself; see recorder.neg.
func (r *recorder) BD(e *am.Event) bool { return r.neg("BD", e) }

// CEnter records itself; see recorder.neg.
func (r *recorder) CEnter(e *am.Event) bool { return r.neg("CEnter", e) }

// CExit records itself; see recorder.neg.
func (r *recorder) CExit(e *am.Event) bool { return r.neg("CExit", e) }

// CAny records itself; see recorder.neg.
func (r *recorder) CAny(e *am.Event) bool { return r.neg("CAny", e) }

// AnyC records itself; see recorder.neg.
func (r *recorder) AnyC(e *am.Event) bool { return r.neg("AnyC", e) }

// CC records itself; see recorder.neg.
func (r *recorder) CC(e *am.Event) bool { return r.neg("CC", e) }

// CA records itself; see recorder.neg.
func (r *recorder) CA(e *am.Event) bool { return r.neg("CA", e) }

// CB records itself; see recorder.neg.
func (r *recorder) CB(e *am.Event) bool { return r.neg("CB", e) }

// CD records itself; see recorder.neg.
func (r *recorder) CD(e *am.Event) bool { return r.neg("CD", e) }

// DEnter records itself; see recorder.neg.
func (r *recorder) DEnter(e *am.Event) bool { return r.neg("DEnter", e) }

// DExit records itself; see recorder.neg.
func (r *recorder) DExit(e *am.Event) bool { return r.neg("DExit", e) }

// DAny records itself; see recorder.neg.
func (r *recorder) DAny(e *am.Event) bool { return r.neg("DAny", e) }

// AnyD records itself; see recorder.neg.
func (r *recorder) AnyD(e *am.Event) bool { return r.neg("AnyD", e) }

// DD records itself; see recorder.neg.
func (r *recorder) DD(e *am.Event) bool { return r.neg("DD", e) }

// DA records itself; see recorder.neg.
func (r *recorder) DA(e *am.Event) bool { return r.neg("DA", e) }

// DB records itself; see recorder.neg.
func (r *recorder) DB(e *am.Event) bool { return r.neg("DB", e) }

// DC records itself; see recorder.neg.
func (r *recorder) DC(e *am.Event) bool { return r.neg("DC", e) }

// AnyAny records itself; see recorder.neg.
func (r *recorder) AnyAny(e *am.Event) bool { return r.neg("AnyAny", e) }

// AState records itself; see recorder.fin.
func (r *recorder) AState(e *am.Event) { r.fin("AState", e) }

// AEnd records itself; see recorder.fin.
func (r *recorder) AEnd(e *am.Event) { r.fin("AEnd", e) }

// BState records itself; see recorder.fin.
func (r *recorder) BState(e *am.Event) { r.fin("BState", e) }

// BEnd records itself; see recorder.fin.
func (r *recorder) BEnd(e *am.Event) { r.fin("BEnd", e) }

// CState records itself; see recorder.fin.
func (r *recorder) CState(e *am.Event) { r.fin("CState", e) }

// CEnd records itself; see recorder.fin.
func (r *recorder) CEnd(e *am.Event) { r.fin("CEnd", e) }

// DState records itself; see recorder.fin.
func (r *recorder) DState(e *am.Event) { r.fin("DState", e) }

// DEnd records itself; see recorder.fin.
func (r *recorder) DEnd(e *am.Event) { r.fin("DEnd", e) }
