package machine

// CountWaits returns the number of When, WhenNot and WhenTime waits (and
// state contexts) registered on the model, for tests of Select.
func (m *Model) CountWaits() int { return int(m.nWatch.Load()) }

// CountArgsWaits returns the number of WhenArgs waits registered.
func (m *Model) CountArgsWaits() int { return int(m.nWhenArgs.Load()) }
