package machine_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario31_AutoAdded(t *testing.T) {
	s := structN()
	s["B"] = am.State{Auto: true, Require: am.S{"A"}}
	m := newM(t, s, namesN, nil, nil)
	log := capture(m, am.LogOps)
	assert.Equal(t, am.Executed, m.Add(am.S{"A"}, nil))
	assertActive(t, m, "A", "B")
	log.has(t, "[auto] B")
	finish(t, m)
}

func TestScenario32_AutoRejected(t *testing.T) {
	s := structN()
	s["C"] = am.State{Auto: true, Require: am.S{"B"}}
	s["D"] = am.State{Auto: true, Require: am.S{"B"}}
	m := newM(t, s, namesN, nil, nil)
	log := capture(m, am.LogEverything)
	assert.Equal(t, am.Executed, m.Add(am.S{"A"}, nil))
	assertActive(t, m, "A")
	log.has(t, "[cancel:reject] C D")
	finish(t, m)
}

// popup is the handler struct of scenario 33.
type popup struct {
	release chan struct{}
	wg      sync.WaitGroup
}

func (p *popup) ButtonClickedState(e *am.Event) {
	e.Machine.Remove1("ButtonClicked", nil)
	e.Machine.Add1("ShowingDialog", nil)
}

// DownloadingDataState downloads asynchronously, under the state's ctx.
func (p *popup) DownloadingDataState(e *am.Event) {
	m := e.Machine
	ctx := m.NewStateCtx("DownloadingData")
	p.wg.Go(func() {
		select {
		case <-p.release:
		case <-ctx.Done():
			return
		}
		m.Add1("DataDownloaded", nil)
	})
}

func (p *popup) DataDownloadedState(e *am.Event) {
	e.Machine.Add1("DialogVisible", nil)
}

func TestScenario33_PopupFlow(t *testing.T) {
	s := am.Struct{
		"Start":            {},
		"ButtonClicked":    {Require: am.S{"Start"}},
		"ShowingDialog":    {Remove: am.S{"DialogVisible"}},
		"DownloadingData":  {Auto: true, Require: am.S{"ShowingDialog"}, Remove: am.S{"DataDownloaded"}},
		"PreloaderVisible": {Auto: true, Require: am.S{"DownloadingData"}},
		"DataDownloaded":   {Remove: am.S{"DownloadingData"}},
		"DialogVisible":    {Require: am.S{"DataDownloaded"}, Remove: am.S{"ShowingDialog"}},
	}
	p := &popup{release: make(chan struct{})}
	m := newM(t, s, nil, p, nil)
	visible := m.When1("DialogVisible", nil)
	assert.Equal(t, am.Executed, m.Add1("Start", nil))
	for range 3 {
		assert.Equal(t, am.Executed, m.Add1("ButtonClicked", nil))
	}
	assertActive(t, m, "Start", "ShowingDialog", "DownloadingData", "PreloaderVisible")
	close(p.release)
	waitClosed(t, visible, "When1(DialogVisible)")
	p.wg.Wait()
	assertActive(t, m, "DialogVisible", "Start", "DataDownloaded")
	finish(t, m)
}
