package states_test

import (
	"context"
	"slices"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/states"
	ssC "github.com/arpc-go/arpc/states/client"
	ssS "github.com/arpc-go/arpc/states/server"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSchemas checks that every schema's Names lists exactly, in a form the
// engine accepts.
func TestSchemas(t *testing.T) {
	for name, c := range map[string]struct {
		s     am.Struct
		names am.S
	}{
		"shared": {states.SharedStates, states.SharedNames},
		"client": {ssC.States, ssC.Names},
		"server": {ssS.States, ssS.Names},
	} {
		t.Run(name, func(t *testing.T) {
			if len(c.s) != len(c.names) {
				t.Fatalf("%d states, %d names", len(c.s), len(c.names))
			}
			m, err := am.NewCommon(context.Background(), name, c.s, c.names, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.Dispose()
			<-m.WhenDisposed()
		})
	}
}

// TestClientLifecycle walks the client schema through a normal run and a stop.
func TestClientLifecycle(t *testing.T) {
	m, err := am.NewCommon(context.Background(), "c", ssC.States, ssC.Names, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { m.Dispose(); <-m.WhenDisposed() }()
	m.Add1(ssC.Start, nil)
	if !m.Is1(ssC.Connecting) {
		t.Fatalf("Start should add Connecting: %s", m)
	}
	m.Add1(ssC.Connected, nil)
	if !m.Is(am.S{ssC.Connected, ssC.Handshaking}) || m.Is1(ssC.Connecting) {
		t.Fatalf("Connected should add Handshaking and drop Connecting: %s", m)
	}
	m.Add1(ssC.HandshakeDone, nil)
	if !m.Is(am.S{ssC.HandshakeDone, ssC.Ready}) || m.Is1(ssC.Handshaking) {
		t.Fatalf("HandshakeDone should bring Ready: %s", m)
	}
	m.Remove1(ssC.Start, nil)
	if m.Any1(ssC.Connected, ssC.HandshakeDone, ssC.Ready) {
		t.Fatalf("removing Start should drop the connection states: %s", m)
	}
	m.Add1(ssC.Disconnected, nil)
	if !m.Is1(ssC.Disconnected) {
		t.Fatalf("Disconnected: %s", m)
	}
}

// TestServerLifecycle walks the server schema through start and stop.
func TestServerLifecycle(t *testing.T) {
	m, err := am.NewCommon(context.Background(), "s", ssS.States, ssS.Names, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { m.Dispose(); <-m.WhenDisposed() }()
	m.Add1(ssS.Start, nil)
	if !m.Is1(ssS.RpcStarting) {
		t.Fatalf("Start should add RpcStarting: %s", m)
	}
	m.Add1(ssS.RpcReady, nil)
	if !m.Is(am.S{ssS.RpcReady, ssS.Ready}) || m.Is1(ssS.RpcStarting) {
		t.Fatalf("RpcReady should bring Ready: %s", m)
	}
	if m.Add1(ssS.ClientConnected, am.A{"id": "x"}) != am.Executed {
		t.Fatal("ClientConnected refused while RpcReady")
	}
	m.Remove1(ssS.Start, nil)
	if m.Any1(ssS.RpcReady, ssS.Ready) {
		t.Fatalf("removing Start should stop: %s", m)
	}
}

// TestV07Names: the asyncmachine-go v0.7 names exist, name the same states,
// and are in their schemas, so v0.7 code that waits on them ports.
func TestV07Names(t *testing.T) {
	if ssS.ClientConn != ssS.ClientConnected || ssS.ClientDisconn != ssS.ClientDisconnected {
		t.Fatal("ClientConn/ClientDisconn don't alias the new names")
	}
	for name, c := range map[string]struct {
		s     am.Struct
		names am.S
		want  am.S
	}{
		"shared": {states.States, states.Names, am.S{
			states.Exception, states.ErrNetwork, states.ErrRpc, states.ErrOnClient,
			states.Start, states.Ready, states.HandshakeDone, states.Handshaking,
		}},
		"client": {ssC.States, ssC.Names, am.S{ssC.ErrOnClient, ssC.HandshakeDone, ssC.Handshaking}},
		"server": {ssS.States, ssS.Names, am.S{
			ssS.ErrOnClient, ssS.HandshakeDone, ssS.Handshaking, ssS.ClientConn, ssS.ClientDisconn,
		}},
	} {
		for _, n := range c.want {
			if _, ok := c.s[n]; !ok {
				t.Errorf("%s schema lacks %s", name, n)
			}
			if !slices.Contains(c.names, n) {
				t.Errorf("%s names lack %s", name, n)
			}
		}
	}
	// v0.7's shared names, in v0.7's order
	if !slices.Equal(states.Names[:8], am.S{
		"Exception", "ErrNetwork", "ErrRpc", "ErrOnClient", "Start", "Ready", "HandshakeDone", "Handshaking",
	}) {
		t.Errorf("shared names: %v", states.Names)
	}
}
