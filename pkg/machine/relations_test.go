package machine_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario09_GetRelations(t *testing.T) {
	m := newM(t, am.Struct{"A": {Add: am.S{"B"}, Require: am.S{"B"}}, "B": {}}, nil, nil, nil)
	rels, err := m.Resolver().GetRelationsOf("A")
	require.NoError(t, err)
	assert.Equal(t, []am.Relation{am.RelationAdd, am.RelationRequire}, rels)
	finish(t, m)

	m = newM(t, am.Struct{"A": {Add: am.S{"B"}, Require: am.S{"C"}}, "B": {}, "C": {}}, nil, nil, nil)
	rels, err = m.Resolver().GetRelationsBetween("A", "B")
	require.NoError(t, err)
	assert.Equal(t, []am.Relation{am.RelationAdd}, rels)
	finish(t, m)
}

func TestScenario10_GetRelationsBetween(t *testing.T) {
	m := newM(t, am.Struct{
		"A": {Add: am.S{"B", "C"}, After: am.S{"B"}},
		"B": {Remove: am.S{"C"}, Add: am.S{"A"}},
		"C": {After: am.S{"D"}},
		"D": {Require: am.S{"A"}},
	}, nil, nil, nil)
	r := m.Resolver()
	for _, c := range []struct {
		from, to string
		want     []am.Relation
	}{
		{"A", "B", []am.Relation{am.RelationAdd, am.RelationAfter}},
		{"B", "C", []am.Relation{am.RelationRemove}},
		{"C", "D", []am.Relation{am.RelationAfter}},
		{"D", "A", []am.Relation{am.RelationRequire}},
	} {
		got, err := r.GetRelationsBetween(c.from, c.to)
		require.NoError(t, err, "%s→%s", c.from, c.to)
		assert.Equal(t, c.want, got, "%s→%s", c.from, c.to)
	}
	var err error
	require.NotPanics(t, func() { _, err = r.GetRelationsBetween("Unknown", "A") })
	assert.True(t, errors.Is(err, am.ErrStateUnknown), "unknown from: %v", err)
	require.NotPanics(t, func() { _, err = r.GetRelationsBetween("A", "Unknown") })
	assert.True(t, errors.Is(err, am.ErrStateUnknown), "unknown to: %v", err)
	require.NotPanics(t, func() { _, err = r.GetRelationsOf("Unknown") })
	assert.True(t, errors.Is(err, am.ErrStateUnknown), "unknown of: %v", err)
	finish(t, m)
}

func TestScenario11_RemoveRelation(t *testing.T) {
	s := structN()
	s["C"] = am.State{Remove: am.S{"D"}}
	m := newM(t, s, namesN, nil, nil, "D")
	assert.Equal(t, am.Executed, m.Add(am.S{"C"}, nil))
	assertActive(t, m, "C")
	finish(t, m)

	m = newM(t, s, namesN, nil, nil, "D")
	log := capture(m, am.LogOps)
	assert.Equal(t, am.Canceled, m.Set(am.S{"C", "D"}, nil))
	assertActive(t, m, "D")
	log.has(t, "[rel:remove] D by C")
	finish(t, m)
}

func TestScenario12_MutualRemove(t *testing.T) {
	s := structN()
	s["C"] = am.State{Remove: am.S{"D"}}
	s["D"] = am.State{Remove: am.S{"C"}}
	for _, mut := range []struct {
		name string
		fn   func(m *am.Machine, st string) am.Result
	}{
		{"Set", func(m *am.Machine, st string) am.Result { return m.Set(am.S{st}, nil) }},
		{"Add", func(m *am.Machine, st string) am.Result { return m.Add(am.S{st}, nil) }},
	} {
		t.Run(mut.name, func(t *testing.T) {
			m := newM(t, s, namesN, nil, nil, "D")
			assert.Equal(t, am.Executed, mut.fn(m, "C"))
			assertActive(t, m, "C")
			assert.Equal(t, am.Executed, mut.fn(m, "D"))
			assertActive(t, m, "D")
			finish(t, m)
		})
	}
}

func TestScenario13_RemoveAndAdd(t *testing.T) {
	s := structN()
	s["A"] = am.State{Remove: am.S{"D"}}
	s["C"] = am.State{Add: am.S{"D"}}
	m := newM(t, s, namesN, nil, nil)
	assert.Equal(t, am.Executed, m.Set(am.S{"C"}, nil))
	assertActive(t, m, "C", "D")
	assert.Equal(t, am.Executed, m.Set(am.S{"A", "C"}, nil))
	assertActive(t, m, "A", "C")
	finish(t, m)
}

func TestScenario14_Require(t *testing.T) {
	s := structN()
	s["C"] = am.State{Require: am.S{"D"}}
	m := newM(t, s, namesN, nil, nil, "A")
	assert.Equal(t, am.Executed, m.Set(am.S{"C", "D"}, nil))
	assertActive(t, m, "C", "D")
	finish(t, m)

	m = newM(t, s, namesN, nil, nil, "A")
	log := capture(m, am.LogOps)
	assert.Equal(t, am.Canceled, m.Set(am.S{"C", "A"}, nil))
	assertActive(t, m, "A")
	log.has(t, "[reject] C(-D)")
	finish(t, m)
}

func TestScenario15_MutualRemoveImplied(t *testing.T) {
	m := newM(t, am.Struct{
		"A": {Remove: am.S{"B"}},
		"B": {Remove: am.S{"A"}},
		"Z": {Add: am.S{"B"}},
	}, nil, nil, nil)
	assert.Equal(t, am.Executed, m.Set(am.S{"Z"}, nil))
	assertActive(t, m, "Z", "B")
	finish(t, m)
}

func TestScenario16_WetDryWater(t *testing.T) {
	m := newM(t, am.Struct{
		"Wet":   {Require: am.S{"Water"}},
		"Dry":   {Remove: am.S{"Wet"}},
		"Water": {Add: am.S{"Wet"}, Remove: am.S{"Dry"}},
	}, nil, nil, nil)
	assert.Equal(t, am.Executed, m.Set(am.S{"Dry"}, nil))
	assert.Equal(t, am.Executed, m.Set(am.S{"Water"}, nil))
	assertActive(t, m, "Water", "Wet")
	// Removing Water cascades to Wet, which requires it.
	assert.Equal(t, am.Executed, m.Remove1("Water", nil))
	assertActive(t, m)
	finish(t, m)
}

func TestScenario17_SchemaCleaning(t *testing.T) {
	s := structN()
	s["A"] = am.State{Remove: am.S{"A", "B", "C"}, Add: am.S{"C"}, After: am.S{"A"}}
	m := newM(t, s, nil, nil, nil)
	a := m.GetStruct()["A"]
	assert.Equal(t, am.S{"B"}, a.Remove)
	assert.Equal(t, am.S{"C"}, a.Add)
	assert.NotNil(t, a.After, "After is an empty non-nil list")
	assert.Empty(t, a.After)
	// The caller's schema is not modified.
	assert.Equal(t, am.S{"A", "B", "C"}, s["A"].Remove)
	finish(t, m)
}

// Add implication is transitive and cycles are safe.
func TestAddImplicationTransitive(t *testing.T) {
	s := structN()
	s["A"] = am.State{Add: am.S{"B"}}
	s["B"] = am.State{Add: am.S{"C"}}
	s["C"] = am.State{Add: am.S{"D"}}
	m := newM(t, s, namesN, nil, nil)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assertActive(t, m, "A", "B", "C", "D")
	finish(t, m)

	s["D"] = am.State{Add: am.S{"A"}}
	m = newM(t, s, namesN, nil, nil)
	assert.Equal(t, am.Executed, m.Add1("C", nil))
	assertActive(t, m, "A", "B", "C", "D")
	finish(t, m)
}
