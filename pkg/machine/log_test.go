package machine_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario63_ArgsMapper(t *testing.T) {
	m := newN(t)
	m.SetLogArgs(am.NewArgsMapper([]string{"arg", "arg2"}, 5))
	log := capture(m, am.LogOps)
	m.Add1("D", am.A{"arg": "foofoofoo", "other": "x"})
	log.has(t, "(arg=fo...)")
	assert.NotContains(t, log.text(), "other=")

	short := am.NewArgsMapper([]string{"arg"}, 2)
	assert.Equal(t, map[string]string{"arg": "fo"}, short(am.A{"arg": "foo"}))
	def := am.NewArgsMapper([]string{"arg"}, 0)
	long := "0123456789012345678901234"
	assert.Equal(t, map[string]string{"arg": long[:17] + "..."}, def(am.A{"arg": long}), "maxlen 0 means 20")
	assert.NotNil(t, def(am.A{"zzz": 1}), "never nil")
	finish(t, m)
}

func TestScenario64_LoggerConfig(t *testing.T) {
	m := newN(t)
	assert.Panics(t, func() { m.SetLoggerSimple(nil, am.LogChanges) })
	var mu sync.Mutex
	var lines []string
	m.SetLoggerSimple(func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, format)
	}, am.LogChanges)
	assert.NotNil(t, m.GetLogger())
	assert.Equal(t, am.LogChanges, m.GetLogLevel())
	m.SetLogLevel(am.LogDecisions)
	assert.Equal(t, am.LogDecisions, m.GetLogLevel())
	m.Add1("A", nil)
	mu.Lock()
	assert.NotEmpty(t, lines, "the printf logger received lines")
	mu.Unlock()
	assert.Empty(t, m.Queue(), "idle queue")

	m.SetLoggerEmpty(am.LogOps)
	assert.Equal(t, am.LogOps, m.GetLogLevel())
	m.SetLogger(nil) // restores the (silent) default
	m.Add1("B", nil)
	finish(t, m)
}

func TestScenario65_EnumsAndHelpers(t *testing.T) {
	assert.Equal(t, "executed", am.Executed.String())
	assert.Equal(t, "canceled", am.Canceled.String())
	assert.Equal(t, "queued", am.Queued.String())
	assert.Equal(t, "", am.ResultNoOp.String())
	assert.Equal(t, []string{"add", "remove", "set", "eval"}, []string{
		am.MutationAdd.String(), am.MutationRemove.String(), am.MutationSet.String(), am.MutationEval.String(),
	})
	assert.Equal(t, []string{"rel", "handler", "set", "remove", "removenotactive", "requested", "cancel", ""},
		[]string{
			am.StepRelation.String(), am.StepHandler.String(), am.StepSet.String(), am.StepRemove.String(),
			am.StepRemoveNotActive.String(), am.StepRequested.String(), am.StepCancel.String(),
			am.StepType(0).String(),
		})
	assert.Equal(t, []string{"after", "add", "require", "remove"}, []string{
		am.RelationAfter.String(), am.RelationAdd.String(), am.RelationRequire.String(), am.RelationRemove.String(),
	})
	assert.Equal(t, []string{"nothing", "changes", "ops", "decisions", "everything", "nothing"}, []string{
		am.LogNothing.String(), am.LogChanges.String(), am.LogOps.String(), am.LogDecisions.String(),
		am.LogEverything.String(), am.LogLevel(99).String(),
	})
	// Values must match upstream.
	assert.Equal(t, []int{1, 2, 4, 8}, []int{int(am.Executed), int(am.Canceled), int(am.Queued), int(am.ResultNoOp)})
	assert.Equal(t, []int{1, 2, 4, 8, 16, 32, 64}, []int{
		int(am.StepRelation), int(am.StepHandler), int(am.StepSet), int(am.StepRemove),
		int(am.StepRemoveNotActive), int(am.StepRequested), int(am.StepCancel),
	})

	assert.Equal(t, am.S{"A", "B", "C", "D", "E"}, am.SAdd(am.S{"A", "B", "C"}, am.S{"C", "D", "E"}))
	assert.Equal(t, am.S{}, am.SAdd())
	assert.Equal(t, "foo_bar_baz", am.NormalizeID("Foo Bar-Baz"))
	assert.Equal(t, am.S{"A", "C"}, am.DiffStates(am.S{"A", "B", "C"}, am.S{"B"}))
	assert.Nil(t, am.DiffStates(am.S{"A"}, am.S{"A"}))
}

func TestLogExtern(t *testing.T) {
	m := newN(t)
	log := capture(m, am.LogChanges)
	m.Log("hello\nworld %d", 1)
	log.has(t, "[extern] hello world 1")
	m.Add1("A", nil)
	log.has(t, "[state] +A")
	finish(t, m)
}

// The library never prints: at the most verbose level with no logger set,
// nothing reaches stdout or stderr.
func TestDefaultLoggerIsSilent(t *testing.T) {
	rOut, wOut, err := os.Pipe()
	require.NoError(t, err)
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(rOut)
		read <- b
	}()
	origOut, origErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = wOut, wOut
	func() {
		defer func() { os.Stdout, os.Stderr = origOut, origErr }()
		m := am.New(context.Background(), structN(), &am.Opts{LogLevel: am.LogEverything})
		_ = m.BindHandlers(&panicEnter{})
		m.Add1("A", nil)
		m.Add1("B", nil) // panics into Exception, which logs the error
		m.Add1("Unknown", nil)
		m.Log("extern")
		finish(t, m)
	}()
	require.NoError(t, wOut.Close())
	out := <-read
	assert.Empty(t, string(out))
}

func TestSetLoggerSlog(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	h := slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})
	m := newN(t)
	m.SetLoggerSlog(slog.New(h), am.LogOps)
	assert.Equal(t, am.LogOps, m.GetLogLevel())
	m.Add1("A", nil)
	finish(t, m)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, buf.String(), "add")
	assert.Contains(t, buf.String(), "A")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestEnvLogLevel(t *testing.T) {
	t.Setenv("AM_LOG", "2")
	assert.Equal(t, am.LogOps, am.EnvLogLevel(""))
	t.Setenv("AM_TEST_LEVEL", "4")
	assert.Equal(t, am.LogEverything, am.EnvLogLevel("AM_TEST_LEVEL"))
	t.Setenv("AM_TEST_LEVEL", "loud")
	assert.Equal(t, am.LogNothing, am.EnvLogLevel("AM_TEST_LEVEL"))
}
