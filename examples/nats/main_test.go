package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo runs end to end on an embedded server.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := withNATS(ctx, "", &buf, demo); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	for _, want := range []string{"server a leads", "mirror 2 sees Paid; Jobs tick 5", "unknown state",
		"server b leads (restored Paid=true, Jobs tick 5)", "durable wait resolved by server b: case 0"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	t.Log(buf.String())
}

// The gateway answers over NATS, and a lost request gets a 504.
func TestGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := withNATS(ctx, "", &buf, gateway); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), `"square":49`) {
		t.Errorf("no 49 in:\n%s", buf.String())
	}
	t.Log(buf.String())
}

// With a URL (-nats, $NATS_URL) the demo uses that cluster instead of
// embedding one: here, another embedded server standing in for it.
func TestExternalURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := arpcnats.StartEmbedded(ctx, arpcnats.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var buf bytes.Buffer
	if err := withNATS(ctx, e.ClientURL(), &buf, demo); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "NATS at "+e.ClientURL()) || strings.Contains(buf.String(), "embedded") {
		t.Errorf("didn't use the given URL:\n%s", buf.String())
	}
}
