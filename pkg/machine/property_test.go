package machine_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// propSeed overrides the property test's seed: go test -run Property -args
// -seed=N, or AM_PROPERTY_SEED=N. 0 picks a time-based seed (logged).
var propSeed = flag.Uint64("seed", 0, "seed of TestPropertyRandomSchemas (0: time-based)")

const (
	propSchemas   = 500
	propMutations = 60
	propUnknown   = "Unknown"
)

// propStats counts what the property test exercised.
type propStats struct{ mutations, executed, canceled, unknown, changed int }

// propCancel is an emitter whose AnyAny cancels a transition now and then.
type propCancel struct{ rng *rand.Rand }

func (p *propCancel) AnyAny(*am.Event) bool { return p.rng.IntN(10) != 0 }

// TestPropertyRandomSchemas runs random mutations on random schemas and
// checks the engine's invariants after every mutation: nothing panics,
// Is(s) equals "tick(s) is odd", no tick ever decreases, ActiveStates is
// exactly the set of odd-tick states, an unknown name cancels the mutation
// with ErrStateUnknown, and no goroutine outlives Dispose.
func TestPropertyRandomSchemas(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	seed := *propSeed
	if env := os.Getenv("AM_PROPERTY_SEED"); env != "" && seed == 0 {
		v, err := strconv.ParseUint(env, 10, 64)
		if err != nil {
			t.Fatalf("AM_PROPERTY_SEED: %v", err)
		}
		seed = v
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -seed=%d or AM_PROPERTY_SEED=%d)", seed, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	var st propStats
	for i := range propSchemas {
		s, names := randomSchema(rng)
		if failed := runSchema(t, rng, i, s, names, &st); failed {
			t.Fatalf("schema #%d failed (seed %d):\n%s", i, seed, describeSchema(s, names))
		}
	}
	t.Logf("%d schemas, %d mutations: %d executed, %d canceled, %d with an unknown name, %d changed the clock",
		propSchemas, st.mutations, st.executed, st.canceled, st.unknown, st.changed)
	goleak.VerifyNone(t, ignore)
}

// randomSchema builds 2-8 states with random flags and relations among
// themselves (cycles included).
func randomSchema(rng *rand.Rand) (am.Struct, am.S) {
	n := 2 + rng.IntN(7)
	names := make(am.S, n)
	for i := range names {
		names[i] = fmt.Sprintf("S%d", i)
	}
	pick := func(self int, p float64) am.S {
		var out am.S
		for j, name := range names {
			if j != self && rng.Float64() < p {
				out = append(out, name)
			}
		}
		return out
	}
	s := am.Struct{}
	for i, name := range names {
		s[name] = am.State{
			Auto:    rng.IntN(5) == 0,
			Multi:   rng.IntN(5) == 0,
			Require: pick(i, 0.12),
			Add:     pick(i, 0.15),
			Remove:  pick(i, 0.12),
			After:   pick(i, 0.15),
		}
	}
	// Verify in a random order, with Exception somewhere.
	all := append(slices.Clone(names), am.Exception)
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return s, all
}

func describeSchema(s am.Struct, names am.S) string {
	var b strings.Builder
	fmt.Fprintf(&b, "names %v\n", names)
	for _, name := range names {
		st, ok := s[name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s: auto=%v multi=%v require=%v add=%v remove=%v after=%v\n",
			name, st.Auto, st.Multi, st.Require, st.Add, st.Remove, st.After)
	}
	return b.String()
}

// runSchema runs random mutations on one machine; it reports (not fails)
// problems with t.Errorf and returns true if any happened.
func runSchema(t *testing.T, rng *rand.Rand, idx int, s am.Struct, names am.S, st *propStats) (failed bool) {
	t.Helper()
	var log []string
	fail := func(format string, args ...any) {
		failed = true
		t.Errorf("schema #%d after %v: %s", idx, log, fmt.Sprintf(format, args...))
	}
	defer func() {
		if r := recover(); r != nil {
			fail("panic: %v", r)
		}
	}()

	m := am.New(context.Background(), s, nil)
	defer func() {
		m.Dispose()
		select {
		case <-m.WhenDisposed():
		case <-time.After(deadline):
			fail("WhenDisposed not closed")
		}
	}()
	if err := m.VerifyStates(names); err != nil {
		fail("VerifyStates(%v): %v", names, err)
		return
	}
	if rng.IntN(2) == 0 {
		if err := m.BindHandlers(&propCancel{rng: rand.New(rand.NewPCG(rng.Uint64(), 1))}); err != nil {
			fail("BindHandlers: %v", err)
			return
		}
	}

	prev := m.Clock(nil)
	for range propMutations {
		var called am.S
		for _, name := range names {
			if name != am.Exception && rng.IntN(4) == 0 {
				called = append(called, name)
			}
		}
		unknown := rng.IntN(20) == 0
		if unknown {
			called = append(called, propUnknown)
			rng.Shuffle(len(called), func(i, j int) { called[i], called[j] = called[j], called[i] })
		}
		var res am.Result
		switch typ := rng.IntN(3); typ {
		case 0:
			log = append(log, fmt.Sprintf("Add%v", called))
			res = m.Add(called, nil)
		case 1:
			log = append(log, fmt.Sprintf("Remove%v", called))
			res = m.Remove(called, nil)
		default:
			log = append(log, fmt.Sprintf("Set%v", called))
			res = m.Set(called, nil)
		}
		st.mutations++
		switch res {
		case am.Executed:
			st.executed++
		case am.Canceled:
			st.canceled++
		default:
			fail("result %v", res)
		}
		if unknown {
			st.unknown++
			if res != am.Canceled {
				fail("a mutation with an unknown name returned %v", res)
			}
			if !errors.Is(m.Err(), am.ErrStateUnknown) {
				fail("Err() = %v, want ErrStateUnknown", m.Err())
			}
		}
		if q := m.Queue(); len(q) != 0 {
			fail("queue not drained: %d items", len(q))
		}

		now := m.Clock(nil)
		act := m.ActiveStates()
		seen := map[string]bool{}
		for _, a := range act {
			if seen[a] {
				fail("ActiveStates() %v lists %s twice", act, a)
			}
			seen[a] = true
		}
		for _, name := range names {
			tick := now[name]
			odd := tick%2 == 1
			if m.Is1(name) != odd {
				fail("Is1(%s) = %v with tick %d", name, m.Is1(name), tick)
			}
			if seen[name] != odd {
				fail("ActiveStates() %v vs tick %d of %s", act, tick, name)
			}
			if tick < prev[name] {
				fail("tick of %s decreased: %d -> %d", name, prev[name], tick)
			}
			if m.Tick(name) != tick {
				fail("Tick(%s) = %d, Clock = %d", name, m.Tick(name), tick)
			}
		}
		for a := range seen {
			if !slices.Contains(names, a) {
				fail("ActiveStates() has unknown %s", a)
			}
		}
		if failed {
			return
		}
		if !maps.Equal(prev, now) {
			st.changed++
		}
		prev = now
	}
	return
}
