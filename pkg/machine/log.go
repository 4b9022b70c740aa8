package machine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
)

// LogLevel is the verbosity of the machine's log.
type LogLevel int

const (
	// LogNothing logs nothing (the default).
	LogNothing LogLevel = iota
	// LogChanges logs state changes and external messages.
	LogChanges
	// LogOps logs queue operations, handlers and cancellations.
	LogOps
	// LogDecisions logs resolution decisions and waiter matches.
	LogDecisions
	// LogEverything logs every emitted event.
	LogEverything
)

// String returns nothing, changes, ops, decisions or everything (unknown
// levels give nothing).
func (l LogLevel) String() string {
	switch l {
	case LogChanges:
		return "changes"
	case LogOps:
		return "ops"
	case LogDecisions:
		return "decisions"
	case LogEverything:
		return "everything"
	}
	return "nothing"
}

// Logger receives log messages unformatted: a printf-style format and its
// arguments. It's called on the goroutine that logs, and must not block.
type Logger func(level LogLevel, msg string, args ...any)

// logOn tells whether messages of level l are emitted. The cheap path.
func (m *Machine) logOn(l LogLevel) bool {
	return int32(l) <= m.logLevel.Load() && l != LogNothing
}

// log emits a message: to the logger (if any) and into the current
// transition's LogEntries (or the buffer for the next PreLogEntries). Guard
// calls with logOn to keep the disabled path free.
func (m *Machine) log(l LogLevel, format string, args ...any) {
	if !m.logOn(l) || m.Disposed.Load() && !strings.HasPrefix(format, "[end]") {
		return
	}
	if m.LogID {
		id := m.ID
		if len(id) > 5 {
			id = id[:5]
		}
		format = "[" + id + "] " + format
	}
	if lp := m.logger.Load(); lp != nil && *lp != nil {
		(*lp)(l, format, args...)
	}
	entry := &LogEntry{Level: l, Text: fmt.Sprintf(format, args...)}
	if t := m.curT.Load(); t != nil && !t.IsCompleted() {
		m.logMu.Lock()
		t.LogEntries = append(t.LogEntries, entry)
		m.logMu.Unlock()
		return
	}
	m.logMu.Lock()
	m.preLog = append(m.preLog, entry)
	m.logMu.Unlock()
}

// logPreEntries moves buffered entries into t.PreLogEntries.
func (m *Machine) logPreEntries(t *Transition) {
	if m.logLevel.Load() == 0 {
		return
	}
	m.logMu.Lock()
	t.PreLogEntries = m.preLog
	m.preLog = nil
	m.logMu.Unlock()
}

// Log logs an external message at LogChanges: newlines become spaces and the
// message gets the prefix "[extern] ", or "[extern:<handler>] " inside a
// handler.
func (m *Machine) Log(msg string, args ...any) {
	if !m.logOn(LogChanges) {
		return
	}
	prefix := "[extern] "
	if np := m.wd.cur.Load(); np != nil && m.fromDrainer() {
		name := *np
		if len(name) > 15 {
			name = name[:15]
		}
		prefix = "[extern:" + name + "] "
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	m.log(LogChanges, prefix+msg, args...)
}

// SetLogLevel sets the log level.
func (m *Machine) SetLogLevel(level LogLevel) {
	m.logLevel.Store(int32(level))
}

// GetLogLevel returns the log level.
func (m *Machine) GetLogLevel() LogLevel {
	return LogLevel(m.logLevel.Load())
}

// SetLogger installs a logger; nil restores the default, which is silent.
func (m *Machine) SetLogger(fn Logger) {
	if fn == nil {
		m.logger.Store(nil)
		return
	}
	m.logger.Store(&fn)
}

// GetLogger returns the current logger, or nil for the default.
func (m *Machine) GetLogger() *Logger {
	return m.logger.Load()
}

// SetLoggerSimple installs a printf-style logger and sets the level. A nil
// printf panics.
func (m *Machine) SetLoggerSimple(printf func(format string, args ...any), level LogLevel) {
	if printf == nil {
		panic("printf func required")
	}
	m.SetLogger(func(_ LogLevel, msg string, args ...any) {
		printf(msg, args...)
	})
	m.SetLogLevel(level)
}

// SetLoggerEmpty installs a no-op logger and sets the level (entries are
// still recorded in transitions).
func (m *Machine) SetLoggerEmpty(level LogLevel) {
	m.SetLogger(func(LogLevel, string, ...any) {})
	m.SetLogLevel(level)
}

// SetLoggerSlog logs to l (at Info for LogChanges, Debug above) and sets the
// level. A nil l restores the default.
func (m *Machine) SetLoggerSlog(l *slog.Logger, level LogLevel) {
	if l == nil {
		m.SetLogger(nil)
		m.SetLogLevel(level)
		return
	}
	id := m.ID
	m.SetLogger(func(lvl LogLevel, msg string, args ...any) {
		sl := slog.LevelDebug
		if lvl <= LogChanges {
			sl = slog.LevelInfo
		}
		if !l.Enabled(context.Background(), sl) {
			return
		}
		l.Log(context.Background(), sl, fmt.Sprintf(msg, args...), "machine", id, "level", lvl.String())
	})
	m.SetLogLevel(level)
}

// SetLogArgs sets the argument mapper used in [add] and [state] lines.
func (m *Machine) SetLogArgs(fn func(args A) map[string]string) {
	if fn == nil {
		m.logArgs.Store(nil)
		return
	}
	m.logArgs.Store(&fn)
}

// GetLogArgs returns the argument mapper, or nil.
func (m *Machine) GetLogArgs() func(args A) map[string]string {
	if p := m.logArgs.Load(); p != nil {
		return *p
	}
	return nil
}

// logArgsString formats args with the mapper as " (k=v …)", or "".
func (m *Machine) logArgsString(args A) string {
	fn := m.GetLogArgs()
	if fn == nil || len(args) == 0 {
		return ""
	}
	mapped := fn(args)
	if len(mapped) == 0 {
		return ""
	}
	keys := make([]string, 0, len(mapped))
	for k := range mapped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+mapped[k])
	}
	return " (" + strings.Join(parts, " ") + ")"
}

// NewArgsMapper returns a mapper keeping only the named args, formatted with
// %v and cut to maxlen (0 means 20) characters: to maxlen-3 plus "..." when
// maxlen >= 5. The result is never nil.
func NewArgsMapper(names []string, maxlen int) func(args A) map[string]string {
	if maxlen == 0 {
		maxlen = 20
	}
	return func(args A) map[string]string {
		out := map[string]string{}
		for _, n := range names {
			v, ok := args[n]
			if !ok {
				continue
			}
			s := fmt.Sprintf("%v", v)
			if len(s) > maxlen {
				if maxlen >= 5 {
					s = s[:maxlen-3] + "..."
				} else {
					s = s[:maxlen]
				}
			}
			out[n] = s
		}
		return out
	}
}

// EnvLogLevel parses the environment variable name (AM_LOG if empty) as a
// LogLevel; a bad or missing value gives LogNothing. Only call it from
// programs, not libraries.
func EnvLogLevel(name string) LogLevel {
	if name == "" {
		name = "AM_LOG"
	}
	v, _ := strconv.Atoi(os.Getenv(name))
	return LogLevel(v)
}
