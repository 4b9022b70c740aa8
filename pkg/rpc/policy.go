package rpc

import (
	"context"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Permissions are what one identity may do with the source machine's states.
type Permissions struct {
	// Mutate lists the states the identity may name in a mutation (Add,
	// Remove, Set, AddErr; an AddErr also names Exception). A mutation
	// naming any other state fails with ErrForbidden and does not run.
	// Relations still apply: a permitted state may add or remove others
	// on the source, as its schema says. nil permits every state; an empty
	// non-nil list, none.
	Mutate am.S
	// Observe lists the states the identity's mirror sees. The others stay
	// at tick 0 (inactive) in its clock whatever the source does, a remote
	// WhenArgs on them, or a MutateIf precondition, fails with
	// ErrForbidden, and the source's error text (Worker.Err) reaches it only
	// if it may observe Exception. nil
	// permits every state; an empty non-nil list, none.
	Observe am.S
}

// Policy returns the permissions of an identity (see Authenticator). It is
// asked once per handshake, so a changed policy applies from the client's
// next connection. An error refuses the client (CodeForbidden) and closes
// its connection. It must be safe for concurrent use.
type Policy func(ctx context.Context, identity string) (Permissions, error)

// WithPolicy sets the server's authorization policy. Without one, every
// identity may mutate and observe every state.
func WithPolicy(p Policy) ServerOption {
	return func(o *serverOpts) { o.sec.policy = p }
}

// grant is an identity's permissions compiled to state indexes; a nil mask
// permits every state.
type grant struct {
	mutate  []bool
	observe []bool
	// errors tells whether the source's error text may be sent.
	errors bool
}

// allowAll is the grant of every identity when there is no policy.
var allowAll = &grant{errors: true}

// permissions asks the policy about identity.
func (s *Server) permissions(ctx context.Context, identity string) (*grant, error) {
	p := s.opts.sec.policy
	if p == nil {
		return allowAll, nil
	}
	perms, err := callPolicy(ctx, p, identity)
	if err != nil {
		return nil, err
	}
	g := &grant{mutate: s.mask(perms.Mutate), observe: s.mask(perms.Observe)}
	g.errors = g.observe == nil || g.observes(s.stateIndex(am.Exception))
	return g, nil
}

func callPolicy(ctx context.Context, p Policy, identity string) (perms Permissions, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("policy panicked: %v", r)
		}
	}()
	return p(ctx, identity)
}

// stateIndex returns the index of a state of the source, or -1.
func (s *Server) stateIndex(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// syncMask checks the states a client asks to follow (nil: all) and
// returns them as a mask.
func (s *Server) syncMask(idxs []int) ([]bool, error) {
	if idxs == nil {
		return nil, nil
	}
	m := make([]bool, len(s.names))
	for _, i := range idxs {
		if i < 0 || i >= len(s.names) {
			return nil, codeErr(CodeInvalidParams, "sync: state index %d out of range [0, %d)", i, len(s.names))
		}
		m[i] = true
	}
	return m, nil
}

// mask turns a list of state names into a mask by index (nil: all).
func (s *Server) mask(states am.S) []bool {
	if states == nil {
		return nil
	}
	m := make([]bool, len(s.names))
	for _, n := range states {
		if i, ok := s.index[n]; ok {
			m[i] = true
		}
	}
	return m
}

func (g *grant) observes(i int) bool {
	return g.observe == nil || (i >= 0 && i < len(g.observe) && g.observe[i])
}

func (g *grant) mutates(i int) bool {
	return g.mutate == nil || (i >= 0 && i < len(g.mutate) && g.mutate[i])
}

// mayMutate checks a mutation against the session's grant: the states it
// names must be mutable, and those of its precondition (MutateIf)
// observable, as the result would tell their ticks. Indexes out of range are
// left to the mutation itself (it fails with outInvalid).
func (s *Server) mayMutate(se *session, m *msgMutate) error {
	g := se.grant
	for _, c := range m.Cond {
		if c.idx >= 0 && c.idx < len(s.names) && !g.observes(c.idx) {
			s.stats.forbidden.Add(1)
			return codeErr(CodeForbidden, "%s may not observe %s (precondition)", se.identity, s.names[c.idx])
		}
	}
	if g.mutate == nil {
		return nil
	}
	check := func(i int) error {
		if i >= 0 && i < len(s.names) && !g.mutates(i) {
			s.stats.forbidden.Add(1)
			return codeErr(CodeForbidden, "%s may not mutate %s", se.identity, s.names[i])
		}
		return nil
	}
	for _, i := range m.States {
		if err := check(i); err != nil {
			return err
		}
	}
	if m.Type == mutAddErr {
		return check(s.stateIndex(am.Exception))
	}
	return nil
}

// mayObserve checks a remote watch of state i.
func (s *Server) mayObserve(se *session, i int) error {
	if !se.grant.observes(i) {
		s.stats.forbidden.Add(1)
		return codeErr(CodeForbidden, "%s may not observe %s", se.identity, s.names[i])
	}
	return nil
}

// errFor returns the source's error as the session may see it.
func (g *grant) errFor(e *wireErr) *wireErr {
	if !g.errors {
		return nil
	}
	return e
}
